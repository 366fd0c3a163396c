"""Seeded bug injection on Python source, located with ``ast`` and applied as text edits.

Every mutation kind walks a file's syntax tree to find the places it can change, and turns each
into a text edit at the node's exact position, so the rest of the file (comments, spacing,
quotes) stays as written and the bug patch is a small, readable diff. A mutation is kept only
when the new text still parses and its tree differs from the original's.

Kinds (KINDS lists them in a fixed order):
  compare_op          a < b  -> a <= b or a > b; == <-> !=; in <-> not in; is <-> is not
  arith_op            + <-> -, * -> +, / -> // or *, // -> /, % -> //, ** -> * (also in x += y)
  bool_op             and <-> or
  flip_condition      the test of an if / conditional expression is negated
  remove_condition    an if without else loses its test (its body always runs, or a guard that
                      only returns/raises is deleted), or `a and b` keeps one operand
  remove_assignment   an assignment statement is deleted
  off_by_one          a bound of range() or a slice, or a constant index, moves by one
  swap_args           two neighbouring positional arguments of a call trade places
  change_constant     an integer moves by one, True <-> False, a short string loses a character
  drop_return         `return x` becomes the bare expression `x` (the function falls through)
  shuffle_statements  two neighbouring simple statements trade places
"""

import ast
import re
from dataclasses import dataclass

KINDS = (
    "compare_op", "arith_op", "bool_op", "flip_condition", "remove_condition", "remove_assignment",
    "off_by_one", "swap_args", "change_constant", "drop_return", "shuffle_statements",
)

COMPARE_TOKENS = {
    ast.Lt: r"<(?!=)", ast.LtE: r"<=", ast.Gt: r">(?!=)", ast.GtE: r">=", ast.Eq: r"==", ast.NotEq: r"!=",
    ast.In: r"\bin\b", ast.NotIn: r"\bnot\s+in\b", ast.Is: r"\bis\b(?!\s+not\b)", ast.IsNot: r"\bis\s+not\b",
}
COMPARE_SWAPS = {
    ast.Lt: ("<=", ">"), ast.LtE: ("<", ">="), ast.Gt: (">=", "<"), ast.GtE: (">", "<="),
    ast.Eq: ("!=",), ast.NotEq: ("==",), ast.In: ("not in",), ast.NotIn: ("in",), ast.Is: ("is not",),
    ast.IsNot: ("is",),
}
ARITH_TOKENS = {
    ast.Add: r"\+", ast.Sub: r"-", ast.Mult: r"\*(?!\*)", ast.Div: r"/(?!/)", ast.FloorDiv: r"//",
    ast.Mod: r"%", ast.Pow: r"\*\*",
}
ARITH_SWAPS = {
    ast.Add: ("-",), ast.Sub: ("+",), ast.Mult: ("+",), ast.Div: ("//", "*"), ast.FloorDiv: ("/",),
    ast.Mod: ("//",), ast.Pow: ("*",),
}
# Calls whose arguments commute: swapping them cannot change behaviour.
COMMUTATIVE_CALLS = ("max", "min")
SIMPLE_STATEMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)


@dataclass(frozen=True)
class Mutation:
    """One candidate bug: the file it changes, where, how, and the file's text before and after."""

    kind: str
    path: str
    line: int
    description: str
    original: str
    mutated: str


