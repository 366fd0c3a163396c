using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;
using Nemotron.Gym.TestSupport;
using Nemotron.Gym.Training.Grpo;
using Orleans.Runtime;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>Group grading through the grains when the members' episodes were lost and replayed.</summary>
public sealed class GroupReplayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Prefers the answer that names the Moon.</summary>
    private static ScriptedJudgeReply PrefersTheMoon(ScriptedJudgeCall c) =>
        ScriptedJudgeReply.Verdict(c.Reply1!.Contains("Moon") ? 5 : 2, c.Reply2!.Contains("Moon") ? 5 : 2, c.Reply1.Contains("Moon") ? 1 : 6);

    private static readonly string[] Answers = ["The Moon's pull raises the sea twice a day.", "Tides are caused by wind."];

    /// <summary>An in-process silo whose judge pool talks to <paramref name="judge"/>, and an rlhf episode source on it.</summary>
    private static async Task WithRlhfSilo(ScriptedJudgeServer judge, string scope, Func<IGrainFactory, GrainEpisodeSource, Task> body, Action<ISiloBuilder>? configure = null)
    {
        var state = Path.Combine(Path.GetTempPath(), $"gym-{scope}-{Guid.NewGuid():N}.db");
        var silo = await GymSilo.StartAsync(new GymSiloOptions
        {
            SiloPort = Ports.Free(), GatewayPort = Ports.Free(), PluginFolders = [RepoPaths.Plugins], StateStorage = "sqlite:" + state,
            Judge = GroupJudgingTests.Settings(judge.BaseUrl),
        }, Ct, configure);
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            var set = new TaskSetSpec("rlhf", new Dictionary<string, string> { ["swap"] = "true", ["length_penalty_answer"] = "0" }, "train", 3, 1);
            await body(grains, await GrainEpisodeSource.CreateAsync(grains, scope, [set]));
        }
        finally
        {
            await silo.StopAsync(CancellationToken.None);
            silo.Dispose();
            File.Delete(state);
        }
    }

    [Fact]
    public async Task AGroupWhoseEpisodesWereReplayedIsGradedFromTheWholeConversationsAndNotJudgedTwice()
    {
        await using var judge = await ScriptedJudgeServer.StartAsync(PrefersTheMoon);
        await WithRlhfSilo(judge, "group-replay", async (grains, source) =>
        {
            var task = source.Tasks[0];
            var members = new List<GroupMember>();
            var episodes = new List<Training.Grpo.IEpisode>();
            for (int i = 0; i < 2; i++)
            {
                var episode = await source.OpenAsync(task, i, 100 + i, Ct);
                var turn = AssistantTurn.Parse(Answers[i] + "<|end|>", true);
                Assert.True((await episode.StepAsync(turn, true, Ct)).Done);
                episodes.Add(episode);
                members.Add(new GroupMember(i, [.. episode.Opening.Messages, turn.ToMessage()], Grade.Of(0, "placeholder"), false));
            }

            // Every episode grain goes, as when its silo dies; grading replays both on new grains.
            await grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
            for (int i = 0; i < 2; i++)
            {
                var own = await episodes[i].GradeAsync(false, Ct);
                Assert.Equal(1, own.Components["provisional"]);
                members[i] = members[i] with { Grade = own };
            }
            Assert.Equal(2, source.Replays);

            var grades = await source.GradeGroupAsync(task, members, Ct);
            Assert.Equal([1.0, 0.25], grades.Select(g => g.Reward));
            Assert.Equal(2, judge.Requests); // one pair, both orders

            // The group graded again (a step redone): the verdicts come from the silo's cache.
            var again = await source.GradeGroupAsync(task, members, Ct);
            Assert.Equal(grades.Select(g => g.Reward), again.Select(g => g.Reward));
            Assert.Equal(2, judge.Requests);

            // An environment that grades episodes alone keeps their grades and costs no call.
            var math = await GrainEpisodeSource.CreateAsync(grains, "group-replay-math", [new TaskSetSpec("math", new Dictionary<string, string> { ["difficulty"] = "1" }, "train", 2, 1)]);
            var kept = Grade.Of(1, "right");
            Assert.Same(kept, (await math.GradeGroupAsync(math.Tasks[0], [members[0] with { Grade = kept }], Ct))[0]);
        });
    }

    [Fact]
    public async Task AGroupCallTheClusterFailsMoreTimesThanThereAreAttemptsIsStillJudged()
    {
        // Five group calls in a row fail as a silo declared dead fails them (three attempts are the environment's):
        // they are retried for a time, without using up an attempt, and the group is judged.
        var failing = new FailingGroupCalls(5);
        await using var judge = await ScriptedJudgeServer.StartAsync(PrefersTheMoon);
        await WithRlhfSilo(judge, "group-cluster", async (_, source) =>
        {
            source.ReplayBackoff = TimeSpan.FromMilliseconds(20);
            await AssertTheGroupIsJudged(source);
            Assert.Equal((5, 5L), (failing.Failed, source.ClusterRetries));
        }, silo => silo.AddIncomingGrainCallFilter(failing));
    }

    /// <summary>Both answers as finished, graded episodes of the first task, then the group graded: judged, the Moon first.</summary>
    private static async Task AssertTheGroupIsJudged(GrainEpisodeSource source)
    {
        var task = source.Tasks[0];
        var members = new List<GroupMember>();
        for (int i = 0; i < 2; i++)
        {
            var episode = await source.OpenAsync(task, i, 100 + i, Ct);
            var turn = AssistantTurn.Parse(Answers[i] + "<|end|>", true);
            Assert.True((await episode.StepAsync(turn, true, Ct)).Done);
            members.Add(new GroupMember(i, [.. episode.Opening.Messages, turn.ToMessage()], await episode.GradeAsync(false, Ct), false));
        }
        var grades = await source.GradeGroupAsync(task, members, Ct);
        Assert.All(grades, g => Assert.False(g.Masked, g.Reason));
        Assert.Equal([1.0, 0.25], grades.Select(g => g.Reward));
    }

    /// <summary>Fails the first group-grading calls with the error a caller gets from a silo declared dead.</summary>
    private sealed class FailingGroupCalls(int count) : IIncomingGrainCallFilter
    {
        private int _calls;
        public int Failed => Math.Min(Volatile.Read(ref _calls), count);

        public Task Invoke(IIncomingGrainCallContext context)
        {
            if (context.MethodName != nameof(IEnvironmentGrain.GradeGroup) || Interlocked.Increment(ref _calls) > count) return context.Invoke();
            throw new SiloUnavailableException("the silo holding the call was declared dead");
        }
    }

    [Fact]
    public async Task AGroupThatGotNoVerdictIsGradedAgainAndJudgedOnceTheJudgeAnswers()
    {
        // The judge fails every request of the first grading (the pool's own retries included), then answers.
        int calls = 0;
        await using var judge = await ScriptedJudgeServer.StartAsync(c => Interlocked.Increment(ref calls) <= 6 ? new ScriptedJudgeReply(503, "overloaded") : PrefersTheMoon(c));
        await WithRlhfSilo(judge, "group-retry", async (_, source) =>
        {
            await AssertTheGroupIsJudged(source);
            Assert.True(source.GroupRetries >= 1, "the first grading got no verdict and must have been retried");
            Assert.True(source.GroupRetries < source.MaxAttempts);
        });
    }
}
