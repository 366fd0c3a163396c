using MessagePack;
using Microsoft.Data.Sqlite;
using static Nemotron.Gym.TestSupport.TestRollouts;

namespace Nemotron.Gym.Store.Tests;

/// <summary>The contract on SQLite files, plus what only a file can get wrong.</summary>
public sealed class SqliteRolloutStoreTests : RolloutStoreContract, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-store-").FullName;
    private int _files;

    protected override Task<string> NewStoreAsync() => Task.FromResult("sqlite:" + Path.Combine(_dir, $"store{++_files}", "rollouts.db"));

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task ABarePathEndingInDbIsASqliteFileInWalMode()
    {
        string path = Path.Combine(_dir, "run", "rollouts.db");
        await using (var s = await RolloutStores.OpenAsync(path)) await s.AddRolloutsAsync([Make("r", 1, "math/a", 0)]);
        Assert.True(File.Exists(path));
        await using var c = new SqliteConnection($"Data Source={path};Pooling=false");
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task AFileThatIsNotAStoreIsRefusedByName()
    {
        string text = Path.Combine(_dir, "notes.db");
        await File.WriteAllTextAsync(text, "definitely not sqlite, just text that is long enough to have a header of its own......");
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => RolloutStores.OpenAsync(text));
        Assert.Contains(text, e.Message);
        Assert.Contains("not a SQLite database", e.Message);

        // A real SQLite database of something else is left alone too.
        string other = Path.Combine(_dir, "other.db");
        await using (var c = new SqliteConnection($"Data Source={other};Pooling=false"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE customers (id INTEGER)";
            await cmd.ExecuteNonQueryAsync();
        }
        e = await Assert.ThrowsAsync<InvalidDataException>(() => RolloutStores.OpenAsync("sqlite:" + other));
        Assert.Contains(other, e.Message);
        Assert.Contains("customers", e.Message);
    }

    [Fact]
    public async Task AStoreFromANewerBuildIsRefused()
    {
        string path = Path.Combine(_dir, "newer.db");
        await using (await RolloutStores.OpenAsync(path)) { }
        await using (var c = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "UPDATE gym_store_version SET version = 99";
            await cmd.ExecuteNonQueryAsync();
        }
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => RolloutStores.OpenAsync(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("version 99", e.Message);
    }

    [Fact]
    public async Task AVersion1StoreIsUpgradedWithItsData()
    {
        // The layout and blob of the first development builds, written as they wrote them.
        string path = Path.Combine(_dir, "v1.db");
        var r = Make("r", 3, "math/a", 1);
        var blob = MessagePackSerializer.Serialize(new Version1Blob
        {
            Tokens = r.Tokens, Generated = r.Generated, SamplerLogProbs = r.SamplerLogProbs,
            Messages = [.. r.Messages.Select(BlobMessage.From).Select(m => new[] { m.Role, m.Content, m.Reasoning, m.ToolCallsJson, m.ToolCallId })],
            Components = new(r.Components), Evidence = new(r.Evidence), GenerateSeconds = r.GenerateSeconds, EnvironmentSeconds = r.EnvironmentSeconds,
        }, MessagePackSerializerOptions.Standard.WithCompression(MessagePackCompression.Lz4BlockArray));
        await using (var c = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE gym_store_version (version INTEGER NOT NULL);
                CREATE TABLE runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL, step INTEGER NOT NULL, total_steps INTEGER NOT NULL,
                    config_yaml TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
                CREATE TABLE steps (run_id TEXT NOT NULL, step INTEGER NOT NULL, metrics_json TEXT NOT NULL, PRIMARY KEY (run_id, step));
                CREATE TABLE rollouts (run_id TEXT NOT NULL, step INTEGER NOT NULL, task_id TEXT NOT NULL, sample_index INTEGER NOT NULL,
                    environment TEXT NOT NULL, reward REAL NOT NULL, shaped_reward REAL NOT NULL, truncated INTEGER NOT NULL, turns INTEGER NOT NULL,
                    generated_tokens INTEGER NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL, id_order INTEGER NOT NULL, blob BLOB NOT NULL,
                    PRIMARY KEY (run_id, step, task_id, sample_index));
                CREATE INDEX rollouts_env ON rollouts (run_id, environment, step);
                INSERT INTO gym_store_version VALUES (1);
                INSERT INTO runs VALUES ('r', 'done', 3, 3, 'x: 1', '2026-11-23T01:00:00.0000000+00:00', '2026-11-23T02:00:00.0000000+00:00');
                INSERT INTO steps VALUES ('r', 3, '{"loss":1}');
                INSERT INTO rollouts VALUES ('r', 3, 'math/a', 1, 'math', 1.0, 0.9, 0, 2, 3, 'matched 4', '2026-11-23T01:02:03.4560000+02:00', 638997, @blob);
                """;
            cmd.Parameters.AddWithValue("@blob", blob);
            await cmd.ExecuteNonQueryAsync();
        }

        await using (var s = await RolloutStores.OpenAsync(path))
        {
            AssertSame(r, Assert.Single(await s.ReadRolloutsAsync(new RolloutQuery("r")).ToListAsync()));
            Assert.Equal([(3, """{"loss":1}""")], await s.ReadStepMetricsAsync("r").ToListAsync());
            var run = Assert.Single(await s.ListRunsAsync());
            Assert.Equal(("done", 3), (run.Status, run.Step));
            Assert.Equal(1, await s.AddRolloutsAsync([Make("r", 4, "math/a", 0)]));
        }
        await using (var c = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT (SELECT version FROM gym_store_version) || ' ' || (SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name))";
            Assert.Equal("3 gym_rollouts,gym_runs,gym_steps,gym_store_version", await cmd.ExecuteScalarAsync());
        }
    }

    [Theory]
    [InlineData("mysql:server=x")]
    [InlineData("rollouts.sqlite")]
    [InlineData("sqlite:")]
    public async Task UnknownConnectionTextIsRefusedWithTheAcceptedForms(string connection)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => RolloutStores.OpenAsync(connection));
        Assert.Contains($"'{connection}'", e.Message);
        Assert.Contains("postgres:", e.Message);
    }
}

/// <summary>The rollout blob as the first development builds wrote it (messages as arrays of five strings).</summary>
[MessagePackObject]
public sealed class Version1Blob
{
    [Key(0)] public int[] Tokens { get; set; } = [];
    [Key(1)] public byte[] Generated { get; set; } = [];
    [Key(2)] public float[] SamplerLogProbs { get; set; } = [];
    [Key(3)] public List<string?[]> Messages { get; set; } = [];
    [Key(4)] public Dictionary<string, double> Components { get; set; } = [];
    [Key(5)] public Dictionary<string, string> Evidence { get; set; } = [];
    [Key(6)] public double GenerateSeconds { get; set; }
    [Key(7)] public double EnvironmentSeconds { get; set; }
}
