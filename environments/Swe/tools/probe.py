#!/usr/bin/env python3
"""Turn failing tests into small, self-contained reproductions a user could have typed.

    python3 -B probe.py build REPO_FOLDER TEST_ID ...     # in the buggy tree
    python3 -B probe.py replay REPO_FOLDER < repros.json  # in the clean tree

``build`` runs each test, finds the assertion that failed, and writes a repro: the imports and
setup lines the test ran before it (lines that touch the test case itself are left out) and, as
the last line, the expression the assertion checked (for ``with self.assertRaises(E)``, the call
inside the block). It then runs the repro, statement by statement, in a fresh namespace, and
records what the last line gave: its ``repr`` or the exception it raised. ``replay`` runs given
repros and records the same, so the caller can put the clean tree's output ("expected") beside
the buggy tree's ("actual"). Output is JSON on stdout. Standard library only.
"""

import ast
import io
import json
import os
import re
import sys
import unittest

ASSERT_VALUE = ("assertEqual", "assertListEqual", "assertTupleEqual", "assertDictEqual", "assertAlmostEqual",
                "assertIs", "assertIsNone", "assertIsNotNone", "assertTrue", "assertFalse", "assertCountEqual",
                "assertSetEqual", "assertNotEqual")


def mentions_self(node):
    return any(isinstance(n, ast.Name) and n.id == "self" for n in ast.walk(node))