class SourceFile:
    """A file's text with helpers to turn ast positions (UTF-8 byte columns) into text offsets."""

    def __init__(self, path, text):
        self.path = path
        self.text = text
        self.lines = text.splitlines(True)
        self.line_starts = []
        offset = 0
        for line in self.lines:
            self.line_starts.append(offset)
            offset += len(line)
        self.tree = ast.parse(text, filename=path)
        self.parents = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    def offset(self, lineno, col):
        line = self.lines[lineno - 1]
        return self.line_starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8"))

    def span(self, node):
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, node):
        start, end = self.span(node)
        return self.text[start:end]

    def replace(self, start, end, new):
        return self.text[:start] + new + self.text[end:]

    def enclosing_function(self, node):
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return node
        return None

    def is_docstring(self, node):
        parent = self.parents.get(node)
        if not isinstance(parent, ast.Expr):
            return False
        holder = self.parents.get(parent)
        body = getattr(holder, "body", None)
        return isinstance(body, list) and body and body[0] is parent

    def statement_block(self, stmt):
        """The list of statements ``stmt`` sits in (a body, orelse, finalbody or handler body)."""
        parent = self.parents.get(stmt)
        for field in ("body", "orelse", "finalbody"):
            block = getattr(parent, field, None)
            if isinstance(block, list) and any(s is stmt for s in block):
                return block
        return None

    def owns_lines(self, stmt):
        """True when ``stmt`` starts and ends its lines alone (no other statement on them)."""
        first = self.lines[stmt.lineno - 1]
        if first.encode("utf-8")[:stmt.col_offset].strip():
            return False
        last = self.lines[stmt.end_lineno - 1].encode("utf-8")[stmt.end_col_offset:].decode("utf-8").strip()
        if last and not last.startswith("#"):
            return False
        block = self.statement_block(stmt)
        if block is None:
            return False
        return not any(s is not stmt and s.lineno <= stmt.end_lineno and s.end_lineno >= stmt.lineno for s in block)

    def line_range(self, first, last):
        """Text offsets of whole lines first..last (1-based, inclusive)."""
        start = self.line_starts[first - 1]
        end = self.line_starts[last] if last < len(self.lines) else len(self.text)
        return start, end

    def indent_of(self, lineno):
        line = self.lines[lineno - 1]
        return line[:len(line) - len(line.lstrip())]


def token_edit(source, left_end, right_start, pattern, new_token):
    """Replace the first operator matching ``pattern`` between two offsets (e.g. between operands)."""
    between = source.text[left_end:right_start]
    match = re.search(pattern, between)
    if match is None:
        return None
    start = left_end + match.start()
    return source.replace(start, left_end + match.end(), new_token)


def node_end(source, node):
    return source.offset(node.end_lineno, node.end_col_offset)


def node_start(source, node):
    return source.offset(node.lineno, node.col_offset)


def plus_minus(source, node, delta):
    """Text for ``node`` moved by ``delta`` (an int literal is rewritten; anything else gets `+ 1`)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return repr(node.value + delta)
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int):
        return repr(-node.operand.value + delta)
    text = source.segment(node)
    simple = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)
    if not isinstance(node, simple) and not (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv))):
        text = "(" + text + ")"
    return "%s %s %d" % (text, "+" if delta > 0 else "-", abs(delta))


def sites_compare_op(source):
    for node in ast.walk(source.tree):
        if not isinstance(node, ast.Compare):
            continue
        previous = node.left
        for op, right in zip(node.ops, node.comparators):
            for new in COMPARE_SWAPS[type(op)]:
                text = token_edit(source, node_end(source, previous), node_start(source, right), COMPARE_TOKENS[type(op)], new)
                if text is not None:
                    yield node.lineno, "comparison %s -> %s" % (type(op).__name__, new), text
            previous = right


def sites_arith_op(source):
    for node in ast.walk(source.tree):
        if isinstance(node, ast.BinOp) and type(node.op) in ARITH_SWAPS:
            # "text" % args is string formatting, not arithmetic.
            if isinstance(node.op, ast.Mod) and isinstance(node.left, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(node.left, "value", None), str):
                continue
            for new in ARITH_SWAPS[type(node.op)]:
                text = token_edit(source, node_end(source, node.left), node_start(source, node.right), ARITH_TOKENS[type(node.op)], new)
                if text is not None:
                    yield node.lineno, "operator %s -> %s" % (type(node.op).__name__, new), text
        elif isinstance(node, ast.AugAssign) and type(node.op) in ARITH_SWAPS:
            for new in ARITH_SWAPS[type(node.op)]:
                text = token_edit(source, node_end(source, node.target), node_start(source, node.value),
                                  ARITH_TOKENS[type(node.op)] + r"=", new + "=")
                if text is not None:
                    yield node.lineno, "augmented %s -> %s=" % (type(node.op).__name__, new), text


def sites_bool_op(source):
    for node in ast.walk(source.tree):
        if not isinstance(node, ast.BoolOp):
            continue
        old, new = (r"\band\b", "or") if isinstance(node.op, ast.And) else (r"\bor\b", "and")
        for left, right in zip(node.values, node.values[1:]):
            text = token_edit(source, node_end(source, left), node_start(source, right), old, new)
            if text is not None:
                yield node.lineno, "boolean operator -> %s" % new, text


NEGATED_COMPARE = {
    ast.Lt: ">=", ast.LtE: ">", ast.Gt: "<=", ast.GtE: "<", ast.Eq: "!=", ast.NotEq: "==",
    ast.In: "not in", ast.NotIn: "in", ast.Is: "is not", ast.IsNot: "is",
}


def sites_flip_condition(source):
    for node in ast.walk(source.tree):
        if not isinstance(node, (ast.If, ast.IfExp)):
            continue
        test = node.test
        start, end = source.span(test)
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            # Negate a single comparison by its opposite operator, the way a person would write it.
            op = type(test.ops[0])
            text = token_edit(source, node_end(source, test.left), node_start(source, test.comparators[0]),
                              COMPARE_TOKENS[op], NEGATED_COMPARE[op])
            if text is not None:
                yield node.lineno, "condition negated", text
            continue
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            new = source.segment(test.operand)
            if isinstance(test.operand, (ast.BoolOp, ast.Compare, ast.IfExp, ast.NamedExpr)):
                new = "(" + new + ")"
        elif isinstance(test, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)):
            new = "not " + source.segment(test)
        else:
            new = "not (%s)" % source.segment(test)
        yield node.lineno, "condition negated", source.replace(start, end, new)


def is_elif(source, node):
    parent = source.parents.get(node)
    return isinstance(parent, ast.If) and len(parent.orelse) == 1 and parent.orelse[0] is node and \
        source.lines[node.lineno - 1].lstrip().startswith("elif")


def delete_statement(source, stmt):
    """Text with ``stmt``'s lines removed, or replaced by `pass` when it is alone in its block."""
    start, end = source.line_range(stmt.lineno, stmt.end_lineno)
    block = source.statement_block(stmt)
    if len(block) == 1:
        return source.replace(start, end, source.indent_of(stmt.lineno) + "pass\n")
    return source.replace(start, end, "")


