using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Rewards.Judging;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>
/// Aggregation of judge verdicts into per-response grades, with hand-computed expectations, against a real HTTP judge
/// (the scripted server) through the real OpenAI client and judge pool.
/// </summary>
public class GroupJudgingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static JudgeSettings Settings(string baseUrl) => new()
    {
        BaseUrl = baseUrl, Model = "scripted", TimeoutSeconds = 5, MaxRetries = 2, BackoffSeconds = 0.01, BreakerFailures = 50, BreakerCooldownSeconds = 60,
    };

    internal static GroupMember Member(int index, string answer, string reasoning = "", bool truncated = false, Grade? grade = null) =>
        new(index, [Message.User("Explain tides."), Message.Assistant(answer, reasoning.Length > 0 ? reasoning : null)],
            grade ?? new Grade(0, new Dictionary<string, double> { ["provisional"] = 1 }, "provisional", new Dictionary<string, string>()), truncated);

    private static readonly Dictionary<string, double> Quality = new() { ["alpha"] = 5, ["bravo"] = 3, ["charlie"] = 1, ["delta"] = 2 };

    /// <summary>A judge that scores each reply by a fixed quality of its text and ranks accordingly.</summary>
    private static ScriptedJudgeReply ByQuality(ScriptedJudgeCall c)
    {
        double a = Quality[c.Reply1!], b = Quality[c.Reply2!];
        return ScriptedJudgeReply.Verdict(a, b, a > b ? 2 : a < b ? 5 : 3);
    }

    [Fact]
    public async Task CircularPairingAveragesEachResponsesScoresAndMapsThemToZeroOne()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(ByQuality);
        var pool = new JudgePool(Settings(server.BaseUrl));
        var members = new[] { Member(0, "alpha"), Member(1, "bravo"), Member(2, "charlie") };
        var grades = await GroupJudging.GradeAsync(pool, true, members, null, new GroupJudgingSettings(Pairing.Circular, Swap: false), Ct);

        // Pairs (0,1), (1,2), (2,0): each response is scored by its own quality twice; reward = (score - 1)/4.
        Assert.Equal(3, server.Requests);
        Assert.Equal([1.0, 0.5, 0.0], grades.Select(g => g.Reward));
        Assert.All(grades, g => Assert.Null(g.MaskReason));
        Assert.Equal(2, grades[0].Components["judge_comparisons"]);
        Assert.Contains("judge_vs_1_shown_first", grades[0].Evidence.Keys);
        Assert.Contains("score_1 5, score_2 3, ranking 2", grades[0].Evidence["judge_vs_1_shown_first"]);
        Assert.Contains("weighing them", grades[0].Evidence["judge_vs_1_shown_first"]); // the judge's reasoning is kept
    }

    [Fact]
    public async Task AllPairsSplitsTiesByTheRanking()
    {
        // Fixed verdicts per (first, second) pair, with two ties that the ranking breaks.
        var verdicts = new Dictionary<(string, string), ScriptedJudgeReply>
        {
            [("alpha", "bravo")] = ScriptedJudgeReply.Verdict(4, 4, 2),   // tie, reply 1 preferred: 4.5 / 3.5
            [("alpha", "charlie")] = ScriptedJudgeReply.Verdict(5, 2, 1), // 5 / 2
            [("bravo", "charlie")] = ScriptedJudgeReply.Verdict(3, 3, 5), // tie, reply 2 preferred: 2.5 / 3.5
        };
        await using var server = await ScriptedJudgeServer.StartAsync(c => verdicts[(c.Reply1!, c.Reply2!)]);
        var pool = new JudgePool(Settings(server.BaseUrl));
        var grades = await GroupJudging.GradeAsync(pool, true, [Member(0, "alpha"), Member(1, "bravo"), Member(2, "charlie")], null,
            new GroupJudgingSettings(Pairing.AllPairs, Swap: false), Ct);

        // alpha (4.5 + 5)/2 = 4.75 → 0.9375; bravo (3.5 + 2.5)/2 = 3 → 0.5; charlie (2 + 3.5)/2 = 2.75 → 0.4375.
        Assert.Equal([4.75, 3.0, 2.75], grades.Select(g => g.Components["judge_score"]));
        Assert.Equal([0.9375, 0.5, 0.4375], grades.Select(g => g.Reward));
    }

    [Fact]
    public async Task APositionBiasedJudgeGivesEqualRewardsWithSwapAndReportsTheDisagreement()
    {
        // Always prefers whatever is shown first.
        await using var server = await ScriptedJudgeServer.StartAsync(_ => ScriptedJudgeReply.Verdict(5, 1, 1));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var members = new[] { Member(0, "alpha"), Member(1, "bravo") };

        var unswapped = await GroupJudging.GradeAsync(pool, true, members, null, new GroupJudgingSettings(Swap: false), Ct);
        Assert.Equal([1.0, 0.0], unswapped.Select(g => g.Reward));

        var swapped = await GroupJudging.GradeAsync(pool, true, members, null, new GroupJudgingSettings(Swap: true), Ct);
        Assert.Equal([0.5, 0.5], swapped.Select(g => g.Reward));
        Assert.All(swapped, g => Assert.Equal(1.0, g.Components["position_disagreement_rate"]));
        Assert.Equal("1 of 1 pairs judged in both orders", swapped[0].Evidence["position_disagreement"]);
    }

    [Fact]
    public async Task AConsistentJudgeAgreesWithItselfAcrossOrders()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(ByQuality);
        var pool = new JudgePool(Settings(server.BaseUrl));
        var grades = await GroupJudging.GradeAsync(pool, true, [Member(0, "alpha"), Member(1, "delta"), Member(2, "bravo"), Member(3, "charlie")], null,
            new GroupJudgingSettings(Pairing.Circular, Swap: true), Ct);
        Assert.Equal(8, server.Requests);
        Assert.All(grades, g => Assert.Equal(0.0, g.Components["position_disagreement_rate"]));
        Assert.Equal([1.0, 0.25, 0.5, 0.0], grades.Select(g => g.Reward));
    }

    [Fact]
    public async Task LengthControlMovesRewardFromLongToShortResponsesWithoutChangingTheMean()
    {
        // Pointwise, every reply rated helpfulness 2 → 0.5 each; then λ·(ℓ/ℓ̄ − 1) per part.
        await using var server = await ScriptedJudgeServer.StartAsync(_ => ScriptedJudgeReply.Say(
            """{"helpfulness": 2, "correctness": 2, "coherence": 2, "complexity": 2, "verbosity": 2}"""));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var members = new[]
        {
            Member(0, new string('a', 10), reasoning: new string('r', 40)),
            Member(1, new string('b', 20), reasoning: new string('r', 40)),
            Member(2, new string('c', 30), reasoning: new string('r', 10)),
        };
        var grades = await GroupJudging.GradeAsync(pool, false, members, null,
            new GroupJudgingSettings(AnswerLengthPenalty: 0.1, ReasoningLengthPenalty: 0.2), Ct);

        // Answers 10, 20, 30 (mean 20): penalties −0.05, 0, +0.05. Reasoning 40, 40, 10 (mean 30): 0.2·(4/3 − 1) = +1/15 twice, 0.2·(1/3 − 1) = −2/15.
        double[] want = [0.5 + 0.05 - 1.0 / 15, 0.5 - 1.0 / 15, 0.5 - 0.05 + 2.0 / 15];
        for (int i = 0; i < 3; i++) Assert.Equal(want[i], grades[i].Reward, 12);
        Assert.Equal(1.5, grades.Sum(g => g.Reward), 12);
        Assert.Equal(-0.05, grades[0].Components["length_penalty_answer"], 12);
    }

    [Fact]
    public async Task MaskedAndFailedMembersKeepTheirOwnGradesAndAreNotShownToTheJudgeWhileCutOffOnesAreJudged()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(ByQuality);
        var pool = new JudgePool(Settings(server.BaseUrl));
        var truncated = Member(2, "charlie", truncated: true, grade: Grade.Of(0, "cut off"));
        var masked = Member(3, "delta", grade: Grade.NotJudged("environment went away"));
        var failed = Member(4, "delta", grade: new Grade(0, new Dictionary<string, double> { ["environment_error"] = 1 }, "boom", new Dictionary<string, string>()));
        var grades = await GroupJudging.GradeAsync(pool, true, [Member(0, "alpha"), Member(1, "bravo"), truncated, masked, failed], null, new GroupJudgingSettings(Swap: false), Ct);
        // alpha, bravo and the cut-off charlie in a circle: three comparisons.
        Assert.Equal(3, server.Requests);
        Assert.Equal([1.0, 0.5, 0.0], grades.Take(3).Select(g => g.Reward));
        Assert.Same(masked.Grade, grades[3]);
        Assert.Same(failed.Grade, grades[4]);
        Assert.DoesNotContain(server.Calls, c => c.Reply1 == "delta" || c.Reply2 == "delta");
    }

    [Fact]
    public async Task WithoutAJudgeEveryJudgedResponseIsMaskedWithTheReason()
    {
        var grades = await GroupJudging.GradeAsync(null, true, [Member(0, "alpha"), Member(1, "bravo")], null, new GroupJudgingSettings(), Ct);
        Assert.All(grades, g => Assert.Contains("no judge is configured", g.MaskReason));
    }

    [Fact]
    public async Task ThePrincipleReachesTheJudge()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(ByQuality);
        var pool = new JudgePool(Settings(server.BaseUrl));
        await GroupJudging.GradeAsync(pool, true, [Member(0, "alpha"), Member(1, "bravo")], "Prefer brevity.", new GroupJudgingSettings(Swap: false), Ct);
        Assert.Contains("## Principle to judge by\n\nPrefer brevity.", server.Calls.Single().User);
        Assert.Contains("[user]\nExplain tides.", server.Calls.Single().User);
    }
}
