using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.ToolUse;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Environments.Tests;

/// <summary>The bwrap sandbox as a host offers it (the image is built when missing).</summary>
public sealed class PythonSandboxHost : IAsyncLifetime, IEnvironmentServices, IEnvironmentLog
{
    public SandboxSettings Settings { get; } = new() { SiloName = "tooluse-tests", FirstUid = 64400, Slots = 4, ScratchDirectory = "/run/nemotron-gym-sandbox-tooluse-tests" };
    public BwrapSandboxService Sandbox { get; private set; } = null!;
    public List<string> Log { get; } = [];

    public async ValueTask InitializeAsync()
    {
        await SandboxImage.EnsureAsync(Path.Combine(RepoPaths.Root, "sandbox-images"), Settings.ImagesDirectory, "python", default);
        var (sandbox, error) = BwrapSandboxService.Create(Settings);
        Sandbox = sandbox ?? throw new InvalidOperationException(error);
    }

    public T? Get<T>() where T : class => typeof(T) == typeof(ISandboxService) ? (T)(object)Sandbox : null;

    public void Write(string message) { lock (Log) Log.Add(message); }

    /// <summary>Scratch folders of sessions still open.</summary>
    public int OpenScratchFolders => Directory.Exists(Path.Combine(Settings.ScratchDirectory, "bwrap")) ? Directory.GetFileSystemEntries(Path.Combine(Settings.ScratchDirectory, "bwrap")).Length : 0;

    public ValueTask DisposeAsync()
    {
        Sandbox?.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class PythonToolTests(PythonSandboxHost host) : IClassFixture<PythonSandboxHost>
{
    private sealed class Services(ISandboxService? sandbox) : IEnvironmentServices
    {
        public T? Get<T>() where T : class => typeof(T) == typeof(ISandboxService) ? (T?)(object?)sandbox : null;
    }

    private async Task<ToolUseEnvironment> Start(ISandboxService? sandbox)
    {
        var env = new ToolUseEnvironment();
        var values = env.Descriptor.Options.ToDictionary(o => o.Name, o => o.Default);
        values["python"] = "true";
        await env.InitializeAsync(new EnvironmentContext(values, AppContext.BaseDirectory, new Services(sandbox), host), default);
        return env;
    }

    private static AssistantTurn Python(string code) => new("", "", null, [new ToolCall("p", "python", new JsonObject { ["code"] = code })], []);

    private static async Task<string> Run(IEpisode episode, string code)
    {
        var step = await episode.StepAsync(Python(code), default);
        Assert.False(step.Done);
        return Assert.Single(step.Reply).Content;
    }

    [Fact]
    public async Task Python_tasks_are_offered_the_tool_and_their_references_earn_full_reward()
    {
        var env = await Start(host.Sandbox);
        var tasks = await env.LoadTasksAsync(new TaskQuery("train", 60, 3), default);
        var python = tasks.Where(t => t.VerifierMetadata["required_calls"]!.AsArray().Any(c => c!["name"]!.GetValue<string>() == "python")).ToList();
        Assert.InRange(python.Count, 10, 35); // about a third
        Assert.All(tasks, t => Assert.Contains(t.Tools, d => d.Name == "python"));
        Assert.All(tasks, t => Assert.Empty(env.ValidateTask(t)));
        // Every kind, the two-call one included (its second call reads the variable the first left).
        foreach (var task in python.DistinctBy(t => t.Input[^1].Content[..12]))
        {
            var grade = await EnvTestKit.Play(env, task, [.. task.Reference]);
            Assert.True(grade.Reward == 1, $"{task.Input[^1].Content}: {grade.Reason}; {grade.Evidence["calls"]}");
        }
        Assert.Equal(0, host.OpenScratchFolders);
    }

    [Fact]
    public async Task State_carries_over_between_calls_and_the_session_goes_with_the_episode()
    {
        var env = await Start(host.Sandbox);
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 1), default))[0];
        var episode = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
        await using (episode)
        {
            // The last bare expression's value is shown (write returns the 4 characters written).
            Assert.Equal("exit status 0\nstdout:\n4\n", await Run(episode, "import math\nx = 6 * 7\ndef double(v):\n    return 2 * v\nclass Box:\n    def __init__(self, v): self.v = v\nb = Box(5)\nopen('notes.txt', 'w').write('kept')"));
            var second = await Run(episode, "print(double(x), math.sqrt(16), b.v)\nopen('notes.txt').read()");
            Assert.Equal("exit status 0\nstdout:\n84 4.0 5\n'kept'\n", second);
            Assert.Equal(1, host.OpenScratchFolders);

            // A value that cannot be kept (a generator) is gone after its call; the rest stays.
            await Run(episode, "g = (i for i in range(3))\ny = x + 1");
            var after = await Run(episode, "print(y); print('g' in globals())");
            Assert.Contains("43\nFalse", after);

        }
        Assert.Equal(0, host.OpenScratchFolders);

