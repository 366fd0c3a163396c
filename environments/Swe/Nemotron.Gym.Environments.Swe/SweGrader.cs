using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Swe;

/// <summary>How the reward is computed from a graded patch.</summary>
public enum SweRewardMode
{
    /// <summary>1 when every FAIL_TO_PASS and PASS_TO_PASS test passes, else 0 (SWE-bench's "resolved").</summary>
    Resolved,
    /// <summary>The share of FAIL_TO_PASS tests that pass times the share of PASS_TO_PASS tests that still pass.</summary>
    Fraction,
    /// <summary>The similarity of the patch's changed lines to the gold patch's, without running anything.</summary>
    PatchSimilarity,
}

/// <summary>Limits of grading one patch.</summary>
/// <param name="Mode">How the reward is computed.</param>
/// <param name="TestTimeout">Wall clock (and CPU time) of the hidden test run.</param>
/// <param name="MemoryBytes">Memory of the hidden test run.</param>
public sealed record SweGradingSettings(SweRewardMode Mode, TimeSpan TestTimeout, long MemoryBytes)
{
    /// <summary>Resolved, 20 s, 512 MiB.</summary>
    public static SweGradingSettings Default { get; } = new(SweRewardMode.Resolved, TimeSpan.FromSeconds(20), 512L << 20);
}

/// <summary>What one hidden-test run found.</summary>
/// <param name="Outcomes">Test id to "passed", "failed", "error", "skipped" (tests the run never reached are absent).</param>
/// <param name="Messages">The failure message of each test that did not pass.</param>
/// <param name="Tampered">The parts of unittest the code under test replaced (empty when none).</param>
public sealed record TestRunReport(IReadOnlyDictionary<string, string> Outcomes, IReadOnlyDictionary<string, string> Messages, IReadOnlyList<string> Tampered);

/// <summary>
/// Grades a patch the way SWE-bench does, in a FRESH sandbox: the task's starting tree with the patch applied
/// (strictly), every <c>tests/</c> file the patch wrote thrown away and the hidden tests written in their place, then
/// the suite run by our own runner from outside the repository. The patch never sees the sandbox the agent worked
/// in, and cannot change the tests or the runner that judge it. Grading never throws: a patch that does not apply
/// is reward 0 with the reason; a sandbox failure, a timeout or running out of memory is a masked grade
/// (<see cref="Grade.NotJudged"/>, which the trainer masks), never a 0.
/// </summary>
public sealed class SweGrader(ISandboxService? sandbox, SweRepositories repositories, string toolsDirectory)
{
    private readonly string _runTests = File.ReadAllText(Path.Combine(toolsDirectory, "run_tests.py"));
    private readonly string _gradeRun = File.ReadAllText(Path.Combine(toolsDirectory, "grade_run.py"));

    /// <summary>Largest patch graded, in characters (a bigger one is reward 0: no fix here needs it).</summary>
    public const int MaxPatchChars = 1 << 20;

    /// <summary>Grades <paramref name="patch"/> (a unified diff against the task's starting tree; empty for no change).</summary>
    public async Task<Grade> GradeAsync(SweTask task, string patch, SweGradingSettings settings, CancellationToken cancellation)
    {
        var components = new Dictionary<string, double>();
        var evidence = new Dictionary<string, string> { ["instance_id"] = task.InstanceId, ["patch"] = patch.Length <= 20_000 ? patch : SandboxText.TrimForModel(patch, 20_000) };
        if (patch.Length > MaxPatchChars) return new Grade(0, components, $"the patch is {patch.Length} characters, more than the {MaxPatchChars} graded", evidence);
        double similarity;
        try { similarity = PatchSimilarity.Score(patch, task.GoldPatch); }
        catch (PatchException e) { return new Grade(0, components, $"the patch cannot be read: {e.Message}", evidence); }
        components["patch_similarity"] = similarity;
        if (settings.Mode == SweRewardMode.PatchSimilarity)
            return new Grade(similarity, components, $"changed lines {similarity:0.###} similar to the gold patch's (nothing was run)", evidence);

        Dictionary<string, string> tree;
        try { tree = UnifiedDiff.Apply(repositories.Starting(task), patch); }
        catch (PatchException e)
        {
            components["patch_applies"] = 0;
            return new Grade(0, components, $"the patch does not apply to the task's starting tree: {e.Message}", evidence);
        }
        components["patch_applies"] = 1;
        if (sandbox is null) return Grade.NotJudged("no sandbox is configured on this host: the hidden tests cannot be run", components, evidence);

        var report = await RunHiddenTestsAsync(task, tree, settings, evidence, cancellation);
        if (report.Masked is { } maskedReason) return Grade.NotJudged(maskedReason, components, evidence);
        if (report.Report is not { } run)
            return new Grade(0, components, report.Failure!, evidence);
        return Judge(task, run, settings.Mode, components, evidence);
    }

