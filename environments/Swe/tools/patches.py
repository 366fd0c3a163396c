"""Unified diffs, a strict patch applier, and git-compatible content hashes of a folder.

The diffs are the ones `git apply` and `patch -p1` read: `a/` and `b/` prefixes, three lines of
context, new files from /dev/null. The applier here is strict (no fuzz, no offset search) so a
patch that does not match the tree exactly is an error, never a silent near miss.
"""

import difflib
import hashlib
import os
import re
import shutil

IGNORED_NAMES = ("__pycache__", ".git")
HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(ValueError):
    """A patch that cannot be parsed or does not apply; the message names the file and hunk."""


def file_diff(path, old_text, new_text):
    """The unified diff turning ``old_text`` into ``new_text`` for the file at relative ``path``.

    ``old_text`` None means the file is new. Both texts must end with a newline (or be empty).
    """
    for label, text in (("old", old_text), ("new", new_text)):
        if text and not text.endswith("\n"):
            raise PatchError("%s text of %s does not end with a newline" % (label, path))
    old_lines = (old_text or "").splitlines(True)
    new_lines = new_text.splitlines(True)
    from_name = "/dev/null" if old_text is None else "a/" + path
    body = list(difflib.unified_diff(old_lines, new_lines, from_name, "b/" + path, n=3))
    head = ["diff --git a/%s b/%s\n" % (path, path)]
    if old_text is None:
        # An empty new file has no hunk: git writes the header lines alone, and so do we.
        return "".join(head + ["new file mode 100644\n"] + body)
    return "".join(head + body) if body else ""


def changed_line_count(patch):
    """How many lines a patch removes plus how many it adds (headers not counted)."""
    count = 0
    for line in patch.splitlines():
        if line.startswith(("+++", "---")):
            continue
        if line.startswith(("+", "-")):
            count += 1
    return count


def parse_patch(patch):
    """Split a patch into [(path, is_new, [(old_start, old_lines, new_lines)])]."""
    files = []
    lines = patch.splitlines(True)
    i = 0
    current = None
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            current = None
            # "diff --git a/P b/P" then "new file mode" with no ---/+++ is an empty new file.
            names = line[len("diff --git "):].strip().split(" ")
            following = lines[i + 1] if i + 1 < len(lines) else ""
            after = lines[i + 2] if i + 2 < len(lines) else ""
            if (following.startswith("new file mode") and not after.startswith("--- ") and len(names) == 2
                    and names[1].startswith("b/")):
                files.append((names[1][2:], True, []))
                i += 2
                continue
            i += 1
            continue
        if line.startswith("--- "):
            if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
                raise PatchError("patch line %d: '---' header without '+++'" % (i + 1))
            old_name = line[4:].strip()
            new_name = lines[i + 1][4:].strip()
            if not new_name.startswith("b/"):
                raise PatchError("patch line %d: expected a b/ path, got %r" % (i + 2, new_name))
            current = (new_name[2:], old_name == "/dev/null", [])
            files.append(current)
            i += 2
            continue
        match = HUNK_HEADER.match(line)
        if match:
            if current is None:
                raise PatchError("patch line %d: hunk before any file header" % (i + 1))
            old_count = int(match.group(2)) if match.group(2) is not None else 1
            new_count = int(match.group(4)) if match.group(4) is not None else 1
            old_start = int(match.group(1))
            old_part, new_part = [], []
            i += 1
            while len(old_part) < old_count or len(new_part) < new_count:
                if i >= len(lines):
                    raise PatchError("%s: hunk at old line %d is cut short" % (current[0], old_start))
                body = lines[i]
                tag, text = body[:1], body[1:]
                if tag == " ":
                    old_part.append(text)
                    new_part.append(text)
                elif tag == "-":
                    old_part.append(text)
                elif tag == "+":
                    new_part.append(text)
                elif body.startswith("\\"):
                    pass
                else:
                    raise PatchError("%s: unexpected line %r in hunk at old line %d" % (current[0], body, old_start))
                i += 1
            current[2].append((old_start, old_part, new_part))
            continue
        if line.startswith(("new file mode", "index ", "deleted file mode")):
            i += 1
            continue
        raise PatchError("patch line %d: unexpected %r" % (i + 1, line))
    return files


