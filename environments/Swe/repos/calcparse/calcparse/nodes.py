"""The syntax tree of an expression: numbers, names, unary and binary operations, calls."""


class Node:
    """Base of all tree nodes; nodes compare equal when their fields are equal."""

    fields = ()

    def __eq__(self, other):
        return type(self) is type(other) and all(getattr(self, f) == getattr(other, f) for f in self.fields)

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(repr(getattr(self, f)) for f in self.fields))

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(repr(getattr(self, f)) for f in self.fields))


class Num(Node):
    fields = ("value",)

    def __init__(self, value):
        self.value = value


class Name(Node):
    fields = ("name",)

    def __init__(self, name):
        self.name = name


class Unary(Node):
    fields = ("op", "operand")

    def __init__(self, op, operand):
        self.op = op
        self.operand = operand


class Binary(Node):
    fields = ("op", "left", "right")

    def __init__(self, op, left, right):
        self.op = op
        self.left = left
        self.right = right


class Call(Node):
    fields = ("name", "args")

    def __init__(self, name, args):
        self.name = name
        self.args = tuple(args)
