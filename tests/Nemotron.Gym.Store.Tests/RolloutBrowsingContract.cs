using Nemotron.Gym.Conversation;
using Nemotron.Gym.TestSupport;
using static Nemotron.Gym.TestSupport.TestRollouts;

namespace Nemotron.Gym.Store.Tests;

/// <summary>What the web UI's read side must do on every backend: filters, orders and pages in the database, read-only.</summary>
public abstract class RolloutBrowsingContract
{
    /// <summary>Connection text for a new, empty store (each call a different one).</summary>
    protected abstract Task<string> NewStoreAsync();

    /// <summary>24 rollouts over 3 steps, 2 environments and 2 tasks each, with rewards 0, 0.25, ... and a few marked ones.</summary>
    private async Task<(string Connection, List<StoredRollout> All)> FilledAsync()
    {
        string connection = await NewStoreAsync();
        var all = new List<StoredRollout>();
        int n = 0;
        for (int step = 1; step <= 3; step++)
            foreach (var env in new[] { "math", "reasoning" })
                for (int task = 0; task < 2; task++)
                    for (int sample = 0; sample < 2; sample++, n++)
                        all.Add(Make("run", step, $"{env}/t{task}", sample, reward: (n % 5) * 0.25, environment: env) with
                        {
                            Turns = 1 + n % 3, Advantage = n % 4 == 0 ? null : (n % 7) - 3.0,
                            MaskedReason = n % 6 == 0 ? "is_oob" : null, SequenceMasked = n % 6 == 0,
                            Generated = [.. Enumerable.Repeat((byte)1, n % 9)], Tokens = [.. Enumerable.Range(0, n % 9)], SamplerLogProbs = new float[n % 9],
                            Messages = [Message.User("Q"), Message.Assistant(n == 7 ? "The 100% answer_is C:\\x" : $"answer {n}")],
                        });
        await using var s = await RolloutStores.OpenAsync(connection);
        await s.AddRolloutsAsync(all);
        await s.AddRolloutsAsync([Make("other", 1, "math/t0", 0)]);
        await s.PutRunAsync(new RunRecord("run", "running", 3, 10, "x: 1", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow));
        for (int step = 1; step <= 3; step++) await s.PutStepMetricsAsync("run", step, $$"""{"step":{{step}}}""");
        return (connection, all);
    }

    private static async Task<List<(int, string, int)>> Keys(IRolloutBrowser b, RolloutFilter f) =>
        [.. (await b.ReadRolloutPageAsync(f with { Limit = 1000 })).Rows.Select(r => (r.Step, r.TaskId, r.SampleIndex))];

    private static List<(int, string, int)> Expected(IEnumerable<StoredRollout> rows) =>
        [.. rows.OrderBy(r => r.Step).ThenBy(r => r.TaskId, StringComparer.Ordinal).ThenBy(r => r.SampleIndex).Select(r => (r.Step, r.TaskId, r.SampleIndex))];

    [Fact]
    public async Task EveryFilterSelectsExactlyTheMatchingRollouts()
    {
        var (connection, all) = await FilledAsync();
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync(connection);
        var f = new RolloutFilter { RunId = "run" };
        Assert.Equal(Expected(all), await Keys(b, f));
        Assert.Equal(Expected(all.Where(r => r.Environment == "reasoning")), await Keys(b, f with { Environment = "reasoning" }));
        Assert.Equal(Expected(all.Where(r => r.Step is >= 2 and <= 3)), await Keys(b, f with { FromStep = 2, ToStep = 3 }));
        Assert.Equal(Expected(all.Where(r => r.Reward is >= 0.25 and <= 0.5)), await Keys(b, f with { MinReward = 0.25, MaxReward = 0.5 }));
        Assert.Equal(Expected(all.Where(r => r.Advantage is >= -1 and <= 2)), await Keys(b, f with { MinAdvantage = -1, MaxAdvantage = 2 }));
        Assert.Equal(Expected(all.Where(r => r.Truncated)), await Keys(b, f with { Truncated = true }));
        Assert.Equal(Expected(all.Where(r => r.MaskedReason != null)), await Keys(b, f with { Masked = true }));
        Assert.Equal(Expected(all.Where(r => r.MaskedReason == null)), await Keys(b, f with { Masked = false }));
        Assert.Equal(Expected(all.Where(r => r.Turns is >= 2 and <= 2)), await Keys(b, f with { MinTurns = 2, MaxTurns = 2 }));
        Assert.Equal(Expected(all.Where(r => r.GeneratedTokens is >= 3 and <= 5)), await Keys(b, f with { MinLength = 3, MaxLength = 5 }));
        Assert.Equal(Expected(all.Where(r => r.TaskId == "math/t1")), await Keys(b, f with { TaskId = "math/t1" }));
        Assert.Equal(Expected(all.Where(r => r.Environment == "math" && r.Reward >= 0.5 && r.Step == 2)), await Keys(b, f with { Environment = "math", MinReward = 0.5, FromStep = 2, ToStep = 2 }));
    }

