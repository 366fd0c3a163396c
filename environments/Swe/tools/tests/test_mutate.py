"""The bug generator: every kind finds sites, edits only what it means to, and yields a diff git accepts."""

import ast
import os
import shutil
import subprocess
import tempfile
import unittest

import mutate
import patches

FIXTURE = '''"""A module with one of everything the mutation kinds look for."""

LIMITS = (3, 7)


def clamp_sum(values, low, high):
    """Sum values, clamped to [low, high]."""
    total = 0
    for i in range(len(values)):
        total += values[i]  # keep me
    if total < low:
        return low
    if total > high and high is not None:
        total = high
    return total


def window(items, start):
    size = LIMITS[1] - LIMITS[0]
    first = items[start:start + size]
    label = "a" if first else "b"
    return divmod(len(first), 2), label, first[-1] * 2


def describe(flag, name):
    prefix = "+"
    if flag:
        prefix = prefix + "!"
        name = name.upper()
    text = prefix + name
    return text
'''


def kinds_found(text):
    return {m.kind for m in mutate.mutations_for_file("pkg/mod.py", text)}


class MutationKindTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mutations = mutate.mutations_for_file("pkg/mod.py", FIXTURE)

    def of_kind(self, kind):
        return [m for m in self.mutations if m.kind == kind]

    def changed_lines(self, mutation):
        diff = patches.file_diff(mutation.path, mutation.original, mutation.mutated)
        return [line for line in diff.splitlines()[4:] if line[:1] in "+-"]

    def test_at_least_eight_kinds(self):
        self.assertGreaterEqual(len(mutate.KINDS), 8)

    def test_every_kind_finds_a_site(self):
        self.assertEqual(kinds_found(FIXTURE), set(mutate.KINDS))

    def test_every_mutation_parses_and_changes_the_tree(self):
        for m in self.mutations:
            with self.subTest(kind=m.kind, line=m.line, description=m.description):
                self.assertNotEqual(ast.dump(ast.parse(m.mutated)), ast.dump(ast.parse(FIXTURE)))

    def test_formatting_elsewhere_is_kept(self):
        for m in self.mutations:
            with self.subTest(kind=m.kind, line=m.line):
                self.assertIn('"""A module with one of everything the mutation kinds look for."""', m.mutated)
                self.assertLessEqual(len(self.changed_lines(m)), 8)
                if m.kind not in ("remove_assignment", "shuffle_statements", "remove_condition"):
                    self.assertIn("# keep me", m.mutated)

    def test_mutations_are_distinct(self):
        self.assertEqual(len({m.mutated for m in self.mutations}), len(self.mutations))

    def test_compare_op_alternatives(self):
        texts = {m.mutated for m in self.of_kind("compare_op")}
        self.assertIn(FIXTURE.replace("if total < low:", "if total <= low:"), texts)
        self.assertIn(FIXTURE.replace("if total < low:", "if total > low:"), texts)
        self.assertIn(FIXTURE.replace("high is not None", "high is None"), texts)

    def test_arith_op_including_augmented(self):
        texts = {m.mutated for m in self.of_kind("arith_op")}
        self.assertIn(FIXTURE.replace("total += values[i]", "total -= values[i]"), texts)
        self.assertIn(FIXTURE.replace("LIMITS[1] - LIMITS[0]", "LIMITS[1] + LIMITS[0]"), texts)

    def test_string_formatting_is_not_arithmetic(self):
        self.assertEqual([m for m in mutate.mutations_for_file("m.py", 'def f(x):\n    return "%d" % x\n')
                          if m.kind == "arith_op"], [])

    def test_bool_op(self):
        self.assertEqual([m.mutated for m in self.of_kind("bool_op")],
                         [FIXTURE.replace("total > high and high", "total > high or high")])

    def test_flip_condition_uses_opposite_comparison(self):
        texts = {m.mutated for m in self.of_kind("flip_condition")}
        self.assertIn(FIXTURE.replace("if total < low:", "if total >= low:"), texts)
        self.assertIn(FIXTURE.replace("    if flag:", "    if not flag:"), texts)
        self.assertIn(FIXTURE.replace('"a" if first else "b"', '"a" if not first else "b"'), texts)

    def test_remove_condition_forms(self):
        texts = {m.mutated for m in self.of_kind("remove_condition")}
        self.assertIn(FIXTURE.replace("    if total < low:\n        return low\n", ""), texts)
        self.assertIn(FIXTURE.replace("    if flag:\n        prefix = prefix + \"!\"\n        name = name.upper()\n",
                                      "    prefix = prefix + \"!\"\n    name = name.upper()\n"), texts)
        self.assertIn(FIXTURE.replace("if total > high and high is not None:", "if total > high:"), texts)

    def test_remove_assignment(self):
        texts = {m.mutated for m in self.of_kind("remove_assignment")}
        self.assertIn(FIXTURE.replace("        total = high\n", "        pass\n"), texts)
        self.assertIn(FIXTURE.replace("    text = prefix + name\n", ""), texts)

    def test_off_by_one(self):
        texts = {m.mutated for m in self.of_kind("off_by_one")}
        self.assertIn(FIXTURE.replace("range(len(values))", "range(len(values) + 1)"), texts)
        self.assertIn(FIXTURE.replace("items[start:start + size]", "items[start:start + size - 1]"), texts)
        self.assertIn(FIXTURE.replace("first[-1] * 2", "first[-2] * 2"), texts)

    def test_swap_args(self):
        self.assertIn(FIXTURE.replace("divmod(len(first), 2)", "divmod(2, len(first))"),
                      {m.mutated for m in self.of_kind("swap_args")})

    def test_change_constant(self):
        texts = {m.mutated for m in self.of_kind("change_constant")}
        self.assertIn(FIXTURE.replace("LIMITS = (3, 7)", "LIMITS = (4, 7)"), texts)
        self.assertIn(FIXTURE.replace("total = 0", "total = 1"), texts)
        self.assertIn(FIXTURE.replace('prefix = "+"', "prefix = ''"), texts)
        self.assertFalse(any('"""A module' not in t for t in texts))

    def test_drop_return(self):
        self.assertIn(FIXTURE.replace("    return text\n", "    text\n"), {m.mutated for m in self.of_kind("drop_return")})

    def test_shuffle_only_dependent_statements(self):
        texts = [m.mutated for m in self.of_kind("shuffle_statements")]
        # size feeds first: swapping them is a real bug; the two independent lines in `describe` are not offered.
        self.assertIn(FIXTURE.replace("    size = LIMITS[1] - LIMITS[0]\n    first = items[start:start + size]\n",
                                      "    first = items[start:start + size]\n    size = LIMITS[1] - LIMITS[0]\n"), texts)
        self.assertNotIn(FIXTURE.replace("        prefix = prefix + \"!\"\n        name = name.upper()\n",
                                         "        name = name.upper()\n        prefix = prefix + \"!\"\n"), texts)

    def test_order_is_fixed(self):
        again = mutate.mutations_for_file("pkg/mod.py", FIXTURE)
        self.assertEqual([(m.kind, m.line, m.mutated) for m in again], [(m.kind, m.line, m.mutated) for m in self.mutations])