    /// <summary>The reward from a test report: every listed test must pass for "resolved".</summary>
    public static Grade Judge(SweTask task, TestRunReport run, SweRewardMode mode, Dictionary<string, double> components, Dictionary<string, string> evidence)
    {
        string Outcome(string id) => run.Outcomes.TryGetValue(id, out var o) ? o : "missing";
        JsonObject Listing(IEnumerable<string> ids) => new(ids.Select(id => KeyValuePair.Create(id, (JsonNode?)JsonValue.Create(Outcome(id)))));
        evidence["FAIL_TO_PASS"] = Listing(task.FailToPass).ToJsonString();
        evidence["PASS_TO_PASS"] = Listing(task.PassToPass).ToJsonString();
        var failing = task.FailToPass.Concat(task.PassToPass).Where(id => Outcome(id) != "passed").ToList();
        if (failing.Count > 0)
            evidence["failures"] = new JsonObject(failing.Take(10).Select(id => KeyValuePair.Create(id,
                (JsonNode?)JsonValue.Create(run.Messages.TryGetValue(id, out var m) ? SandboxText.TrimForModel(m, 500) : Outcome(id))))).ToJsonString();
        int f2p = task.FailToPass.Count(id => Outcome(id) == "passed");
        int p2p = task.PassToPass.Count(id => Outcome(id) == "passed");
        double f2pShare = (double)f2p / task.FailToPass.Count;
        double p2pShare = task.PassToPass.Count == 0 ? 1 : (double)p2p / task.PassToPass.Count;
        components["fail_to_pass"] = f2pShare;
        components["pass_to_pass"] = p2pShare;
        if (run.Tampered.Count > 0)
        {
            evidence["tampered"] = string.Join(", ", run.Tampered.Take(20));
            components["resolved"] = 0;
            return new Grade(0, components, $"the patched code replaced parts of unittest ({string.Join(", ", run.Tampered.Take(3))}), so its test results cannot be trusted", evidence);
        }
        bool resolved = failing.Count == 0;
        components["resolved"] = resolved ? 1 : 0;
        double reward = mode == SweRewardMode.Fraction ? f2pShare * p2pShare : resolved ? 1 : 0;
        var reason = resolved
            ? $"resolved: all {task.FailToPass.Count} FAIL_TO_PASS and {task.PassToPass.Count} PASS_TO_PASS tests pass"
            : $"not resolved: FAIL_TO_PASS {f2p}/{task.FailToPass.Count} pass, PASS_TO_PASS {p2p}/{task.PassToPass.Count} pass; first failing: {failing[0]} ({Outcome(failing[0])})";
        return new Grade(reward, components, reason, evidence);
    }

    private sealed record RunResult(TestRunReport? Report, string? Failure, string? Masked);