    [Fact]
    public async Task TextSearchIgnoresCaseAndTakesWildcardsLiterally()
    {
        var (connection, all) = await FilledAsync();
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync(connection);
        var f = new RolloutFilter { RunId = "run" };
        Assert.Equal(Expected(all.Where(r => r.Messages[1].Content.Contains("ANSWER 1", StringComparison.OrdinalIgnoreCase))), await Keys(b, f with { Text = "ANSWER 1" }));
        var seventh = Expected(all.Where(r => r.Messages[1].Content.Contains('%')));
        Assert.Single(seventh);
        Assert.Equal(seventh, await Keys(b, f with { Text = "100%" }));
        Assert.Equal(seventh, await Keys(b, f with { Text = "answer_is" }));
        Assert.Equal(seventh, await Keys(b, f with { Text = "c:\\x" }));
        Assert.Empty(await Keys(b, f with { Text = "answer_1" })); // '_' is not "any character"
        Assert.Empty(await Keys(b, f with { Text = "%" + "' OR 1=1 --" }));
    }

    [Fact]
    public async Task SortingAndPagingHappenInTheDatabase()
    {
        var (connection, all) = await FilledAsync();
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync(connection);
        // Descending reverses the ties' order too.
        var byReward = all.OrderByDescending(r => r.Reward).ThenByDescending(r => r.Step).ThenByDescending(r => r.TaskId, StringComparer.Ordinal).ThenByDescending(r => r.SampleIndex).ToList();
        var page2 = await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "run", Sort = RolloutSort.Reward, Descending = true, Offset = 5, Limit = 5 });
        Assert.Equal(24, page2.Total);
        Assert.Equal(byReward.Skip(5).Take(5).Select(r => (r.Step, r.TaskId, r.SampleIndex)), page2.Rows.Select(r => (r.Step, r.TaskId, r.SampleIndex)));
        // Rollouts without an advantage come last in either direction.
        foreach (bool desc in new[] { false, true })
        {
            var rows = (await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "run", Sort = RolloutSort.Advantage, Descending = desc, Limit = 100 })).Rows;
            var withAdv = rows.TakeWhile(r => r.Advantage != null).Select(r => r.Advantage!.Value).ToList();
            Assert.Equal(all.Count(r => r.Advantage != null), withAdv.Count);
            Assert.Equal(desc ? withAdv.OrderDescending() : withAdv.Order(), withAdv);
        }
        // Counting stops at the limit and says so.
        var capped = await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "run", CountLimit = 10, Limit = 3 });
        Assert.Equal((10L, true, 3), (capped.Total, capped.TotalIsAtLeast, capped.Rows.Count));
        var exact = await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "run", CountLimit = 24 });
        Assert.Equal((24L, false), (exact.Total, exact.TotalIsAtLeast));
        var longest = (await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "run", Sort = RolloutSort.Length, Descending = true, Limit = 1 })).Rows;
        Assert.Equal(all.Max(r => r.GeneratedTokens), Assert.Single(longest).GeneratedTokens);
    }

    [Fact]
    public async Task RolloutsGroupsEnvironmentsAndMetricsReadBack()
    {
        var (connection, all) = await FilledAsync();
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync(connection);
        Assert.Equal(["math", "reasoning"], await b.EnvironmentsAsync("run"));
        var one = all[9];
        var read = await b.ReadRolloutAsync("run", one.Step, one.TaskId, one.SampleIndex);
        Assert.NotNull(read);
        AssertSame(one, read);
        Assert.Equal((one.Advantage, one.MaskedReason, one.SequenceMasked), (read.Advantage, read.MaskedReason, read.SequenceMasked));
        Assert.Null(await b.ReadRolloutAsync("run", 99, one.TaskId, 0));
        var group = await b.ReadGroupAsync("run", 2, "math/t1");
        Assert.Equal([0, 1], group.Select(r => r.SampleIndex));
        Assert.Equal([2, 3], (await b.ReadStepMetricsAsync("run", 1).ToListAsync()).Select(m => m.Step));
    }

    [Fact]
    public async Task TheReadOnlyStoreRefusesWrites()
    {
        var (connection, _) = await FilledAsync();
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync(connection);
        var writer = (IRolloutStore)b; // the same class underneath: its write paths must fail on a read-only session
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => writer.PutStepMetricsAsync("run", 9, "{}"));
        Assert.Equal(3, (await b.ReadStepMetricsAsync("run", 0).ToListAsync()).Count);
    }

    [Fact]
    public async Task NewFieldsRoundTripThroughTheBlob()
    {
        string connection = await NewStoreAsync();
        var r = Make("run", 1, "math/t", 0) with
        {
            Advantage = -0.75, TrainerLogProbs = [0, 0, -0.5f, -0.25f, -1e-9f], ImportanceWeights = [0, 0, 1.5f, 0.5f, 1f],
            TokenMasked = [0, 0, 1, 0, 0], SequenceMasked = false, MaskedReason = null,
        };
        await using (var s = await RolloutStores.OpenAsync(connection)) await s.AddRolloutsAsync([r]);
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync(connection);
        var read = (await b.ReadRolloutAsync("run", 1, "math/t", 0))!;
        Assert.Equal(r.TrainerLogProbs, read.TrainerLogProbs);
        Assert.Equal(r.ImportanceWeights, read.ImportanceWeights);
        Assert.Equal(r.TokenMasked, read.TokenMasked);
        Assert.Equal((-0.75, false, (string?)null), (read.Advantage, read.SequenceMasked, read.MaskedReason));
        // Not masked: the browser's masked filter leaves it out.
        Assert.Equal(0, (await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "run", Masked = true })).Total);
    }
}