class DiffTests(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="swe-diff-test-")
        os.makedirs(os.path.join(self.work, "pkg"))

    def tearDown(self):
        shutil.rmtree(self.work)

    def write(self, text):
        with open(os.path.join(self.work, "pkg", "mod.py"), "w") as f:
            f.write(text)

    def read(self):
        with open(os.path.join(self.work, "pkg", "mod.py")) as f:
            return f.read()

    def test_every_kind_yields_a_diff_that_applies_both_ways(self):
        for kind in mutate.KINDS:
            for m in [m for m in mutate.mutations_for_file("pkg/mod.py", FIXTURE) if m.kind == kind][:3]:
                with self.subTest(kind=kind, line=m.line):
                    self.write(FIXTURE)
                    bug = patches.file_diff("pkg/mod.py", FIXTURE, m.mutated)
                    self.assertTrue(bug.startswith("diff --git a/pkg/mod.py b/pkg/mod.py\n--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ "))
                    patches.apply_patch(self.work, bug)
                    self.assertEqual(self.read(), m.mutated)
                    patches.apply_patch(self.work, patches.file_diff("pkg/mod.py", m.mutated, FIXTURE))
                    self.assertEqual(self.read(), FIXTURE)

    def test_git_apply_accepts_the_diffs(self):
        git = shutil.which("git")
        self.assertIsNotNone(git, "git is needed to cross-check the diffs (test.sh installs it)")
        for kind in mutate.KINDS:
            m = [m for m in mutate.mutations_for_file("pkg/mod.py", FIXTURE) if m.kind == kind][0]
            with self.subTest(kind=kind):
                self.write(FIXTURE)
                patch_file = os.path.join(self.work, "bug.diff")
                with open(patch_file, "w") as f:
                    f.write(patches.file_diff("pkg/mod.py", FIXTURE, m.mutated))
                done = subprocess.run([git, "apply", "bug.diff"], cwd=self.work, capture_output=True, text=True)
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertEqual(self.read(), m.mutated)
                done = subprocess.run([git, "apply", "-R", "bug.diff"], cwd=self.work, capture_output=True, text=True)
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertEqual(self.read(), FIXTURE)
                os.remove(patch_file)

    def test_patch_that_does_not_match_is_refused(self):
        self.write(FIXTURE)
        bug = patches.file_diff("pkg/mod.py", FIXTURE, FIXTURE.replace("total = 0", "total = 1"))
        self.write(FIXTURE.replace("total = 0", "total = 5"))
        with self.assertRaises(patches.PatchError) as caught:
            patches.apply_patch(self.work, bug)
        self.assertIn("pkg/mod.py", str(caught.exception))

    def test_patch_outside_the_tree_is_refused(self):
        evil = "--- /dev/null\n+++ b/../escape.py\n@@ -0,0 +1 @@\n+x = 1\n"
        with self.assertRaises(patches.PatchError):
            patches.apply_patch(self.work, evil)

    def test_new_file_patch(self):
        patch = patches.file_diff("tests/test_new.py", None, "import unittest\n")
        self.assertIn("new file mode 100644\n--- /dev/null\n+++ b/tests/test_new.py\n", patch)
        patches.apply_patch(self.work, patch)
        with open(os.path.join(self.work, "tests", "test_new.py")) as f:
            self.assertEqual(f.read(), "import unittest\n")

    def test_empty_new_file_patch(self):
        patch = patches.file_diff("tests/__init__.py", None, "") + patches.file_diff("tests/test_a.py", None, "x = 1\n")
        self.assertTrue(patch.startswith("diff --git a/tests/__init__.py b/tests/__init__.py\nnew file mode 100644\ndiff --git"))
        for applier in ("ours", "git"):
            with self.subTest(applier=applier):
                target = os.path.join(self.work, applier)
                os.makedirs(target)
                if applier == "ours":
                    patches.apply_patch(target, patch)
                else:
                    with open(os.path.join(self.work, applier + ".diff"), "w") as f:
                        f.write(patch)
                    done = subprocess.run(["git", "apply", os.path.join(self.work, applier + ".diff")], cwd=target,
                                          capture_output=True, text=True)
                    self.assertEqual(done.returncode, 0, done.stderr)
                self.assertEqual(patches.list_files(target), ["tests/__init__.py", "tests/test_a.py"])
                self.assertEqual(os.path.getsize(os.path.join(target, "tests", "__init__.py")), 0)

    def test_changed_line_count(self):
        self.assertEqual(patches.changed_line_count(patches.file_diff("a.py", "x = 1\ny = 2\n", "x = 1\ny = 3\n")), 2)

    def test_tree_id_matches_git(self):
        git = shutil.which("git")
        self.assertIsNotNone(git)
        self.write(FIXTURE)
        with open(os.path.join(self.work, "README"), "w") as f:
            f.write("hello\n")
        subprocess.run([git, "init", "-q", "."], cwd=self.work, check=True)
        subprocess.run([git, "add", "."], cwd=self.work, check=True)
        tree = subprocess.run([git, "write-tree"], cwd=self.work, capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(patches.folder_tree_id(self.work), tree)


if __name__ == "__main__":
    unittest.main()