    private async Task<RunResult> RunHiddenTestsAsync(SweTask task, Dictionary<string, string> tree, SweGradingSettings settings, Dictionary<string, string> evidence, CancellationToken cancellation)
    {
        var files = new List<SandboxFile>();
        var touchedTests = new List<string>();
        foreach (var (path, text) in tree)
        {
            // The hidden tests replace the whole tests/ folder: whatever the patch put there is not used.
            if (path.StartsWith("tests/", StringComparison.Ordinal) || path == "tests") { touchedTests.Add(path); continue; }
            files.Add(SandboxFile.Text("repo/" + path, text));
        }
        if (touchedTests.Count > 0) evidence["ignored_test_files"] = string.Join(", ", touchedTests.Take(20));
        foreach (var (path, text) in repositories.HiddenTests(task)) files.Add(SandboxFile.Text("repo/" + path, text));
        files.Add(SandboxFile.Text("grader/run_tests.py", _runTests));
        files.Add(SandboxFile.Text("grader/grade_run.py", _gradeRun));
        var nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var limits = SandboxLimits.Default with
        {
            WallTime = settings.TestTimeout, CpuTime = settings.TestTimeout, MemoryBytes = settings.MemoryBytes,
            FileSizeBytes = 64L << 20, OutputBytes = 4L << 20,
        };
        var command = new SandboxCommand(["python3", "-I", "-B", "grader/grade_run.py", "repo"], Encoding.UTF8.GetBytes(nonce + "\n"), limits);
        // A deadline of our own, a little past the test run's: a run that waits too long for a sandbox ends as stopped
        // (not judged) before the host gives up on the whole call, which it would count as a failed grader.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(settings.TestTimeout + TimeSpan.FromSeconds(5));
        var result = await sandbox!.RunAsync(new SandboxRunRequest(command, files, task.Image), deadline.Token);
        evidence["test_run"] = $"{result.Outcome}, exit {result.ExitCode?.ToString() ?? "-"}, {result.WallTime.TotalSeconds:0.00} s";
        switch (result.Outcome)
        {
            case SandboxOutcome.SandboxError: return new(null, null, $"the grading sandbox failed: {result.Detail}");
            case SandboxOutcome.Timeout: return new(null, null, $"the hidden test run timed out ({result.Detail})");
            case SandboxOutcome.MemoryLimit: return new(null, null, $"the hidden test run ran out of memory ({result.Detail})");
            case SandboxOutcome.Killed: return new(null, null, $"the hidden test run was stopped from outside ({result.Detail})");
            case SandboxOutcome.OutputLimit: return new(null, "the hidden test run wrote more output than allowed (the patched code prints without end)", null);
        }
        var stdout = result.Stdout.Text;
        var line = stdout.Split('\n').LastOrDefault(l => l.StartsWith(nonce + " ", StringComparison.Ordinal));
        if (line is null)
        {
            evidence["stderr"] = SandboxText.TrimForModel(result.Stderr.Text, 2000);
            return new(null, $"the hidden test run ended without a report (exit code {result.ExitCode?.ToString() ?? "none"}, signal {result.Signal?.ToString() ?? "none"}): {LastLine(result.Stderr.Text)}", null);
        }
        try { return new(ParseReport(line[(nonce.Length + 1)..]), null, null); }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return new(null, null, $"the test runner's report could not be read ({e.Message})");
        }
    }

    /// <summary>Reads grade_run.py's JSON report.</summary>
    public static TestRunReport ParseReport(string json)
    {
        var o = JsonNode.Parse(json) as JsonObject ?? throw new FormatException("the report is not a JSON object");
        var outcomes = (o["tests"] as JsonObject ?? throw new FormatException("the report has no 'tests' object")).ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
        var messages = (o["messages"] as JsonObject)?.ToDictionary(p => p.Key, p => p.Value?.GetValue<string>() ?? "") ?? [];
        var tampered = (o["tampered"] as JsonArray)?.Select(n => n!.GetValue<string>()).ToList() ?? [];
        return new TestRunReport(outcomes, messages, tampered);
    }

    private static string LastLine(string text)
    {
        var line = text.TrimEnd().Split('\n')[^1].Trim();
        return line.Length <= 200 ? line : line[..200] + "...";
    }
}

/// <summary>
/// How close a patch is to the gold patch, without running it (the Nemotron-Cascade observation that similarity to
/// a reference patch tracks execution reward and scales where execution does not): over the ordered sequences of
/// changed lines (each keyed by its file and sign, whitespace at the ends ignored), twice the longest common
/// subsequence over the total length, as difflib's ratio. 1 for the same change, 0 for an empty patch or one that
/// shares no changed line with the gold patch; order counts, so swapping two lines back is not the same as swapping
/// them again.
/// </summary>
public static class PatchSimilarity
{
    /// <summary>Changed lines beyond this many are not compared (a patch that large is far from any gold patch here).</summary>
    public const int MaxLines = 5000;

    /// <summary>The similarity in [0, 1]; throws <see cref="PatchException"/> when <paramref name="patch"/> cannot be read.</summary>
    public static double Score(string patch, string gold)
    {
        var model = UnifiedDiff.ChangedLines(patch);
        var reference = UnifiedDiff.ChangedLines(gold);
        if (model.Count == 0 && reference.Count == 0) return 1;
        if (model.Count == 0 || reference.Count == 0) return 0;
        var a = model.Take(MaxLines).ToArray();
        var b = reference.Take(MaxLines).ToArray();
        // Longest common subsequence, one row at a time.
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
                current[j] = string.Equals(a[i - 1], b[j - 1], StringComparison.Ordinal) ? previous[j - 1] + 1 : Math.Max(previous[j], current[j - 1]);
            (previous, current) = (current, previous);
        }
        return 2.0 * previous[b.Length] / (model.Count + reference.Count);
    }
}
