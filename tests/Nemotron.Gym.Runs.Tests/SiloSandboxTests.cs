using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Sandbox;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Runs.Tests;

/// <summary>
/// The sandbox pool of a silo, for real: code episodes on episode grains grade in the silo's sandbox; a refused
/// admission (queue full) and a Docker engine killed under an episode come back as grades that are not judged, are
/// replayed a bounded number of times and then handed to the trainer masked, never as a 0; the silo goes on working.
/// </summary>
[Collection(SiloSandboxCollection.Name)]
public sealed class SiloSandboxTests : IAsyncLifetime
{
    private static readonly TaskSetSpec CodeTasks = new("code", new Dictionary<string, string>(), "train", 4, 1);
    private readonly string _state = Path.Combine(Path.GetTempPath(), $"gym-silo-sandbox-{Guid.NewGuid():N}.db");

    // Apart from the uids and folders of the sandbox tests, the code tests and a default silo on this machine.
    private static SandboxSettings Settings(string backend) => new()
    {
        Backend = backend, SiloName = "runs-tests", FirstUid = 64200, Slots = 4, ScratchDirectory = "/run/nemotron-gym-sandbox-runs-tests",
        Concurrency = 1, QueueCapacity = 0, DockerEndpoint = PrivateDockerDaemon.EndpointOf(EngineRunDirectory),
    };

    private const string EngineRunDirectory = "/run/ngym-runs-tests-docker";
    private const string EngineDataRoot = "/var/lib/nemotron-gym/runs-tests-docker";

    public async ValueTask InitializeAsync()
    {
        var images = new SandboxSettings().ImagesDirectory;
        await SandboxImage.EnsureAsync(Path.Combine(RepoPaths.Root, "sandbox-images"), images, "python", default);
    }

    public ValueTask DisposeAsync()
    {
        File.Delete(_state);
        return ValueTask.CompletedTask;
    }

    private async Task<IHost> StartSilo(SandboxSettings settings) => await GymSilo.StartAsync(new GymSiloOptions
    {
        SiloPort = 21311, GatewayPort = 31200, PluginFolders = [RepoPaths.Plugins], StateStorage = "sqlite:" + _state,
        Sandbox = new SiloSandboxOptions(settings, Required: true),
    });

    /// <summary>Opens an episode of a code task and answers it with the task's reference solution.</summary>
    private static async Task<Training.Grpo.IEpisode> Answered(IHost silo, GrainEpisodeSource source, int task, int sample)
    {
        var pool = silo.Services.GetRequiredService<EnvironmentPool>();
        var record = await pool.GetTaskAsync(CodeTasks, source.Tasks[task].Id["code/".Length..]);
        var episode = await source.OpenAsync(source.Tasks[task], sample, seed: 3, default);
        var reply = await episode.StepAsync(AssistantTurn.Parse(record.Reference[0].Text + "<|end|>", true), true, default);
        Assert.True(reply.Done);
        return episode;
    }

