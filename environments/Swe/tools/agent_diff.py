#!/usr/bin/env python3
"""Print the diff of the agent's working tree against the task's starting tree.

    python3 -I -B agent_diff.py REPO_FOLDER < base.json

stdin holds the starting tree as JSON, {"relative/path.py": "text", ...}; the grader writes it, never the agent.
stdout gets one JSON object: {"patch": "<unified diff git apply reads>", "skipped": ["path: why", ...]}.
Files that are not UTF-8 text, larger than MAX_BYTES, symbolic links, or inside __pycache__/.git are left out of
the patch and named in "skipped". Runs inside the sandbox on the standard library alone.
"""

import difflib
import json
import os
import sys

MAX_BYTES = 1 << 20
MAX_FILES = 2000
IGNORED_DIRS = ("__pycache__", ".git")


def file_diff(path, old_text, new_text):
    old_lines = [] if old_text is None else old_text.splitlines(True)
    new_lines = [] if new_text is None else new_text.splitlines(True)
    from_name = "/dev/null" if old_text is None else "a/" + path
    to_name = "/dev/null" if new_text is None else "b/" + path
    body = []
    for line in difflib.unified_diff(old_lines, new_lines, from_name, to_name, n=3):
        if line.endswith("\n"):
            body.append(line)
        else:
            # A last line without a newline: git's marker tells the applier so.
            body.append(line + "\n\\ No newline at end of file\n")
    head = ["diff --git a/%s b/%s\n" % (path, path)]
    if old_text is None:
        head.append("new file mode 100644\n")
    elif new_text is None:
        head.append("deleted file mode 100644\n")
    if not body:
        return "".join(head) if old_text is None else ""
    return "".join(head + body)


def read_tree(folder, skipped):
    files = {}
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not os.path.islink(os.path.join(root, d)))
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if name.endswith(".pyc"):
                continue
            if len(files) >= MAX_FILES:
                skipped.append("%s: more than %d files in the tree" % (rel, MAX_FILES))
                continue
            if os.path.islink(full) or not os.path.isfile(full):
                skipped.append("%s: not a regular file" % rel)
                continue
            if os.path.getsize(full) > MAX_BYTES:
                skipped.append("%s: larger than %d bytes" % (rel, MAX_BYTES))
                continue
            try:
                with open(full, "rb") as f:
                    files[rel] = f.read().decode("utf-8")
            except (UnicodeDecodeError, OSError) as e:
                skipped.append("%s: not readable as UTF-8 text (%s)" % (rel, type(e).__name__))
    return files


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: agent_diff.py REPO_FOLDER < base.json")
    base = json.loads(sys.stdin.read())
    skipped = []
    current = read_tree(argv[1], skipped) if os.path.isdir(argv[1]) else {}
    unreadable = {s.split(":", 1)[0] for s in skipped}
    parts = []
    for path in sorted(set(base) | set(current)):
        if path in unreadable:
            continue
        parts.append(file_diff(path, base.get(path), current.get(path)))
    sys.stdout.write(json.dumps({"patch": "".join(parts), "skipped": skipped}) + "\n")


if __name__ == "__main__":
    main(sys.argv)
