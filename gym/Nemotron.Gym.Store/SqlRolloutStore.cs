using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Nemotron.Gym.Store;

/// <summary>Opens rollout stores by connection text.</summary>
public static class RolloutStores
{
    /// <summary>"sqlite:PATH" (or a path ending in .db) for a SQLite file, "postgres:CONNECTION-STRING" for PostgreSQL.</summary>
    public static async Task<IRolloutStore> OpenAsync(string connection, CancellationToken ct = default)
    {
        SqlRolloutStore store;
        if (connection.StartsWith("postgres:", StringComparison.Ordinal)) store = new SqlRolloutStore(connection["postgres:".Length..], postgres: true, "PostgreSQL");
        else if (connection.StartsWith("sqlite:", StringComparison.Ordinal) || connection.EndsWith(".db", StringComparison.Ordinal))
        {
            string path = Path.GetFullPath(connection.StartsWith("sqlite:", StringComparison.Ordinal) ? connection["sqlite:".Length..] : connection);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            store = new SqlRolloutStore(new SqliteConnectionStringBuilder { DataSource = path, DefaultTimeout = 60, Pooling = true }.ToString(), postgres: false, path);
        }
        else throw new ArgumentException($"rollout store '{connection}': expected sqlite:PATH, a .db file, or postgres:CONNECTION-STRING");
        await store.InitializeAsync(ct);
        return store;
    }
}

/// <summary>
/// The store over SQL: query columns per rollout plus one MessagePack blob, metrics as JSON lines, runs. SQLite runs
/// in WAL mode with a busy timeout so several processes can write one file; both dialects use ON CONFLICT, so adding
/// a rollout twice (a retried step, an import) never duplicates it.
/// </summary>
internal sealed class SqlRolloutStore(string connectionString, bool postgres, string name) : IRolloutStore
{
    private const int SchemaVersion = 1;

    private DbConnection NewConnection() => postgres ? new NpgsqlConnection(connectionString) : new SqliteConnection(connectionString);

