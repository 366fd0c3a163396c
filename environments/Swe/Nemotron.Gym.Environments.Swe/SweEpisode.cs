using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Swe;

/// <summary>The limits of one agent episode.</summary>
/// <param name="MaxSteps">Assistant turns before the episode ends (the tree is graded as it stands).</param>
/// <param name="CommandTimeout">Wall clock (and CPU time) of one bash command.</param>
/// <param name="EpisodeTimeout">Wall clock of the whole episode; past it the episode ends and is masked.</param>
/// <param name="MemoryBytes">Memory of the agent's sandbox.</param>
/// <param name="OutputChars">Most characters of one tool result.</param>
public sealed record SweEpisodeSettings(int MaxSteps, TimeSpan CommandTimeout, TimeSpan EpisodeTimeout, long MemoryBytes, int OutputChars)
{
    /// <summary>30 steps, 10 s per command, 15 minutes, 512 MiB, 6000 characters.</summary>
    public static SweEpisodeSettings Default { get; } = new(30, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(15), 512L << 20, 6000);
}

/// <summary>
/// One agent episode on a task: a sandbox session whose scratch folder holds the task's starting tree under
/// <c>repo/</c> (the buggy sources, no tests, no history), and five tools. The session is opened at the agent's first
/// tool call, not at the opening: a pool's sandbox is not held while the model writes its first turn, and an episode
/// that never acts (cut off at the prompt) takes none. <c>submit</c> (or the step limit) ends it;
/// grading takes the diff of the tree against the starting tree (computed in the session by a script the grader
/// passes in after the agent's last command, so nothing the agent left behind can stand in for it) and hands it
/// to <see cref="SweGrader"/>, which judges it in a fresh sandbox. A sandbox failure during the episode, or the
/// episode's wall clock running out, masks the rollout.
/// </summary>
public sealed class SweEpisode : IEpisode
{
    /// <summary>Where the repository is inside the sandbox.</summary>
    public const string RepoRoot = "/work/repo";

    /// <summary>The system message of every episode.</summary>
    public const string SystemPrompt =
        "You are a software engineer fixing a bug in a Python repository. You work through tools: bash runs a shell " +
        "command in the repository (no network; python3 is installed), view shows a file with line numbers, str_replace " +
        "replaces one exact, unique piece of a file, create writes a whole file, and submit ends your work. Make the " +
        "smallest change to the source that fixes the issue, then call submit.";

    /// <summary>The tools offered to the model.</summary>
    public static IReadOnlyList<ToolDefinition> ToolDefinitions { get; } =
    [
        Tool("bash", "Run a shell command (POSIX sh) in the repository folder. Each command starts fresh in the repository root; long output is cut in the middle.",
            ("command", "string", "The command line, e.g. python3 -c 'import calcparse'", true)),
        Tool("view", "Show a file with line numbers (optionally only lines start_line..end_line), or list a folder.",
            ("path", "string", "Path relative to the repository root", true), ("start_line", "integer", "First line to show (from 1)", false), ("end_line", "integer", "Last line to show", false)),
        Tool("str_replace", "Replace old_str with new_str in a file. old_str must occur exactly once in the file (include surrounding lines to make it unique).",
            ("path", "string", "Path relative to the repository root", true), ("old_str", "string", "The exact text to replace", true), ("new_str", "string", "The text to put in its place", true)),
        Tool("create", "Create a file, or overwrite one, with the given text.",
            ("path", "string", "Path relative to the repository root", true), ("file_text", "string", "The whole content of the file", true)),
        Tool("submit", "Submit the repository as it is now; the episode ends and hidden tests judge the change."),
    ];

    private static ToolDefinition Tool(string name, string description, params (string Name, string Type, string Description, bool Required)[] parameters)
    {
        var properties = new JsonObject();
        foreach (var p in parameters) properties[p.Name] = new JsonObject { ["type"] = p.Type, ["description"] = p.Description };
        var schema = new JsonObject
        {
            ["type"] = "object", ["properties"] = properties,
            ["required"] = new JsonArray(parameters.Where(p => p.Required).Select(p => (JsonNode)JsonValue.Create(p.Name)).ToArray()),
        };
        return new ToolDefinition(name, description, schema);
    }

