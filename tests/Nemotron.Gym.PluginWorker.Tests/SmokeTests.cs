using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker.Tests;

public sealed class SmokeTests : IDisposable
{
    private readonly PluginFolders _folders = new();
    public void Dispose() => _folders.Dispose();

    [Fact]
    public async Task MathRunsInAWorker()
    {
        _folders.Math();
        var lines = new List<string>();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Log = l => { lock (lines) lines.Add(l); } });
        var (envs, errors) = workers.LoadAll([_folders.Root]);
        Assert.True(errors.Count == 0, string.Join("\n", errors) + string.Join("\n", lines));
        var math = Assert.Single(envs);
        Assert.Null(math.Type);
        var env = await HostedEnvironment.StartAsync(math, null, HostLimits.Default);
        var tasks = await env.LoadTasksAsync(new TaskQuery("train", 10, 1));
        Assert.Equal(10, tasks.Count);
        await using var episode = await env.OpenAsync(tasks[0], new EpisodeContext(1, 0));
        Assert.NotEmpty(episode.Opening);
        var step = await episode.StepAsync(tasks[0].Reference[0]);
        Assert.True(step.Done);
        var grade = await episode.GradeAsync();
        Assert.True(grade.Reward == 1, grade.Reason + string.Join("\n", lines));
    }
}
