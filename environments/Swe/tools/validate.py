"""Validation of candidate bugs: each suite run happens in a fresh temporary copy of the repository.

A candidate becomes a task only when
  - the clean suite passes (checked once per repository, in ``Baseline``),
  - with the bug applied at least one test fails (FAIL_TO_PASS) and at least one still passes
    (PASS_TO_PASS),
  - applying the gold patch (the reverse of the bug) on top makes every test pass again,
  - and the failing tests yield at least one reproduction whose output differs between the buggy
    and the clean tree (that is what the issue text shows).
The suite runs in a child process (``run_tests.py``) with a wall-clock timeout and a memory limit,
so a mutation that loops forever or allocates without end is rejected, not fatal.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import patches

TOOLS = os.path.dirname(os.path.abspath(__file__))
RUN_TESTS = os.path.join(TOOLS, "run_tests.py")
PROBE = os.path.join(TOOLS, "probe.py")
TESTS_DIR = "tests"
MEMORY_LIMIT_BYTES = 2 * 1024 ** 3
MAX_PROBED_TESTS = 6


class SuiteError(RuntimeError):
    """The runner did not produce a result: it timed out, crashed or printed something unreadable."""

    def __init__(self, reason, detail=""):
        super().__init__("%s: %s" % (reason, detail) if detail else reason)
        self.reason = reason


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def run_script(args, timeout, stdin_text=None):
    """Run one of our stdlib scripts under the current interpreter; returns its parsed JSON output."""
    # A minimal environment (no PYTHONPATH, no user site) with a fixed hash seed, so set and dict
    # orders in the outputs, and with them the task texts, are the same on every run.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONNOUSERSITE": "1", "LC_ALL": "C.UTF-8"}
    try:
        done = subprocess.run([sys.executable, "-B", "-s"] + args, input=stdin_text, capture_output=True, text=True,
                              timeout=timeout, env=env, preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        raise SuiteError("timeout", "%s did not finish in %ss" % (os.path.basename(args[0]), timeout)) from None
    if done.returncode != 0:
        raise SuiteError("crash", "%s exited %d: %s" % (os.path.basename(args[0]), done.returncode, done.stderr[-500:]))
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise SuiteError("bad output", done.stdout[-300:]) from None


def run_suite(folder, timeout):
    """{test id: outcome} for the suite of the repository copy at ``folder``."""
    return run_script([RUN_TESTS, folder], timeout)["tests"]


@dataclass
class Baseline:
    """A repository as it is on disk, with the outcome of its clean suite."""

    name: str
    folder: str
    passing: list
    source_files: list
    tests_patch: str
    source_tree: str

    @classmethod
    def measure(cls, folder, timeout):
        """Run the clean suite in a fresh copy; every test must pass."""
        folder = os.path.abspath(folder)
        with tempfile.TemporaryDirectory(prefix="swe-clean-") as work:
            patches.copy_tree(folder, work)
            outcomes = run_suite(work, timeout)
        failing = sorted(t for t, o in outcomes.items() if o != "passed")
        if failing:
            raise RuntimeError("clean suite of %s does not pass: %s" % (folder, ", ".join(failing[:5])))
        if not outcomes:
            raise RuntimeError("clean suite of %s found no tests" % folder)
        files = patches.list_files(folder)
        source_files = [f for f in files if not f.startswith(TESTS_DIR + "/")]
        tests_patch = "".join(patches.file_diff(f, None, read_text(folder, f)) for f in files if f.startswith(TESTS_DIR + "/"))
        return cls(os.path.basename(folder), folder, sorted(outcomes), source_files, tests_patch,
                   patches.folder_tree_id(folder, exclude_dirs=(TESTS_DIR,)))


def read_text(folder, rel):
    with open(os.path.join(folder, *rel.split("/")), encoding="utf-8") as f:
        return f.read()


@dataclass
class Verdict:
    """What validation concluded about one candidate; ``reason`` says why it was rejected."""

    accepted: bool
    reason: str = ""
    bug_patch: str = ""
    gold_patch: str = ""
    fail_to_pass: list = field(default_factory=list)
    pass_to_pass: list = field(default_factory=list)
    examples: list = field(default_factory=list)
    base_tree: str = ""


def buggy_copy(baseline, bug_patch, work):
    patches.copy_tree(baseline.folder, work)
    patches.apply_patch(work, bug_patch)


def validate(baseline, mutation, timeout, clean_copy=None):
    """Validate one mutation of ``baseline``; ``clean_copy`` (a pristine copy) is used to replay repros."""
    bug_patch = patches.file_diff(mutation.path, mutation.original, mutation.mutated)
    gold_patch = patches.file_diff(mutation.path, mutation.mutated, mutation.original)
    verdict = Verdict(False, bug_patch=bug_patch, gold_patch=gold_patch)
    with tempfile.TemporaryDirectory(prefix="swe-bug-") as work:
        buggy_copy(baseline, bug_patch, work)
        verdict.base_tree = patches.folder_tree_id(work, exclude_dirs=(TESTS_DIR,))
        try:
            outcomes = run_suite(work, timeout)
        except SuiteError as error:
            verdict.reason = "buggy suite: " + error.reason
            return verdict
        verdict.fail_to_pass = [t for t in baseline.passing if outcomes.get(t) != "passed"]
        verdict.pass_to_pass = [t for t in baseline.passing if outcomes.get(t) == "passed"]
        if not verdict.fail_to_pass:
            verdict.reason = "no test fails"
            return verdict
        if not verdict.pass_to_pass:
            verdict.reason = "no test still passes"
            return verdict
        try:
            built = run_script([PROBE, "build", work] + verdict.fail_to_pass[:MAX_PROBED_TESTS], timeout)
        except SuiteError as error:
            verdict.reason = "probe: " + error.reason
            return verdict
    with tempfile.TemporaryDirectory(prefix="swe-gold-") as work:
        buggy_copy(baseline, bug_patch, work)
        patches.apply_patch(work, gold_patch)
        try:
            outcomes = run_suite(work, timeout)
        except SuiteError as error:
            verdict.reason = "gold suite: " + error.reason
            return verdict
        still_failing = [t for t in baseline.passing if outcomes.get(t) != "passed"]
        if still_failing:
            verdict.reason = "gold patch leaves tests failing"
            return verdict
    verdict.examples = usable_examples(built, clean_copy or baseline.folder, timeout)
    if not verdict.examples:
        verdict.reason = "no reproducible example"
        return verdict
    verdict.accepted = True
    return verdict


def usable_examples(built, clean_folder, timeout):
    """Pair each repro's buggy output with the clean tree's; keep those that show the bug plainly."""
    repros = [r for r in built if "statements" in r]
    if not repros:
        return []
    clean = run_script([PROBE, "replay", clean_folder], timeout, stdin_text=json.dumps(repros))
    examples = []
    for repro, expected in zip(repros, clean):
        actual = repro["result"]
        last = len(repro["statements"]) - 1
        if expected["stopped_at"] is not None and (expected["stopped_at"] != last or not repro["expects_exception"]):
            continue  # the repro does not run cleanly on the working code: it misses context
        if repro["expects_exception"] and expected["exception"] is None:
            continue
        if actual["output"] == expected["output"] and actual["stopped_at"] == expected["stopped_at"]:
            continue
        if " at 0x" in actual["output"] or " at 0x" in expected["output"]:
            continue  # default reprs carry addresses, which would make the text differ run to run
        examples.append({"test": repro["test"], "statements": repro["statements"], "actual": actual,
                         "expected": expected, "expects_exception": repro["expects_exception"]})
    return examples
