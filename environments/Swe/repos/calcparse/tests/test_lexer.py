import unittest

from calcparse import ExpressionError, Token, tokenize


def kinds_and_values(text):
    return [(t.kind, t.value) for t in tokenize(text)]


class TokenizeTests(unittest.TestCase):
    def test_integer_and_operator(self):
        self.assertEqual(kinds_and_values("12+3"), [("number", 12), ("op", "+"), ("number", 3), ("end", None)])

    def test_positions(self):
        self.assertEqual([t.position for t in tokenize(" ab * 7")], [1, 4, 6, 7])

    def test_float_forms(self):
        self.assertEqual([t.value for t in tokenize("1.5 .25 3. 2e3 1.5E-2")][:-1], [1.5, 0.25, 3.0, 2000.0, 0.015])

    def test_integer_stays_int(self):
        self.assertIs(type(tokenize("42")[0].value), int)

    def test_exponent_without_digits_is_a_name(self):
        self.assertEqual(kinds_and_values("2e"), [("number", 2), ("name", "e"), ("end", None)])

    def test_two_character_operators(self):
        self.assertEqual([t.value for t in tokenize("a//b**c<=d>=e==f!=g")][1::2][:-1],
                         ["//", "**", "<=", ">=", "==", "!="])

    def test_caret_is_power(self):
        self.assertEqual(tokenize("2^3")[1], Token("op", "**", 1))

    def test_names_with_underscore_and_digits(self):
        self.assertEqual(kinds_and_values("_x1 y_2"), [("name", "_x1"), ("name", "y_2"), ("end", None)])

    def test_unexpected_character_position(self):
        with self.assertRaises(ExpressionError) as caught:
            tokenize("1 + $")
        self.assertEqual(caught.exception.position, 4)

    def test_end_token_at_text_length(self):
        self.assertEqual(tokenize("abc  ")[-1], Token("end", None, 5))


if __name__ == "__main__":
    unittest.main()
