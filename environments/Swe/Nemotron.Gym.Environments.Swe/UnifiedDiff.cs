using System.Text;
using System.Text.RegularExpressions;

namespace Nemotron.Gym.Environments.Swe;

/// <summary>What a patch does to one file.</summary>
public enum FileChangeKind
{
    /// <summary>Edits an existing file.</summary>
    Modify,
    /// <summary>Creates a file (from /dev/null).</summary>
    Create,
    /// <summary>Deletes a file (to /dev/null).</summary>
    Delete,
}

/// <summary>One hunk: where it starts in the old file, its old and new lines (each with its line ending, if any), and
/// its removed and added lines in the order the patch gives them ("-text", "+text", without line endings).</summary>
public sealed record DiffHunk(int OldStart, IReadOnlyList<string> OldLines, IReadOnlyList<string> NewLines, IReadOnlyList<string> Changes);

/// <summary>The changes a patch makes to one file.</summary>
public sealed record FilePatch(string Path, FileChangeKind Kind, IReadOnlyList<DiffHunk> Hunks);

/// <summary>A patch that cannot be read or does not apply; the message names the file and the hunk.</summary>
public sealed class PatchException(string message) : Exception(message);

/// <summary>
/// Unified diffs as <c>git diff</c> writes them (<c>a/</c> and <c>b/</c> prefixes, new files from
/// /dev/null, deleted files to it, "\ No newline at end of file"), read and applied strictly: a hunk must match
/// the file exactly where it says, with no fuzz and no offset search, so a patch made against another tree is an
/// error rather than a near miss. Patches come from the model: every path is checked before it is used.
/// </summary>
public static partial class UnifiedDiff
{
    /// <summary>Reads a patch into its files; throws <see cref="PatchException"/> naming the line for anything it does not understand.</summary>
    public static IReadOnlyList<FilePatch> Parse(string patch)
    {
        var files = new List<FilePatch>();
        var lines = SplitKeepingEnds(patch);
        string? gitPath = null;
        var gitKind = FileChangeKind.Modify;
        (string Path, FileChangeKind Kind, List<DiffHunk> Hunks)? current = null;
        void Flush()
        {
            if (current is { } c) files.Add(new FilePatch(c.Path, c.Kind, c.Hunks));
            else if (gitPath is not null && gitKind == FileChangeKind.Create) files.Add(new FilePatch(gitPath, FileChangeKind.Create, []));
            current = null;
            gitPath = null;
            gitKind = FileChangeKind.Modify;
        }
        int i = 0;
        while (i < lines.Count)
        {
            var line = lines[i];
            if (line.StartsWith("diff --git ", StringComparison.Ordinal))
            {
                Flush();
                var names = line["diff --git ".Length..].TrimEnd('\n', '\r').Split(' ');
                if (names.Length != 2 || !names[1].StartsWith("b/", StringComparison.Ordinal)) throw new PatchException($"patch line {i + 1}: cannot read the file names of '{Short(line)}'");
                gitPath = CheckPath(names[1][2..], i + 1);
                i++;
                continue;
            }
            if (line.StartsWith("new file mode", StringComparison.Ordinal)) { gitKind = FileChangeKind.Create; i++; continue; }
            if (line.StartsWith("deleted file mode", StringComparison.Ordinal)) { gitKind = FileChangeKind.Delete; i++; continue; }
            if (line.StartsWith("index ", StringComparison.Ordinal) || line.StartsWith("similarity index", StringComparison.Ordinal)) { i++; continue; }
            if (line.StartsWith("--- ", StringComparison.Ordinal))
            {
                if (i + 1 >= lines.Count || !lines[i + 1].StartsWith("+++ ", StringComparison.Ordinal)) throw new PatchException($"patch line {i + 1}: '---' header without a '+++' line after it");
                var oldName = HeaderName(line);
                var newName = HeaderName(lines[i + 1]);
                FileChangeKind kind;
                string path;
                if (oldName == "/dev/null" && newName == "/dev/null") throw new PatchException($"patch line {i + 1}: both sides are /dev/null");
                if (oldName == "/dev/null") (kind, path) = (FileChangeKind.Create, StripPrefix(newName, "b/", i + 2));
                else if (newName == "/dev/null") (kind, path) = (FileChangeKind.Delete, StripPrefix(oldName, "a/", i + 1));
                else
                {
                    (kind, path) = (FileChangeKind.Modify, StripPrefix(newName, "b/", i + 2));
                    if (StripPrefix(oldName, "a/", i + 1) != path) throw new PatchException($"patch line {i + 1}: renames are not supported ({oldName} to {newName})");
                }
                // The git header, when there is one, must agree with the ---/+++ lines (a forged header could hide a path).
                if (gitPath is not null && gitPath != path) throw new PatchException($"patch line {i + 1}: header names {gitPath} but the hunks name {path}");
                gitPath = null;
                current = (path, kind, new List<DiffHunk>());
                files.Add(new FilePatch(path, kind, current.Value.Hunks));
                current = null;
                i += 2;
                continue;
            }
            var match = HunkHeader().Match(line);
            if (match.Success)
            {
                if (files.Count == 0 || gitPath is not null) throw new PatchException($"patch line {i + 1}: a hunk before any ---/+++ file header");
                var file = files[^1];
                int oldStart = int.Parse(match.Groups[1].Value);
                int oldCount = match.Groups[2].Success ? int.Parse(match.Groups[2].Value) : 1;
                int newCount = match.Groups[4].Success ? int.Parse(match.Groups[4].Value) : 1;
                var oldPart = new List<string>();
                var newPart = new List<string>();
                var changes = new List<string>();
                // Which side the last body line went to, for a following "\ No newline at end of file".
                char lastTag = ' ';
                i++;
                while (oldPart.Count < oldCount || newPart.Count < newCount || (i < lines.Count && lines[i].StartsWith('\\')))
                {
                    if (i >= lines.Count) throw new PatchException($"{file.Path}: the hunk at old line {oldStart} is cut short");
                    var body = lines[i];
                    char tag = body.Length > 0 ? body[0] : ' ';
                    string text = body.Length > 0 ? body[1..] : "\n";
                    switch (tag)
                    {
                        case ' ': oldPart.Add(text); newPart.Add(text); break;
                        case '-': oldPart.Add(text); changes.Add("-" + text.TrimEnd('\n', '\r')); break;
                        case '+': newPart.Add(text); changes.Add("+" + text.TrimEnd('\n', '\r')); break;
                        case '\\':
                            if (lastTag is ' ' or '-') DropEnd(oldPart);
                            if (lastTag is ' ' or '+') DropEnd(newPart);
                            break;
                        default: throw new PatchException($"{file.Path}: unexpected line {i + 1} in the hunk at old line {oldStart}: '{Short(body)}'");
                    }
                    if (tag != '\\') lastTag = tag;
                    i++;
                }
                if (oldPart.Count != oldCount || newPart.Count != newCount) throw new PatchException($"{file.Path}: the hunk at old line {oldStart} has more lines than its header says");
                ((List<DiffHunk>)file.Hunks).Add(new DiffHunk(oldStart, oldPart, newPart, changes));
                continue;
            }
            if (line.Trim().Length == 0 && i == lines.Count - 1) { i++; continue; }
            throw new PatchException($"patch line {i + 1}: unexpected '{Short(line)}'");
        }
        Flush();
        foreach (var f in files.GroupBy(f => f.Path).Where(g => g.Count() > 1))
            throw new PatchException($"{f.Key}: the patch changes this file in more than one place; expected one section per file");
        return files;
    }