        // Another episode starts from nothing (an episode has at most eight tool calls).
        await using (var episode2 = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 1), default))
        {
            episode = episode2;
            Assert.Contains("fresh", await Run(episode, "try:\n    x\nexcept NameError:\n    print('fresh')\nx = 42"));
            // Errors come back as text: an exception with its traceback, a syntax error, a timeout that loses only its own call.
            var boom = await Run(episode, "1 / 0");
            Assert.StartsWith("exit status 1", boom);
            Assert.Contains("ZeroDivisionError", boom);
            Assert.Contains("SyntaxError", await Run(episode, "def broken(:"));
            var slow = await Run(episode, "x = -1\nimport time\ntime.sleep(60)");
            Assert.StartsWith("error: timed out", slow);
            Assert.Contains("42", await Run(episode, "x"));

            // The harness is put back before each call, so overwriting it changes nothing.
            await Run(episode, "open('.gym_python.py', 'w').write('print(666)')");
            Assert.Equal("exit status 0\nstdout:\n7\n", await Run(episode, "print(x // 6)"));
        }
        Assert.Equal(0, host.OpenScratchFolders);
    }

    [Fact]
    public async Task A_failed_sandbox_or_none_leaves_the_episode_not_judged()
    {
        // No sandbox at all.
        var none = await Start(null);
        Assert.Contains(host.Log, l => l.Contains("no sandbox"));
        var task = (await none.LoadTasksAsync(new TaskQuery("train", 60, 3), default)).First(t => t.Reference[0].ToolCalls.FirstOrDefault()?.Name == "python");
        var grade = await EnvTestKit.Play(none, task, [.. task.Reference]);
        Assert.True(grade.Masked, grade.Reason);
        Assert.Contains("no sandbox", grade.MaskReason);

        // A sandbox that breaks: its image is gone.
        var settings = host.Settings with { ImagesDirectory = "/nonexistent/nemotron-gym-images", FirstUid = 64450, ScratchDirectory = "/run/nemotron-gym-sandbox-tooluse-tests-broken" };
        var (broken, error) = BwrapSandboxService.Create(settings);
        Assert.True(broken is not null, error);
        using (broken)
        {
            var env = await Start(broken);
            grade = await EnvTestKit.Play(env, task, [.. task.Reference]);
            Assert.True(grade.Masked, grade.Reason);
            Assert.Contains("sandbox failed", grade.MaskReason);
            Assert.Equal(1, grade.Components["sandbox_error"]);
        }

        // Tasks without python are judged as before when the tool is on.
        var plain = (await none.LoadTasksAsync(new TaskQuery("train", 60, 3), default)).First(t => t.Reference[0].ToolCalls.FirstOrDefault()?.Name == "calculator");
        Assert.Equal(1, (await EnvTestKit.Play(none, plain, [.. plain.Reference])).Reward);
    }
}
