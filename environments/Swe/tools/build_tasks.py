#!/usr/bin/env python3
"""Generate the SWE task set: seeded bugs in the bundled repositories, validated, with issue text.

    python3 environments/Swe/tools/build_tasks.py --seed 1 --out environments/Swe/data/tasks.jsonl

For each repository under ``repos/`` every mutation site is listed (mutate.py), the sites of each
kind are shuffled with the seed, and candidates are taken round-robin over the kinds and
validated (validate.py) until the repository has its share of ``--count`` tasks. Candidates are
judged strictly in that order (``--jobs`` only validates ahead in parallel), so the output is
the same file for the same seed and repositories, whatever ``--jobs`` is. A summary (counts per
repository and kind, every rejected candidate and why) goes beside the tasks file.
"""

import argparse
import collections
import concurrent.futures
import hashlib
import json
import os
import random
import sys
import tempfile

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)

import issue_text  # noqa: E402
import mutate  # noqa: E402
import patches  # noqa: E402
import validate  # noqa: E402

REPOS_DIR = os.path.join(os.path.dirname(TOOLS), "repos")


def candidate_order(baseline, seed):
    """All mutations of a repository's source files, in the order they will be tried."""
    by_kind = collections.OrderedDict((kind, []) for kind in mutate.KINDS)
    for path in baseline.source_files:
        if not path.endswith(".py"):
            continue
        text = validate.read_text(baseline.folder, path)
        for mutation in mutate.mutations_for_file(path, text):
            by_kind[mutation.kind].append(mutation)
    for kind, mutations in by_kind.items():
        random.Random("%s:%s:%s" % (seed, baseline.name, kind)).shuffle(mutations)
    order = []
    queues = [collections.deque(m) for m in by_kind.values()]
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.popleft())
    return order


def task_record(baseline, mutation, verdict, seed):
    package = sorted({p.split("/")[0] for p in baseline.source_files if "/" in p})[0]
    digest = hashlib.sha1(verdict.bug_patch.encode("utf-8")).hexdigest()[:10]
    instance_id = "%s__%s__%s" % (baseline.name, mutation.kind, digest)
    return {
        "repo": baseline.name,
        "instance_id": instance_id,
        "base_commit": verdict.base_tree,
        "patch": verdict.gold_patch,
        "test_patch": baseline.tests_patch,
        "problem_statement": issue_text.problem_statement(verdict.examples, package, "%s:%s" % (seed, instance_id)),
        "FAIL_TO_PASS": verdict.fail_to_pass,
        "PASS_TO_PASS": verdict.pass_to_pass,
        "image": "python",
        "difficulty": {"gold_patch_lines": patches.changed_line_count(verdict.gold_patch),
                       "failing_tests": len(verdict.fail_to_pass)},
        "bug_patch": verdict.bug_patch,
        "source_tree": baseline.source_tree,
        "mutation": {"kind": mutation.kind, "file": mutation.path, "line": mutation.line,
                     "description": mutation.description},
        "seed": seed,
    }


def build_repo(baseline, quota, seed, timeout, jobs, log):
    """Tasks and rejections for one repository, judged in candidate order until ``quota`` tasks."""
    tasks, rejected = [], []
    used_lines = set()
    order = candidate_order(baseline, seed)
    with tempfile.TemporaryDirectory(prefix="swe-clean-copy-") as clean_copy, \
            concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        patches.copy_tree(baseline.folder, clean_copy)
        position = 0
        while position < len(order) and len(tasks) < quota:
            batch = []
            planned = set(used_lines)
            while position < len(order) and len(batch) < jobs:
                mutation = order[position]
                position += 1
                key = (mutation.path, mutation.line)
                batch.append((mutation, None if key in planned else
                              pool.submit(validate.validate, baseline, mutation, timeout, clean_copy)))
            for mutation, future in batch:
                if len(tasks) >= quota:
                    break
                key = (mutation.path, mutation.line)
                if key in used_lines or future is None:
                    rejected.append(rejection(baseline, mutation, "line already holds a task"))
                    continue
                verdict = future.result()
                if not verdict.accepted:
                    rejected.append(rejection(baseline, mutation, verdict.reason))
                    continue
                used_lines.add(key)
                tasks.append(task_record(baseline, mutation, verdict, seed))
            log("%s: %d/%d tasks, %d rejected, %d of %d candidates tried" % (
                baseline.name, len(tasks), quota, len(rejected), position, len(order)))
    return tasks, rejected, len(order)