    /// <summary>
    /// Applies a patch to a tree (relative path to text), checking everything before changing anything; returns
    /// the new tree. A file created that exists, or changed or deleted that does not, is an error.
    /// </summary>
    public static Dictionary<string, string> Apply(IReadOnlyDictionary<string, string> tree, string patch)
    {
        var result = new Dictionary<string, string>(tree, StringComparer.Ordinal);
        foreach (var file in Parse(patch))
        {
            switch (file.Kind)
            {
                case FileChangeKind.Create:
                    if (result.ContainsKey(file.Path)) throw new PatchException($"{file.Path}: the patch creates a file that already exists");
                    result[file.Path] = ApplyHunks(file.Path, "", file.Hunks);
                    break;
                case FileChangeKind.Delete:
                    if (!result.TryGetValue(file.Path, out var gone)) throw new PatchException($"{file.Path}: the patch deletes a file that does not exist");
                    if (ApplyHunks(file.Path, gone, file.Hunks).Length != 0) throw new PatchException($"{file.Path}: the patch deletes the file but its hunks do not remove all of it");
                    result.Remove(file.Path);
                    break;
                default:
                    if (!result.TryGetValue(file.Path, out var old)) throw new PatchException($"{file.Path}: the patch changes a file that does not exist");
                    result[file.Path] = ApplyHunks(file.Path, old, file.Hunks);
                    break;
            }
        }
        return result;
    }

