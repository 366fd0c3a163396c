using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;
using Orleans.Runtime;

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

    [Theory]
    // A crashed silo is declared dead only after tens of seconds on a busy machine, and calls to it time out or are
    // refused meanwhile: more such failures than there are attempts, and the episode still finishes.
    [InlineData("timeout", 5, 60, false)]
    [InlineData("silo-unavailable", 5, 60, false)]
    // The environment's own failures (plain exceptions from the grain) use up the attempts, as before.
    [InlineData("environment", 5, 60, true)]
    // A cluster that stays down past the patience gives the episode up too.
    [InlineData("timeout", 1000, 1, true)]
    public async Task FailuresOfTheClusterAreRetriedForATimeWithoutUsingUpTheEnvironmentsAttempts(string kind, int failures, int patienceSeconds, bool givenUp)
    {
        var failing = new FailingSteps(kind, failures);
        await WithSilo(21214, 31103, async grains =>
        {
            var set = new TaskSetSpec("math", new Dictionary<string, string> { ["difficulty"] = "1" }, "train", 3, 1);
            var source = await GrainEpisodeSource.CreateAsync(grains, "cluster-" + kind, [set]);
            source.ReplayBackoff = TimeSpan.FromMilliseconds(20);
            source.ClusterPatience = TimeSpan.FromSeconds(patienceSeconds);
            var episode = await source.OpenAsync(source.Tasks[0], 0, 7, default);
            var end = await episode.StepAsync(AssistantTurn.Parse("The answer is 42.<|end|>", true), true, default);
            Assert.True(end.Done);
            var grade = await episode.GradeAsync(false, default);
            Assert.Equal(givenUp, grade.Components.ContainsKey("environment_error"));
            if (givenUp) Assert.Contains(kind == "environment" ? "step failed here" : "did not answer", grade.MaskReason);
            if (kind == "environment") Assert.Equal(0, source.ClusterRetries);
            else if (!givenUp) Assert.Equal(failures, source.ClusterRetries);
            // Retried until the patience ran out (20, 40, 80, ... ms apart: 6 in a second), then given up at once.
            else Assert.InRange(source.ClusterRetries, 3, 8);
            if (kind == "environment") Assert.Equal(source.MaxAttempts, failing.Failed);
        }, silo => silo.AddIncomingGrainCallFilter(failing));
    }

    [Fact]
    public async Task EachOutageOfTheClusterGetsTheWholePatience()
    {
        // Two outages of six failures each (waits of 20 to 640 ms: about 1.3 s apiece), the first at the step and the
        // second at the grade, with a call that got through between them. Each fits the 2 s patience; the two together
        // do not, so a patience that ran on from the first outage would give the episode up.
        var outages = new TwoOutages(6);
        await WithSilo(21215, 31104, async grains =>
        {
            var set = new TaskSetSpec("math", new Dictionary<string, string> { ["difficulty"] = "1" }, "train", 3, 1);
            var source = await GrainEpisodeSource.CreateAsync(grains, "outages", [set]);
            source.ReplayBackoff = TimeSpan.FromMilliseconds(20);
            source.ClusterPatience = TimeSpan.FromSeconds(2);
            var episode = await source.OpenAsync(source.Tasks[0], 0, 7, default);
            Assert.True((await episode.StepAsync(AssistantTurn.Parse("The answer is 42.<|end|>", true), true, default)).Done);
            var grade = await episode.GradeAsync(false, default);
            Assert.DoesNotContain("environment_error", grade.Components.Keys);
            Assert.Equal(12, source.ClusterRetries);
        }, silo => silo.AddIncomingGrainCallFilter(outages));
    }

    /// <summary>Fails the first <paramref name="count"/> Step calls and then the first <paramref name="count"/> Grade calls
    /// to episode grains as a silo declared dead does.</summary>
    private sealed class TwoOutages(int count) : IIncomingGrainCallFilter
    {
        private int _steps, _grades;

        public Task Invoke(IIncomingGrainCallContext context)
        {
            bool fail = context.Grain is EpisodeGrain && context.MethodName switch
            {
                nameof(IEpisodeGrain.Step) => Interlocked.Increment(ref _steps) <= count,
                nameof(IEpisodeGrain.Grade) => Interlocked.Increment(ref _grades) <= count,
                _ => false,
            };
            return fail ? throw new SiloUnavailableException("the silo was declared dead") : context.Invoke();
        }
    }

    /// <summary>Fails the first Step calls to episode grains with a cluster's failure or an environment's.</summary>
    private sealed class FailingSteps(string kind, int count) : IIncomingGrainCallFilter
    {
        private int _failed;
        public int Failed => Volatile.Read(ref _failed);

        public Task Invoke(IIncomingGrainCallContext context)
        {
            if (context.Grain is not EpisodeGrain || context.MethodName != nameof(IEpisodeGrain.Step) || Interlocked.Increment(ref _failed) > count)
                return context.Invoke();
            throw kind switch
            {
                "timeout" => new TimeoutException("the silo did not answer in time"),
                "silo-unavailable" => new SiloUnavailableException("the silo did not answer: it was declared dead"),
                _ => new InvalidOperationException("step failed here"),
            };
        }
    }

    /// <summary>A silo over the repository's plugins with its own state file, for one test.</summary>
    private static async Task WithSilo(int siloPort, int gatewayPort, Func<IGrainFactory, Task> test, Action<ISiloBuilder>? configure = null)
    {
        var state = Path.Combine(Path.GetTempPath(), $"gym-replay-{Guid.NewGuid():N}.db");
        var silo = await GymSilo.StartAsync(new GymSiloOptions { SiloPort = siloPort, GatewayPort = gatewayPort, PluginFolders = [Nemotron.Gym.TestSupport.RepoPaths.Plugins], StateStorage = "sqlite:" + state }, configure: configure);
        try { await test((IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!); }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
            File.Delete(state);
        }
    }
}