def assertion_call(stmt):
    """The ``self.assertX(...)`` call of an expression statement, or None."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            return stmt.value
    return None


def raises_context(stmt):
    """For ``with self.assertRaises(E):`` return the source node of E, else None."""
    if isinstance(stmt, ast.With) and len(stmt.items) == 1:
        call = stmt.items[0].context_expr
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "assertRaises"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "self" and call.args):
            return call.args[0]
    return None


def find_method(tree, class_name, method_name):
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method_name:
                    return item
    return None


def used_names(sources):
    names = set()
    for text in sources:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Name):
                names.add(node.id)
    return names


def preamble(tree, text, needed):
    """Module-level imports, assignments and helper functions of the test file that the repro uses."""
    lines = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            kept = [a for a in node.names if (a.asname or a.name) in needed]
            if kept:
                names = ", ".join(a.name + (" as " + a.asname if a.asname else "") for a in kept)
                lines.append("from %s%s import %s" % ("." * node.level, node.module or "", names))
        elif isinstance(node, ast.Import):
            kept = [a for a in node.names if (a.asname or a.name.split(".")[0]) in needed]
            if kept:
                lines.append("import " + ", ".join(a.name + (" as " + a.asname if a.asname else "") for a in kept))
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in needed for t in node.targets):
            lines.append(ast.get_source_segment(text, node))
        elif isinstance(node, ast.FunctionDef) and node.name in needed:
            lines.append(ast.get_source_segment(text, node))
    return lines


def build_repro(test_file, class_name, method_name, failing_line):
    """The repro for the assertion at ``failing_line`` of a test method, or (None, reason)."""
    with open(test_file, encoding="utf-8") as f:
        text = f.read()
    tree = ast.parse(text)
    method = find_method(tree, class_name, method_name)
    if method is None:
        return None, "test method not found in %s" % test_file
    setup = []
    target = None
    reached = False
    for stmt in method.body:
        if stmt.lineno <= failing_line <= stmt.end_lineno:
            reached = True
        if reached and mentions_self(stmt):
            target = stmt
            break
        if not mentions_self(stmt):
            # Includes a setup line that itself fails: the repro then stops there, as the test did.
            setup.append(ast.get_source_segment(text, stmt))
    if target is None:
        return None, "no assertion at or after line %d of the test body" % failing_line
    expected_exception = None
    call = assertion_call(target)
    if call is not None:
        if call.func.attr not in ASSERT_VALUE or not call.args:
            return None, "assertion %s is not reproduced" % call.func.attr
        expression = call.args[0]
    else:
        exception = raises_context(target)
        if exception is None or len(target.body) != 1 or not isinstance(target.body[0], ast.Expr):
            return None, "failing statement is not a plain assertion"
        expression = target.body[0].value
        expected_exception = ast.get_source_segment(text, exception)
    if mentions_self(expression):
        return None, "the checked expression uses the test case"
    final = ast.get_source_segment(text, expression)
    if "\n" in final:
        final = ast.unparse(expression)
    needed = used_names(setup + [final] + ([expected_exception] if expected_exception else []))
    while True:  # module-level helpers may use further module-level names
        lines = preamble(tree, text, needed)
        grown = needed | used_names(lines)
        if grown == needed:
            break
        needed = grown
    statements = lines + setup + [final]
    return {"statements": statements, "expects_exception": expected_exception}, None


def package_names(folder):
    return sorted(d for d in os.listdir(folder)
                  if d != "tests" and os.path.isfile(os.path.join(folder, d, "__init__.py")))


def describe_function(statement, namespace, packages):
    """Name of the first function or class of the repository a statement calls, e.g. 'Table.render'."""
    for node in ast.walk(ast.parse(statement)):
        if not isinstance(node, ast.Call):
            continue
        try:
            target = eval(compile(ast.Expression(node.func), "<repro>", "eval"), namespace)
        except Exception:
            continue
        function = getattr(target, "__func__", target)
        module = getattr(function, "__module__", "") or ""
        if module.split(".")[0] in packages and hasattr(function, "__qualname__"):
            return function.__qualname__
    return None


def run_repro(statements, packages):
    """Run the statements in a fresh namespace; returns what the last one gave (or where it stopped)."""
    namespace = {"__name__": "__repro__"}
    captured = io.StringIO()
    real_stdout = sys.stdout
    sys.stdout = captured
    try:
        for index, statement in enumerate(statements):
            last = index == len(statements) - 1
            try:
                if last:
                    # repr() runs the library's code too, so a broken __repr__ is part of the behaviour.
                    output = repr(eval(compile(statement, "<repro>", "eval"), namespace))
                else:
                    exec(compile(statement, "<repro>", "exec"), namespace)
            except Exception as error:  # the behaviour being reported, whatever it is
                message = str(error).splitlines()[0] if str(error) else ""
                return {"stopped_at": index, "exception": type(error).__name__,
                        "output": "%s: %s" % (type(error).__name__, message) if message else type(error).__name__,
                        "function": describe_function(statement, namespace, packages)}
        # Default reprs carry a memory address that changes run to run; the type is what matters.
        output = re.sub(r" at 0x[0-9a-fA-F]+>", ">", output)
        return {"stopped_at": None, "exception": None, "output": output,
                "function": describe_function(statements[-1], namespace, packages)}
    finally:
        sys.stdout = real_stdout


class FirstError(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.error = None

    def addFailure(self, test, err):
        self.error = err

    def addError(self, test, err):
        self.error = err


def build(folder, test_ids):
    packages = package_names(folder)
    loader = unittest.TestLoader()
    repros = []
    for test_id in test_ids:
        module_name, class_name, method_name = test_id.rsplit(".", 2)
        try:
            suite = loader.loadTestsFromName(test_id)
            module = sys.modules[module_name]
        except Exception as error:
            repros.append({"test": test_id, "error": "cannot load: %s" % type(error).__name__})
            continue
        result = FirstError()
        captured, real_stdout = io.StringIO(), sys.stdout
        sys.stdout = captured
        try:
            suite.run(result)
        finally:
            sys.stdout = real_stdout
        if result.error is None:
            repros.append({"test": test_id, "error": "test passes"})
            continue
        test_file = os.path.abspath(module.__file__)
        line = None
        tb = result.error[2]
        while tb is not None:
            if os.path.abspath(tb.tb_frame.f_code.co_filename) == test_file:
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is None:
            repros.append({"test": test_id, "error": "no frame in the test file"})
            continue
        repro, reason = build_repro(test_file, class_name, method_name, line)
        if repro is None:
            repros.append({"test": test_id, "error": reason})
            continue
        repro["test"] = test_id
        try:
            repro["result"] = run_repro(repro["statements"], packages)
        except Exception as error:  # e.g. describing the function failed on broken code: skip this test only
            repros.append({"test": test_id, "error": "repro failed outside the example: %s" % type(error).__name__})
            continue
        repros.append(repro)
    return repros


def replay(folder, repros):
    packages = package_names(folder)
    return [run_repro(r["statements"], packages) for r in repros]


def main(argv):
    if len(argv) < 3 or argv[1] not in ("build", "replay"):
        raise SystemExit("usage: probe.py build REPO_FOLDER TEST_ID ... | probe.py replay REPO_FOLDER < repros.json")
    folder = os.path.abspath(argv[2])
    os.chdir(folder)
    # The repository, not this script's folder, is what the tests import from.
    sys.path[:] = [folder] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
    if argv[1] == "build":
        output = build(folder, argv[3:])
    else:
        output = replay(folder, json.load(sys.stdin))
    sys.stdout.write(json.dumps(output) + "\n")


if __name__ == "__main__":
    main(sys.argv)
