using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Nemotron.Gym.Store;

/// <summary>
/// The store over SQL, shared by SQLite and PostgreSQL: one row per rollout with the columns queries filter on and
/// one MessagePack blob with the rest, one row per step's metrics, one per run. Inserts use ON CONFLICT DO NOTHING,
/// so adding a rollout twice (a retried step, an import, two writers) never duplicates it.
/// </summary>
internal abstract partial class SqlRolloutStore(string name) : IRolloutStore
{
    /// <summary>How the store is named in errors: the file, or PostgreSQL's host and database.</summary>
    protected string Name { get; } = name;

    /// <summary>A new open connection.</summary>
    protected abstract ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct);
    /// <summary>Column types that differ between dialects.</summary>
    protected abstract string BlobType { get; }
    protected abstract string RealType { get; }
    /// <summary>Text compared in ordinal order, so both backends sort task ids alike.</summary>
    protected abstract string KeyTextType { get; }
    /// <summary>Serializes creation and migration among processes; called first inside the schema transaction.</summary>
    protected abstract Task LockSchemaAsync(DbConnection c, DbTransaction tx, CancellationToken ct);
    /// <summary>The tables that decide whether the database is ours: every table in SQLite, the gym_* ones in PostgreSQL.</summary>
    protected abstract Task<List<string>> RelevantTablesAsync(DbConnection c, DbTransaction tx, CancellationToken ct);
    /// <summary>Runs before the schema transaction (SQLite switches to WAL, which cannot happen inside one).</summary>
    protected virtual Task PrepareAsync(DbConnection c, CancellationToken ct) => Task.CompletedTask;

    /// <summary>The schema version this build writes.</summary>
    public const int SchemaVersion = 3;

    // The tables of schema version 2. When version 3 comes, the baseline moves on and this text stays as it is,
    // since upgrading a version-1 store still has to make exactly these.
    private string TablesV2 => $"""
        CREATE TABLE gym_runs (run_id {KeyTextType} PRIMARY KEY, status TEXT NOT NULL, step INTEGER NOT NULL, total_steps INTEGER NOT NULL,
            config_yaml TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
        CREATE TABLE gym_steps (run_id {KeyTextType} NOT NULL, step INTEGER NOT NULL, metrics_json TEXT NOT NULL, PRIMARY KEY (run_id, step));
        CREATE TABLE gym_rollouts (run_id {KeyTextType} NOT NULL, step INTEGER NOT NULL, task_id {KeyTextType} NOT NULL, sample_index INTEGER NOT NULL,
            environment {KeyTextType} NOT NULL, reward {RealType} NOT NULL, shaped_reward {RealType} NOT NULL, truncated INTEGER NOT NULL,
            turns INTEGER NOT NULL, generated_tokens INTEGER NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL, blob {BlobType} NOT NULL,
            PRIMARY KEY (run_id, step, task_id, sample_index));
        CREATE INDEX gym_rollouts_environment ON gym_rollouts (run_id, environment, step);
        """;

    /// <summary>A new store gets the current schema in one go.</summary>
    private string Baseline => TablesV2 + "\n" + UpgradeToV3 + $"\nCREATE TABLE gym_store_version (version INTEGER NOT NULL);\nINSERT INTO gym_store_version VALUES ({SchemaVersion});";

    /// <summary>
    /// Upgrades()[v - 1] moves a store from version v to v + 1. A shipped upgrade is never edited; a schema change
    /// appends one (and moves <see cref="Baseline"/> and <see cref="SchemaVersion"/> on).
    /// </summary>
    private string[] Upgrades() =>
    [
        // 1 -> 2: the first development builds named the tables runs/steps/rollouts (too generic for a shared
        // PostgreSQL database) and kept an unused id_order column. Blobs are unchanged.
        TablesV2 + """

        INSERT INTO gym_runs SELECT run_id, status, step, total_steps, config_yaml, created, updated FROM runs;
        INSERT INTO gym_steps SELECT run_id, step, metrics_json FROM steps;
        INSERT INTO gym_rollouts SELECT run_id, step, task_id, sample_index, environment, reward, shaped_reward, truncated, turns,
            generated_tokens, reason, created_at, blob FROM rollouts;
        DROP TABLE rollouts;
        DROP TABLE steps;
        DROP TABLE runs;
        """,
        // 2 -> 3: columns and indexes for the web UI's rollout browser (RolloutBrowsing.cs); BackfillV3Async fills the new columns of old rows.
        UpgradeToV3,
    ];

    public async Task InitializeAsync(CancellationToken ct)
    {
        await using var c = await OpenConnectionAsync(ct);
        await PrepareAsync(c, ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await LockSchemaAsync(c, tx, ct);
        var tables = await RelevantTablesAsync(c, tx, ct);
        if (tables.Count == 0) await Exec(c, tx, Baseline, ct);
        else if (!tables.Contains("gym_store_version"))
            throw new InvalidDataException($"{Name}: not a Nemotron.Gym rollout store (it has tables {string.Join(", ", tables.Take(8))} but no gym_store_version)");
        else
        {
            int version;
            await using (var cmd = Cmd(c, tx, "SELECT MAX(version) FROM gym_store_version"))
                version = await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt32(v, CultureInfo.InvariantCulture) : 0;
            if (version > SchemaVersion)
                throw new InvalidDataException($"{Name}: rollout store schema version {version} is newer than this build understands ({SchemaVersion}); use a newer gym");
            if (version < 1) throw new InvalidDataException($"{Name}: rollout store schema version {version} is unknown");
            var upgrades = Upgrades();
            for (int v = version; v < SchemaVersion; v++) await Exec(c, tx, upgrades[v - 1], ct);
            if (version < 3) await BackfillV3Async(c, tx, ct);
            if (version < SchemaVersion) await Exec(c, tx, $"UPDATE gym_store_version SET version = {SchemaVersion}", ct);
        }
        await tx.CommitAsync(ct);
    }

    public async Task<int> AddRolloutsAsync(IReadOnlyList<StoredRollout> rollouts, CancellationToken ct = default)
    {
        if (rollouts.Count == 0) return 0;
        foreach (var r in rollouts) r.CheckRewards(Name);
        // Key order, so two writers whose batches overlap lock rows in the same order (PostgreSQL would otherwise deadlock them).
        var ordered = rollouts.OrderBy(r => r.RunId, StringComparer.Ordinal).ThenBy(r => r.Step)
            .ThenBy(r => r.TaskId, StringComparer.Ordinal).ThenBy(r => r.SampleIndex).ToList();
        await using var c = await OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await using var cmd = Cmd(c, tx, """
            INSERT INTO gym_rollouts (run_id, step, task_id, sample_index, environment, reward, shaped_reward, truncated, turns,
                generated_tokens, reason, created_at, blob, advantage, masked_reason, search_text)
            VALUES (@run, @step, @task, @sample, @env, @reward, @shaped, @truncated, @turns, @generated, @reason, @created, @blob, @advantage, @masked, @search)
            ON CONFLICT DO NOTHING
            """, ("@run", ""), ("@step", 0), ("@task", ""), ("@sample", 0), ("@env", ""), ("@reward", 0.0), ("@shaped", 0.0),
            ("@truncated", 0), ("@turns", 0), ("@generated", 0), ("@reason", ""), ("@created", ""), ("@blob", Array.Empty<byte>()),
            ("@advantage", DBNull.Value), ("@masked", DBNull.Value), ("@search", ""));
        int added = 0;
        foreach (var r in ordered)
        {
            object[] values = [r.RunId, r.Step, r.TaskId, r.SampleIndex, r.Environment, r.Reward, r.ShapedReward, r.Truncated ? 1 : 0, r.Turns,
                r.GeneratedTokens, r.Reason, r.CreatedAt.ToString("O", CultureInfo.InvariantCulture), RolloutBlob.Pack(r),
                r.Advantage is { } a ? a : DBNull.Value, MaskedColumn(r.SequenceMasked, r.MaskedReason), SearchText(r.Messages)];
            for (int i = 0; i < values.Length; i++) cmd.Parameters[i].Value = values[i];
            added += await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        return added;
    }

    public async Task PutStepMetricsAsync(string runId, int step, string metricsJson, CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, """
            INSERT INTO gym_steps (run_id, step, metrics_json) VALUES (@run, @step, @json)
            ON CONFLICT (run_id, step) DO UPDATE SET metrics_json = excluded.metrics_json
            """, ("@run", runId), ("@step", step), ("@json", metricsJson));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async IAsyncEnumerable<(int Step, string MetricsJson)> ReadStepMetricsAsync(string runId, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, "SELECT step, metrics_json FROM gym_steps WHERE run_id = @run ORDER BY step", ("@run", runId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) yield return (r.GetInt32(0), r.GetString(1));
    }

    public async IAsyncEnumerable<StoredRollout> ReadRolloutsAsync(RolloutQuery q, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var args = new List<(string, object)> { ("@run", q.RunId) };
        string where = "run_id = @run";
        if (q.FromStep is { } from) { where += " AND step >= @from"; args.Add(("@from", from)); }
        if (q.ToStep is { } to) { where += " AND step <= @to"; args.Add(("@to", to)); }
        if (q.Environment is { } env) { where += " AND environment = @env"; args.Add(("@env", env)); }
        string limit = "";
        if (q.Limit is { } l) { limit = " LIMIT @limit"; args.Add(("@limit", Math.Max(0, l))); }
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, $"""
            SELECT step, task_id, sample_index, environment, reward, shaped_reward, truncated, turns, reason, created_at, blob
            FROM gym_rollouts WHERE {where} ORDER BY step, task_id, sample_index{limit}
            """, [.. args]);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) yield return RolloutFromRow(q.RunId, r);
    }

    public async Task<long> CountRolloutsAsync(string runId, CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, "SELECT COUNT(*) FROM gym_rollouts WHERE run_id = @run", ("@run", runId));
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    public async Task PutRunAsync(RunRecord run, CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, """
            INSERT INTO gym_runs (run_id, status, step, total_steps, config_yaml, created, updated)
            VALUES (@run, @status, @step, @total, @yaml, @created, @updated)
            ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, step = excluded.step, total_steps = excluded.total_steps,
                config_yaml = excluded.config_yaml, updated = excluded.updated
            """, ("@run", run.RunId), ("@status", run.Status), ("@step", run.Step), ("@total", run.TotalSteps), ("@yaml", run.ConfigYaml),
            ("@created", run.Created.ToString("O", CultureInfo.InvariantCulture)), ("@updated", run.Updated.ToString("O", CultureInfo.InvariantCulture)));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, "SELECT run_id, status, step, total_steps, config_yaml, created, updated FROM gym_runs");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var all = new List<RunRecord>();
        while (await r.ReadAsync(ct))
            all.Add(new RunRecord(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), r.GetString(4), ParseTime(r.GetString(5), $"run {r.GetString(0)}: field 'created'"), ParseTime(r.GetString(6), $"run {r.GetString(0)}: field 'updated'")));
        // Sorted here: the text column would order mixed offsets wrongly.
        return [.. all.OrderBy(x => x.Created).ThenBy(x => x.RunId, StringComparer.Ordinal)];
    }

    public async Task DeleteRolloutsAfterAsync(string runId, int step, CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        foreach (string table in new[] { "gym_rollouts", "gym_steps" })
        {
            await using var cmd = Cmd(c, tx, $"DELETE FROM {table} WHERE run_id = @run AND step > @step", ("@run", runId), ("@step", step));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    public abstract ValueTask DisposeAsync();

    /// <summary>A stored time (ISO 8601 round-trip text); anything else is an error naming the store and <paramref name="what"/>.</summary>
    private DateTimeOffset ParseTime(string text, string what) =>
        DateTimeOffset.TryParseExact(text, "O", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) ? t
            : throw new InvalidDataException($"{Name}: {what} is '{text}', not an ISO 8601 time (yyyy-MM-ddTHH:mm:ss.fffffffzzz): correct the row or restore the store from a copy");

    private static async Task Exec(DbConnection c, DbTransaction? tx, string sql, CancellationToken ct)
    {
        await using var cmd = Cmd(c, tx, sql);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    protected static DbCommand Cmd(DbConnection c, DbTransaction? tx, string sql, params (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
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
