"""Turns expression text into tokens, each remembering where in the text it started."""

NUMBER = "number"
NAME = "name"
OP = "op"
END = "end"

# Longest operators first, so "**" is not read as two "*".
OPERATORS = ("**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "^", "(", ")", ",", "<", ">")


class ExpressionError(ValueError):
    """A problem with an expression; ``position`` is the 0-based offset in the text, if known."""

    def __init__(self, message, position=None):
        if position is not None:
            message = "%s at position %d" % (message, position)
        super().__init__(message)
        self.position = position


class Token:
    """One token: its kind, its text or value, and its offset in the expression."""

    __slots__ = ("kind", "value", "position")

    def __init__(self, kind, value, position):
        self.kind = kind
        self.value = value
        self.position = position

    def __repr__(self):
        return "Token(%s, %r, %d)" % (self.kind, self.value, self.position)

    def __eq__(self, other):
        return isinstance(other, Token) and (self.kind, self.value, self.position) == (other.kind, other.value, other.position)


def read_number(text, start):
    """Read a number (digits, an optional fraction, an optional exponent) starting at ``start``.

    Returns (value, end); integers stay ``int``, anything with a point or exponent is ``float``.
    """
    i = start
    n = len(text)
    while i < n and text[i].isdigit():
        i += 1
    is_float = False
    if i < n and text[i] == ".":
        is_float = True
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j].isdigit():
            is_float = True
            i = j
            while i < n and text[i].isdigit():
                i += 1
    literal = text[start:i]
    if literal == ".":
        raise ExpressionError("a lone '.' is not a number", start)
    return (float(literal) if is_float else int(literal)), i


def tokenize(text):
    """Split ``text`` into tokens, ending with an END token; unknown characters raise ExpressionError."""
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            value, end = read_number(text, i)
            tokens.append(Token(NUMBER, value, i))
            i = end
            continue
        if ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token(NAME, text[i:j], i))
            i = j
            continue
        for op in OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token(OP, "**" if op == "^" else op, i))
                i += len(op)
                break
        else:
            raise ExpressionError("unexpected character %r" % ch, i)
    tokens.append(Token(END, None, n))
    return tokens