    /// <summary>The longest wait for a sandbox session when the agent first acts.</summary>
    public static TimeSpan SessionWait { get; set; } = TimeSpan.FromSeconds(20);

    private readonly ISandboxService? _sandbox;
    private ISandboxSession? _session;
    private readonly SweTask _task;
    private readonly TaskRecord _record;
    private readonly IReadOnlyDictionary<string, string> _start;
    private readonly SweGrader _grader;
    private readonly SweGradingSettings _grading;
    private readonly SweEpisodeSettings _settings;
    private readonly string _diffScript;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _steps;
    private string? _broken;
    private string _endedBy = "not ended";
    private bool _disposed;

    private SweEpisode(ISandboxService? sandbox, SweTask task, TaskRecord record, IReadOnlyDictionary<string, string> start, SweGrader grader,
        SweGradingSettings grading, SweEpisodeSettings settings, string diffScript, string? broken)
    {
        (_sandbox, _task, _record, _start, _grader, _grading, _settings, _diffScript, _broken) = (sandbox, task, record, start, grader, grading, settings, diffScript, broken);
    }

    /// <summary>An episode over <paramref name="sandbox"/>; without one, every call is answered and the grade is not judged.</summary>
    public static Task<SweEpisode> OpenAsync(ISandboxService? sandbox, SweTask task, TaskRecord record, IReadOnlyDictionary<string, string> start,
        SweGrader grader, SweGradingSettings grading, SweEpisodeSettings settings, string diffScript, CancellationToken cancellation) =>
        Task.FromResult(new SweEpisode(sandbox, task, record, start, grader, grading, settings, diffScript, sandbox is null ? "no sandbox is configured on this host" : null));

    /// <summary>
    /// Opens the session and writes the starting tree into it, once. Never throws for a sandbox failure: the episode
    /// is marked broken (and will not be judged) and false comes back.
    /// </summary>
    private async Task<bool> EnsureSessionAsync(CancellationToken cancellation)
    {
        if (_session is not null) return true;
        if (_broken is not null || _disposed) return false;
        var limits = SandboxLimits.Default with
        {
            WallTime = _settings.CommandTimeout, CpuTime = _settings.CommandTimeout, MemoryBytes = _settings.MemoryBytes,
            FileSizeBytes = 64L << 20, OutputBytes = 1L << 20,
        };
        // A pool may make us wait for a free sandbox; we stop waiting before the host gives up on the whole call (30 s
        // by default), so a busy pool makes the episode not judged rather than failed.
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        wait.CancelAfter(SessionWait);
        _session = await _sandbox!.OpenSessionAsync(new SandboxSessionOptions(_task.Image, limits), wait.Token);
        cancellation.ThrowIfCancellationRequested();
        var put = await _session.PutFilesAsync(_start.Select(f => SandboxFile.Text("repo/" + f.Key, f.Value)).ToList(), cancellation);
        if (!put.Ok) _broken = $"the repository could not be written into the sandbox: {put.Error}";
        return put.Ok;
    }

    /// <inheritdoc />
    public IReadOnlyList<Message> Opening => _record.Input;

    /// <inheritdoc />
    public IReadOnlyList<ToolDefinition> Tools => ToolDefinitions;

    /// <summary>Steps taken so far.</summary>
    public int Steps => _steps;

