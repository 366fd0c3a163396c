using Nemotron.Gym.Conversation;
using static Nemotron.Gym.TestSupport.TestRollouts;

namespace Nemotron.Gym.Store.Tests;

/// <summary>What every backend of <see cref="IRolloutStore"/> must do; a subclass per backend supplies fresh stores.</summary>
public abstract class RolloutStoreContract
{
    /// <summary>Connection text for a new, empty store (each call a different one).</summary>
    protected abstract Task<string> NewStoreAsync();

    private async Task<(IRolloutStore Store, string Connection)> OpenNewAsync()
    {
        string connection = await NewStoreAsync();
        return (await RolloutStores.OpenAsync(connection, TestContext.Current.CancellationToken), connection);
    }

    [Fact]
    public async Task RolloutsRoundTripEveryFieldBitExact()
    {
        var (s, _) = await OpenNewAsync();
        await using var _s = s;
        var r = Make("run1", 1, "math/t1", 0) with
        {
            SamplerLogProbs = [float.NegativeInfinity, -0f, -0.123456789f, float.MaxValue, float.Epsilon],
            Reward = 1.0 / 3, ShapedReward = double.NegativeInfinity, Messages = [Message.User(""), Message.Assistant("")],
            Components = new Dictionary<string, double>(), Evidence = new Dictionary<string, string>(), Reason = "",
        };
        Assert.Equal(1, await s.AddRolloutsAsync([r]));
        AssertSame(r, Assert.Single(await s.ReadRolloutsAsync(new RolloutQuery("run1")).ToListAsync()));
    }

