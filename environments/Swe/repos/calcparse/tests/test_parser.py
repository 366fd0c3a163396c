import unittest

from calcparse import Binary, Call, ExpressionError, Name, Num, Unary, parse


class ParseTests(unittest.TestCase):
    def test_precedence_of_multiplication(self):
        self.assertEqual(parse("1 + 2 * 3"), Binary("+", Num(1), Binary("*", Num(2), Num(3))))

    def test_left_associative_subtraction(self):
        self.assertEqual(parse("8 - 3 - 2"), Binary("-", Binary("-", Num(8), Num(3)), Num(2)))

    def test_right_associative_power(self):
        self.assertEqual(parse("2 ** 3 ** 2"), Binary("**", Num(2), Binary("**", Num(3), Num(2))))

    def test_unary_minus_binds_looser_than_power(self):
        self.assertEqual(parse("-x ** 2"), Unary("-", Binary("**", Name("x"), Num(2))))

    def test_unary_minus_binds_tighter_than_multiplication(self):
        self.assertEqual(parse("-a * b"), Binary("*", Unary("-", Name("a")), Name("b")))

    def test_parentheses(self):
        self.assertEqual(parse("(1 + 2) * 3"), Binary("*", Binary("+", Num(1), Num(2)), Num(3)))

    def test_comparison_loosest(self):
        self.assertEqual(parse("a + 1 < b"), Binary("<", Binary("+", Name("a"), Num(1)), Name("b")))

    def test_call_with_arguments(self):
        self.assertEqual(parse("max(a, 2 + 3)"), Call("max", [Name("a"), Binary("+", Num(2), Num(3))]))

    def test_call_without_arguments(self):
        self.assertEqual(parse("f()"), Call("f", []))

    def test_missing_closing_parenthesis(self):
        with self.assertRaises(ExpressionError) as caught:
            parse("(1 + 2")
        self.assertEqual(caught.exception.position, 6)

    def test_trailing_token_rejected(self):
        with self.assertRaises(ExpressionError) as caught:
            parse("1 2")
        self.assertEqual(caught.exception.position, 2)

    def test_missing_operand(self):
        with self.assertRaises(ExpressionError):
            parse("1 +")

    def test_bad_argument_separator(self):
        with self.assertRaises(ExpressionError):
            parse("max(1 2)")


if __name__ == "__main__":
    unittest.main()
