import math
import unittest

from calcparse import ExpressionError, evaluate, parse, simplify, to_text, variables


class EvaluateTests(unittest.TestCase):
    def test_arithmetic(self):
        self.assertEqual(evaluate("2 + 3 * 4 - 5"), 9)

    def test_variables(self):
        self.assertEqual(evaluate("2 * (x + 1) ** 2", x=2), 18)

    def test_exact_division_stays_int(self):
        self.assertEqual([evaluate("6 / 3"), evaluate("7 / 2")], [2, 3.5])

    def test_floor_division_and_modulo(self):
        self.assertEqual([evaluate("-7 // 2"), evaluate("-7 % 3")], [-4, 2])

    def test_division_by_zero(self):
        with self.assertRaises(ExpressionError):
            evaluate("1 / (x - x)", x=3)

    def test_power_right_associative(self):
        self.assertEqual(evaluate("2 ^ 3 ^ 2"), 512)

    def test_negative_power(self):
        self.assertEqual(evaluate("-2 ** 2"), -4)

    def test_comparisons_give_one_or_zero(self):
        self.assertEqual([evaluate("3 < 4"), evaluate("3 >= 4"), evaluate("2 == 2"), evaluate("2 != 2")], [1, 0, 1, 0])

    def test_comparison_after_arithmetic(self):
        self.assertEqual(evaluate("1 + 2 <= 3"), 1)

    def test_constants(self):
        self.assertEqual(evaluate("2 * pi"), 2 * math.pi)

    def test_variable_shadows_constant(self):
        self.assertEqual(evaluate("e + 1", e=1), 2)

    def test_unknown_name(self):
        with self.assertRaises(ExpressionError):
            evaluate("y + 1", x=1)

    def test_functions(self):
        self.assertEqual([evaluate("abs(-3)"), evaluate("sqrt(16)"), evaluate("min(4, 2, 8)"), evaluate("max(4, 2, 8)")],
                         [3, 4.0, 2, 8])

    def test_round_with_digits(self):
        self.assertEqual(evaluate("round(2.567, 2)"), 2.57)

    def test_clamp(self):
        self.assertEqual([evaluate("clamp(5, 0, 3)"), evaluate("clamp(-1, 0, 3)"), evaluate("clamp(2, 0, 3)")], [3, 0, 2])

    def test_wrong_argument_count(self):
        with self.assertRaises(ExpressionError):
            evaluate("abs(1, 2)")

    def test_sqrt_of_negative(self):
        with self.assertRaises(ExpressionError):
            evaluate("sqrt(0 - 4)")

    def test_unknown_function(self):
        with self.assertRaises(ExpressionError):
            evaluate("foo(1)")

    def test_variables_listed(self):
        self.assertEqual(variables("b * x + max(a, pi) - b"), ["a", "b", "x"])


class PrintTests(unittest.TestCase):
    def test_minimal_parentheses(self):
        self.assertEqual(to_text(parse("((a + b)) * (c)")), "(a + b) * c")

    def test_keeps_right_grouping_of_subtraction(self):
        self.assertEqual(to_text(parse("a - (b - c)")), "a - (b - c)")

    def test_drops_left_grouping_of_subtraction(self):
        self.assertEqual(to_text(parse("(a - b) - c")), "a - b - c")

    def test_power_grouping(self):
        self.assertEqual([to_text(parse("(2 ** 3) ** 2")), to_text(parse("2 ** (3 ** 2)"))], ["(2 ** 3) ** 2", "2 ** 3 ** 2"])

    def test_unary_of_sum(self):
        self.assertEqual(to_text(parse("-(a + b) * c")), "-(a + b) * c")

    def test_call_text(self):
        self.assertEqual(to_text(parse("max(1,x)")), "max(1, x)")

    def test_round_trip(self):
        text = "a * (b + c) - d / (e - f) ** 2"
        self.assertEqual(to_text(parse(to_text(parse(text)))), text)


class SimplifyTests(unittest.TestCase):
    def test_constant_folding(self):
        self.assertEqual(to_text(simplify(parse("x + 2 * 3"))), "x + 6")

    def test_identities(self):
        self.assertEqual(to_text(simplify(parse("x * 1 + 0 * y + 0"))), "x")

    def test_zero_power(self):
        self.assertEqual(to_text(simplify(parse("(a + b) ** 0 + z ** 1"))), "1 + z")

    def test_double_negation(self):
        self.assertEqual(to_text(simplify(parse("--x"))), "x")

    def test_unary_plus_dropped(self):
        self.assertEqual(to_text(simplify(parse("+x * 2"))), "x * 2")

    def test_subtract_zero_only_on_right(self):
        self.assertEqual([to_text(simplify(parse("x - 0"))), to_text(simplify(parse("0 - x")))], ["x", "0 - x"])

    def test_division_by_zero_left_alone(self):
        self.assertEqual(to_text(simplify(parse("1 / 0 + x"))), "1 / 0 + x")

    def test_inside_call(self):
        self.assertEqual(to_text(simplify(parse("max(1 + 1, y * 1)"))), "max(2, y)")


if __name__ == "__main__":
    unittest.main()
