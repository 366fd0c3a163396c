using Microsoft.Extensions.DependencyInjection;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.PluginWorker.Tests;

/// <summary>
/// The hostile plugin on a real silo, driven the way the trainer drives episodes (GrainEpisodeSource: open, step,
/// grade, replay a lost episode on a new grain). Every attack ends as a grade with its reason; the silo, and this
/// process with it, keeps serving honest episodes.
/// </summary>
public sealed class SiloWithHostilePluginTests
{
    [Fact]
    public async Task EveryAttackEndsAsAGradeWithItsReasonAndTheSiloGoesOn()
    {
        using var folders = new PluginFolders();
        folders.Hostile();
        var state = Path.Combine(Path.GetTempPath(), $"gym-hostile-{Guid.NewGuid():N}.db");
        var options = new GymSiloOptions
        {
            SiloPort = Ports.Free(), GatewayPort = Ports.Free(), PluginFolders = [folders.Root], StateStorage = "sqlite:" + state,
            PluginHosting = new PluginWorkerSettings { Isolation = "bwrap", WorkersPerPlugin = 2 },
        };
        var silo = await GymSilo.StartAsync(options, configure: s =>
            s.Services.AddSingleton(new EnvironmentPoolOptions { PluginFolders = [folders.Root], CallTimeout = TimeSpan.FromSeconds(3) }));
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            var set = new TaskSetSpec("hostile", new Dictionary<string, string>(), "train", 20, 1);
            var source = await GrainEpisodeSource.CreateAsync(grains, "hostile", [set]);
            var outcomes = new Dictionary<string, Grade>();
            // One at a time, so that an attack's crash cannot take an honest episode of the same worker with it.
            foreach (var attack in new[] { "exit", "kill", "stack_overflow", "step_exit", "hang", "nan", "infinite_component", "throw", "shadow", "none" })
            {
                var episode = await source.OpenAsync(source.Tasks.Single(t => t.Id == $"hostile/{attack}"), 0, 1, default);
                await episode.StepAsync(AssistantTurn.Parse("ok<|end|>", true), true, default);
                outcomes[attack] = await episode.GradeAsync(false, default);
                // The hung grader's worker is killed a grace period after its grade timed out: wait for that, so the next
                // attacks are not opened on a worker about to go (they would be lost with it, replays and all).
                if (attack == "hang")
                    for (int i = 0; i < 300 && silo.Services.GetRequiredService<PluginWorkers>().Counts.Killed == 0; i++) await Task.Delay(100);
            }

            // Crashes: the episode is replayed on a new grain (and a new worker) up to three times, then masked.
            foreach (var (attack, cause) in new[] { ("exit", "exited with code 0"), ("kill", "SIGKILL"), ("stack_overflow", "SIGABRT"), ("step_exit", "exited with code 0") })
            {
                var g = outcomes[attack];
                Assert.Equal(0, g.Reward);
                Assert.True(g.Components.ContainsKey("environment_error"), $"{attack}: {g.Reason}");
                Assert.True(g.Masked, $"{attack}: a crashed environment is not judged, never a 0 to learn from");
                Assert.Contains(cause, g.Reason);
            }
            // Grader errors: not judged (the trainer masks them) with the reason, after the episode's replays.
            foreach (var (attack, reason) in new[] { ("hang", "did not finish within 3s"), ("nan", "the reward NaN"), ("infinite_component", "bonus = Infinity"), ("throw", "the grader broke") })
            {
                var g = outcomes[attack];
                Assert.Equal(0, g.Reward);
                Assert.True(g.Components.ContainsKey("grader_error"), $"{attack}: {g.Reason}");
                Assert.True(g.Masked, $"{attack}: a broken grader says nothing about the answer");
                Assert.Contains(reason, g.Reason);
            }
            Assert.Contains("could not read /etc/shadow", outcomes["shadow"].Reason);
            Assert.Equal(1, outcomes["none"].Reward);

            // After all that, a batch of honest episodes in parallel, on the same silo.
            var honest = source.Tasks.Where(t => t.Id.StartsWith("hostile/none-", StringComparison.Ordinal)).ToList();
            var grades = await Task.WhenAll(honest.Select(async (t, i) =>
            {
                var e = await source.OpenAsync(t, i, 1, default);
                await e.StepAsync(AssistantTurn.Parse("ok<|end|>", true), true, default);
                return await e.GradeAsync(false, default);
            }));
            Assert.All(grades, g => Assert.True(g.Reward == 1, g.Reason));
            var workers = silo.Services.GetRequiredService<PluginWorkers>();
            Assert.True(workers.Counts.Died >= 12, $"each crash, three times, plus the hung worker: {workers.Counts}");
        }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
            File.Delete(state);
        }
    }
}