def rejection(baseline, mutation, reason):
    return {"repo": baseline.name, "kind": mutation.kind, "file": mutation.path, "line": mutation.line,
            "description": mutation.description, "reason": reason}


def summarize(seed, count, tasks, rejected, candidates):
    def count_by(items, *keys):
        counter = collections.Counter(":".join(str(item_key(i, k)) for k in keys) for i in items)
        return dict(sorted(counter.items()))

    def item_key(item, key):
        return item["mutation"]["kind"] if key == "kind" and "mutation" in item else item[key]

    return {
        "seed": seed,
        "requested": count,
        "tasks": len(tasks),
        "candidates_listed": candidates,
        "candidates_judged": len(tasks) + len(rejected),
        "tasks_per_repo": count_by(tasks, "repo"),
        "tasks_per_kind": count_by(tasks, "kind"),
        "tasks_per_repo_and_kind": count_by(tasks, "repo", "kind"),
        "failing_tests_histogram": dict(sorted(collections.Counter(
            str(min(t["difficulty"]["failing_tests"], 10)) if t["difficulty"]["failing_tests"] < 10 else "10+"
            for t in tasks).items())),
        "gold_patch_lines_histogram": dict(sorted(collections.Counter(
            str(t["difficulty"]["gold_patch_lines"]) for t in tasks).items())),
        "rejected_per_reason": count_by(rejected, "reason"),
        "rejected_per_kind": count_by(rejected, "kind"),
        "rejected": rejected,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True, help="seed for the order candidates are tried in")
    parser.add_argument("--out", required=True, help="tasks JSONL file to write")
    parser.add_argument("--summary", help="summary JSON file (default: summary.json beside --out)")
    parser.add_argument("--count", type=int, default=200, help="number of tasks, split evenly over the repositories")
    parser.add_argument("--repos", nargs="*", help="repository names under repos/ (default: all)")
    parser.add_argument("--repos-dir", default=REPOS_DIR, help="folder holding the repositories")
    parser.add_argument("--timeout", type=float, default=8.0, help="seconds one suite run may take")
    parser.add_argument("--jobs", type=int, default=1, help="candidates validated in parallel")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    names = args.repos or sorted(d for d in os.listdir(args.repos_dir) if os.path.isdir(os.path.join(args.repos_dir, d)))
    if not names:
        parser.error("no repositories in %s" % args.repos_dir)
    tasks, rejected, candidates = [], [], 0
    for index, name in enumerate(names):
        folder = os.path.join(args.repos_dir, name)
        if not os.path.isdir(os.path.join(folder, validate.TESTS_DIR)):
            parser.error("%s has no %s/ folder" % (folder, validate.TESTS_DIR))
        baseline = validate.Baseline.measure(folder, args.timeout)
        quota = args.count // len(names) + (1 if index < args.count % len(names) else 0)
        repo_tasks, repo_rejected, listed = build_repo(baseline, quota, args.seed, args.timeout, max(1, args.jobs), log)
        if len(repo_tasks) < quota:
            log("%s: only %d validated tasks for a quota of %d" % (name, len(repo_tasks), quota))
        tasks.extend(repo_tasks)
        rejected.extend(repo_rejected)
        candidates += listed
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for task in tasks:
            f.write(json.dumps(task, ensure_ascii=False) + "\n")
    summary_path = args.summary or os.path.join(out_dir, "summary.json")
    with open(summary_path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(summarize(args.seed, args.count, tasks, rejected, candidates), f, indent=1)
        f.write("\n")
    log("wrote %d tasks to %s and the summary to %s" % (len(tasks), args.out, summary_path))
    return 0 if len(tasks) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
