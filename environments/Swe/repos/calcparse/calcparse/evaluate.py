"""Evaluating, printing and simplifying syntax trees."""

import math

from .lexer import ExpressionError
from .nodes import Binary, Call, Name, Num, Unary
from .parser import BINARY_POWER, RIGHT_ASSOCIATIVE, UNARY_POWER

CONSTANTS = {"pi": math.pi, "e": math.e}


def checked_sqrt(x):
    if x < 0:
        raise ExpressionError("sqrt of a negative number")
    return math.sqrt(x)


FUNCTIONS = {
    "abs": (abs, 1, 1),
    "sqrt": (checked_sqrt, 1, 1),
    "min": (min, 1, None),
    "max": (max, 1, None),
    "round": (round, 1, 2),
    "clamp": (lambda x, lo, hi: max(lo, min(x, hi)), 3, 3),
}


def divide(op, left, right):
    if right == 0:
        raise ExpressionError("division by zero")
    if op == "/":
        result = left / right
        return int(result) if isinstance(left, int) and isinstance(right, int) and left % right == 0 else result
    if op == "//":
        return left // right
    return left % right


def apply_binary(op, left, right):
    """Apply one binary operator; comparisons give 1 or 0 so results stay numbers."""
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op in ("/", "//", "%"):
        return divide(op, left, right)
    if op == "**":
        return left ** right
    comparisons = {
        "==": left == right, "!=": left != right, "<": left < right,
        "<=": left <= right, ">": left > right, ">=": left >= right,
    }
    return 1 if comparisons[op] else 0


def evaluate_tree(node, variables):
    """Evaluate a syntax tree with ``variables`` (a mapping of names to numbers)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        if node.name in variables:
            return variables[node.name]
        if node.name in CONSTANTS:
            return CONSTANTS[node.name]
        raise ExpressionError("unknown name %r" % node.name)
    if isinstance(node, Unary):
        value = evaluate_tree(node.operand, variables)
        return -value if node.op == "-" else value
    if isinstance(node, Binary):
        left = evaluate_tree(node.left, variables)
        right = evaluate_tree(node.right, variables)
        return apply_binary(node.op, left, right)
    if isinstance(node, Call):
        if node.name not in FUNCTIONS:
            raise ExpressionError("unknown function %r" % node.name)
        function, least, most = FUNCTIONS[node.name]
        count = len(node.args)
        if count < least or (most is not None and count > most):
            raise ExpressionError("%s takes %s arguments, got %d" % (
                node.name, least if most == least else "%d to %s" % (least, most or "any"), count))
        return function(*[evaluate_tree(a, variables) for a in node.args])
    raise TypeError("not a syntax tree node: %r" % (node,))


def names_in(node):
    """The set of variable names an expression reads (constants and function names excluded)."""
    if isinstance(node, Name):
        return set() if node.name in CONSTANTS else {node.name}
    if isinstance(node, Unary):
        return names_in(node.operand)
    if isinstance(node, Binary):
        return names_in(node.left) | names_in(node.right)
    if isinstance(node, Call):
        found = set()
        for arg in node.args:
            found |= names_in(arg)
        return found
    return set()


def power_of(node):
    if isinstance(node, Binary):
        return BINARY_POWER[node.op]
    if isinstance(node, Unary):
        return UNARY_POWER
    return 99


def to_text(node):
    """Write a tree back as text with only the parentheses that are needed."""
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Call):
        return "%s(%s)" % (node.name, ", ".join(to_text(a) for a in node.args))
    if isinstance(node, Unary):
        inner = to_text(node.operand)
        if power_of(node.operand) < UNARY_POWER:
            inner = "(" + inner + ")"
        return node.op + inner
    power = BINARY_POWER[node.op]
    left = to_text(node.left)
    right = to_text(node.right)
    left_needs = power_of(node.left) < power or (power_of(node.left) == power and node.op in RIGHT_ASSOCIATIVE)
    right_needs = power_of(node.right) < power or (power_of(node.right) == power and node.op not in RIGHT_ASSOCIATIVE)
    if left_needs:
        left = "(" + left + ")"
    if right_needs:
        right = "(" + right + ")"
    return "%s %s %s" % (left, node.op, right)


def simplify(node):
    """Fold constant sub-expressions and drop identities: x + 0, x * 1, x * 0, x ** 1, x ** 0, --x."""
    if isinstance(node, Unary):
        operand = simplify(node.operand)
        if isinstance(operand, Num):
            return Num(-operand.value if node.op == "-" else operand.value)
        if node.op == "+":
            return operand
        if isinstance(operand, Unary) and operand.op == "-":
            return operand.operand
        return Unary(node.op, operand)
    if isinstance(node, Call):
        return Call(node.name, [simplify(a) for a in node.args])
    if not isinstance(node, Binary):
        return node
    left = simplify(node.left)
    right = simplify(node.right)
    if isinstance(left, Num) and isinstance(right, Num):
        try:
            return Num(apply_binary(node.op, left.value, right.value))
        except ExpressionError:
            return Binary(node.op, left, right)
    op = node.op
    if op == "+" and right == Num(0):
        return left
    if op == "+" and left == Num(0):
        return right
    if op == "-" and right == Num(0):
        return left
    if op == "*" and (left == Num(0) or right == Num(0)):
        return Num(0)
    if op == "*" and right == Num(1):
        return left
    if op == "*" and left == Num(1):
        return right
    if op == "**" and right == Num(1):
        return left
    if op == "**" and right == Num(0):
        return Num(1)
    return Binary(op, left, right)
