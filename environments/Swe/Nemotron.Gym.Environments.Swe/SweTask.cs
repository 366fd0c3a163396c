using System.Text.Json.Nodes;

namespace Nemotron.Gym.Environments.Swe;

/// <summary>
/// One task record of <c>data/tasks.jsonl</c> in SWE-bench's shape (see environments/Swe/README.md): the repository,
/// the gold patch, the hidden tests as a patch that adds <c>tests/</c>, the issue text, and the tests the bug breaks
/// (<see cref="FailToPass"/>) and leaves alone (<see cref="PassToPass"/>).
/// </summary>
public sealed record SweTask(
    string Repo,
    string InstanceId,
    string BaseCommit,
    string GoldPatch,
    string TestPatch,
    string ProblemStatement,
    IReadOnlyList<string> FailToPass,
    IReadOnlyList<string> PassToPass,
    string Image,
    string BugPatch,
    int GoldPatchLines,
    int FailingTests)
{
    /// <summary>Reads a record; errors name <paramref name="where"/> and the field.</summary>
    public static SweTask FromJson(JsonObject o, string where)
    {
        string Text(string field) => o[field] is JsonValue v && v.TryGetValue(out string? s) ? s
            : throw new FormatException($"{where}: field '{field}' is missing or not a string");
        IReadOnlyList<string> Ids(string field)
        {
            if (o[field] is not JsonArray a) throw new FormatException($"{where}: field '{field}' must be a list of test ids");
            var ids = new List<string>();
            for (int i = 0; i < a.Count; i++)
                ids.Add(a[i] is JsonValue v && v.TryGetValue(out string? s) && s.Length > 0 ? s : throw new FormatException($"{where}: {field}[{i}] must be a test id"));
            return ids;
        }
        int Difficulty(string field) => o["difficulty"]?[field] is JsonValue v && v.TryGetValue(out int n) ? n : 0;
        var task = new SweTask(Text("repo"), Text("instance_id"), Text("base_commit"), Text("patch"), Text("test_patch"), Text("problem_statement"),
            Ids("FAIL_TO_PASS"), Ids("PASS_TO_PASS"), o["image"] is JsonValue im && im.TryGetValue(out string? image) ? image : "python", Text("bug_patch"),
            Difficulty("gold_patch_lines"), Difficulty("failing_tests"));
        if (task.FailToPass.Count == 0) throw new FormatException($"{where}: FAIL_TO_PASS is empty (a task needs a test the bug breaks)");
        if (task.Repo.Contains('/') || task.Repo.Contains("..")) throw new FormatException($"{where}: repo '{task.Repo}' must be a folder name under repos/");
        return task;
    }

    /// <summary>The record as JSON (the same fields it was read from).</summary>
    public JsonObject ToJson() => new()
    {
        ["repo"] = Repo, ["instance_id"] = InstanceId, ["base_commit"] = BaseCommit, ["patch"] = GoldPatch, ["test_patch"] = TestPatch,
        ["problem_statement"] = ProblemStatement,
        ["FAIL_TO_PASS"] = new JsonArray(FailToPass.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()),
        ["PASS_TO_PASS"] = new JsonArray(PassToPass.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()),
        ["image"] = Image, ["bug_patch"] = BugPatch,
        ["difficulty"] = new JsonObject { ["gold_patch_lines"] = GoldPatchLines, ["failing_tests"] = FailingTests },
    };
}

/// <summary>
/// The repositories of the task set, read once: the clean sources of each (without <c>tests/</c>), from which a
/// task's starting tree is its bug patch applied. Trees are relative path to text.
/// </summary>
public sealed class SweRepositories(string reposDirectory)
{
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _clean = new();
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _buggy = new();
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _hidden = new();
    private readonly Lock _lock = new();

    /// <summary>Where the repositories are.</summary>
    public string Directory { get; } = reposDirectory;

    /// <summary>The clean sources of a repository, without its tests.</summary>
    public IReadOnlyDictionary<string, string> Clean(string repo)
    {
        lock (_lock)
        {
            if (_clean.TryGetValue(repo, out var tree)) return tree;
            var root = Path.Combine(Directory, repo);
            if (!System.IO.Directory.Exists(root)) throw new DirectoryNotFoundException($"swe: repository '{repo}' not found in {Directory}");
            var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var file in System.IO.Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
            {
                var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
                if (rel.StartsWith("tests/", StringComparison.Ordinal) || rel.Contains("__pycache__/") || rel.EndsWith(".pyc", StringComparison.Ordinal)) continue;
                files[rel] = File.ReadAllText(file);
            }
            if (files.Count == 0) throw new InvalidOperationException($"swe: repository '{repo}' in {Directory} holds no source files");
            var result = new Dictionary<string, string>(files, StringComparer.Ordinal);
            _clean[repo] = result;
            return result;
        }
    }

    /// <summary>The tree the agent starts from: the clean sources with the bug applied, no tests.</summary>
    public IReadOnlyDictionary<string, string> Starting(SweTask task)
    {
        lock (_lock)
            if (_buggy.TryGetValue(task.InstanceId, out var cached)) return cached;
        Dictionary<string, string> tree;
        try { tree = UnifiedDiff.Apply(Clean(task.Repo), task.BugPatch); }
        catch (PatchException e) { throw new InvalidOperationException($"swe: task {task.InstanceId}: its bug_patch does not apply to repos/{task.Repo} (was the repository edited after the build?): {e.Message}"); }
        lock (_lock) _buggy[task.InstanceId] = tree;
        return tree;
    }

    /// <summary>The hidden tests of a task (from its test_patch), relative to the repository root ("tests/test_x.py").</summary>
    public IReadOnlyDictionary<string, string> HiddenTests(SweTask task)
    {
        lock (_lock)
            if (_hidden.TryGetValue(task.InstanceId, out var cached)) return cached;
        Dictionary<string, string> files;
        try { files = UnifiedDiff.CreatedFiles(task.TestPatch); }
        catch (PatchException e) { throw new InvalidOperationException($"swe: task {task.InstanceId}: test_patch: {e.Message}"); }
        foreach (var path in files.Keys)
            if (!path.StartsWith("tests/", StringComparison.Ordinal)) throw new InvalidOperationException($"swe: task {task.InstanceId}: test_patch writes {path}, outside tests/");
        lock (_lock) _hidden[task.InstanceId] = files;
        return files;
    }
}