def sites_remove_condition(source):
    for node in ast.walk(source.tree):
        if isinstance(node, ast.BoolOp) and len(node.values) == 2:
            start, end = source.span(node)
            for keep in node.values:
                text = source.segment(keep)
                if isinstance(keep, (ast.IfExp, ast.NamedExpr)):
                    text = "(" + text + ")"
                yield node.lineno, "operand of %s dropped" % type(node.op).__name__.lower(), source.replace(start, end, text)
        if not isinstance(node, ast.If) or node.orelse or is_elif(source, node) or not source.owns_lines(node):
            continue
        if node.body[0].lineno == node.lineno:
            continue
        if len(node.body) == 1 and isinstance(node.body[0], (ast.Return, ast.Raise, ast.Continue, ast.Break)):
            yield node.lineno, "guard removed", delete_statement(source, node)
            continue
        outer = source.indent_of(node.lineno)
        inner = source.indent_of(node.body[0].lineno)
        if not inner.startswith(outer) or len(inner) <= len(outer):
            continue
        start, end = source.line_range(node.body[0].lineno, node.end_lineno)
        body_lines = source.text[start:end].splitlines(True)
        cut = len(inner) - len(outer)
        dedented = "".join(line[cut:] if line[:cut].strip() == "" else line for line in body_lines)
        if_start, _ = source.line_range(node.lineno, node.lineno)
        yield node.lineno, "if test removed, body always runs", source.replace(if_start, end, dedented)


