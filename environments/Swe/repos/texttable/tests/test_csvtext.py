import unittest

from texttable import CsvError, parse_csv, write_csv


class ParseCsvTests(unittest.TestCase):
    def test_simple_rows(self):
        self.assertEqual(parse_csv("a,b\n1,2\n"), [["a", "b"], ["1", "2"]])

    def test_no_trailing_newline(self):
        self.assertEqual(parse_csv("a,b\n1,2"), [["a", "b"], ["1", "2"]])

    def test_empty_fields(self):
        self.assertEqual(parse_csv("a,,c\n"), [["a", "", "c"]])

    def test_trailing_empty_field(self):
        self.assertEqual(parse_csv("a,b,\n"), [["a", "b", ""]])

    def test_quoted_comma(self):
        self.assertEqual(parse_csv('"x,y",z\n'), [["x,y", "z"]])

    def test_doubled_quote(self):
        self.assertEqual(parse_csv('"say ""hi""",1\n'), [['say "hi"', "1"]])

    def test_quoted_newline(self):
        self.assertEqual(parse_csv('"a\nb",c\n'), [["a\nb", "c"]])

    def test_crlf_line_endings(self):
        self.assertEqual(parse_csv("a,b\r\n1,2\r\n"), [["a", "b"], ["1", "2"]])

    def test_other_delimiter(self):
        self.assertEqual(parse_csv("a;b\n", delimiter=";"), [["a", "b"]])

    def test_empty_text(self):
        self.assertEqual(parse_csv(""), [])

    def test_unterminated_quote_names_start_line(self):
        with self.assertRaises(CsvError) as caught:
            parse_csv('a,b\n"open,1\nmore\n')
        self.assertEqual(caught.exception.line, 2)

    def test_quote_inside_field_raises(self):
        with self.assertRaises(CsvError):
            parse_csv('ab"c,d\n')


class WriteCsvTests(unittest.TestCase):
    def test_plain(self):
        self.assertEqual(write_csv([["a", "b"], [1, 2]]), "a,b\n1,2\n")

    def test_quotes_when_needed(self):
        self.assertEqual(write_csv([['x,y', 'say "hi"', "ok"]]), '"x,y","say ""hi""",ok\n')

    def test_no_rows(self):
        self.assertEqual(write_csv([]), "")

    def test_round_trip(self):
        rows = [["name", "note"], ["a", "line1\nline2"], ["b", 'q"q']]
        self.assertEqual(parse_csv(write_csv(rows)), rows)


if __name__ == "__main__":
    unittest.main()
