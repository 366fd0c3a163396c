using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker.Tests;

/// <summary>
/// Grade-ahead: a step that ends its episode is graded in the worker at once and the worker closes the episode, so a
/// single-turn episode costs two requests (open, step) instead of four (open, step, grade, dispose), with the same
/// grades; the hostile cases of grading (hang, NaN, a throw) keep their outcomes when the grade was made ahead.
/// </summary>
public sealed class GradeAheadTests : IDisposable
{
    private readonly PluginFolders _folders = new();
    public void Dispose() => _folders.Dispose();

    private static async Task<(HostedEnvironment Env, IReadOnlyList<TaskRecord> Tasks)> Start(PluginWorkers workers, string root, string name, HostLimits? limits = null)
    {
        var (envs, errors) = workers.LoadAll([root]);
        Assert.Empty(errors);
        var env = await HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == name), null, limits ?? HostLimits.Default);
        return (env, await env.LoadTasksAsync(new TaskQuery("train", 20, 1)));
    }

    /// <summary>Plays the task's reference answer (right) or a wrong one, grades, closes; returns the reward.</summary>
    private static async Task<double> Play(HostedEnvironment env, TaskRecord task, bool right)
    {
        await using var episode = await env.OpenAsync(task, new EpisodeContext(1, 0));
        var step = await episode.StepAsync(right ? task.Reference[0] : AssistantTurn.FromContent("The answer is \\boxed{-123456789}"));
        Assert.True(step.Done);
        var grade = await episode.GradeAsync();
        Assert.Equal(grade.Reward, (await episode.GradeAsync()).Reward); // asked twice, the same grade
        return grade.Reward;
    }

    [Theory]
    [InlineData(true, 2)]
    [InlineData(false, 4)]
    public async Task ASingleTurnEpisodeCostsTwoRequestsWithGradeAheadAndFourWithout(bool gradeAhead, int requestsPerEpisode)
    {
        _folders.Math();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { WorkersPerPlugin = 1, GradeAhead = gradeAhead });
        var (env, tasks) = await Start(workers, _folders.Root, "math");
        Assert.Equal(1, await Play(env, tasks[0], right: true)); // every task-independent request done (start, initialize)
        long before = workers.RequestsSent;
        for (int i = 1; i <= 5; i++)
        {
            Assert.Equal(1, await Play(env, tasks[i], right: true));
            Assert.Equal(0, await Play(env, tasks[i + 5], right: false));
        }
        // The second GradeAsync of each episode is answered from the first: no request of its own.
        Assert.Equal(10 * (requestsPerEpisode + (gradeAhead ? 0 : 1)), workers.RequestsSent - before);
    }

    [Fact]
    public async Task ManyEpisodesInFlightOnTwoWorkersAllGradeRight()
    {
        _folders.Math();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { WorkersPerPlugin = 2 });
        var (env, tasks) = await Start(workers, _folders.Root, "math");
        var rewards = await Task.WhenAll(Enumerable.Range(0, 400).Select(i => Play(env, tasks[i % tasks.Count], right: i % 2 == 0)));
        for (int i = 0; i < rewards.Length; i++) Assert.True(rewards[i] == (i % 2 == 0 ? 1 : 0), $"episode {i}: reward {rewards[i]}");
        Assert.Equal(2, workers.Counts.Started - 1); // the describing worker, then the pool's two
    }

    [Theory]
    [InlineData("nan", "the reward NaN")]
    [InlineData("throw", "InvalidOperationException: the grader broke")]
    public async Task ABadGradeMadeAheadIsStillAGraderError(string attack, string reason)
    {
        _folders.Hostile();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 1 });
        var (env, tasks) = await Start(workers, _folders.Root, "hostile");
        await using var episode = await env.OpenAsync(tasks.Single(t => t.Id == attack), new EpisodeContext(1, 0));
        Assert.True((await episode.StepAsync(AssistantTurn.FromContent("ok"))).Done);
        var grade = await episode.GradeAsync();
        Assert.True(grade.Masked);
        Assert.Equal(1, grade.Components["grader_error"]);
        Assert.Contains(reason, grade.Reason);
        Assert.Equal(0, workers.Counts.Died);
    }

    [Fact]
    public async Task AGraderSpinningOnTheReadLoopDoesNotHoldUpTheOtherEpisodesOfItsWorker()
    {
        // Requests run inline on the worker's read loop; the hung grader holds it, and the watchdog must hand reading on.
        _folders.Hostile();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 1 });
        var (env, tasks) = await Start(workers, _folders.Root, "hostile", new HostLimits(TimeSpan.FromSeconds(10)));
        var honest = tasks.Where(t => t.Id.StartsWith("none-", StringComparison.Ordinal)).ToList();
        Assert.Equal(1, await PlayOk(env, honest[0])); // the worker is up
        var hung = Task.Run(() => PlayOk(env, tasks.Single(t => t.Id == "hang")));
        await Task.Delay(500);
        Assert.False(hung.IsCompleted);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 1; i < 4; i++) Assert.Equal(1, await PlayOk(env, honest[i]));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"three honest episodes took {clock.Elapsed} beside a hung grader");
        Assert.False(hung.IsCompleted, "the honest episodes ran while the grader still spun");
        Assert.Equal(0, await hung); // then the limit, a grader error, and the worker killed a second later
        for (int i = 0; i < 100 && workers.Counts.Killed == 0; i++) await Task.Delay(100);
        Assert.Equal(1, workers.Counts.Killed);
    }

    private static async Task<double> PlayOk(HostedEnvironment env, TaskRecord task)
    {
        await using var episode = await env.OpenAsync(task, new EpisodeContext(1, 0));
        await episode.StepAsync(AssistantTurn.FromContent("ok"));
        return (await episode.GradeAsync()).Reward;
    }

    [Fact]
    public async Task AMultiTurnEpisodeIsGradedAheadOnlyAfterItsLastStep()
    {
        // Tool use: the reference calls tools first (the episode goes on; nothing is graded ahead), then answers (the end).
        _folders.ToolUse();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { WorkersPerPlugin = 1 });
        await using var inProcess = new PluginWorkers(new PluginWorkerSettings { InProcess = true });
        var (env, tasks) = await Start(workers, _folders.Root, "tool_use");
        var (local, localTasks) = await Start(inProcess, _folders.Root, "tool_use");
        int multiTurn = 0;
        for (int i = 0; i < 10; i++)
        {
            var (grade, steps) = await PlayReference(env, tasks[i]);
            var (expected, _) = await PlayReference(local, localTasks[i]);
            Assert.True(grade.Reward == expected.Reward, $"task {tasks[i].Id}: {grade.Reward} in a worker, {expected.Reward} in process ({grade.Reason})");
            Assert.Equal(1, grade.Reward);
            if (steps > 1) multiTurn++;
        }
        Assert.True(multiTurn > 0, "some reference used a tool before answering");
    }

    private static async Task<(Grade Grade, int Steps)> PlayReference(HostedEnvironment env, TaskRecord task)
    {
        await using var episode = await env.OpenAsync(task, new EpisodeContext(1, 0));
        int steps = 0;
        foreach (var turn in task.Reference)
        {
            steps++;
            if ((await episode.StepAsync(turn)).Done) break;
        }
        return (await episode.GradeAsync(), steps);
    }

    [Fact]
    public async Task AHungGradeMadeAheadThatNobodyAsksForStillHasItsWorkerKilled()
    {
        // The episode ends, its grader starts (ahead) and spins; the host closes the episode without asking for the grade.
        _folders.Hostile();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 1 });
        var (env, tasks) = await Start(workers, _folders.Root, "hostile");
        Assert.Equal(1, await PlayOk(env, tasks.First(t => t.Id.StartsWith("none-", StringComparison.Ordinal))));
        var episode = await env.OpenAsync(tasks.Single(t => t.Id == "hang"), new EpisodeContext(1, 0));
        Assert.True((await episode.StepAsync(AssistantTurn.FromContent("ok"))).Done);
        await Task.Delay(200);
        await episode.DisposeAsync();
        for (int i = 0; i < 100 && workers.Counts.Killed == 0; i++) await Task.Delay(100);
        Assert.Equal(1, workers.Counts.Killed);
        Assert.Equal(1, await PlayOk(env, tasks.First(t => t.Id.StartsWith("none-", StringComparison.Ordinal)))); // on a new worker
    }
}
