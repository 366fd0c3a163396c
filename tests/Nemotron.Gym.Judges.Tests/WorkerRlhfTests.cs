using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.PluginWorker;
using Nemotron.Gym.TestSupport;
using static Nemotron.Gym.Judges.Tests.GroupJudgingTests;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>
/// The rlhf plugin out of process (the default hosting): the worker reaches the host's judge pool through the service
/// proxy, and the host asks the worker to grade whole groups over the worker channel. The judge is a real HTTP server.
/// </summary>
public sealed class WorkerRlhfTests : IAsyncDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // A private copy of the plugin, so the test can tell its own worker processes from those of tests running beside it.
    private readonly string _root = Directory.CreateTempSubdirectory("worker-rlhf-").FullName;
    private readonly List<string> _log = new();
    private readonly PluginWorkers _workers;

    public WorkerRlhfTests()
    {
        // Workers under bubblewrap run as an unprivileged uid: the folders must be readable by everyone.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_root, (UnixFileMode)0b111_101_101);
        var source = Directory.GetDirectories(RepoPaths.Plugins).Single(d => Path.GetFileName(d).Contains("rlhf", StringComparison.OrdinalIgnoreCase));
        var dest = Path.Combine(_root, Path.GetFileName(source));
        foreach (var f in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dest, Path.GetRelativePath(source, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        _workers = new PluginWorkers(new PluginWorkerSettings { WorkersPerPlugin = 1, Log = line => { lock (_log) _log.Add(line); } });
    }

    public async ValueTask DisposeAsync()
    {
        await _workers.DisposeAsync();
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private async Task<(HostedEnvironment Env, TaskRecord Task)> StartAsync(IJudgeService? judge, HostLimits? limits = null)
    {
        var (envs, errors) = _workers.LoadAll([_root]);
        Assert.Empty(errors);
        var services = new HostServices(judge == null ? null : new Dictionary<Type, object> { [typeof(IJudgeService)] = judge });
        var env = await HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == "rlhf"), new Dictionary<string, string> { ["swap"] = "false" },
            limits ?? HostLimits.Default, services: services, cancellation: Ct);
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 3), Ct))[0];
        return (env, task);
    }

    private static List<GroupMember> Members(TaskRecord task, params string[] answers) =>
        answers.Select((a, i) => new GroupMember(i, [.. task.Input, Message.Assistant(a, "thinking about " + a)], Grade.Of(0, "provisional"), false)).ToList();

    /// <summary>Prefers the shorter reply, with a line of reasoning.</summary>
    private static ScriptedJudgeReply PrefersShorter(ScriptedJudgeCall c)
    {
        bool first = c.Reply1!.Length < c.Reply2!.Length;
        return ScriptedJudgeReply.Verdict(first ? 5 : 1, first ? 1 : 5, first ? 1 : 5);
    }

    [Fact]
    public async Task TheWorkersEnvironmentIsGroupGradedAndTheJudgesVerdictReachesTheGrades()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(PrefersShorter);
        var (env, task) = await StartAsync(new JudgePool(Settings(server.BaseUrl)));
        Assert.True(env.GradesGroups, "the worker's rlhf environment must offer group grading, as the plugin object does in process");
        Assert.IsNotType<Nemotron.Gym.Environments.Rlhf.RlhfEnvironment>(env.Plugin.Create());

        var grades = await env.GradeGroupAsync(task, Members(task, "short", "a much longer reply"), Ct);
        Assert.Equal(2, grades.Count);
        Assert.All(grades, g => Assert.False(g.Masked, g.Reason));
        Assert.True(grades[0].Reward > grades[1].Reward, $"{grades[0].Reason} / {grades[1].Reason}");
        Assert.Equal(5, grades[0].Components["judge_score"]);
        Assert.Equal(1, grades[1].Components["judge_score"]);
        Assert.Contains(grades[0].Evidence, e => e.Key.StartsWith("judge_vs_", StringComparison.Ordinal) && e.Value.Contains("weighing them"));
        // The judge's request was built in the worker from the task and the members, and crossed the proxy intact.
        Assert.Contains(server.Calls, c => c.User.Contains(task.Input[0].Content) && c.Reply1 == "short" && c.Reply2 == "a much longer reply");
        Assert.Equal(0, _workers.Counts.Died);
    }

    [Fact]
    public async Task AJudgeThatIsDownMasksTheGroupNeverScoresIt()
    {
        var down = new JudgePool(Settings($"http://127.0.0.1:{Ports.Free()}/v1"));
        var (env, task) = await StartAsync(down);
        var grades = await env.GradeGroupAsync(task, Members(task, "one", "two", "three"), Ct);
        Assert.Equal(3, grades.Count);
        Assert.All(grades, g =>
        {
            Assert.True(g.Masked, $"expected a masked grade, got reward {g.Reward}: {g.Reason}");
            Assert.Equal(0, g.Reward);
            Assert.StartsWith("not judged", g.Reason);
        });
        Assert.True(down.Stats.Requests > 0, "the worker's judge calls must reach the host's pool");
    }

    [Fact]
    public async Task AWorkerKilledDuringGroupGradingMasksTheGroupAndTheNextGroupIsGradedByANewWorker()
    {
        var judging = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool slow = true;
        await using var server = await ScriptedJudgeServer.StartAsync(c =>
        {
            if (Volatile.Read(ref slow))
            {
                judging.TrySetResult();
                return new ScriptedJudgeReply(200, "{}", TimeSpan.FromSeconds(10));
            }
            return PrefersShorter(c);
        });
        var settings = Settings(server.BaseUrl);
        settings.TimeoutSeconds = 20;
        var (env, task) = await StartAsync(new JudgePool(settings));

        var grading = env.GradeGroupAsync(task, Members(task, "short", "a much longer reply"), Ct);
        await judging.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var workers = WorkersUnder(_root);
        Assert.Single(workers);
        Process.GetProcessById(workers[0]).Kill();

        var grades = await grading.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.All(grades, g =>
        {
            Assert.True(g.Masked, $"expected a masked grade, got reward {g.Reward}: {g.Reason}");
            Assert.Contains("plugin worker", g.MaskReason);
        });

        // The host lives on: the next group goes to a new worker, which initializes the environment and grades it.
        Volatile.Write(ref slow, false);
        var again = await env.GradeGroupAsync(task, Members(task, "short", "a much longer reply"), Ct);
        Assert.All(again, g => Assert.False(g.Masked, g.Reason));
        Assert.True(again[0].Reward > again[1].Reward, $"{again[0].Reason} / {again[1].Reason}");
        Assert.Equal(3, _workers.Counts.Started); // the describing worker, the killed one and its replacement
        Assert.Equal(1, _workers.Counts.Died);
    }

    [Fact]
    public async Task AGroupGradingPastTheLimitIsMaskedAndCancelledInItsWorkerWithoutAKill()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => new ScriptedJudgeReply(200, "{}", TimeSpan.FromSeconds(8)));
        var (env, task) = await StartAsync(new JudgePool(Settings(server.BaseUrl)), new HostLimits(TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500)));
        var grades = await env.GradeGroupAsync(task, Members(task, "one", "two"), Ct);
        Assert.All(grades, g => Assert.Contains("grade group did not finish within 0.5s", g.MaskReason));
        // The plugin passes its token to the judge proxy, so the cancelled call ends in the worker and nothing is killed.
        await Task.Delay(TimeSpan.FromSeconds(2), Ct); // past the kill grace (1 s)
        Assert.Equal((0, 0), (_workers.Counts.Killed, _workers.Counts.Died));
        Assert.DoesNotContain(_log, l => l.Contains("killed", StringComparison.Ordinal));
    }

    /// <summary>This process's children whose command line or working folder names <paramref name="folder"/>: the workers of that plugin.</summary>
    private static List<int> WorkersUnder(string folder)
    {
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                if (parent != Environment.ProcessId) continue;
                string cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                string? cwd = new DirectoryInfo(Path.Combine(dir, "cwd")).LinkTarget;
                if (cmdline.Contains(folder, StringComparison.Ordinal) || (cwd != null && cwd.StartsWith(folder, StringComparison.Ordinal))) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { /* it ended meanwhile */ }
        }
        return found;
    }

    [Fact]
    public void JudgeRequestsAndCompletionsSurviveTheServiceProxysJson()
    {
        // The proxy sends arguments and results as JSON by their declared types.
        var call = new ToolCall("c1", "lookup", new JsonObject { ["q"] = "tides" });
        var request = new JudgeRequest(
        [
            Message.System("You judge."), Message.User("Which is better?"), Message.Assistant("Reply", "because", [call]),
            Message.ToolResult("c1", "lookup", "moon"),
        ], Attempt: 2);
        var back = JsonSerializer.Deserialize<JudgeRequest>(JsonSerializer.Serialize(request))!;
        Assert.Equal(2, back.Attempt);
        Assert.Equal(request.Messages.Count, back.Messages.Count);
        for (int i = 0; i < request.Messages.Count; i++)
        {
            var (a, b) = (request.Messages[i], back.Messages[i]);
            Assert.Equal((a.Role, a.Content, a.Reasoning, a.ToolCallId, a.Name), (b.Role, b.Content, b.Reasoning, b.ToolCallId, b.Name));
            Assert.Equal(a.ToolCalls?.Count, b.ToolCalls?.Count);
        }
        Assert.Equal(call, back.Messages[2].ToolCalls![0]);

        var completion = new JudgeCompletion(JudgeOutcome.CircuitOpen, "", "the breaker is open", 0, false);
        Assert.Equal(completion, JsonSerializer.Deserialize<JudgeCompletion>(JsonSerializer.Serialize(completion)));
    }
}
