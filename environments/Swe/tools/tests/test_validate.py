"""Validation and task building, on a toy repository written here and on the bundled repositories."""

import json
import os
import shutil
import tempfile
import unittest

import build_tasks
import mutate
import validate

TOY_SOURCE = '''"""A toy library: two functions are tested, one is not."""


def add(a, b):
    return a + b


def scale(x):
    return x * 2


def count_up(n):
    i = 0
    while i < n:
        i += 1
    return i
'''

TOY_TESTS = '''import unittest

from toy import add, count_up


class ToyTests(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_add_zero(self):
        self.assertEqual(add(4, 0), 4)

    def test_count_up(self):
        self.assertEqual(count_up(3), 3)
'''


def write_toy(folder):
    os.makedirs(os.path.join(folder, "toy"))
    os.makedirs(os.path.join(folder, "tests"))
    files = {"toy/__init__.py": TOY_SOURCE, "tests/__init__.py": "", "tests/test_toy.py": TOY_TESTS}
    for rel, text in files.items():
        with open(os.path.join(folder, *rel.split("/")), "w") as f:
            f.write(text)


def toy_mutation(old, new):
    assert TOY_SOURCE.count(old) == 1, old
    matches = [m for m in mutate.mutations_for_file("toy/__init__.py", TOY_SOURCE)
               if m.mutated == TOY_SOURCE.replace(old, new)]
    assert matches, "the generator offers no mutation %r -> %r" % (old, new)
    return matches[0]


class ToyValidationTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="swe-toy-")
        cls.repo = os.path.join(cls.root, "toy")
        write_toy(cls.repo)
        cls.baseline = validate.Baseline.measure(cls.repo, timeout=30)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def test_baseline(self):
        self.assertEqual(self.baseline.passing, ["tests.test_toy.ToyTests.test_add", "tests.test_toy.ToyTests.test_add_zero",
                                                 "tests.test_toy.ToyTests.test_count_up"])
        self.assertEqual(self.baseline.source_files, ["toy/__init__.py"])
        self.assertIn("+++ b/tests/test_toy.py", self.baseline.tests_patch)

    def test_caught_mutation_is_accepted(self):
        verdict = validate.validate(self.baseline, toy_mutation("return a + b", "return a - b"), timeout=30)
        self.assertTrue(verdict.accepted, verdict.reason)
        self.assertEqual(verdict.fail_to_pass, ["tests.test_toy.ToyTests.test_add"])
        self.assertEqual(verdict.pass_to_pass, ["tests.test_toy.ToyTests.test_add_zero", "tests.test_toy.ToyTests.test_count_up"])
        example = verdict.examples[0]
        self.assertEqual(example["statements"], ["from toy import add", "add(2, 3)"])
        self.assertEqual((example["actual"]["output"], example["expected"]["output"]), ("-1", "5"))
        self.assertEqual(example["actual"]["function"], "add")

    def test_mutation_no_test_catches_is_rejected(self):
        verdict = validate.validate(self.baseline, toy_mutation("return x * 2", "return x + 2"), timeout=30)
        self.assertFalse(verdict.accepted)
        self.assertEqual(verdict.reason, "no test fails")

    def test_mutation_failing_every_test_is_rejected(self):
        broken = mutate.Mutation("change_constant", "toy/__init__.py", 1, "test only", TOY_SOURCE,
                                 TOY_SOURCE + "\nraise ImportError('broken on import')\n")
        verdict = validate.validate(self.baseline, broken, timeout=30)
        self.assertFalse(verdict.accepted)
        self.assertEqual(verdict.reason, "no test still passes")

    def test_endless_loop_is_rejected_by_timeout(self):
        verdict = validate.validate(self.baseline, toy_mutation("        i += 1\n", "        i -= 1\n"), timeout=3)
        self.assertFalse(verdict.accepted)
        self.assertEqual(verdict.reason, "buggy suite: timeout")

    def test_problem_statement_shows_the_call_not_the_fix(self):
        verdict = validate.validate(self.baseline, toy_mutation("return a + b", "return a - b"), timeout=30)
        record = build_tasks.task_record(self.baseline, toy_mutation("return a + b", "return a - b"), verdict, seed=5)
        text = record["problem_statement"]
        self.assertIn(">>> add(2, 3)\n-1\n", text)
        self.assertIn("```\n5\n```", text)
        self.assertNotIn("a - b", text)
        self.assertNotIn("a + b", text)
        self.assertNotIn("__init__.py", text)
        self.assertEqual(record["difficulty"], {"gold_patch_lines": 2, "failing_tests": 1})
        self.assertEqual(record["FAIL_TO_PASS"], ["tests.test_toy.ToyTests.test_add"])


class BundledRepositoryTests(unittest.TestCase):
    def test_each_repository_has_a_passing_suite_of_at_least_40_tests(self):
        names = sorted(os.listdir(build_tasks.REPOS_DIR))
        self.assertGreaterEqual(len(names), 3)
        for name in names:
            with self.subTest(repo=name):
                baseline = validate.Baseline.measure(os.path.join(build_tasks.REPOS_DIR, name), timeout=60)
                self.assertGreaterEqual(len(baseline.passing), 40)

    def test_build_is_deterministic_for_a_seed_and_independent_of_jobs(self):
        work = tempfile.mkdtemp(prefix="swe-build-")
        try:
            outputs = []
            for run, jobs in (("a", "1"), ("b", "2")):
                out = os.path.join(work, run, "tasks.jsonl")
                code = build_tasks.main(["--seed", "3", "--count", "4", "--repos", "spans", "--out", out,
                                         "--jobs", jobs, "--quiet"])
                self.assertEqual(code, 0)
                with open(out, "rb") as f, open(os.path.join(work, run, "summary.json"), "rb") as g:
                    outputs.append((f.read(), g.read()))
            self.assertEqual(outputs[0], outputs[1])
            records = [json.loads(line) for line in outputs[0][0].decode().splitlines()]
            self.assertEqual(len(records), 4)
            self.assertEqual(len({r["mutation"]["kind"] for r in records}), 4)
        finally:
            shutil.rmtree(work)

    def test_different_seeds_try_candidates_in_different_orders(self):
        baseline = validate.Baseline.measure(os.path.join(build_tasks.REPOS_DIR, "spans"), timeout=60)
        first = [(m.path, m.line, m.description) for m in build_tasks.candidate_order(baseline, 1)]
        again = [(m.path, m.line, m.description) for m in build_tasks.candidate_order(baseline, 1)]
        other = [(m.path, m.line, m.description) for m in build_tasks.candidate_order(baseline, 2)]
        self.assertEqual(first, again)
        self.assertNotEqual(first, other)
        self.assertEqual(sorted(first), sorted(other))
        self.assertEqual([k for k in mutate.KINDS][:3], [m.kind for m in build_tasks.candidate_order(baseline, 1)[:3]])


if __name__ == "__main__":
    unittest.main()
