using Microsoft.Extensions.DependencyInjection;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.TestSupport;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Nemotron.Gym.Environments.Swe.Tests;

/// <summary>
/// A one-silo test cluster (Orleans' TestingHost, silos in this process) whose environment pool loads the swe plugin
/// from its build folder and offers it the silo's bwrap sandbox pool, as a gym run does. <see cref="SweHost"/> gives
/// the tests the task list and the reference episodes.
/// </summary>
public sealed class SweCluster : IAsyncLifetime
{
    private static readonly string StateFile = Path.Combine(Path.GetTempPath(), $"gym-swe-grains-{Environment.ProcessId}.db");
    // A plugin folder is named after its assembly, as the gym tool stages it: the build folder is copied to one.
    private static readonly string PluginsFolder = Path.Combine(Path.GetTempPath(), $"gym-swe-plugins-{Environment.ProcessId}");

    public SweHost Host { get; } = new()
    {
        Settings = new() { SiloName = "swe-grain-tests", FirstUid = 64620, Slots = 4, ScratchDirectory = "/run/nemotron-gym-sandbox-swe-grain-tests" },
    };
    public TestCluster Cluster { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        await Host.InitializeAsync();
        var build = RepoPaths.BuildOf("environments", "Swe", "Nemotron.Gym.Environments.Swe");
        var staged = Path.Combine(PluginsFolder, "Nemotron.Gym.Environments.Swe");
        foreach (var file in Directory.EnumerateFiles(build, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(staged, Path.GetRelativePath(build, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        await Host.DisposeAsync();
        File.Delete(StateFile);
        Directory.Delete(PluginsFolder, recursive: true);
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo) => GymSilo.AddGrainServices(silo, new GymSiloOptions
        {
            PluginFolders = [PluginsFolder],
            StateStorage = "sqlite:" + StateFile,
            // The silo's own sandbox pool (the run config's sandbox: section), on uids of its own.
            Sandbox = new SiloSandboxOptions(new Nemotron.Gym.Sandbox.SandboxSettings
            {
                SiloName = "swe-grain-silo", FirstUid = 64640, Slots = 4, ScratchDirectory = "/run/nemotron-gym-sandbox-swe-grain-silo",
            }, Required: true),
        });
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder client) => GymSilo.AddCommon(client.Services);
    }
}

public sealed class GrainEpisodeTests(SweCluster cluster) : IClassFixture<SweCluster>
{
    private static readonly TaskSetSpec AllTasks = new("swe", new Dictionary<string, string>(), "all", 0, 1);

    [Fact]
    public async Task A_scripted_agent_solves_a_task_through_the_episode_grain()
    {
        var task = cluster.Host.Tasks[1];
        var record = cluster.Host.Env.ToTaskRecord(task);
        var grain = cluster.Cluster.GrainFactory.GetGrain<IEpisodeGrain>($"swe/{Guid.NewGuid()}");
        var opening = await grain.Open(new EpisodeSpec(AllTasks, task.InstanceId, 0, 1));
        Assert.Contains(opening.Tools, t => t.Name == "str_replace");
        Assert.Contains("/work/repo", opening.Messages[^1].Content);
        var replies = new List<Message>();
        foreach (var turn in record.Reference)
        {
            var reply = await grain.Step(turn, final: false);
            replies.AddRange(reply.Reply);
            if (reply.Done) break;
        }
        // The view came back numbered, the edit was confirmed.
        Assert.Contains(replies, m => m.Role == Role.Tool && m.Content.Contains("     1\t", StringComparison.Ordinal));
        Assert.Contains(replies, m => m.Role == Role.Tool && m.Content.StartsWith("Edited ", StringComparison.Ordinal));
        var graded = await grain.Grade(truncated: false);
        Assert.Equal(1, graded.Grade.Reward);
        Assert.Contains("resolved", graded.Grade.Reason);
        var f2p = System.Text.Json.Nodes.JsonNode.Parse(graded.Grade.Evidence["FAIL_TO_PASS"])!.AsObject();
        Assert.Equal(task.FailToPass.Count, f2p.Count);
        Assert.All(f2p, p => Assert.Equal("passed", p.Value!.GetValue<string>()));
    }

    [Fact]
    public async Task An_agent_that_submits_at_once_gets_zero_with_every_tests_result()
    {
        var task = cluster.Host.Tasks[2];
        var grain = cluster.Cluster.GrainFactory.GetGrain<IEpisodeGrain>($"swe/{Guid.NewGuid()}");
        await grain.Open(new EpisodeSpec(AllTasks, task.InstanceId, 0, 1));
        Assert.True((await grain.Step(EpisodeTests.Call("submit"), final: false)).Done);
        var graded = await grain.Grade(truncated: false);
        Assert.Equal(0, graded.Grade.Reward);
        Assert.False(graded.Grade.Masked);
        var p2p = System.Text.Json.Nodes.JsonNode.Parse(graded.Grade.Evidence["PASS_TO_PASS"])!.AsObject();
        Assert.Equal(task.PassToPass.Count, p2p.Count);
    }
}