    [Fact]
    public async Task ANaNRewardIsRefusedNamingTheRolloutAndNothingOfTheBatchIsStored()
    {
        var (s, _) = await OpenNewAsync();
        await using var _s = s;
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => s.AddRolloutsAsync([Make("run1", 1, "a", 0), Make("run1", 1, "b", 0) with { Reward = double.NaN }]));
        Assert.Contains("rollout run1/1/b/0: reward is NaN", e.Message);
        e = await Assert.ThrowsAsync<InvalidDataException>(() => s.AddRolloutsAsync([Make("run1", 1, "c", 0) with { ShapedReward = double.NaN }]));
        Assert.Contains("shaped_reward is NaN", e.Message);
        Assert.Equal(0, await s.CountRolloutsAsync("run1"));
    }

    [Fact]
    public async Task AddingTheSameKeysAgainAddsNothing()
    {
        var (s, _) = await OpenNewAsync();
        await using var _s = s;
        var first = Make("run1", 1, "math/t1", 0);
        Assert.Equal(0, await s.AddRolloutsAsync([]));
        Assert.Equal(1, await s.AddRolloutsAsync([first]));
        // A same-key rollout with other content is still skipped: the first one stays.
        Assert.Equal(0, await s.AddRolloutsAsync([first with { Reward = 0, Reason = "other" }]));
        Assert.Equal(1, await s.CountRolloutsAsync("run1"));
        Assert.Equal(2, await s.AddRolloutsAsync([first, Make("run1", 1, "math/t1", 1), Make("run1", 1, "math/t1", 2), Make("run1", 1, "math/t1", 2)]));
        Assert.Equal(3, await s.CountRolloutsAsync("run1"));
        Assert.Equal("matched 4", (await s.ReadRolloutsAsync(new RolloutQuery("run1")).FirstAsync()).Reason);
        Assert.Equal(0, await s.CountRolloutsAsync("another run"));
    }

    [Fact]
    public async Task QueriesFilterByStepEnvironmentAndLimitInKeyOrder()
    {
        var (s, _) = await OpenNewAsync();
        await using var _s = s;
        // Added out of order; task ids whose ordinal order differs from a case-insensitive one.
        var all = Enumerable.Range(1, 5).Reverse().SelectMany(step => new[]
        {
            Make("r", step, "math/b", 1), Make("r", step, "math/b", 0), Make("r", step, "code/a", 0), Make("r", step, "Math/Z", 0, environment: "math"),
        }).ToList();
        await s.AddRolloutsAsync(all);
        await s.AddRolloutsAsync([Make("other", 3, "math/b", 0)]);

        var ordered = await s.ReadRolloutsAsync(new RolloutQuery("r")).Select(r => (r.Step, r.TaskId, r.SampleIndex)).ToListAsync();
        Assert.Equal(all.Select(r => (r.Step, r.TaskId, r.SampleIndex)).Order(), ordered.Order()); // the same set...
        Assert.Equal((1, "Math/Z", 0), ordered[0]); // ...in step, ordinal task id, sample order
        Assert.Equal([(1, "Math/Z", 0), (1, "code/a", 0), (1, "math/b", 0), (1, "math/b", 1)], ordered.Take(4));

        var math = await s.ReadRolloutsAsync(new RolloutQuery("r", FromStep: 2, ToStep: 4, Environment: "math")).ToListAsync();
        Assert.Equal(9, math.Count);
        Assert.All(math, r => Assert.True(r.Environment == "math" && r.Step is >= 2 and <= 4));
        Assert.Equal(2, await s.ReadRolloutsAsync(new RolloutQuery("r", Limit: 2)).CountAsync());
        Assert.Equal(4, await s.ReadRolloutsAsync(new RolloutQuery("r", FromStep: 5)).CountAsync());
        Assert.Empty(await s.ReadRolloutsAsync(new RolloutQuery("r", Environment: "swe")).ToListAsync());
        Assert.Equal(20, await s.CountRolloutsAsync("r"));
    }

    [Fact]
    public async Task StepMetricsAreUpsertedAndReadInStepOrder()
    {
        var (s, _) = await OpenNewAsync();
        await using var _s = s;
        foreach (int step in new[] { 3, 1, 2 }) await s.PutStepMetricsAsync("r", step, $$"""{"step":{{step}}}""");
        await s.PutStepMetricsAsync("r", 2, """{"step":2,"again":true}""");
        await s.PutStepMetricsAsync("other", 1, "{}");
        Assert.Equal([(1, """{"step":1}"""), (2, """{"step":2,"again":true}"""), (3, """{"step":3}""")], await s.ReadStepMetricsAsync("r").ToListAsync());
        Assert.Empty(await s.ReadStepMetricsAsync("nobody").ToListAsync());
    }

    [Fact]
    public async Task RunsAreUpsertedKeepingTheirCreationTime()
    {
        var (s, _) = await OpenNewAsync();
        await using var _s = s;
        var t = new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.Zero);
        await s.PutRunAsync(new RunRecord("b", "running", 1, 10, "a: 1", t, t));
        await s.PutRunAsync(new RunRecord("a", "running", 0, 5, "b: 2", t.AddHours(1), t.AddHours(1)));
        await s.PutRunAsync(new RunRecord("b", "paused", 4, 10, "a: 1\nc: 3", t.AddDays(9), t.AddMinutes(7)));
        var runs = await s.ListRunsAsync();
        Assert.Equal(["b", "a"], runs.Select(r => r.RunId)); // oldest first
        Assert.Equal(new RunRecord("b", "paused", 4, 10, "a: 1\nc: 3", t, t.AddMinutes(7)), runs[0]);
    }

    [Fact]
    public async Task DeletingAfterAStepDropsLaterRolloutsAndMetricsOfThatRunOnly()
    {
        var (s, _) = await OpenNewAsync();
        await using var _s = s;
        for (int step = 1; step <= 5; step++)
        {
            await s.AddRolloutsAsync([Make("r", step, "math/a", 0), Make("r", step, "code/b", 0), Make("keep", step, "math/a", 0)]);
            await s.PutStepMetricsAsync("r", step, "{}");
            await s.PutStepMetricsAsync("keep", step, "{}");
        }
        await s.DeleteRolloutsAfterAsync("r", 3);
        Assert.Equal(6, await s.CountRolloutsAsync("r"));
        Assert.Equal(3, await s.ReadRolloutsAsync(new RolloutQuery("r")).Select(r => r.Step).MaxAsync());
        Assert.Equal([1, 2, 3], await s.ReadStepMetricsAsync("r").Select(m => m.Step).ToListAsync());
        Assert.Equal(5, await s.CountRolloutsAsync("keep"));
        Assert.Equal(5, await s.ReadStepMetricsAsync("keep").CountAsync());
        // The resumed run redoes step 4: its rollouts are new again.
        Assert.Equal(2, await s.AddRolloutsAsync([Make("r", 4, "math/a", 0), Make("r", 4, "code/b", 0)]));
    }

    [Fact]
    public async Task EverythingSurvivesReopening()
    {
        var (s, connection) = await OpenNewAsync();
        var r = Make("r", 2, "math/a", 1);
        var t = DateTimeOffset.UtcNow;
        await using (s)
        {
            await s.AddRolloutsAsync([r]);
            await s.PutStepMetricsAsync("r", 2, """{"loss":0.5}""");
            await s.PutRunAsync(new RunRecord("r", "running", 2, 10, "x: 1", t, t));
        }
        await using var again = await RolloutStores.OpenAsync(connection);
        AssertSame(r, Assert.Single(await again.ReadRolloutsAsync(new RolloutQuery("r")).ToListAsync()));
        Assert.Equal([(2, """{"loss":0.5}""")], await again.ReadStepMetricsAsync("r").ToListAsync());
        Assert.Equal("running", Assert.Single(await again.ListRunsAsync()).Status);
        Assert.Equal(0, await again.AddRolloutsAsync([r]));
    }

    [Fact]
    public async Task TwoStoresWritingOneDatabaseAtOnceLoseNothing()
    {
        var (a, connection) = await OpenNewAsync();
        await using var _a = a;
        await using var b = await RolloutStores.OpenAsync(connection);
        const int Steps = 30;
        // Overlapping batches: both write (step, math/a, 1); each writer also has keys of its own.
        var added = await Task.WhenAll(
            Task.Run(async () => { int n = 0; for (int i = 0; i < Steps; i++) n += await a.AddRolloutsAsync([Make("r", i, "math/a", 0), Make("r", i, "math/a", 1)]); return n; }),
            Task.Run(async () => { int n = 0; for (int i = 0; i < Steps; i++) n += await b.AddRolloutsAsync([Make("r", i, "math/b", 0), Make("r", i, "math/a", 1)]); return n; }),
            Task.Run(async () => { for (int i = 0; i < Steps; i++) await b.PutStepMetricsAsync("r", i, "{}"); return 0; }));
        Assert.Equal(3 * Steps, added.Sum());
        Assert.Equal(3 * Steps, await a.CountRolloutsAsync("r"));
        Assert.Equal(Steps, await a.ReadStepMetricsAsync("r").CountAsync());
    }

    [Fact]
    public async Task OpeningOneNewStoreFromSeveralPlacesAtOnceMakesItOnce()
    {
        string connection = await NewStoreAsync();
        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => RolloutStores.OpenAsync(connection))));
        try
        {
            await stores[0].AddRolloutsAsync([Make("r", 1, "math/a", 0)]);
            foreach (var s in stores) Assert.Equal(1, await s.CountRolloutsAsync("r"));
        }
        finally
        {
            foreach (var s in stores) await s.DisposeAsync();
        }
    }
}
