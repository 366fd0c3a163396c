"""The committed task set: shape, spread, and that every record's patches rebuild its trees exactly."""

import collections
import json
import os
import tempfile
import unittest

import build_tasks
import mutate
import patches
import validate

DATA = os.path.join(os.path.dirname(build_tasks.TOOLS), "data", "tasks.jsonl")
FIELDS = ("repo", "instance_id", "base_commit", "patch", "test_patch", "problem_statement", "FAIL_TO_PASS",
          "PASS_TO_PASS", "image", "difficulty")


def load_tasks():
    with open(DATA, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def repo_files(name):
    folder = os.path.join(build_tasks.REPOS_DIR, name)
    return {rel: validate.read_text(folder, rel) for rel in patches.list_files(folder)}


def apply_in_memory(files, patch):
    result = dict(files)
    for path, is_new, hunks in patches.parse_patch(patch):
        if is_new == (path in result):
            raise patches.PatchError("%s: new-file flag does not match the tree" % path)
        result[path] = patches.apply_to_text(path, result.get(path, ""), hunks)
    return result


def tree_id(files, without_tests=True):
    return patches.git_tree_id({p: t.encode("utf-8") for p, t in files.items()
                                if not (without_tests and p.startswith("tests/"))})


class TaskDataTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tasks = load_tasks()
        cls.repos = {name: repo_files(name) for name in sorted(os.listdir(build_tasks.REPOS_DIR))}

    def test_at_least_150_tasks_with_unique_ids(self):
        self.assertGreaterEqual(len(self.tasks), 150)
        self.assertEqual(len({t["instance_id"] for t in self.tasks}), len(self.tasks))

    def test_fields(self):
        for t in self.tasks:
            with self.subTest(task=t["instance_id"]):
                for name in FIELDS:
                    self.assertIn(name, t)
                self.assertEqual(t["image"], "python")
                self.assertTrue(t["FAIL_TO_PASS"] and t["PASS_TO_PASS"])
                self.assertFalse(set(t["FAIL_TO_PASS"]) & set(t["PASS_TO_PASS"]))
                self.assertEqual(t["difficulty"]["failing_tests"], len(t["FAIL_TO_PASS"]))
                self.assertEqual(t["difficulty"]["gold_patch_lines"], patches.changed_line_count(t["patch"]))

    def test_spread_over_repositories_and_kinds(self):
        per_repo = collections.Counter(t["repo"] for t in self.tasks)
        per_kind = collections.Counter(t["mutation"]["kind"] for t in self.tasks)
        self.assertEqual(set(per_repo), set(self.repos))
        self.assertGreaterEqual(min(per_repo.values()), 40)
        self.assertGreaterEqual(len(per_kind), 8)
        self.assertTrue(set(per_kind) <= set(mutate.KINDS))

    def test_patches_rebuild_the_trees(self):
        for t in self.tasks:
            with self.subTest(task=t["instance_id"]):
                clean = self.repos[t["repo"]]
                self.assertEqual(t["source_tree"], tree_id(clean), "the repository changed since the tasks were built")
                buggy = apply_in_memory(clean, t["bug_patch"])
                self.assertEqual(tree_id(buggy), t["base_commit"])
                fixed = apply_in_memory({p: s for p, s in buggy.items() if not p.startswith("tests/")}, t["patch"])
                self.assertEqual(tree_id(fixed), t["source_tree"])
                with_tests = apply_in_memory({p: s for p, s in buggy.items() if not p.startswith("tests/")}, t["test_patch"])
                self.assertEqual(tree_id(with_tests, without_tests=False), tree_id(buggy, without_tests=False))

    def test_tests_cover_the_whole_suite(self):
        suites = collections.defaultdict(set)
        for t in self.tasks:
            suites[t["repo"]].add(frozenset(t["FAIL_TO_PASS"]) | frozenset(t["PASS_TO_PASS"]))
        for repo, variants in suites.items():
            with self.subTest(repo=repo):
                self.assertEqual(len(variants), 1)

    def test_problem_statement_does_not_give_the_fix_away(self):
        for t in self.tasks:
            with self.subTest(task=t["instance_id"]):
                text = t["problem_statement"]
                self.assertNotIn(t["mutation"]["file"], text)
                self.assertIn(">>> ", text)
                fixed_lines = [line[1:].strip() for line in t["patch"].splitlines()
                               if line.startswith("+") and not line.startswith("+++")]
                for line in fixed_lines:
                    if len(line) > 20:
                        self.assertNotIn(line, text)


class TaskExecutionTests(unittest.TestCase):
    """The first task of each repository, run for real: the bug fails FAIL_TO_PASS, the gold patch passes all."""

    def test_first_task_of_each_repository(self):
        seen = set()
        for t in load_tasks():
            if t["repo"] in seen:
                continue
            seen.add(t["repo"])
            with self.subTest(task=t["instance_id"]), tempfile.TemporaryDirectory(prefix="swe-task-") as work:
                tree = os.path.join(work, "repo")
                patches.copy_tree(os.path.join(build_tasks.REPOS_DIR, t["repo"]), tree, exclude_dirs=("tests",))
                patches.apply_patch(tree, t["bug_patch"])
                self.assertEqual(patches.folder_tree_id(tree), t["base_commit"])
                patches.apply_patch(tree, t["test_patch"])
                outcomes = validate.run_suite(tree, timeout=60)
                self.assertTrue(all(outcomes.get(x) != "passed" for x in t["FAIL_TO_PASS"]))
                self.assertTrue(all(outcomes.get(x) == "passed" for x in t["PASS_TO_PASS"]))
                patches.apply_patch(tree, t["patch"])
                outcomes = validate.run_suite(tree, timeout=60)
                self.assertEqual({x: outcomes.get(x) for x in t["FAIL_TO_PASS"] + t["PASS_TO_PASS"]},
                                 {x: "passed" for x in t["FAIL_TO_PASS"] + t["PASS_TO_PASS"]})
        self.assertEqual(len(seen), len(os.listdir(build_tasks.REPOS_DIR)))


if __name__ == "__main__":
    unittest.main()