    private async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var c = NewConnection();
        await c.OpenAsync(ct);
        return c;
    }

    public async Task InitializeAsync(CancellationToken ct)
    {
        string blob = postgres ? "BYTEA" : "BLOB", real = postgres ? "DOUBLE PRECISION" : "REAL", big = postgres ? "BIGINT" : "INTEGER";
        try
        {
            await using var c = await OpenAsync(ct);
            if (!postgres)
            {
                // A file that is some other SQLite database is refused rather than written into.
                var tables = new List<string>();
                await using (var cmd = Cmd(c, "SELECT name FROM sqlite_master WHERE type = 'table'"))
                await using (var r = await cmd.ExecuteReaderAsync(ct))
                    while (await r.ReadAsync(ct)) tables.Add(r.GetString(0));
                if (tables.Count > 0 && !tables.Contains("gym_store_version"))
                    throw new InvalidDataException($"{name}: a SQLite database that is not a Nemotron.Gym rollout store (tables: {string.Join(", ", tables.Take(5))})");
                await Exec(c, "PRAGMA journal_mode=WAL", ct);
            }
            await Exec(c, $"""
                CREATE TABLE IF NOT EXISTS gym_store_version (version INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL, step INTEGER NOT NULL, total_steps INTEGER NOT NULL,
                    config_yaml TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, step INTEGER NOT NULL, metrics_json TEXT NOT NULL, PRIMARY KEY (run_id, step));
                CREATE TABLE IF NOT EXISTS rollouts (run_id TEXT NOT NULL, step INTEGER NOT NULL, task_id TEXT NOT NULL, sample_index INTEGER NOT NULL,
                    environment TEXT NOT NULL, reward {real} NOT NULL, shaped_reward {real} NOT NULL, truncated INTEGER NOT NULL, turns INTEGER NOT NULL,
                    generated_tokens INTEGER NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL, id_order {big} NOT NULL, blob {blob} NOT NULL,
                    PRIMARY KEY (run_id, step, task_id, sample_index));
                CREATE INDEX IF NOT EXISTS rollouts_env ON rollouts (run_id, environment, step);
                """, ct);
            await using (var cmd = Cmd(c, "SELECT version FROM gym_store_version"))
            {
                var v = await cmd.ExecuteScalarAsync(ct);
                if (v == null || v is DBNull) await Exec(c, $"INSERT INTO gym_store_version VALUES ({SchemaVersion})", ct);
                else if (Convert.ToInt32(v) > SchemaVersion)
                    throw new InvalidDataException($"{name}: rollout store schema {v} is newer than this gym understands ({SchemaVersion})");
            }
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 26) // SQLITE_NOTADB
        {
            throw new InvalidDataException($"{name}: not a SQLite database, so not a rollout store", e);
        }
    }

    public async Task<int> AddRolloutsAsync(IReadOnlyList<StoredRollout> rollouts, CancellationToken ct = default)
    {
        if (rollouts.Count == 0) return 0;
        await using var c = await OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        int added = 0;
        long order = DateTime.UtcNow.Ticks;
        foreach (var r in rollouts)
        {
            await using var cmd = Cmd(c, """
                INSERT INTO rollouts (run_id, step, task_id, sample_index, environment, reward, shaped_reward, truncated, turns, generated_tokens, reason, created_at, id_order, blob)
                VALUES (@run, @step, @task, @sample, @env, @reward, @shaped, @trunc, @turns, @gen, @reason, @created, @order, @blob) ON CONFLICT DO NOTHING
                """, ("@run", r.RunId), ("@step", r.Step), ("@task", r.TaskId), ("@sample", r.SampleIndex), ("@env", r.Environment),
                ("@reward", r.Reward), ("@shaped", r.ShapedReward), ("@trunc", r.Truncated ? 1 : 0), ("@turns", r.Turns), ("@gen", r.GeneratedTokens),
                ("@reason", r.Reason), ("@created", r.CreatedAt.ToString("O")), ("@order", order++), ("@blob", RolloutBlob.Pack(r)));
            cmd.Transaction = tx;
            added += await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        return added;
    }

    public async Task PutStepMetricsAsync(string runId, int step, string metricsJson, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Cmd(c, "INSERT INTO steps VALUES (@run, @step, @json) ON CONFLICT (run_id, step) DO UPDATE SET metrics_json = excluded.metrics_json",
            ("@run", runId), ("@step", step), ("@json", metricsJson));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async IAsyncEnumerable<(int Step, string MetricsJson)> ReadStepMetricsAsync(string runId, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Cmd(c, "SELECT step, metrics_json FROM steps WHERE run_id = @run ORDER BY step", ("@run", runId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) yield return (r.GetInt32(0), r.GetString(1));
    }

    public async IAsyncEnumerable<StoredRollout> ReadRolloutsAsync(RolloutQuery q, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        var args = new List<(string, object)> { ("@run", q.RunId) };
        string where = "run_id = @run";
        if (q.FromStep is { } f) { where += " AND step >= @from"; args.Add(("@from", f)); }
        if (q.ToStep is { } t) { where += " AND step <= @to"; args.Add(("@to", t)); }
        if (q.Environment is { } e) { where += " AND environment = @env"; args.Add(("@env", e)); }
        string limit = q.Limit is { } l ? $" LIMIT {Math.Max(0, l)}" : "";
        await using var cmd = Cmd(c, $"SELECT step, task_id, sample_index, environment, reward, shaped_reward, truncated, turns, reason, created_at, blob FROM rollouts WHERE {where} ORDER BY step, task_id, sample_index{limit}", [.. args]);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            string where1 = $"{name}: rollout {q.RunId}/{r.GetInt32(0)}/{r.GetString(1)}/{r.GetInt32(2)}";
            var b = RolloutBlob.Unpack((byte[])r.GetValue(10), where1);
            yield return new StoredRollout
            {
                RunId = q.RunId, Step = r.GetInt32(0), TaskId = r.GetString(1), SampleIndex = r.GetInt32(2), Environment = r.GetString(3),
                Reward = r.GetDouble(4), ShapedReward = r.GetDouble(5), Truncated = r.GetInt32(6) != 0, Turns = r.GetInt32(7), Reason = r.GetString(8),
                CreatedAt = DateTimeOffset.Parse(r.GetString(9), System.Globalization.CultureInfo.InvariantCulture),
                Tokens = b.Tokens, Generated = b.Generated, SamplerLogProbs = b.SamplerLogProbs,
                Messages = b.Messages.Select(m => new StoredMessage(m[0] ?? "", m[1] ?? "", m[2], m[3], m[4])).ToList(),
                Components = b.Components, Evidence = b.Evidence, GenerateSeconds = b.GenerateSeconds, EnvironmentSeconds = b.EnvironmentSeconds,
            };
        }
    }

    public async Task<long> CountRolloutsAsync(string runId, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Cmd(c, "SELECT COUNT(*) FROM rollouts WHERE run_id = @run", ("@run", runId));
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct));
    }

    public async Task PutRunAsync(RunRecord run, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Cmd(c, """
            INSERT INTO runs VALUES (@run, @status, @step, @total, @yaml, @created, @updated)
            ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, step = excluded.step, total_steps = excluded.total_steps,
                config_yaml = excluded.config_yaml, updated = excluded.updated
            """, ("@run", run.RunId), ("@status", run.Status), ("@step", run.Step), ("@total", run.TotalSteps), ("@yaml", run.ConfigYaml),
            ("@created", run.Created.ToString("O")), ("@updated", run.Updated.ToString("O")));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Cmd(c, "SELECT run_id, status, step, total_steps, config_yaml, created, updated FROM runs ORDER BY created");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var all = new List<RunRecord>();
        while (await r.ReadAsync(ct))
            all.Add(new RunRecord(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), r.GetString(4),
                DateTimeOffset.Parse(r.GetString(5), System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.Parse(r.GetString(6), System.Globalization.CultureInfo.InvariantCulture)));
        return all;
    }

    public async Task DeleteRolloutsAfterAsync(string runId, int step, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Cmd(c, "DELETE FROM rollouts WHERE run_id = @run AND step > @step; DELETE FROM steps WHERE run_id = @run AND step > @step", ("@run", runId), ("@step", step));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public ValueTask DisposeAsync()
    {
        if (!postgres) SqliteConnection.ClearAllPools(); // release the file (tests delete it; Windows would insist)
        return ValueTask.CompletedTask;
    }

    private static async Task Exec(DbConnection c, string sql, CancellationToken ct)
    {
        await using var cmd = Cmd(c, sql);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static DbCommand Cmd(DbConnection c, string sql, params (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = n;
            p.Value = v;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }
}
