using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.PluginWorker.Tests;

/// <summary>A plugin in a bubblewrapped worker uses the host's real sandbox (a one-shot run and a session) through the service proxy.</summary>
public sealed class ServiceProxyTests
{
    [Fact]
    public async Task APluginInAWorkerRunsCodeInTheHostsSandbox()
    {
        var settings = new SandboxSettings
        {
            Slots = 2,
            FirstUid = 63500, // apart from the sandbox tests' uids and a silo's default range
            ImagesDirectory = "/var/lib/nemotron-gym/sandbox-images",
            ScratchDirectory = "/run/nemotron-gym-worker-tests",
        };
        await SandboxImage.EnsureAsync(Path.Combine(RepoPaths.Root, "sandbox-images"), settings.ImagesDirectory, "python", default);
        var (sandbox, error) = BwrapSandboxService.Create(settings);
        Assert.True(sandbox != null, error);
        using var _ = sandbox;

        using var folders = new PluginFolders();
        folders.Hostile();
        await using var workers = new PluginWorkers(new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 1 });
        var (envs, errors) = workers.LoadAll([folders.Root]);
        Assert.Empty(errors);
        var services = new HostServices(new Dictionary<Type, object> { [typeof(ISandboxService)] = sandbox });
        var env = await HostedEnvironment.StartAsync(envs.Single(), null, HostLimits.Default, services: services);
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 1))).Single(t => t.Id == "sandbox");
        await using var episode = await env.OpenAsync(task, new EpisodeContext(1, 0));
        await episode.StepAsync(AssistantTurn.FromContent("ok"));
        var grade = await episode.GradeAsync();
        Assert.True(grade.Reward == 1, grade.Reason);
        Assert.StartsWith("bwrap:", grade.Reason);

        // Without the service the plugin is told so (null), as in process.
        var bare = await HostedEnvironment.StartAsync(envs.Single(), null, HostLimits.Default);
        await using var second = await bare.OpenAsync(task, new EpisodeContext(1, 0));
        await second.StepAsync(AssistantTurn.FromContent("ok"));
        Assert.Equal("no sandbox service", (await second.GradeAsync()).Reason);
    }
}
