using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker.Tests;

/// <summary>
/// The host's side of a worker's channel: a reply's caller goes on on the thread that reads the worker's replies, calls
/// are bounded by a deadline scan instead of a timer each, and a caller's token ends its wait. What must hold anyway:
/// a caller that blocks on that thread does not stall the channel, and a cancelled wait ends at once and still gets a
/// grader that ignores the cancel killed.
/// </summary>
public sealed class HostReadingThreadTests : IDisposable
{
    private readonly PluginFolders _folders = new();
    public void Dispose() => _folders.Dispose();

    private static async Task<(HostedEnvironment Env, IReadOnlyList<TaskRecord> Tasks)> Start(PluginWorkers workers, string root, string name)
    {
        var (envs, errors) = workers.LoadAll([root]);
        Assert.Empty(errors);
        var env = await HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == name), null, new HostLimits(TimeSpan.FromSeconds(30)));
        return (env, await env.LoadTasksAsync(new TaskQuery("train", 20, 1)));
    }

    [Fact]
    public async Task ACallerThatBlocksOnTheReadingThreadForAnotherReplyOfTheSameWorkerStillGetsIt()
    {
        _folders.Math();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { WorkersPerPlugin = 1, Isolation = "none" });
        var (env, tasks) = await Start(workers, _folders.Root, "math");
        // Off any synchronization context, so the code after the await runs where the reply was read. When the reply is
        // already there as the caller awaits (the worker was quicker), the caller goes on on its own thread and the case
        // is not exercised: then it is tried again, up to 50 times; every try must complete.
        int exercised = 0;
        for (int attempt = 0; attempt < 50 && exercised == 0; attempt++)
        {
            var task = tasks[2 * (attempt % 10) + 1];
            var outcome = await Task.Run(async () =>
            {
                await using var first = await env.OpenAsync(tasks[2 * (attempt % 10)], new EpisodeContext(1, 0));
                string thread = Thread.CurrentThread.Name ?? "";
                // Blocking here holds the thread that would read the reply to this call: only a new reading thread can read it.
                var second = env.OpenAsync(task, new EpisodeContext(1, attempt)).GetAwaiter().GetResult();
                var step = second.StepAsync(task.Reference[0]).GetAwaiter().GetResult();
                var grade = second.GradeAsync().GetAwaiter().GetResult();
                second.DisposeAsync().AsTask().GetAwaiter().GetResult();
                return (thread, step.Done, grade.Reward);
            }).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(outcome.Done);
            Assert.Equal(1, outcome.Reward);
            if (outcome.thread.StartsWith("plugin worker reader", StringComparison.Ordinal)) exercised++;
        }
        Assert.True(exercised > 0, "in 50 tries no caller went on on the reading thread");
        Assert.Equal(0, workers.Counts.Died);
    }

    [Fact]
    public async Task ACancelledWaitEndsAtOnceAndAGraderThatIgnoresTheCancelHasItsWorkerKilled()
    {
        _folders.Hostile();
        var log = new List<string>();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { WorkersPerPlugin = 1, Log = l => { lock (log) log.Add(l); } });
        var (env, tasks) = await Start(workers, _folders.Root, "hostile");
        await using var episode = await env.OpenAsync(tasks.Single(t => t.Id == "hang"), new EpisodeContext(1, 0));
        Assert.True((await episode.StepAsync(AssistantTurn.FromContent("ok"))).Done); // the grade, made ahead, now spins in the worker
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => episode.GradeAsync(cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the cancelled wait took {clock.Elapsed}");
        // The spinning grader cannot be stopped inside .NET: past the kill grace its worker goes.
        for (int i = 0; i < 300 && workers.Counts.Killed == 0; i++) await Task.Delay(100);
        Assert.True(workers.Counts.Killed == 1, $"{workers.Counts}; log: {string.Join("\n", log)}");
    }

    [Fact]
    public async Task AnEpisodeOpenedWhileAHungGradersWorkerAwaitsItsKillGoesToAnotherWorkerAndIsNotLostWithIt()
    {
        _folders.Hostile();
        // A grace long enough that the honest episode below is opened, stepped and waiting inside it.
        await using var workers = new PluginWorkers(new PluginWorkerSettings { WorkersPerPlugin = 2, KillGrace = TimeSpan.FromSeconds(3) });
        var (env, tasks) = await Start(workers, _folders.Root, "hostile");
        await using var hung = await env.OpenAsync(tasks.Single(t => t.Id == "hang"), new EpisodeContext(1, 0));
        Assert.True((await hung.StepAsync(AssistantTurn.FromContent("ok"))).Done);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => hung.GradeAsync(cancel.Token));
        Assert.Equal(0, workers.Counts.Killed); // the hung grader's worker is within its grace

        // Without the rule, the first worker (the one about to go) would take this episode: fewer than SpillAt calls wait
        // on it. It is stepped only after the kill (a grade made ahead could come back before it).
        await using var honest = await env.OpenAsync(tasks.Single(t => t.Id == "none"), new EpisodeContext(1, 0));
        for (int i = 0; i < 300 && workers.Counts.Killed == 0; i++) await Task.Delay(100);
        Assert.Equal(1, workers.Counts.Killed);
        Assert.True((await honest.StepAsync(AssistantTurn.FromContent("ok"))).Done);
        Assert.Equal(1, (await honest.GradeAsync()).Reward);
    }
}
