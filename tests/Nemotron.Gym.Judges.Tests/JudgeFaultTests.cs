using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Rewards.Judging;
using Nemotron.Gym.TestSupport;
using static Nemotron.Gym.Judges.Tests.GroupJudgingTests;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>A judge endpoint that fails (500s, garbage, hangs, gone): retries, then fallback or mask with the reason; never a 0.</summary>
public class JudgeFaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly GroupMember[] Pair = [Member(0, "alpha"), Member(1, "bravo")];

    [Fact]
    public async Task ServerErrorsAreRetriedWithBackoffAndThenTheVerdictCounts()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(c => c.Number <= 2 ? new ScriptedJudgeReply(503, "overloaded") : ScriptedJudgeReply.Verdict(4, 2, 2));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var grades = await GroupJudging.GradeAsync(pool, true, Pair, null, new GroupJudgingSettings(Swap: false), Ct);
        Assert.Equal([0.75, 0.25], grades.Select(g => g.Reward));
        Assert.Equal(3, server.Requests);
        Assert.Equal(2, pool.Stats.Retries);
        Assert.Equal(0, pool.Stats.Failures);
    }

    [Fact]
    public async Task AnEndpointThatKeepsFailingMasksWithTheReasonAndOpensTheCircuit()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => new ScriptedJudgeReply(500, "boom"));
        var settings = Settings(server.BaseUrl);
        settings.BreakerFailures = 3;
        var pool = new JudgePool(settings);
        var grades = await GroupJudging.GradeAsync(pool, true, Pair, null, new GroupJudgingSettings(Swap: false), Ct);
        Assert.All(grades, g =>
        {
            Assert.Equal(0, g.Reward);
            Assert.Contains("HTTP 500", g.MaskReason);
            Assert.Equal(1, g.Components["judge_failures"]);
        });
        Assert.Equal(3, server.Requests); // the first try and two retries, then the breaker (threshold 3) is open
        Assert.Equal(CircuitState.Open, pool.Circuit);

        // While open, calls are refused at once without reaching the endpoint.
        var again = await GroupJudging.GradeAsync(pool, true, [Member(0, "charlie"), Member(1, "delta")], null, new GroupJudgingSettings(Swap: false), Ct);
        Assert.All(again, g => Assert.Contains("CircuitOpen", g.MaskReason));
        Assert.Equal(3, server.Requests);
        Assert.Equal(1, pool.Stats.BreakerOpenings);
    }

    [Fact]
    public async Task TheCircuitClosesAgainWhenAProbeAfterTheCooldownSucceeds()
    {
        bool healthy = false;
        await using var server = await ScriptedJudgeServer.StartAsync(_ => Volatile.Read(ref healthy) ? ScriptedJudgeReply.Verdict(4, 2, 2) : new ScriptedJudgeReply(502, "bad gateway"));
        var settings = Settings(server.BaseUrl);
        settings.MaxRetries = 0;
        settings.BreakerFailures = 2;
        settings.BreakerCooldownSeconds = 0.3;
        var pool = new JudgePool(settings);
        var ask = new JudgeRequest([Message.User("x")]);
        Assert.Equal(JudgeOutcome.Unavailable, (await pool.CompleteAsync(ask, Ct)).Outcome);
        Assert.Equal(JudgeOutcome.Unavailable, (await pool.CompleteAsync(ask, Ct)).Outcome);
        Assert.Equal(JudgeOutcome.CircuitOpen, (await pool.CompleteAsync(ask, Ct)).Outcome);
        Volatile.Write(ref healthy, true);
        await Task.Delay(400, Ct);
        Assert.True((await pool.CompleteAsync(ask, Ct)).IsOk);
        Assert.Equal(CircuitState.Closed, pool.Circuit);
    }

    [Fact]
    public async Task GarbageIsAskedAgainAsANewSampleThenMasked()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => ScriptedJudgeReply.Say("Reply 1 is nicer. Score: five!"));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var grades = await GroupJudging.GradeAsync(pool, true, Pair, null, new GroupJudgingSettings(Swap: false, ParseRetries: 2), Ct);
        Assert.All(grades, g =>
        {
            Assert.Contains("unreadable verdict after 3 answer(s): no JSON object", g.MaskReason);
            Assert.Equal(1, g.Components["judge_parse_failures"]);
        });
        // Three asks, each a new sample: the seed moves with the attempt.
        Assert.Equal(3, server.Requests);
        Assert.Equal(3, server.Calls.Select(c => c.Seed).Distinct().Count());
    }

    [Fact]
    public async Task GarbageWithTheNeutralFallbackCountsAsEven()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => ScriptedJudgeReply.Say("{\"score_1\": \"great\"}"));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var grades = await GroupJudging.GradeAsync(pool, true, Pair, null,
            new GroupJudgingSettings(Swap: false, ParseRetries: 0, OnFailure: JudgeFailurePolicy.Neutral), Ct);
        Assert.Equal([0.5, 0.5], grades.Select(g => g.Reward));
        Assert.All(grades, g => Assert.Null(g.MaskReason));
        Assert.Contains("counted as 3 each", grades[0].Evidence["judge_vs_1_shown_first"]);
    }

    [Fact]
    public async Task AHangingJudgeTimesOutIsRetriedAndMasksWithTheReason()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => new ScriptedJudgeReply(200, "{}", TimeSpan.FromSeconds(20)));
        var settings = Settings(server.BaseUrl);
        settings.TimeoutSeconds = 0.3;
        settings.MaxRetries = 1;
        var pool = new JudgePool(settings);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var grades = await GroupJudging.GradeAsync(pool, true, Pair, null, new GroupJudgingSettings(Swap: false), Ct);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.All(grades, g => Assert.Contains("judge Timeout: no answer within 0.3 s", g.MaskReason));
        Assert.Equal(2, server.Requests);
    }

    [Fact]
    public async Task AnEndpointThatIsNotThereMasksWithTheReason()
    {
        var settings = Settings($"http://127.0.0.1:{Ports.Free()}/v1");
        settings.MaxRetries = 1;
        var pool = new JudgePool(settings);
        var grades = await GroupJudging.GradeAsync(pool, true, Pair, null, new GroupJudgingSettings(Swap: false), Ct);
        Assert.All(grades, g => Assert.Contains("judge Unavailable: cannot reach", g.MaskReason));
    }

    [Fact]
    public async Task ARefusalIsNotRetried()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => new ScriptedJudgeReply(401, "bad key"));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var answer = await pool.CompleteAsync(new JudgeRequest([Message.User("x")]), Ct);
        Assert.Equal(JudgeOutcome.Refused, answer.Outcome);
        Assert.Contains("HTTP 401", answer.Error);
        Assert.Equal(1, server.Requests);
        Assert.Equal(CircuitState.Closed, pool.Circuit);
    }

    [Fact]
    public async Task ARequestNoEndpointCouldTakeIsRefusedWithoutARequest()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => ScriptedJudgeReply.Verdict(3, 3, 3));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var tool = await pool.CompleteAsync(new JudgeRequest([Message.User("x"), Message.ToolResult("c1", "calc", "42")]), Ct);
        Assert.Equal(JudgeOutcome.Refused, tool.Outcome);
        Assert.Contains("not Tool", tool.Error);
        Assert.Equal(JudgeOutcome.Refused, (await pool.CompleteAsync(new JudgeRequest([]), Ct)).Outcome);
        Assert.Equal(0, server.Requests);
    }

    [Fact]
    public async Task AReplayedGroupIsNotJudgedTwice()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(c => ScriptedJudgeReply.Verdict(c.Reply1 == "alpha" ? 5 : 2, c.Reply2 == "alpha" ? 5 : 2, c.Reply1 == "alpha" ? 1 : 6));
        var pool = new JudgePool(Settings(server.BaseUrl));
        var first = await GroupJudging.GradeAsync(pool, true, Pair, "Be kind.", new GroupJudgingSettings(Swap: true), Ct);
        Assert.Equal(2, server.Requests);
        // The same group again (an episode replayed on another grain, a group re-graded): every verdict from the cache.
        var second = await GroupJudging.GradeAsync(pool, true, Pair, "Be kind.", new GroupJudgingSettings(Swap: true), Ct);
        Assert.Equal(2, server.Requests);
        Assert.Equal(first.Select(g => g.Reward), second.Select(g => g.Reward));
        Assert.Equal(2, pool.Stats.CacheHits);
        // A different principle is a different question.
        await GroupJudging.GradeAsync(pool, true, Pair, "Be brief.", new GroupJudgingSettings(Swap: true), Ct);
        Assert.Equal(4, server.Requests);
    }

    [Fact]
    public async Task TheConcurrencyLimitBoundsRequestsInFlight()
    {
        int inFlight = 0, most = 0;
        await using var server = await ScriptedJudgeServer.StartAsync(_ =>
        {
            int now = Interlocked.Increment(ref inFlight);
            lock (Pair) most = Math.Max(most, now);
            Thread.Sleep(50);
            Interlocked.Decrement(ref inFlight);
            return ScriptedJudgeReply.Verdict(3, 3, 3);
        });
        var settings = Settings(server.BaseUrl);
        settings.MaxConcurrency = 3;
        var pool = new JudgePool(settings);
        await Task.WhenAll(Enumerable.Range(0, 12).Select(i => pool.CompleteAsync(new JudgeRequest([Message.User($"q{i}")]), Ct).AsTask()));
        Assert.Equal(12, server.Requests);
        Assert.InRange(most, 1, 3);
    }
}
