"""calcparse: parse, evaluate, print and simplify arithmetic expressions.

    >>> evaluate("2 * (x + 1) ** 2", x=2)
    18
    >>> to_text(simplify(parse("x * 1 + 0 * y + 2 * 3")))
    'x + 6'
"""

from .evaluate import FUNCTIONS, evaluate_tree, names_in, simplify, to_text
from .lexer import ExpressionError, Token, tokenize
from .nodes import Binary, Call, Name, Num, Unary
from .parser import parse


def evaluate(text, **variables):
    """Parse and evaluate ``text`` with the given variables."""
    return evaluate_tree(parse(text), variables)


def variables(text):
    """The sorted list of variable names that ``text`` reads."""
    return sorted(names_in(parse(text)))


__all__ = [
    "Binary", "Call", "ExpressionError", "FUNCTIONS", "Name", "Num", "Token", "Unary", "evaluate",
    "evaluate_tree", "names_in", "parse", "simplify", "to_text", "tokenize", "variables",
]