    [Fact]
    public async Task Code_episodes_grade_in_the_silos_pool_and_a_full_queue_is_retried_then_masked()
    {
        var silo = await StartSilo(Settings("bwrap"));
        try
        {
            var sandbox = silo.Services.GetRequiredService<SiloSandbox>();
            var pool = await sandbox.Ready;
            Assert.NotNull(pool);
            Assert.True(sandbox.Probe!.Passed, sandbox.Probe.Got);
            var grains = silo.Services.GetRequiredService<IGrainFactory>();
            var source = await GrainEpisodeSource.CreateAsync(grains, "silo-sandbox", [CodeTasks]);

            var judged = await (await Answered(silo, source, 0, 0)).GradeAsync(false, default);
            Assert.False(judged.Masked, judged.Reason);
            Assert.True(judged.Reward == 1, judged.Reason + " " + string.Join("; ", judged.Evidence.Select(kv => kv.Key + "=" + kv.Value)));
            Assert.True(pool.Metrics.Outcomes[SandboxOutcome.Ok] >= 2, "the probe and the grading's commands ran through the pool");

            // The only place is held: every attempt is refused at once (queue capacity 0).
            long refusedBefore = pool.Metrics.Refused;
            await using (var holder = await pool.OpenSessionAsync(new SandboxSessionOptions(), default))
            {
                var refused = await (await Answered(silo, source, 1, 0)).GradeAsync(false, default);
                Assert.True(refused.Masked, $"a refused sandbox must not be a verdict: {refused.Reason}");
                Assert.Contains("queue full", refused.MaskReason);
                Assert.Contains($"after {source.MaxAttempts} attempts", refused.MaskReason);
                Assert.Equal(source.MaxAttempts - 1, source.NotJudgedRetries);
                Assert.Equal(source.MaxAttempts, pool.Metrics.Refused - refusedBefore);
            }

            // The place is free again: the silo judges as before.
            var after = await (await Answered(silo, source, 1, 1)).GradeAsync(false, default);
            Assert.False(after.Masked, after.Reason);
            Assert.True(after.Reward == 1, after.Reason + " " + string.Join("; ", after.Evidence.Select(kv => kv.Key + "=" + kv.Value)));
            Assert.Equal(0, pool.Metrics.Running);
        }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
        }
    }

    [Fact]
    public async Task Dockerd_killed_mid_episode_is_retried_then_masked_and_the_silo_judges_again_once_it_is_back()
    {
        await PrivateDockerDaemon.EnsureRunningAsync(EngineRunDirectory, EngineDataRoot, TimeSpan.FromSeconds(60), default);
        var silo = await StartSilo(Settings("docker") with { Concurrency = 4, QueueCapacity = 16 });
        try
        {
            var pool = (await silo.Services.GetRequiredService<SiloSandbox>().Ready)!;
            var grains = silo.Services.GetRequiredService<IGrainFactory>();
            var source = await GrainEpisodeSource.CreateAsync(grains, "silo-docker", [CodeTasks]);
            var warm = await (await Answered(silo, source, 0, 0)).GradeAsync(false, default);
            Assert.True(warm.Reward == 1, warm.Reason + " " + string.Join("; ", warm.Evidence.Select(kv => kv.Key + "=" + kv.Value)));

            // The episode is open and answered; the engine dies while it is being graded.
            var episode = await Answered(silo, source, 1, 0);
            var grading = episode.GradeAsync(false, default);
            await Task.Delay(150);
            var pid = int.Parse(File.ReadAllText(Path.Combine(EngineRunDirectory, "dockerd.pid")).Trim());
            using (var dockerd = System.Diagnostics.Process.GetProcessById(pid)) dockerd.Kill();
            try
            {
                var grade = await grading;
                Assert.True(grade.Masked, $"a dead engine must not be a verdict: {grade.Reason}");
                Assert.Contains("sandbox failed", grade.MaskReason);
                Assert.Equal(0, grade.Reward);
                Assert.Equal(source.MaxAttempts - 1, source.NotJudgedRetries);
                Assert.Equal(0, pool.Metrics.Running); // every failed attempt gave its place back
            }
            finally
            {
                for (var i = 0; i < 100 && Directory.Exists($"/proc/{pid}"); i++) await Task.Delay(50);
                await PrivateDockerDaemon.EnsureRunningAsync(EngineRunDirectory, EngineDataRoot, TimeSpan.FromSeconds(60), default);
            }

            // The run goes on: the next episode on the same silo is judged.
            var next = await (await Answered(silo, source, 2, 0)).GradeAsync(false, default);
            Assert.False(next.Masked, next.Reason);
            Assert.True(next.Reward == 1, next.Reason + " " + string.Join("; ", next.Evidence.Select(kv => kv.Key + "=" + kv.Value)));
        }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
            PrivateDockerDaemon.Stop(EngineRunDirectory);
        }
        // Nothing of the engine that was killed is left: no container shim, no half-created container.
        var left = System.Diagnostics.Process.GetProcesses().Where(p => CommandLine(p.Id).Contains(EngineRunDirectory + "/", StringComparison.Ordinal)).Select(p => p.Id).ToList();
        Assert.True(left.Count == 0, $"processes of the killed engine left: {string.Join(", ", left.Select(CommandLine))}");
    }

    private static string CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (IOException) { return ""; }
    }

    [Fact]
    public async Task A_required_sandbox_that_cannot_start_stops_the_silo_with_the_reason()
    {
        var missing = Settings("bwrap") with { ImagesDirectory = "/nonexistent/nemotron-gym-images" };
        var error = await Assert.ThrowsAnyAsync<Exception>(() => StartSilo(missing));
        Assert.Contains("sandbox", error.GetBaseException().Message);
    }
}

/// <summary>The silo sandbox tests share ports and uids: one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class SiloSandboxCollection
{
    public const string Name = "silo sandbox";
}