    /// <inheritdoc />
    public async ValueTask<StepResult> StepAsync(AssistantTurn turn, CancellationToken cancellation)
    {
        if (_broken is not null) return StepResult.End;
        if (_clock.Elapsed > _settings.EpisodeTimeout)
        {
            _broken = $"the episode's wall clock ({_settings.EpisodeTimeout.TotalSeconds:0} s) ran out";
            _endedBy = "wall_clock";
            return StepResult.End;
        }
        _steps++;
        var replies = new List<Message>();
        if (turn.ToolCalls.Count == 0)
        {
            var problem = turn.FormatErrors.Count > 0 ? $"Your tool call could not be read: {string.Join("; ", turn.FormatErrors)}. " : "";
            replies.Add(Message.User(problem + "No tool was called. Use one of the tools (bash, view, str_replace, create), or call submit when the fix is done."));
        }
        foreach (var call in turn.ToolCalls)
        {
            if (call.Name == "submit")
            {
                _endedBy = "submit";
                return StepResult.End;
            }
            var text = await RunToolAsync(call, cancellation);
            if (_broken is not null) return StepResult.End;
            replies.Add(Message.ToolResult(call.Id, call.Name, SandboxText.TrimForModel(text, _settings.OutputChars)));
        }
        if (_steps >= _settings.MaxSteps)
        {
            _endedBy = "step_limit";
            return StepResult.End;
        }
        return StepResult.Continue([.. replies]);
    }

    private async Task<string> RunToolAsync(ToolCall call, CancellationToken cancellation)
    {
        try
        {
            if (call.Name is "bash" or "view" or "str_replace" or "create" && !await EnsureSessionAsync(cancellation)) return $"Error: {_broken}";
            return call.Name switch
            {
                "bash" => await BashAsync(Argument(call, "command"), cancellation),
                "view" => await ViewAsync(RepoPath(Argument(call, "path")), OptionalInt(call, "start_line"), OptionalInt(call, "end_line"), cancellation),
                "str_replace" => await ReplaceAsync(RepoPath(Argument(call, "path")), Argument(call, "old_str"), Argument(call, "new_str"), cancellation),
                "create" => await CreateAsync(RepoPath(Argument(call, "path")), Argument(call, "file_text"), cancellation),
                _ => $"Error: there is no tool '{call.Name}' (bash, view, str_replace, create, submit).",
            };
        }
        catch (ToolArgumentException e) { return "Error: " + e.Message; }
    }

    private sealed class ToolArgumentException(string message) : Exception(message);

    private static string Argument(ToolCall call, string name) =>
        call.Arguments[name] is JsonValue v && v.TryGetValue(out string? s) ? s
            : throw new ToolArgumentException($"{call.Name}: argument '{name}' is missing or not a string");

