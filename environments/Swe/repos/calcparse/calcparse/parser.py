"""A precedence-climbing parser from tokens to the syntax tree in ``nodes``.

Binding power, loosest first: comparisons, + and -, * / // %, unary minus and plus, then
** (right-associative, so 2 ** 3 ** 2 is 2 ** 9). ``^`` is read as ``**``.
"""

from .lexer import END, NAME, NUMBER, OP, ExpressionError, tokenize
from .nodes import Binary, Call, Name, Num, Unary

BINARY_POWER = {
    "==": 1, "!=": 1, "<": 1, "<=": 1, ">": 1, ">=": 1,
    "+": 2, "-": 2,
    "*": 3, "/": 3, "//": 3, "%": 3,
    "**": 5,
}
UNARY_POWER = 4
RIGHT_ASSOCIATIVE = ("**",)


class Parser:
    """Parses one expression; use ``parse(text)`` rather than this class directly."""

    def __init__(self, text):
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self):
        return self.tokens[self.index]

    def advance(self):
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, value):
        token = self.advance()
        if token.kind != OP or token.value != value:
            found = "end of input" if token.kind == END else repr(token.value)
            raise ExpressionError("expected %r but found %s" % (value, found), token.position)
        return token

    def parse(self):
        node = self.expression(0)
        token = self.peek()
        if token.kind != END:
            raise ExpressionError("unexpected %r" % (token.value,), token.position)
        return node

    def expression(self, min_power):
        """Parse operators whose binding power is above ``min_power``."""
        left = self.prefix()
        while True:
            token = self.peek()
            if token.kind != OP or token.value not in BINARY_POWER:
                return left
            power = BINARY_POWER[token.value]
            if power <= min_power:
                return left
            self.advance()
            next_min = power - 1 if token.value in RIGHT_ASSOCIATIVE else power
            right = self.expression(next_min)
            left = Binary(token.value, left, right)

    def prefix(self):
        token = self.advance()
        if token.kind == NUMBER:
            return Num(token.value)
        if token.kind == NAME:
            if self.peek().kind == OP and self.peek().value == "(":
                return self.call(token.value)
            return Name(token.value)
        if token.kind == OP and token.value in ("-", "+"):
            operand = self.expression(UNARY_POWER)
            return Unary(token.value, operand)
        if token.kind == OP and token.value == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        found = "end of input" if token.kind == END else repr(token.value)
        raise ExpressionError("expected a value but found %s" % found, token.position)

    def call(self, name):
        self.expect("(")
        args = []
        if self.peek().kind == OP and self.peek().value == ")":
            self.advance()
            return Call(name, args)
        while True:
            args.append(self.expression(0))
            token = self.advance()
            if token.kind == OP and token.value == ")":
                return Call(name, args)
            if token.kind != OP or token.value != ",":
                raise ExpressionError("expected ',' or ')' in call to %s" % name, token.position)


def parse(text):
    """Parse expression ``text`` into a syntax tree."""
    return Parser(text).parse()
