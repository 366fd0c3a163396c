using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;

namespace Nemotron.Gym.Runs.Tests;

public sealed class ReplayTests
{
    [Fact]
    public async Task AnEpisodeWhoseGrainWasLostIsReplayedOnANewGrainAndFinishes()
    {
        await WithSilo(21211, 31100, async grains =>
        {
            var set = new TaskSetSpec("tool_use", new Dictionary<string, string> { ["difficulty"] = "1" }, "train", 3, 1);
            var source = await GrainEpisodeSource.CreateAsync(grains, "replay", [set]);
            var episode = await source.OpenAsync(source.Tasks[0], 0, 7, default);
            var reply = await episode.StepAsync(AssistantTurn.Parse("<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"6*7\"}}</tool_call><|end|>", false), false, default);
            Assert.False(reply.Done);
            Assert.Contains("42", reply.Reply[0].Content);

            // Every idle activation goes, as when its silo dies: the episode's state is gone with it.
            await grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);

            var end = await episode.StepAsync(AssistantTurn.Parse("The answer is 42.<|end|>", true), true, default);
            Assert.True(end.Done);
            var grade = await episode.GradeAsync(false, default);
            Assert.Equal(1, source.Replays);
            Assert.DoesNotContain("environment_error", grade.Components.Keys);
        });
    }

    [Fact]
    public async Task AnEnvironmentThatCannotStartEndsTheCommandWithItsReasonNotAStackTrace()
    {
        // The silo's plugin folder holds no environment of that name (what a plugin that failed to load, or an
        // installation replaced under a running command, looks like from here): the grain's plain exception comes back
        // as an environment call's failure, which the command line prints as one line.
        await WithSilo(21213, 31102, async grains =>
        {
            var set = new TaskSetSpec("no_such_environment", new Dictionary<string, string>(), "train", 3, 1);
            var e = await Assert.ThrowsAsync<Nemotron.Gym.Plugins.EnvironmentCallException>(() => GrainEpisodeSource.CreateAsync(grains, "missing", [set]));
            Assert.StartsWith("environment 'no_such_environment': ", e.Message);
            Assert.Contains("no environment named 'no_such_environment'", e.Message);
        });
    }

    /// <summary>A silo over the repository's plugins with its own state file, for one test.</summary>
    private static async Task WithSilo(int siloPort, int gatewayPort, Func<IGrainFactory, Task> test)
    {
        var state = Path.Combine(Path.GetTempPath(), $"gym-replay-{Guid.NewGuid():N}.db");
        var silo = await GymSilo.StartAsync(new GymSiloOptions { SiloPort = siloPort, GatewayPort = gatewayPort, PluginFolders = [Nemotron.Gym.TestSupport.RepoPaths.Plugins], StateStorage = "sqlite:" + state });
        try { await test((IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!); }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
            File.Delete(state);
        }
    }
}