    private static int? OptionalInt(ToolCall call, string name) => call.Arguments[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out int n) => n,
        JsonValue v when v.TryGetValue(out string? s) && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) => n,
        _ => throw new ToolArgumentException($"{call.Name}: argument '{name}' must be a whole number"),
    };

    /// <summary>A path the agent gave, as a path under the scratch folder ("repo/..."); only files of the repository.</summary>
    private static string RepoPath(string path)
    {
        path = path.Trim();
        if (path.StartsWith(RepoRoot + "/", StringComparison.Ordinal)) path = path[(RepoRoot.Length + 1)..];
        else if (path == RepoRoot || path is "." or "./" or "") path = "";
        else if (path.StartsWith('/')) throw new ToolArgumentException($"'{path}' is outside the repository; give a path relative to {RepoRoot}");
        if (path.StartsWith("./", StringComparison.Ordinal)) path = path[2..];
        path = path.TrimEnd('/');
        if (path.Split('/').Any(p => p == "..")) throw new ToolArgumentException($"'{path}': paths may not contain '..'");
        return path.Length == 0 ? "repo" : "repo/" + path;
    }

    private async Task<SandboxResult> ExecAsync(IReadOnlyList<string> argv, CancellationToken cancellation, byte[]? stdin = null, long outputBytes = 1L << 20)
    {
        var limits = SandboxLimits.Default with
        {
            WallTime = _settings.CommandTimeout, CpuTime = _settings.CommandTimeout, MemoryBytes = _settings.MemoryBytes, FileSizeBytes = 64L << 20, OutputBytes = outputBytes,
        };
        var result = await _session!.ExecAsync(new SandboxCommand(argv, stdin, limits), cancellation);
        cancellation.ThrowIfCancellationRequested();
        if (result.Outcome == SandboxOutcome.SandboxError) _broken = $"the agent's sandbox failed: {result.Detail}";
        return result;
    }

    private async Task<string> BashAsync(string command, CancellationToken cancellation)
    {
        // Each command starts in the repository root; "$0" keeps the agent's text out of our own quoting.
        var result = await ExecAsync(["sh", "-c", "cd repo 2>/dev/null || echo '(the repository folder is gone: running in /work)' >&2; eval \"$0\"", command], cancellation);
        var text = new StringBuilder();
        var stdout = result.Stdout.Text;
        var stderr = result.Stderr.Text;
        if (stdout.Length > 0) text.Append(stdout.TrimEnd('\n')).Append('\n');
        if (stderr.Length > 0) text.Append("[stderr]\n").Append(stderr.TrimEnd('\n')).Append('\n');
        text.Append(result.Outcome switch
        {
            SandboxOutcome.Ok => result.Signal is { } sig ? $"[killed by signal {sig}]" : $"[exit code {result.ExitCode}]",
            SandboxOutcome.Timeout => $"[the command was killed: it ran past {_settings.CommandTimeout.TotalSeconds:0.#} s]",
            SandboxOutcome.MemoryLimit => $"[the command was killed: it ran out of memory ({_settings.MemoryBytes >> 20} MiB)]",
            SandboxOutcome.OutputLimit => "[the command was killed: it wrote more than 1 MiB of output]",
            _ => $"[the command was stopped: {result.Detail}]",
        });
        return text.ToString();
    }

    private async Task<(string? Text, string? Error)> ReadAsync(string path, CancellationToken cancellation)
    {
        var read = await _session!.GetFileAsync(path, 1L << 20, cancellation);
        if (read.Content is null) return (null, read.Error ?? "cannot be read");
        if (read.Truncated) return (null, "larger than 1 MiB");
        try { return (new UTF8Encoding(false, true).GetString(read.Content), null); }
        catch (DecoderFallbackException) { return (null, "not UTF-8 text"); }
    }

    private static string Shown(string path) => path == "repo" ? "." : path["repo/".Length..];

    private async Task<string> ViewAsync(string path, int? startLine, int? endLine, CancellationToken cancellation)
    {
        var (text, error) = path == "repo" ? (null, "a folder") : await ReadAsync(path, cancellation);
        if (text is null)
        {
            // Not a readable file: perhaps a folder, which ls lists.
            var list = await ExecAsync(["ls", "-p", "--", path], cancellation);
            if (list.Succeeded) return $"{Shown(path)}/:\n{list.Stdout.Text}";
            return $"Error: {Shown(path)}: {error}";
        }
        var lines = text.Split('\n');
        if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1];
        int first = Math.Max(1, startLine ?? 1);
        int last = Math.Min(lines.Length, endLine ?? lines.Length);
        if (first > lines.Length && lines.Length > 0) return $"Error: {Shown(path)} has {lines.Length} lines; start_line {first} is past the end";
        var sb = new StringBuilder();
        for (int n = first; n <= last; n++) sb.Append(n.ToString(CultureInfo.InvariantCulture).PadLeft(6)).Append('\t').Append(lines[n - 1]).Append('\n');
        return sb.Length == 0 ? $"{Shown(path)} is empty" : sb.ToString();
    }

    private async Task<string> ReplaceAsync(string path, string oldText, string newText, CancellationToken cancellation)
    {
        if (oldText.Length == 0) return "Error: old_str is empty; give the exact text to replace";
        var (text, error) = await ReadAsync(path, cancellation);
        if (text is null) return $"Error: {Shown(path)}: {error}";
        int count = SweEnvironment.CountOccurrences(text, oldText);
        if (count == 0) return $"Error: old_str was not found in {Shown(path)} (it must match exactly, whitespace included); no change made";
        if (count > 1) return $"Error: old_str occurs {count} times in {Shown(path)}; include more surrounding lines so it occurs exactly once; no change made";
        int at = text.IndexOf(oldText, StringComparison.Ordinal);
        var updated = string.Concat(text.AsSpan(0, at), newText, text.AsSpan(at + oldText.Length));
        var put = await _session!.PutFilesAsync([SandboxFile.Text(path, updated)], cancellation);
        if (!put.Ok) return $"Error: {Shown(path)} could not be written: {put.Error}";
        // Show the edited region so the agent can check it.
        int line = text[..at].Count(c => c == '\n') + 1;
        int span = newText.Count(c => c == '\n') + 1;
        return $"Edited {Shown(path)}. Lines {Math.Max(1, line - 3)}-{line + span + 2} now read:\n"
            + await ViewAsync(path, Math.Max(1, line - 3), line + span + 2, cancellation);
    }

    private async Task<string> CreateAsync(string path, string fileText, CancellationToken cancellation)
    {
        if (path == "repo") return "Error: give a file path";
        var put = await _session!.PutFilesAsync([SandboxFile.Text(path, fileText)], cancellation);
        return put.Ok ? $"Wrote {Shown(path)} ({fileText.Count(c => c == '\n') + (fileText.EndsWith('\n') || fileText.Length == 0 ? 0 : 1)} lines)." : $"Error: {Shown(path)} could not be written: {put.Error}";
    }

    /// <summary>
    /// The diff of the agent's tree against the starting tree, computed in the session; null and the reason when the
    /// session could not produce it.
    /// </summary>
    public async Task<(string? Patch, string? Error, IReadOnlyList<string> Skipped)> DiffAsync(CancellationToken cancellation)
    {
        // An agent that never used a tool changed nothing.
        if (_session is null) return (_broken is null ? "" : null, _broken, []);
        var baseJson = JsonSerializer.SerializeToUtf8Bytes(_start);
        var result = await ExecAsync(["python3", "-I", "-B", "-c", _diffScript, "repo"], cancellation, baseJson, 8L << 20);
        if (result.Outcome == SandboxOutcome.SandboxError) return (null, $"sandbox error: {result.Detail}", []);
        if (result.Outcome == SandboxOutcome.OutputLimit) return ("", "the agent's changes are larger than 8 MiB", []);
        if (!result.Succeeded) return (null, $"the diff could not be computed ({result.Outcome}, exit {result.ExitCode?.ToString() ?? "-"}): {SandboxText.TrimForModel(result.Stderr.Text, 500)}", []);
        try
        {
            var o = JsonNode.Parse(result.Stdout.Text) as JsonObject ?? throw new FormatException("not a JSON object");
            var patch = o["patch"]!.GetValue<string>();
            var skipped = (o["skipped"] as JsonArray)?.Select(n => n!.GetValue<string>()).ToList() ?? [];
            return (patch, null, skipped);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NullReferenceException)
        {
            return (null, $"the diff script's output could not be read: {e.Message}", []);
        }
    }

    /// <inheritdoc />
    public async ValueTask<Grade> GradeAsync(CancellationToken cancellation)
    {
        var evidence = new Dictionary<string, string> { ["ended_by"] = _endedBy, ["steps"] = _steps.ToString(CultureInfo.InvariantCulture) };
        if (_broken is not null) return Grade.NotJudged(_broken, null, evidence);
        var (patch, error, skipped) = await DiffAsync(cancellation);
        if (_broken is not null) return Grade.NotJudged(_broken, null, evidence);
        if (patch is null) return Grade.NotJudged($"the agent's changes could not be read from its sandbox: {error}", null, evidence);
        if (error is not null) return new Grade(0, new Dictionary<string, double>(), error, evidence);
        // The agent's sandbox is no longer needed: free its slot before the grading sandbox takes one.
        await DisposeAsync();
        var grade = await _grader.GradeAsync(_task, patch, _grading, cancellation);
        var merged = new Dictionary<string, string>(grade.Evidence);
        foreach (var (k, v) in evidence) merged[k] = v;
        if (skipped.Count > 0) merged["skipped_files"] = string.Join("; ", skipped.Take(20));
        return grade with { Evidence = merged };
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        if (_session is not null) await _session.DisposeAsync();
    }
}