def apply_to_text(path, text, hunks):
    """Apply parsed hunks to one file's text; every hunk must match exactly where it says."""
    lines = text.splitlines(True)
    out = []
    cursor = 0
    for old_start, old_part, new_part in hunks:
        start = old_start - 1 if old_part else old_start
        if start < cursor:
            raise PatchError("%s: hunks overlap or are out of order at line %d" % (path, old_start))
        if lines[start:start + len(old_part)] != old_part:
            raise PatchError("%s: hunk at line %d does not match the file" % (path, old_start))
        out.extend(lines[cursor:start])
        out.extend(new_part)
        cursor = start + len(old_part)
    out.extend(lines[cursor:])
    return "".join(out)


def apply_patch(folder, patch):
    """Apply ``patch`` to the files under ``folder`` (all files checked before any is written)."""
    results = {}
    for path, is_new, hunks in parse_patch(patch):
        target = safe_join(folder, path)
        if is_new:
            if os.path.exists(target):
                raise PatchError("%s: patch creates a file that already exists" % path)
            old = ""
        else:
            if not os.path.isfile(target):
                raise PatchError("%s: patch changes a file that does not exist" % path)
            with open(target, encoding="utf-8") as f:
                old = f.read()
        results[target] = apply_to_text(path, results.get(target, old), hunks)
    for target, text in results.items():
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return sorted(results)


def safe_join(folder, path):
    """Join a patch path onto ``folder``, refusing absolute paths and '..' components."""
    if os.path.isabs(path) or ".." in path.split("/"):
        raise PatchError("refusing path %r outside the tree" % path)
    return os.path.join(folder, *path.split("/"))


def list_files(folder, exclude_dirs=()):
    """Relative '/'-separated paths of the files under ``folder``, sorted; caches and .git skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder)
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_NAMES
                         and os.path.normpath(os.path.join(rel_root, d)) not in exclude_dirs)
        for name in files:
            if name.endswith(".pyc"):
                continue
            rel = os.path.normpath(os.path.join(rel_root, name)).replace(os.sep, "/")
            found.append(rel)
    return sorted(found)


def copy_tree(source, destination, exclude_dirs=()):
    """Copy the files of ``source`` into ``destination`` (created), skipping caches and ``exclude_dirs``."""
    for rel in list_files(source, exclude_dirs):
        target = os.path.join(destination, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(source, *rel.split("/")), target)


def git_blob_id(data):
    """The id git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def git_tree_id(files):
    """The id git gives the tree holding ``files`` ({relative path: bytes}), all mode 100644.

    This is the content hash a commit of exactly these files would point at, so the sandbox can
    check that the tree it built is the task's base tree.
    """
    children = {}
    for path, data in files.items():
        head, _, rest = path.partition("/")
        if rest:
            children.setdefault(head, {})
            if not isinstance(children[head], dict):
                raise ValueError("%s is both a file and a folder" % head)
            children[head][rest] = data
        else:
            children[head] = data
    entries = []
    for name, value in children.items():
        if isinstance(value, dict):
            entries.append((name + "/", b"40000 " + name.encode() + b"\0" + bytes.fromhex(git_tree_id(value))))
        else:
            entries.append((name, b"100644 " + name.encode() + b"\0" + bytes.fromhex(git_blob_id(value))))
    body = b"".join(entry for _, entry in sorted(entries))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def folder_tree_id(folder, exclude_dirs=()):
    """git_tree_id of the files under ``folder``."""
    files = {}
    for rel in list_files(folder, exclude_dirs):
        with open(os.path.join(folder, *rel.split("/")), "rb") as f:
            files[rel] = f.read()
    return git_tree_id(files)
