import unittest

from texttable import display_width, format_number, pad, truncate, wrap


class DisplayWidthTests(unittest.TestCase):
    def test_ascii_counts_one_per_character(self):
        self.assertEqual(display_width("hello"), 5)

    def test_wide_characters_count_two(self):
        self.assertEqual(display_width("\u65e5\u672c"), 4)

    def test_combining_marks_count_zero(self):
        self.assertEqual(display_width("e\u0301"), 1)

    def test_empty_text(self):
        self.assertEqual(display_width(""), 0)


class PadTests(unittest.TestCase):
    def test_left(self):
        self.assertEqual(pad("ab", 5), "ab   ")

    def test_right(self):
        self.assertEqual(pad("ab", 5, "right"), "   ab")

    def test_center_even_split(self):
        self.assertEqual(pad("ab", 6, "center"), "  ab  ")

    def test_center_extra_column_goes_right(self):
        self.assertEqual(pad("ab", 5, "center"), " ab  ")

    def test_custom_fill(self):
        self.assertEqual(pad("7", 3, "right", fill="0"), "007")

    def test_wider_text_unchanged(self):
        self.assertEqual(pad("abcdef", 3), "abcdef")

    def test_exact_width_unchanged(self):
        self.assertEqual(pad("abc", 3, "center"), "abc")

    def test_wide_characters_pad_by_columns(self):
        self.assertEqual(pad("\u65e5", 4), "\u65e5  ")

    def test_unknown_alignment_raises(self):
        with self.assertRaises(ValueError):
            pad("x", 3, "middle")

    def test_fill_must_be_one_character(self):
        with self.assertRaises(ValueError):
            pad("x", 3, fill="ab")


class TruncateTests(unittest.TestCase):
    def test_short_text_unchanged(self):
        self.assertEqual(truncate("abc", 5), "abc")

    def test_exact_fit_unchanged(self):
        self.assertEqual(truncate("abcde", 5), "abcde")

    def test_cut_with_ellipsis(self):
        self.assertEqual(truncate("abcdefgh", 6), "abc...")

    def test_custom_ellipsis(self):
        self.assertEqual(truncate("abcdefgh", 4, ellipsis="~"), "abc~")

    def test_width_smaller_than_ellipsis(self):
        self.assertEqual(truncate("abcdefgh", 2), "..")

    def test_wide_characters_not_split(self):
        self.assertEqual(truncate("\u65e5\u672c\u8a9e\u6587", 6), "\u65e5...")

    def test_negative_width_raises(self):
        with self.assertRaises(ValueError):
            truncate("abc", -1)


class WrapTests(unittest.TestCase):
    def test_words_fill_lines(self):
        self.assertEqual(wrap("the quick brown fox", 10), ["the quick", "brown fox"])

    def test_exact_fit_stays_on_line(self):
        self.assertEqual(wrap("ab cd", 5), ["ab cd"])

    def test_long_word_is_split(self):
        self.assertEqual(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"])

    def test_line_breaks_kept(self):
        self.assertEqual(wrap("one\ntwo three", 20), ["one", "two three"])

    def test_empty_text_gives_one_empty_line(self):
        self.assertEqual(wrap("", 5), [""])

    def test_extra_spaces_collapse(self):
        self.assertEqual(wrap("a   b", 10), ["a b"])

    def test_width_one(self):
        self.assertEqual(wrap("ab c", 1), ["a", "b", "c"])

    def test_zero_width_raises(self):
        with self.assertRaises(ValueError):
            wrap("abc", 0)


class FormatNumberTests(unittest.TestCase):
    def test_integer_plain(self):
        self.assertEqual(format_number(42), "42")

    def test_decimals(self):
        self.assertEqual(format_number(3.14159, 2), "3.14")

    def test_zero_decimals_rounds(self):
        self.assertEqual(format_number(2.75, 0), "3")

    def test_thousands(self):
        self.assertEqual(format_number(1234567, thousands=True), "1,234,567")

    def test_thousands_with_decimals(self):
        self.assertEqual(format_number(1234.5, 2, thousands=True), "1,234.50")

    def test_thousands_negative(self):
        self.assertEqual(format_number(-9876543, thousands=True), "-9,876,543")

    def test_thousands_three_digits_has_no_comma(self):
        self.assertEqual(format_number(999, thousands=True), "999")

    def test_thousands_four_digits(self):
        self.assertEqual(format_number(1000, thousands=True), "1,000")

    def test_bool_rejected(self):
        with self.assertRaises(TypeError):
            format_number(True)

    def test_negative_decimals_rejected(self):
        with self.assertRaises(ValueError):
            format_number(1.5, -1)


if __name__ == "__main__":
    unittest.main()
