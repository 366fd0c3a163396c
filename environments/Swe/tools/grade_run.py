#!/usr/bin/env python3
"""Run the hidden tests of a graded tree and report each test's outcome, guarded against the code under test.

    python3 -I -B grade_run.py REPO_FOLDER < nonce

The first line of stdin is a nonce chosen by the grader; the report is printed as one line "NONCE {json}" (the
JSON of run_tests.run plus "tampered": [...]). Code under test that prints its own report cannot know the nonce
(stdin is read and closed before anything of the repository is imported), so a forged line is ignored.
The unittest machinery (TestCase, TestResult, TestSuite, TestLoader and their methods) is fingerprinted before
the run and compared after it: a patch that rewrites assertions to always pass is reported as tampering.
"""

import json
import os
import sys
import unittest


def fingerprint():
    prints = {}
    for cls in (unittest.TestCase, unittest.TestResult, unittest.TestSuite, unittest.TestLoader):
        for name, value in list(vars(cls).items()):
            prints["%s.%s" % (cls.__name__, name)] = id(value)
    for name in ("TestCase", "TestResult", "TestSuite", "TestLoader", "main"):
        prints["unittest.%s" % name] = id(getattr(unittest, name, None))
    return prints


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: grade_run.py REPO_FOLDER < nonce")
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    out = os.fdopen(os.dup(1), "w")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import run_tests
    sys.path.remove(here)
    dumps = json.dumps
    before = fingerprint()
    report = run_tests.run(argv[1])
    after = fingerprint()
    report["tampered"] = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    out.write(nonce + " " + dumps(report) + "\n")
    out.flush()


if __name__ == "__main__":
    main(sys.argv)
