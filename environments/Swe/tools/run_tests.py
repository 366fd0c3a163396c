#!/usr/bin/env python3
"""Run a repository's unittest suite and print one JSON object with every test's outcome.

    python3 -B run_tests.py REPO_FOLDER [TEST_ID ...]

The suite is discovered under REPO_FOLDER/tests with REPO_FOLDER as the import root, so test ids
read like ``tests.test_table.TableRenderTests.test_grid``. Output (stdout, nothing else):

    {"tests": {"<id>": "passed" | "failed" | "error" | "skipped"}, "messages": {"<id>": "..."}}

A test module that cannot be imported shows up as one "error" entry named after the module, so
its tests are absent from "tests"; callers treat an absent test as not passed. Anything the code
under test prints is swallowed so stdout stays valid JSON. Standard library only, so the same
script runs unchanged inside a sandbox; the caller enforces the time limit.
"""

import io
import json
import os
import sys
import traceback
import unittest

MESSAGE_LIMIT = 2000


class RecordingResult(unittest.TestResult):
    """Keeps one outcome per test id, and the last lines of the failure for those that did not pass."""

    def __init__(self):
        super().__init__()
        self.outcomes = {}
        self.messages = {}

    @staticmethod
    def test_id(test):
        name = test.id()
        prefix = "unittest.loader._FailedTest."
        return name[len(prefix):] if name.startswith(prefix) else name

    def record(self, test, outcome, err=None):
        self.outcomes[self.test_id(test)] = outcome
        if err is not None:
            text = "".join(traceback.format_exception_only(err[0], err[1])).strip()
            self.messages[self.test_id(test)] = text[-MESSAGE_LIMIT:]

    def addSuccess(self, test):
        self.record(test, "passed")

    def addFailure(self, test, err):
        self.record(test, "failed", err)

    def addError(self, test, err):
        self.record(test, "error", err)

    def addSkip(self, test, reason):
        self.record(test, "skipped")

    def addExpectedFailure(self, test, err):
        self.record(test, "passed")

    def addUnexpectedSuccess(self, test):
        self.record(test, "failed")

    def addSubTest(self, test, subtest, err):
        # A failing subtest fails its test; passing subtests leave the test's own outcome alone.
        if err is not None:
            kind = "failed" if issubclass(err[0], test.failureException) else "error"
            self.record(test, kind, err)


def load_suite(folder, test_ids):
    loader = unittest.TestLoader()
    if test_ids:
        return loader.loadTestsFromNames(test_ids)
    return loader.discover(os.path.join(folder, "tests"), top_level_dir=folder)


def run(folder, test_ids=()):
    """Run the suite (or the named tests) of the repository at ``folder``; returns the result dict."""
    folder = os.path.abspath(folder)
    if not os.path.isdir(os.path.join(folder, "tests")):
        raise SystemExit("run_tests: %s has no tests folder" % folder)
    os.chdir(folder)
    # The repository, not this script's folder, is what the tests import from.
    sys.path[:] = [folder] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
    real_stdout, real_stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    try:
        suite = load_suite(folder, list(test_ids))
        result = RecordingResult()
        suite.run(result)
    finally:
        sys.stdout, sys.stderr = real_stdout, real_stderr
    return {"tests": dict(sorted(result.outcomes.items())), "messages": dict(sorted(result.messages.items()))}


def main(argv):
    if len(argv) < 2:
        raise SystemExit("usage: run_tests.py REPO_FOLDER [TEST_ID ...]")
    report = run(argv[1], argv[2:])
    sys.stdout.write(json.dumps(report, indent=None, sort_keys=False) + "\n")


if __name__ == "__main__":
    main(sys.argv)
