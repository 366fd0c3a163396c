using Nemotron.Gym.Store;

namespace Nemotron.Gym.Store.Tests;

public sealed class SqliteStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-store-").FullName;
    private string Db => Path.Combine(_dir, "rollouts.db");

    public void Dispose() => Directory.Delete(_dir, true);

    internal static StoredRollout Rollout(string run, int step, string task, int sample, double reward = 1) => new()
    {
        RunId = run, Step = step, TaskId = task, Environment = task.Split('/')[0], SampleIndex = sample,
        Tokens = [1, 2, 300, 4], Generated = [0, 0, 1, 1], SamplerLogProbs = [0, 0, -0.123456789f, -1e-7f],
        Messages = [new("user", "What is 2+2?"), new("assistant", "4", "2+2=4", """[{"Name":"calc","ArgumentsJson":"{\"x\":1}","Id":"c1"}]"""), new("tool", "4", null, null, "c1"), new("assistant", "It is 4.")],
        Reward = reward, ShapedReward = reward - 0.1, Components = new Dictionary<string, double> { ["correct"] = reward },
        Reason = "matched", Evidence = new Dictionary<string, string> { ["extracted"] = "4" }, Truncated = false, Turns = 2,
        GenerateSeconds = 0.5, EnvironmentSeconds = 0.01, CreatedAt = new DateTimeOffset(2026, 11, 23, 1, 2, 3, TimeSpan.Zero),
    };

    [Fact]
    public async Task RolloutsRoundTripEveryFieldAndAddingTwiceKeepsOne()
    {
        await using var s = await RolloutStores.OpenAsync("sqlite:" + Db);
        var r = Rollout("run1", 1, "math/t1", 0);
        Assert.Equal(1, await s.AddRolloutsAsync([r]));
        Assert.Equal(0, await s.AddRolloutsAsync([r]));
        Assert.Equal(1, await s.AddRolloutsAsync([r, Rollout("run1", 1, "math/t1", 1)]));
        Assert.Equal(2, await s.CountRolloutsAsync("run1"));
        var back = await s.ReadRolloutsAsync(new RolloutQuery("run1")).ToListAsync();
        var b = back[0];
        Assert.Equal(r.Tokens, b.Tokens);
        Assert.Equal(r.Generated, b.Generated);
        Assert.Equal(r.SamplerLogProbs.Select(BitConverter.SingleToInt32Bits), b.SamplerLogProbs.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(r.Messages, b.Messages);
        Assert.Equal(r.Components, b.Components);
        Assert.Equal(r.Evidence, b.Evidence);
        Assert.Equal((r.Reward, r.ShapedReward, r.Reason, r.Turns, r.Truncated, r.CreatedAt, r.EnvironmentSeconds), (b.Reward, b.ShapedReward, b.Reason, b.Turns, b.Truncated, b.CreatedAt, b.EnvironmentSeconds));
    }

    [Fact]
    public async Task QueriesFilterAndLaterStepsCanBeDropped()
    {
        await using var s = await RolloutStores.OpenAsync(Db);
        await s.AddRolloutsAsync([.. Enumerable.Range(1, 5).SelectMany(step => new[] { Rollout("r", step, "math/a", 0), Rollout("r", step, "code/b", 0) })]);
        for (int step = 1; step <= 5; step++) await s.PutStepMetricsAsync("r", step, $$"""{"step":{{step}}}""");
        await s.PutStepMetricsAsync("r", 5, """{"step":5,"again":true}""");
        Assert.Equal(3, await s.ReadRolloutsAsync(new RolloutQuery("r", FromStep: 2, ToStep: 4, Environment: "math")).CountAsync());
        Assert.Equal(2, await s.ReadRolloutsAsync(new RolloutQuery("r", Limit: 2)).CountAsync());
        Assert.Contains("again", (await s.ReadStepMetricsAsync("r").ToListAsync())[^1].MetricsJson);
        await s.DeleteRolloutsAfterAsync("r", 3);
        Assert.Equal(6, await s.CountRolloutsAsync("r"));
        Assert.Equal([1, 2, 3], (await s.ReadStepMetricsAsync("r").ToListAsync()).Select(m => m.Step));
    }

    [Fact]
    public async Task RunsAreUpsertedAndSurviveReopening()
    {
        var t = DateTimeOffset.UtcNow;
        await using (var s = await RolloutStores.OpenAsync(Db))
        {
            await s.PutRunAsync(new RunRecord("r", "running", 1, 10, "a: 1", t, t));
            await s.PutRunAsync(new RunRecord("r", "paused", 4, 10, "a: 1", t, t.AddMinutes(1)));
        }
        await using var again = await RolloutStores.OpenAsync(Db);
        var run = Assert.Single(await again.ListRunsAsync());
        Assert.Equal(("paused", 4), (run.Status, run.Step));
    }

    [Fact]
    public async Task AFileThatIsNotAStoreIsRefusedByName()
    {
        File.WriteAllText(Db, "definitely not sqlite, just text that is long enough to have a header of its own......");
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => RolloutStores.OpenAsync(Db));
        Assert.Contains(Db, e.Message);
        var bad = await Assert.ThrowsAsync<ArgumentException>(() => RolloutStores.OpenAsync("mysql:x"));
        Assert.Contains("mysql:x", bad.Message);
    }

    [Fact]
    public async Task TwoWritersOnOneFileLoseNothing()
    {
        await using var a = await RolloutStores.OpenAsync(Db);
        await using var b = await RolloutStores.OpenAsync(Db);
        await Task.WhenAll(
            Task.Run(async () => { for (int i = 0; i < 40; i++) await a.AddRolloutsAsync([Rollout("r", i, "math/a", 0), Rollout("r", i, "math/a", 1)]); }),
            Task.Run(async () => { for (int i = 0; i < 40; i++) await b.AddRolloutsAsync([Rollout("r", i, "math/b", 0), Rollout("r", i, "math/a", 1)]); }));
        Assert.Equal(120, await a.CountRolloutsAsync("r"));
    }
}