    private static string ApplyHunks(string path, string text, IReadOnlyList<DiffHunk> hunks)
    {
        var lines = SplitKeepingEnds(text);
        var output = new StringBuilder();
        int cursor = 0;
        foreach (var hunk in hunks)
        {
            // A hunk that only adds lines names the line after which they go.
            int start = hunk.OldLines.Count > 0 ? hunk.OldStart - 1 : hunk.OldStart;
            if (start < cursor) throw new PatchException($"{path}: hunks overlap or are out of order at line {hunk.OldStart}");
            if (start + hunk.OldLines.Count > lines.Count) throw new PatchException($"{path}: the hunk at line {hunk.OldStart} runs past the end of the file ({lines.Count} lines)");
            for (int k = 0; k < hunk.OldLines.Count; k++)
                if (lines[start + k] != hunk.OldLines[k]) throw new PatchException($"{path}: the hunk at line {hunk.OldStart} does not match the file (line {start + k + 1})");
            for (int k = cursor; k < start; k++) output.Append(lines[k]);
            foreach (var l in hunk.NewLines) output.Append(l);
            cursor = start + hunk.OldLines.Count;
        }
        for (int k = cursor; k < lines.Count; k++) output.Append(lines[k]);
        return output.ToString();
    }

    /// <summary>
    /// The changed lines of a patch in order: per file (files sorted by path), each removed line as "path:-text" and
    /// each added line as "path:+text", whitespace at the ends trimmed (indentation alone does not count) and blank
    /// lines left out.
    /// </summary>
    public static IReadOnlyList<string> ChangedLines(string patch)
    {
        var changed = new List<string>();
        foreach (var file in Parse(patch).OrderBy(f => f.Path, StringComparer.Ordinal))
            foreach (var hunk in file.Hunks)
                foreach (var line in hunk.Changes)
                {
                    var text = line[1..].Trim();
                    if (text.Length > 0) changed.Add($"{file.Path}:{line[0]}{text}");
                }
        return changed;
    }

    /// <summary>The files of a patch that only creates files, as path and text (how the hidden tests are stored).</summary>
    public static Dictionary<string, string> CreatedFiles(string patch)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Parse(patch))
        {
            if (f.Kind != FileChangeKind.Create) throw new PatchException($"{f.Path}: expected a patch that only creates files");
            files[f.Path] = ApplyHunks(f.Path, "", f.Hunks);
        }
        return files;
    }

    /// <summary>Checks a relative path from a patch: no absolute path, no "..", no empty part, no backslash.</summary>
    public static string CheckPath(string path, int line)
    {
        if (path.Length == 0 || path.StartsWith('/') || path.Contains('\\') || path.Contains('\0')
            || path.Split('/').Any(p => p is "" or "." or ".."))
            throw new PatchException($"patch line {line}: refused path '{Short(path)}' (relative paths only, no '..')");
        return path;
    }

    private static string HeaderName(string line)
    {
        var name = line[4..].TrimEnd('\n', '\r');
        // git puts a tab and a timestamp after the name in some modes.
        int tab = name.IndexOf('\t');
        return tab >= 0 ? name[..tab] : name;
    }

    private static string StripPrefix(string name, string prefix, int line)
    {
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) throw new PatchException($"patch line {line}: expected a path starting with {prefix}, got '{Short(name)}'");
        return CheckPath(name[prefix.Length..], line);
    }

    private static void DropEnd(List<string> part)
    {
        if (part.Count == 0) return;
        var last = part[^1];
        if (last.EndsWith("\r\n", StringComparison.Ordinal)) part[^1] = last[..^2];
        else if (last.EndsWith('\n')) part[^1] = last[..^1];
    }

    /// <summary>Splits text into lines, each keeping its "\n" (the last may have none).</summary>
    public static List<string> SplitKeepingEnds(string text)
    {
        var lines = new List<string>();
        int start = 0;
        for (int k = 0; k < text.Length; k++)
            if (text[k] == '\n') { lines.Add(text[start..(k + 1)]); start = k + 1; }
        if (start < text.Length) lines.Add(text[start..]);
        return lines;
    }

    private static string Short(string text)
    {
        text = text.TrimEnd('\n', '\r');
        return text.Length <= 80 ? text : text[..80] + "...";
    }

    [GeneratedRegex(@"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")]
    private static partial Regex HunkHeader();
}