/// <summary>The browsing contract on SQLite files.</summary>
public sealed class SqliteRolloutBrowsingTests : RolloutBrowsingContract, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-browse-").FullName;
    private int _files;

    protected override Task<string> NewStoreAsync() => Task.FromResult("sqlite:" + Path.Combine(_dir, $"store{++_files}", "rollouts.db"));

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task AMissingFileIsNotCreated()
    {
        string path = Path.Combine(_dir, "nothing.db");
        await Assert.ThrowsAsync<FileNotFoundException>(() => RolloutBrowsers.OpenReadOnlyAsync("sqlite:" + path));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task AStoreOfAnOlderSchemaIsRefusedWithTheWayToUpgradeIt()
    {
        string path = Path.Combine(_dir, "old.db");
        await using (var s = await RolloutStores.OpenAsync(path)) await s.AddRolloutsAsync([Make("r", 1, "math/a", 0)]);
        await using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=false"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "UPDATE gym_store_version SET version = 2";
            await cmd.ExecuteNonQueryAsync();
        }
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => RolloutBrowsers.OpenReadOnlyAsync(path));
        Assert.Contains("version 2", e.Message);
        Assert.Contains("gym runs list", e.Message);
    }

    [Fact]
    public async Task UpgradingAVersion2StoreFillsTheBrowserColumnsFromTheBlobs()
    {
        // A version-2 store as that build wrote it: its tables, and a rollout row whose blob has no keys past 7.
        string path = Path.Combine(_dir, "v2.db");
        var r = Make("r", 2, "math/a", 1) with { Messages = [Message.User("Find the NEEDLE"), Message.Assistant("x", "hidden Thought")] };
        var blob = RolloutBlob.Pack(r);
        await using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=false"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE gym_runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL, step INTEGER NOT NULL, total_steps INTEGER NOT NULL,
                    config_yaml TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
                CREATE TABLE gym_steps (run_id TEXT NOT NULL, step INTEGER NOT NULL, metrics_json TEXT NOT NULL, PRIMARY KEY (run_id, step));
                CREATE TABLE gym_rollouts (run_id TEXT NOT NULL, step INTEGER NOT NULL, task_id TEXT NOT NULL, sample_index INTEGER NOT NULL,
                    environment TEXT NOT NULL, reward REAL NOT NULL, shaped_reward REAL NOT NULL, truncated INTEGER NOT NULL,
                    turns INTEGER NOT NULL, generated_tokens INTEGER NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL, blob BLOB NOT NULL,
                    PRIMARY KEY (run_id, step, task_id, sample_index));
                CREATE INDEX gym_rollouts_environment ON gym_rollouts (run_id, environment, step);
                CREATE TABLE gym_store_version (version INTEGER NOT NULL);
                INSERT INTO gym_store_version VALUES (2);
                """;
            await cmd.ExecuteNonQueryAsync();
            // More rows than one backfill batch, so the walk has to carry on from where a batch ended.
            await using var tx = await c.BeginTransactionAsync();
            await using var insert = c.CreateCommand();
            insert.Transaction = (Microsoft.Data.Sqlite.SqliteTransaction)tx;
            insert.CommandText = "INSERT INTO gym_rollouts VALUES ('r', 2, 'math/a', @sample, 'math', 1.0, 0.9, 0, 2, 3, 'matched 4', '2026-11-23T01:02:03.4560000+02:00', @blob)";
            insert.Parameters.AddWithValue("@blob", blob);
            var sampleParameter = insert.Parameters.AddWithValue("@sample", 0);
            for (int sample = 1; sample <= 2500; sample++)
            {
                sampleParameter.Value = sample;
                await insert.ExecuteNonQueryAsync();
            }
            await tx.CommitAsync();
        }
        await (await RolloutStores.OpenAsync(path)).DisposeAsync();
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync(path);
        var page = await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "r", Text = "needle", Limit = 1 });
        Assert.Equal((2500L, ("math/a", 1)), (page.Total, (page.Rows[0].TaskId, page.Rows[0].SampleIndex)));
        Assert.Equal(2500, (await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "r", Text = "hidden thought" })).Total);
        Assert.Null(page.Rows[0].Advantage);
        Assert.Equal(2500, (await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "r", Masked = false })).Total);
    }
}

/// <summary>The browsing contract on a real PostgreSQL.</summary>
public sealed class PostgresRolloutBrowsingTests(PostgresFixture pg) : RolloutBrowsingContract, IClassFixture<PostgresFixture>
{
    protected override async Task<string> NewStoreAsync() => "postgres:" + await pg.Server.CreateDatabaseAsync();

    [Fact]
    public async Task UpgradingAVersion2StoreFillsTheBrowserColumnsFromTheBlobs()
    {
        string cs = await pg.Server.CreateDatabaseAsync();
        var r = Make("r", 2, "math/a", 0) with { Messages = [Message.User("Find the NEEDLE")] };
        await using (var c = new Npgsql.NpgsqlConnection(cs))
        {
            await c.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("""
                CREATE TABLE gym_runs (run_id TEXT COLLATE "C" PRIMARY KEY, status TEXT NOT NULL, step INTEGER NOT NULL, total_steps INTEGER NOT NULL,
                    config_yaml TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
                CREATE TABLE gym_steps (run_id TEXT COLLATE "C" NOT NULL, step INTEGER NOT NULL, metrics_json TEXT NOT NULL, PRIMARY KEY (run_id, step));
                CREATE TABLE gym_rollouts (run_id TEXT COLLATE "C" NOT NULL, step INTEGER NOT NULL, task_id TEXT COLLATE "C" NOT NULL, sample_index INTEGER NOT NULL,
                    environment TEXT COLLATE "C" NOT NULL, reward DOUBLE PRECISION NOT NULL, shaped_reward DOUBLE PRECISION NOT NULL, truncated INTEGER NOT NULL,
                    turns INTEGER NOT NULL, generated_tokens INTEGER NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL, blob BYTEA NOT NULL,
                    PRIMARY KEY (run_id, step, task_id, sample_index));
                CREATE INDEX gym_rollouts_environment ON gym_rollouts (run_id, environment, step);
                CREATE TABLE gym_store_version (version INTEGER NOT NULL);
                INSERT INTO gym_store_version VALUES (2);
                INSERT INTO gym_rollouts SELECT 'r', 2, 'math/a', i, 'math', 1.0, 0.9, 0, 2, 3, 'matched 4', '2026-11-23T01:02:03.4560000+02:00', @blob
                    FROM generate_series(0, 2499) AS i;
                """, c);
            cmd.Parameters.AddWithValue("@blob", RolloutBlob.Pack(r));
            await cmd.ExecuteNonQueryAsync();
        }
        await (await RolloutStores.OpenAsync("postgres:" + cs)).DisposeAsync();
        await using var b = await RolloutBrowsers.OpenReadOnlyAsync("postgres:" + cs);
        Assert.Equal(2500, (await b.ReadRolloutPageAsync(new RolloutFilter { RunId = "r", Text = "needle" })).Total);
    }
}
