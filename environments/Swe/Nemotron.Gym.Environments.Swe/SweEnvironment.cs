using System.Globalization;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Swe;

/// <summary>
/// Software-engineering tasks in SWE-bench's shape: the agent gets a small Python repository with an injected bug
/// and an issue describing what a user saw, works on it in a sandbox session with shell and editor tools, and is
/// rewarded when the hidden tests pass in a fresh sandbox. Tasks, repositories and the bug generator are in
/// environments/Swe (README.md there). Needs the host's <see cref="ISandboxService"/>; without one every episode is
/// graded as masked (nothing could be judged).
/// </summary>
public sealed class SweEnvironment : EnvironmentBase
{
    private ISandboxService? _sandbox;
    private SweRepositories _repositories = null!;
    private SweGrader _grader = null!;
    private string _diffScript = "";
    private IReadOnlyList<SweTask>? _tasks;

    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "swe", "1.0.0",
        "Fix an injected bug in a small Python repository with shell and editor tools; graded by hidden tests in a fresh sandbox.",
        [
            new ConfigOption("reward_mode", ConfigType.Choice, "resolved",
                "resolved: 1 when every FAIL_TO_PASS and PASS_TO_PASS test passes; fraction: share of FAIL_TO_PASS passing times share of PASS_TO_PASS still passing; patch_similarity: similarity of the changed lines to the gold patch (nothing run).",
                Choices: ["resolved", "fraction", "patch_similarity"]),
            new ConfigOption("max_steps", ConfigType.Integer, "30", "Assistant turns before the episode ends and the tree is graded as it stands.", 1, 1000),
            new ConfigOption("command_timeout_s", ConfigType.Number, "10", "Wall-clock limit of one bash command (it is killed and the agent told).", 0.5, 600),
            new ConfigOption("episode_timeout_s", ConfigType.Number, "900", "Wall clock of the whole episode from its opening; past it the episode ends and the rollout is masked.", 1, 86400),
            new ConfigOption("test_timeout_s", ConfigType.Number, "20", "Wall-clock limit of the hidden test run when grading; a run past it masks the rollout. Keep it under the host's call timeout (30 s by default).", 1, 3600),
            new ConfigOption("memory_mb", ConfigType.Integer, "512", "Memory of the agent's sandbox and of the test run.", 64, 16384),
            new ConfigOption("output_chars", ConfigType.Integer, "6000", "Most characters of a tool result shown to the model (head and tail kept).", 200, 1_000_000),
        ],
        ["train", "heldout", "all"]);

    /// <summary>The grader (for tools that grade patches without an episode, like the similarity report).</summary>
    public SweGrader Grader => _grader;

    /// <summary>The repositories the tasks come from.</summary>
    public SweRepositories Repositories => _repositories;

    /// <summary>The grading settings the configuration gives.</summary>
    public SweGradingSettings GradingSettings => new(
        Context.GetText("reward_mode") switch { "fraction" => SweRewardMode.Fraction, "patch_similarity" => SweRewardMode.PatchSimilarity, _ => SweRewardMode.Resolved },
        TimeSpan.FromSeconds(Context.GetDouble("test_timeout_s")), (long)Context.GetInt("memory_mb") << 20);

    /// <inheritdoc />
    public override async ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        await base.InitializeAsync(context, cancellation);
        _sandbox = context.Services.Get<ISandboxService>();
        if (_sandbox is null) context.Log.Write("swe: no sandbox service is configured; every episode will be masked (nothing can be run)");
        var tools = Path.Combine(context.DataDirectory, "tools");
        _repositories = new SweRepositories(Path.Combine(context.DataDirectory, "repos"));
        _grader = new SweGrader(_sandbox, _repositories, tools);
        _diffScript = await File.ReadAllTextAsync(Path.Combine(tools, "agent_diff.py"), cancellation);
    }

    /// <summary>Every task of data/tasks.jsonl, in file order; errors name the file and line.</summary>
    public async Task<IReadOnlyList<SweTask>> ReadTasksAsync(CancellationToken cancellation)
    {
        if (_tasks is { } cached) return cached;
        var path = Path.Combine(Context.DataDirectory, "tasks.jsonl");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: task file not found", path);
        var tasks = new List<SweTask>();
        int lineNo = 0;
        foreach (var line in await File.ReadAllLinesAsync(path, cancellation))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new FormatException("expected a JSON object"); }
            catch (Exception e) when (e is System.Text.Json.JsonException or FormatException) { throw new TaskFormatException($"{path}:{lineNo}: {e.Message}"); }
            try { tasks.Add(SweTask.FromJson(o, $"{path}:{lineNo}")); }
            catch (FormatException e) { throw new TaskFormatException(e.Message); }
        }
        return _tasks = tasks;
    }

    /// <inheritdoc />
    public override async ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout" or "all")) throw new ArgumentException($"swe: unknown split '{query.Split}' (train, heldout, all)");
        var all = await ReadTasksAsync(cancellation);
        var chosen = all.Where(t => query.Split == "all" || IsHeldOut(t.InstanceId) == (query.Split == "heldout")).ToList();
        if (query.Count > 0 && query.Count < chosen.Count)
        {
            // A seeded sample in file order, as EnvironmentBase samples.
            var rng = new Random(query.Seed);
            chosen = Enumerable.Range(0, chosen.Count).OrderBy(_ => rng.Next()).Take(query.Count).Order().Select(i => chosen[i]).ToList();
        }
        return chosen.Select(ToTaskRecord).ToList();
    }

    // FNV-1a of the instance id: one task in five is held out, the same on every machine.
    private static bool IsHeldOut(string id)
    {
        var hash = 2166136261u;
        foreach (var c in id) hash = (hash ^ c) * 16777619u;
        return hash % 5 == 0;
    }

    /// <summary>
    /// A task as the gym sees it: the issue as the user's message, the five tools, every SWE-bench field in
    /// verifier_metadata, and a reference episode (view the file, one str_replace per gold hunk, submit) that
    /// <c>gym env check</c> replays.
    /// </summary>
    public TaskRecord ToTaskRecord(SweTask task)
    {
        var files = _repositories.Starting(task).Keys.Order(StringComparer.Ordinal).ToList();
        var prompt = $"""
            {task.ProblemStatement.TrimEnd()}

            ---
            The repository `{task.Repo}` is checked out at {SweEpisode.RepoRoot} (one commit, no history). Its files:
            {string.Join("\n", files.Select(f => "  " + f))}

            Find the cause and fix it in the source. Tests that check the fix are hidden and run after you submit;
            you may write and run your own checks with the bash tool. Call `submit` when you are done.
            """;
        return new TaskRecord
        {
            Id = task.InstanceId,
            Input = [Message.System(SweEpisode.SystemPrompt), Message.User(prompt)],
            Tools = SweEpisode.ToolDefinitions,
            VerifierMetadata = task.ToJson(),
            Reference = ReferenceTurns(task),
        };
    }

    private List<AssistantTurn> ReferenceTurns(SweTask task)
    {
        var start = _repositories.Starting(task);
        var turns = new List<AssistantTurn>();
        int call = 0;
        AssistantTurn Turn(string name, JsonObject args) => new("", "", null, [new ToolCall($"call_{call++}", name, args)], []);
        foreach (var file in UnifiedDiff.Parse(task.GoldPatch))
        {
            if (file.Kind != FileChangeKind.Modify || !start.TryGetValue(file.Path, out var text)) continue;
            turns.Add(Turn("view", new JsonObject { ["path"] = file.Path }));
            foreach (var hunk in file.Hunks)
            {
                var old = string.Concat(hunk.OldLines);
                // A hunk whose text occurs twice cannot be a str_replace; the file is rewritten whole instead.
                if (CountOccurrences(text, old) != 1)
                {
                    turns.Add(Turn("create", new JsonObject { ["path"] = file.Path, ["file_text"] = UnifiedDiff.Apply(start, task.GoldPatch)[file.Path] }));
                    break;
                }
                turns.Add(Turn("str_replace", new JsonObject { ["path"] = file.Path, ["old_str"] = old, ["new_str"] = string.Concat(hunk.NewLines) }));
            }
        }
        turns.Add(Turn("submit", new JsonObject()));
        return turns;
    }

    internal static int CountOccurrences(string text, string part)
    {
        if (part.Length == 0) return 0;
        int count = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + 1, StringComparison.Ordinal)) count++;
        return count;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        SweTask swe;
        try { swe = SweTask.FromJson(task.VerifierMetadata, $"task {task.Id}: verifier_metadata"); }
        catch (FormatException e) { return [e.Message]; }
        var problems = new List<string>();
        try
        {
            _repositories.Starting(swe);
            _repositories.HiddenTests(swe);
            UnifiedDiff.Apply(_repositories.Starting(swe), swe.GoldPatch);
        }
        catch (Exception e) when (e is InvalidOperationException or PatchException or DirectoryNotFoundException) { problems.Add(e.Message); }
        return problems;
    }

    /// <inheritdoc />
    public override async ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation)
    {
        var swe = SweTask.FromJson(task.VerifierMetadata, $"task {task.Id}: verifier_metadata");
        var settings = new SweEpisodeSettings(
            Context.GetInt("max_steps"), TimeSpan.FromSeconds(Context.GetDouble("command_timeout_s")), TimeSpan.FromSeconds(Context.GetDouble("episode_timeout_s")),
            (long)Context.GetInt("memory_mb") << 20, Context.GetInt("output_chars"));
        return await SweEpisode.OpenAsync(_sandbox, swe, task, _repositories.Starting(swe), _grader, GradingSettings, settings, _diffScript, cancellation);
    }

    /// <summary>A number as the settings spell it.</summary>
    internal static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);
}
