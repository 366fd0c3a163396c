using System.Net;
using System.Net.Sockets;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker.Tests;

/// <summary>
/// A real plugin whose graders exit, crash, hang, snoop and return NaN, run in workers under bubblewrap: each attack
/// ends in the right outcome (the episode lost and to be replayed, or a grader error with its reason), the host
/// process lives, and the next honest episode grades normally on a new worker.
/// </summary>
public sealed class HostilePluginTests : IAsyncLifetime
{
    private readonly PluginFolders _folders = new();
    private readonly List<string> _log = [];
    private PluginWorkers _workers = null!;
    private HostedEnvironment _env = null!;
    private Dictionary<string, TaskRecord> _tasks = null!;

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(3);

    public async ValueTask InitializeAsync()
    {
        Assert.True(WorkerLaunch.BubblewrapUnavailable() == null, $"these tests run the workers under bubblewrap: {WorkerLaunch.BubblewrapUnavailable()}");
        _folders.Hostile();
        _workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 1, Log = Log });
        _env = await Start(_workers, _folders.Root);
        _tasks = (await _env.LoadTasksAsync(new TaskQuery("train", 20, 1))).ToDictionary(t => t.Id);
    }

    public async ValueTask DisposeAsync()
    {
        await _workers.DisposeAsync();
        _folders.Dispose();
    }

    private void Log(string line)
    {
        lock (_log) _log.Add(line);
    }

    private static async Task<HostedEnvironment> Start(PluginWorkers workers, string root, Dictionary<string, string>? settings = null)
    {
        var (envs, errors) = workers.LoadAll([root]);
        Assert.Empty(errors);
        return await HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == "hostile"), settings, new HostLimits(CallTimeout));
    }

    /// <summary>Plays "ok" and grades; returns the grade, or the exception the grade (or step) threw.</summary>
    private static async Task<(Grade? Grade, Exception? Error)> Play(HostedEnvironment env, TaskRecord task)
    {
        try
        {
            await using var episode = await env.OpenAsync(task, new EpisodeContext(1, 0));
            await episode.StepAsync(AssistantTurn.FromContent("ok"));
            return (await episode.GradeAsync(), null);
        }
        catch (EnvironmentCallException e) { return (null, e); }
    }

    private async Task HonestEpisodeStillGradesOne()
    {
        var (grade, error) = await Play(_env, _tasks.Values.First(t => t.Id.StartsWith("none-", StringComparison.Ordinal)));
        Assert.Null(error);
        Assert.Equal(1, grade!.Reward);
    }

    [Theory]
    [InlineData("exit", "exited with code 0")]
    [InlineData("kill", "SIGKILL")]
    [InlineData("stack_overflow", "SIGABRT")]
    [InlineData("step_exit", "exited with code 0")]
    public async Task AGraderThatEndsItsProcessLosesTheEpisodeNotTheHost(string attack, string cause)
    {
        var (grade, error) = await Play(_env, _tasks[attack]);
        Assert.Null(grade);
        var lost = Assert.IsType<EpisodeLostException>(error);
        Assert.Contains(cause, lost.Message);
        Assert.Contains($"task {attack}", lost.Message);
        await HonestEpisodeStillGradesOne();
        Assert.True(_workers.Counts.Started >= 2, "a new worker replaced the dead one");
    }

    [Fact]
    public async Task AStackOverflowIsReportedWithTheRuntimesOwnWords()
    {
        var (_, error) = await Play(_env, _tasks["stack_overflow"]);
        Assert.Contains("Stack overflow", error!.Message, StringComparison.OrdinalIgnoreCase);
    }

    // Known defect (issue #19): passes alone, but when the silo-level hostile tests run beside it the timed-out grade
    // comes back without its worker ever being told to cancel, so the worker is not killed. Run it alone with
    // `-method "*AHungGrader*"` until the cancellation path is fixed.
    [Fact(Skip = "known defect: the hung worker is not killed when other hostile tests run beside this one (issue #19)")]
    public async Task AHungGraderTimesOutAndItsWorkerIsKilled()
    {
        // A longer limit here: on a loaded machine the call must surely reach the worker before the limit passes.
        var (envs, _) = _workers.LoadAll([_folders.Root]);
        var env = await HostedEnvironment.StartAsync(envs.Single(), null, new HostLimits(TimeSpan.FromSeconds(10)));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (grade, error) = await Play(env, _tasks["hang"]);
        Assert.Null(error);
        Assert.Equal(0, grade!.Reward);
        Assert.Equal(1, grade.Components["grader_error"]);
        Assert.Contains("did not finish within 10s", grade.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(40), $"took {clock.Elapsed}");
        // The spinning thread cannot be stopped inside .NET: its whole worker goes, and the next episode gets a new one.
        for (int i = 0; i < 300 && _workers.Counts.Killed == 0; i++) await Task.Delay(100);
        Assert.True(_workers.Counts.Killed == 1, $"{_workers.Counts}; log: {string.Join("\n", _log)}");
        await HonestEpisodeStillGradesOne();
    }

    [Fact]
    public async Task AGraderCannotReadEtcShadow()
    {
        var (grade, error) = await Play(_env, _tasks["shadow"]);
        Assert.Null(error);
        Assert.Equal(0, grade!.Reward);
        Assert.Contains("could not read /etc/shadow", grade.Reason);
        Assert.DoesNotContain("shadow", grade.Evidence.Keys);
    }

    [Fact]
    public async Task APluginInAFolderOnlyRootCanReadStillRunsAndStillCannotReadEtcShadow()
    {
        using var folders = new PluginFolders(@private: true);
        folders.Hostile();
        Assert.False(WorkerLaunch.ReadableByEveryone(folders.Root));
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 1 });
        var env = await Start(workers, folders.Root);
        var tasks = (await env.LoadTasksAsync(new TaskQuery("train", 20, 1))).ToDictionary(t => t.Id);
        var (shadow, _) = await Play(env, tasks["shadow"]);
        Assert.Contains("could not read /etc/shadow", shadow!.Reason);
        var (honest, _) = await Play(env, tasks.Values.First(t => t.Id.StartsWith("none-", StringComparison.Ordinal)));
        Assert.Equal(1, honest!.Reward);
    }

    [Theory]
    [InlineData("nan", "the reward NaN")]
    [InlineData("infinite_component", "the component bonus = Infinity")]
    [InlineData("throw", "InvalidOperationException: the grader broke")]
    public async Task ABadGradeIsAGraderErrorWithItsReason(string attack, string reason)
    {
        var (grade, error) = await Play(_env, _tasks[attack]);
        Assert.Null(error);
        Assert.Equal(0, grade!.Reward);
        Assert.Equal(1, grade.Components["grader_error"]);
        Assert.Contains(reason, grade.Reason);
        Assert.Contains($"task {attack}", grade.Reason);
        Assert.Equal(0, _workers.Counts.Died);
    }

    [Fact]
    public async Task NaNIsCaughtAtTheBoundaryInProcessToo()
    {
        await using var inProcess = new PluginWorkers(new PluginWorkerSettings { InProcess = true });
        var env = await Start(inProcess, _folders.Root);
        var tasks = (await env.LoadTasksAsync(new TaskQuery("train", 20, 1))).ToDictionary(t => t.Id);
        var (grade, _) = await Play(env, tasks["nan"]);
        Assert.Equal(0, grade!.Reward);
        Assert.Contains("the reward NaN", grade.Reason);
        Assert.Equal(0, inProcess.Counts.Started);
    }

    [Fact]
    public async Task NoNetworkUnlessTheManifestAsksForIt()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var settings = new Dictionary<string, string> { ["port"] = ((IPEndPoint)listener.LocalEndpoint).Port.ToString() };
        var env = await Start(_workers, _folders.Root, settings);
        var (closed, _) = await Play(env, _tasks["network"]);
        Assert.Equal(0, closed!.Reward);

        using var open = new PluginFolders();
        open.Hostile(manifest: """{"assembly": "Nemotron.Gym.Environments.Hostile.dll", "network": true}""");
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 1 });
        var networked = await Start(workers, open.Root, settings);
        var tasks = (await networked.LoadTasksAsync(new TaskQuery("train", 20, 1))).ToDictionary(t => t.Id);
        var (connected, _) = await Play(networked, tasks["network"]);
        Assert.True(connected!.Reward == 1, connected.Reason);
    }

    [Fact]
    public async Task APluginWhoseConstructorExitsIsAPluginErrorAndTheOthersStillLoad()
    {
        using var folders = new PluginFolders();
        folders.Math();
        var bad = folders.Hostile("ExitsOnLoad");
        File.WriteAllText(Path.Combine(bad, "exit-on-load"), "");
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap" });
        var (envs, errors) = workers.LoadAll([folders.Root]);
        Assert.Equal("math", Assert.Single(envs).Descriptor.Name);
        var error = Assert.Single(errors);
        Assert.Contains("ExitsOnLoad", error.Source);
        Assert.Contains("exited with code 0", error.Error);
    }
}
