import unittest

from texttable import Table, convert_field


class TableRenderTests(unittest.TestCase):
    def test_grid(self):
        t = Table(["name", "qty"]).add_rows([["apple", 3], ["kiwi", 12]])
        expected = "\n".join([
            "+-------+-----+",
            "| name  | qty |",
            "+=======+=====+",
            "| apple |   3 |",
            "| kiwi  |  12 |",
            "+-------+-----+",
        ])
        self.assertEqual(t.render(), expected)

    def test_grid_without_rows_has_no_bottom_border(self):
        t = Table(["a", "bb"])
        self.assertEqual(t.render(), "+---+----+\n| a | bb |\n+===+====+")

    def test_plain(self):
        t = Table(["name", "qty"]).add_rows([["apple", 3], ["kiwi", 12]])
        self.assertEqual(t.render("plain"), "name   qty\napple    3\nkiwi    12")

    def test_plain_strips_trailing_spaces(self):
        t = Table(["x", "y"]).add_row(["long value", ""])
        self.assertEqual(t.render("plain"), "x           y\nlong value")

    def test_markdown(self):
        t = Table(["item", "cost"]).add_row(["tea", 4])
        self.assertEqual(t.render("markdown"), "| item | cost |\n| ---- | ---: |\n| tea  |    4 |")

    def test_markdown_center_rule(self):
        t = Table(["a"], align=["center"]).add_row(["xyz"])
        self.assertEqual(t.render("markdown"), "|  a  |\n| :-: |\n| xyz |")

    def test_markdown_escapes_pipe(self):
        t = Table(["a"]).add_row(["x|y"])
        self.assertEqual(t.render("markdown").splitlines()[2], "| x\\|y |")

    def test_multiline_cell_grid(self):
        t = Table(["k", "v"]).add_row(["a", "one\ntwo"])
        self.assertEqual(t.render().splitlines()[3:5], ["| a | one |", "|   | two |"])

    def test_unknown_style_raises(self):
        t = Table(["a"])
        with self.assertRaises(ValueError):
            t.render("fancy")

    def test_wrap_to_max_width(self):
        t = Table(["text"], max_width=6).add_row(["hello big world"])
        self.assertEqual(t.render("plain"), "text\nhello\nbig\nworld")

    def test_truncate_to_max_width(self):
        t = Table(["text"], max_width=6, overflow="truncate").add_row(["hello big world"])
        self.assertEqual(t.render("plain"), "text\nhel...")

    def test_floats_use_decimals(self):
        t = Table(["v"], decimals=1).add_rows([[2.25], [10.0]])
        self.assertEqual(t.render("plain"), "   v\n 2.2\n10.0")

    def test_none_and_bool_cells(self):
        t = Table(["a", "b"]).add_row([None, True]).add_row([1, False])
        self.assertEqual(t.render("plain"), "a  b\n   yes\n1  no")


class TableBehaviourTests(unittest.TestCase):
    def test_numeric_column_right_aligned(self):
        t = Table(["n", "s"]).add_rows([[1, "a"], [2.5, "b"]])
        self.assertEqual(t.alignments(), ["right", "left"])

    def test_bool_column_is_not_numeric(self):
        t = Table(["flag"]).add_row([True])
        self.assertEqual(t.alignments(), ["left"])

    def test_empty_column_is_not_numeric(self):
        t = Table(["n"]).add_row([None])
        self.assertEqual(t.alignments(), ["left"])

    def test_explicit_alignment(self):
        t = Table(["a", "b"], align=["center", "right"])
        self.assertEqual(t.alignments(), ["center", "right"])

    def test_column_widths_include_header(self):
        t = Table(["name", "n"]).add_rows([["ab", 12345], ["abcdef", 1]])
        self.assertEqual(t.column_widths(), [6, 5])

    def test_row_length_checked(self):
        t = Table(["a", "b"])
        with self.assertRaises(ValueError):
            t.add_row([1])

    def test_alignment_count_checked(self):
        with self.assertRaises(ValueError):
            Table(["a", "b"], align=["left"])

    def test_no_columns_rejected(self):
        with self.assertRaises(ValueError):
            Table([])

    def test_len_counts_rows(self):
        t = Table(["a"]).add_rows([[1], [2], [3]])
        self.assertEqual(len(t), 3)

    def test_column_by_name(self):
        t = Table(["a", "b"]).add_rows([[1, "x"], [2, "y"]])
        self.assertEqual(t.column("b"), ["x", "y"])

    def test_unknown_column_raises(self):
        t = Table(["a"])
        with self.assertRaises(KeyError):
            t.column("z")

    def test_sort_by_ascending_none_last(self):
        t = Table(["n"]).add_rows([[3], [None], [1], [2]])
        self.assertEqual(t.sort_by("n").column(0), [1, 2, 3, None])

    def test_sort_by_descending_none_last(self):
        t = Table(["n"]).add_rows([[3], [None], [1], [2]])
        self.assertEqual(t.sort_by("n", reverse=True).column(0), [3, 2, 1, None])

    def test_sort_is_stable(self):
        t = Table(["k", "v"]).add_rows([[1, "a"], [0, "b"], [1, "c"]])
        self.assertEqual(t.sort_by(0).column("v"), ["b", "a", "c"])


class CsvTableTests(unittest.TestCase):
    def test_from_csv_converts_numbers(self):
        t = Table.from_csv("name,qty,price\napple,3,1.5\npear,,x\n")
        self.assertEqual(t.rows, [["apple", 3, 1.5], ["pear", None, "x"]])

    def test_from_csv_without_conversion(self):
        t = Table.from_csv("a\n7\n", convert_numbers=False)
        self.assertEqual(t.rows, [["7"]])

    def test_from_csv_passes_options(self):
        t = Table.from_csv("a\nxyz\n", align=["right"])
        self.assertEqual(t.render("plain"), "  a\nxyz")

    def test_from_empty_csv_raises(self):
        with self.assertRaises(ValueError):
            Table.from_csv("")

    def test_to_csv(self):
        t = Table(["a", "b"], decimals=2).add_row([0.5, None])
        self.assertEqual(t.to_csv(), "a,b\n0.50,\n")

    def test_convert_field(self):
        self.assertEqual([convert_field(" 12 "), convert_field("1e3"), convert_field("ab")], [12, 1000.0, "ab"])


if __name__ == "__main__":
    unittest.main()