def sites_remove_assignment(source):
    for node in ast.walk(source.tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and source.enclosing_function(node) and source.owns_lines(node):
            yield node.lineno, "assignment deleted", delete_statement(source, node)


def sites_off_by_one(source):
    for node in ast.walk(source.tree):
        bounds = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            bounds = [a for a in node.args if not isinstance(a, ast.Starred)]
        elif isinstance(node, ast.Slice):
            bounds = [b for b in (node.lower, node.upper) if b is not None]
        elif isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
            index = node.slice
            if (isinstance(index, ast.Constant) and type(index.value) is int) or (
                    isinstance(index, ast.UnaryOp) and isinstance(index.operand, ast.Constant) and type(index.operand.value) is int):
                bounds = [index]
        for bound in bounds:
            start, end = source.span(bound)
            for delta in (1, -1):
                yield bound.lineno, "bound moved by %+d" % delta, source.replace(start, end, plus_minus(source, bound, delta))


def sites_swap_args(source):
    for node in ast.walk(source.tree):
        if not isinstance(node, ast.Call) or len(node.args) < 2:
            continue
        if isinstance(node.func, ast.Name) and node.func.id in COMMUTATIVE_CALLS:
            continue
        for a, b in zip(node.args, node.args[1:]):
            if isinstance(a, ast.Starred) or isinstance(b, ast.Starred):
                continue
            a_text, b_text = source.segment(a), source.segment(b)
            if a_text == b_text:
                continue
            a_start, a_end = source.span(a)
            b_start, b_end = source.span(b)
            text = source.text[:a_start] + b_text + source.text[a_end:b_start] + a_text + source.text[b_end:]
            yield node.lineno, "arguments swapped", text


def sites_change_constant(source):
    for node in ast.walk(source.tree):
        if not isinstance(node, ast.Constant) or source.is_docstring(node):
            continue
        if isinstance(source.parents.get(node), ast.JoinedStr):
            continue
        start, end = source.span(node)
        value = node.value
        if isinstance(value, bool):
            yield node.lineno, "boolean constant flipped", source.replace(start, end, repr(not value))
        elif isinstance(value, int):
            for delta in ((1,) if value == 0 else (1, -1)):
                yield node.lineno, "integer %d -> %d" % (value, value + delta), source.replace(start, end, repr(value + delta))
        elif isinstance(value, str) and 1 <= len(value) <= 3 and source.segment(node)[:1] in "'\"":
            yield node.lineno, "string %r -> %r" % (value, value[:-1]), source.replace(start, end, repr(value[:-1]))


def sites_drop_return(source):
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Return) and node.value is not None and source.owns_lines(node):
            start = node_start(source, node)
            value_start = node_start(source, node.value)
            yield node.lineno, "return dropped", source.replace(start, value_start, "")


def dotted(node):
    """'a.b.c' for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def reads_and_writes(stmt):
    """Names (dotted for attributes) a simple statement reads and writes; a method call writes its receiver."""
    reads, writes = set(), set()
    targets = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        targets = [stmt.target]
    for target in targets:
        for node in ast.walk(target):
            name = dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
            if name and isinstance(getattr(node, "ctx", None), ast.Store):
                writes.add(name)
    for node in ast.walk(stmt):
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            name = dotted(node)
            if name:
                reads.add(name)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = dotted(node.func.value)
            if receiver:
                writes.add(receiver)
    if isinstance(stmt, ast.AugAssign):
        reads |= writes
    return reads, writes


def depends(first, second):
    """True when swapping the two statements can change what they compute."""
    reads_a, writes_a = reads_and_writes(first)
    reads_b, writes_b = reads_and_writes(second)

    def related(names, others):
        return any(n == o or n.startswith(o + ".") or o.startswith(n + ".") for n in names for o in others)

    return related(writes_a, reads_b | writes_b) or related(writes_b, reads_a)


def sites_shuffle_statements(source):
    for node in ast.walk(source.tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if not isinstance(block, list) or isinstance(node, ast.Module) or isinstance(node, ast.ClassDef):
                continue
            for first, second in zip(block, block[1:]):
                if not (isinstance(first, SIMPLE_STATEMENTS) and isinstance(second, SIMPLE_STATEMENTS)):
                    continue
                if source.is_docstring(getattr(first, "value", None)) or not depends(first, second):
                    continue
                if not (source.owns_lines(first) and source.owns_lines(second)):
                    continue
                a_start, a_end = source.line_range(first.lineno, first.end_lineno)
                b_start, b_end = source.line_range(second.lineno, second.end_lineno)
                a_text, b_text = source.text[a_start:a_end], source.text[b_start:b_end]
                text = source.text[:a_start] + b_text + source.text[a_end:b_start] + a_text + source.text[b_end:]
                yield first.lineno, "statements on lines %d and %d swapped" % (first.lineno, second.lineno), text


SITE_FINDERS = {kind: globals()["sites_" + kind] for kind in KINDS}


def same_tree(a, b):
    return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))


def mutations_for_file(path, text, kinds=KINDS):
    """Every valid mutation of one file, in a fixed order (kind, then position in the tree walk)."""
    source = SourceFile(path, text)
    found = []
    seen = set()
    for kind in kinds:
        for line, description, mutated in SITE_FINDERS[kind](source):
            if mutated in seen:
                continue
            try:
                if same_tree(text, mutated):
                    continue
            except SyntaxError:
                continue
            seen.add(mutated)
            found.append(Mutation(kind, path, line, description, text, mutated))
    return found
