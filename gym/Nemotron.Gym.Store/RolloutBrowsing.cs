using Nemotron.Gym.Conversation;
using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Npgsql;

namespace Nemotron.Gym.Store;

/// <summary>The orders the rollout browser can sort by. Each maps to fixed SQL text; nothing a user types reaches the query's text.</summary>
public enum RolloutSort
{
    /// <summary>Step, then task id, then sample index (the store's key order).</summary>
    Step,
    /// <summary>The environment's reward.</summary>
    Reward,
    /// <summary>The GRPO advantage (rollouts without one last).</summary>
    Advantage,
    /// <summary>Generated tokens.</summary>
    Length,
    /// <summary>Policy turns.</summary>
    Turns,
    /// <summary>Task id (ordinal), then step.</summary>
    TaskId,
}

/// <summary>
/// One page of the rollout browser: which rollouts of a run, in which order, which slice. Every bound is inclusive and
/// optional; <see cref="Text"/> matches anywhere in the conversation, ignoring case.
/// </summary>
public sealed record RolloutFilter
{
    /// <summary>The run whose rollouts are listed.</summary>
    public required string RunId { get; init; }
    /// <summary>Only this environment.</summary>
    public string? Environment { get; init; }
    /// <summary>First step.</summary>
    public int? FromStep { get; init; }
    /// <summary>Last step.</summary>
    public int? ToStep { get; init; }
    /// <summary>Lowest reward.</summary>
    public double? MinReward { get; init; }
    /// <summary>Highest reward.</summary>
    public double? MaxReward { get; init; }
    /// <summary>Lowest advantage (rollouts without one never match a bound).</summary>
    public double? MinAdvantage { get; init; }
    /// <summary>Highest advantage.</summary>
    public double? MaxAdvantage { get; init; }
    /// <summary>Only truncated (true) or only complete (false) episodes.</summary>
    public bool? Truncated { get; init; }
    /// <summary>Only masked (true) or only unmasked (false) rollouts.</summary>
    public bool? Masked { get; init; }
    /// <summary>Fewest policy turns.</summary>
    public int? MinTurns { get; init; }
    /// <summary>Most policy turns.</summary>
    public int? MaxTurns { get; init; }
    /// <summary>Fewest generated tokens.</summary>
    public int? MinLength { get; init; }
    /// <summary>Most generated tokens.</summary>
    public int? MaxLength { get; init; }
    /// <summary>Text the conversation contains (case-insensitive; %, _ and \ are plain characters).</summary>
    public string? Text { get; init; }
    /// <summary>Exactly this task id.</summary>
    public string? TaskId { get; init; }
    /// <summary>The order.</summary>
    public RolloutSort Sort { get; init; } = RolloutSort.Step;
    /// <summary>Largest first.</summary>
    public bool Descending { get; init; }
    /// <summary>Rows skipped before the page.</summary>
    public int Offset { get; init; }
    /// <summary>Rows on the page.</summary>
    public int Limit { get; init; } = 50;
    /// <summary>Matches are counted up to this many (see <see cref="RolloutPage.TotalIsAtLeast"/>).</summary>
    public int CountLimit { get; init; } = 10_000;
}

/// <summary>A rollout's row in the browser: its key and the columns the browser shows, without the blob.</summary>
public sealed record RolloutSummary(string RunId, int Step, string TaskId, int SampleIndex, string Environment, double Reward, double ShapedReward,
    double? Advantage, bool Truncated, int Turns, int GeneratedTokens, string? MaskedReason, string Reason);

/// <summary>
/// One page of rollouts and how many match the filter: exactly, up to <see cref="RolloutFilter.CountLimit"/>; beyond it
/// <paramref name="Total"/> is that limit and <paramref name="TotalIsAtLeast"/> is set (counting a million matches costs
/// more than the page itself).
/// </summary>
public sealed record RolloutPage(IReadOnlyList<RolloutSummary> Rows, long Total, bool TotalIsAtLeast = false);

/// <summary>
/// The read side the web UI needs: runs, pages of rollouts filtered and sorted by the database, single rollouts, groups
/// and step metrics. Opened by <see cref="RolloutBrowsers.OpenReadOnlyAsync"/>, it never writes.
/// </summary>
public interface IRolloutBrowser : IAsyncDisposable
{
    /// <summary>Every run, oldest first.</summary>
    Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken ct = default);
    /// <summary>How many rollouts a run has.</summary>
    Task<long> CountRolloutsAsync(string runId, CancellationToken ct = default);
    /// <summary>The environments a run's rollouts came from, in ordinal order.</summary>
    Task<IReadOnlyList<string>> EnvironmentsAsync(string runId, CancellationToken ct = default);
    /// <summary>A page of rollouts matching <paramref name="filter"/>, with the count of all that match.</summary>
    Task<RolloutPage> ReadRolloutPageAsync(RolloutFilter filter, CancellationToken ct = default);
    /// <summary>One rollout, or null when the store has none with that key.</summary>
    Task<StoredRollout?> ReadRolloutAsync(string runId, int step, string taskId, int sampleIndex, CancellationToken ct = default);
    /// <summary>Every sample of one task at one step (its group), by sample index.</summary>
    Task<IReadOnlyList<StoredRollout>> ReadGroupAsync(string runId, int step, string taskId, CancellationToken ct = default);
    /// <summary>A run's step metrics after <paramref name="afterStep"/>, in step order.</summary>
    IAsyncEnumerable<(int Step, string MetricsJson)> ReadStepMetricsAsync(string runId, int afterStep, CancellationToken ct = default);
}

/// <summary>Opens stores for reading only.</summary>
public static class RolloutBrowsers
{
    /// <summary>
    /// Opens the store <paramref name="connection"/> names (the forms of <see cref="RolloutStores.OpenAsync"/>) without
    /// creating or upgrading anything: a SQLite file is opened read-only, a PostgreSQL session is read-only.
    /// </summary>
    /// <exception cref="ArgumentException">The text is none of the accepted forms.</exception>
    /// <exception cref="FileNotFoundException">The SQLite file does not exist.</exception>
    /// <exception cref="InvalidDataException">It is not a rollout store, or its schema is older or newer than this build's.</exception>
    public static async Task<IRolloutBrowser> OpenReadOnlyAsync(string connection, CancellationToken ct = default)
    {
        SqlRolloutStore store;
        string where = connection;
        if (connection.StartsWith("postgres:", StringComparison.Ordinal))
        {
            NpgsqlConnectionStringBuilder builder;
            try { builder = new NpgsqlConnectionStringBuilder(connection["postgres:".Length..]); }
            catch (ArgumentException e) { throw new ArgumentException($"rollout store 'postgres:...': not an Npgsql connection string ({e.Message})", nameof(connection), e); }
            // The server enforces it: any write in these sessions fails.
            builder.Options = ((builder.Options ?? "") + " -c default_transaction_read_only=on").Trim();
            store = new PostgresRolloutStore(builder);
        }
        else if (connection.StartsWith("sqlite:", StringComparison.Ordinal) || (connection.EndsWith(".db", StringComparison.Ordinal) && !connection.Contains("://")))
        {
            string path = Path.GetFullPath(connection.StartsWith("sqlite:", StringComparison.Ordinal) ? connection["sqlite:".Length..] : connection);
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no rollout store there", path);
            store = new SqliteRolloutStore(path, readOnly: true);
            where = path;
        }
        else throw new ArgumentException($"rollout store '{connection}': unknown form (accepted: {RolloutStores.AcceptedForms})", nameof(connection));
        try { await store.CheckSchemaAsync(ct); }
        catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode is 26 or 11) // SQLITE_NOTADB, SQLITE_CORRUPT
        {
            // Read-only opening never writes the header, so a file that is not a database first fails here.
            await store.DisposeAsync();
            throw new InvalidDataException($"{where}: {(e.SqliteErrorCode == 26 ? "not a SQLite database" : "a damaged SQLite database")}, so not a readable Nemotron.Gym rollout store", e);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
        return store;
    }
}

internal abstract partial class SqlRolloutStore : IRolloutBrowser
{
    // Schema 3: advantage and masked_reason are columns so the browser filters and sorts on them; search_text is the
    // conversation in lower case, so text search is one LIKE in the database (the conversation itself is in the compressed blob).
    // Each sort index ends with the key columns, so a page in that order is read straight off the index and stops after its
    // rows instead of sorting every match (the order clauses below use exactly these columns, in one direction).
    private string UpgradeToV3 => $"""
        ALTER TABLE gym_rollouts ADD COLUMN advantage {RealType};
        ALTER TABLE gym_rollouts ADD COLUMN masked_reason TEXT;
        ALTER TABLE gym_rollouts ADD COLUMN search_text TEXT;
        CREATE INDEX gym_rollouts_reward ON gym_rollouts (run_id, reward, step, task_id, sample_index);
        CREATE INDEX gym_rollouts_environment_reward ON gym_rollouts (run_id, environment, reward, step, task_id, sample_index);
        CREATE INDEX gym_rollouts_length ON gym_rollouts (run_id, generated_tokens, step, task_id, sample_index);
        CREATE INDEX gym_rollouts_task ON gym_rollouts (run_id, task_id, step, sample_index);
        """;

    /// <summary>The columns <see cref="RolloutFromRow"/> reads, in its order.</summary>
    private const string RolloutColumns = "step, task_id, sample_index, environment, reward, shaped_reward, truncated, turns, reason, created_at, blob";

    /// <summary>A rollout from a row of <see cref="RolloutColumns"/>.</summary>
    private StoredRollout RolloutFromRow(string runId, DbDataReader r)
    {
        int step = r.GetInt32(0), sample = r.GetInt32(2);
        string task = r.GetString(1);
        var b = RolloutBlob.Unpack(r.GetFieldValue<byte[]>(10), $"{Name}: rollout {runId}/{step}/{task}/{sample}");
        return new StoredRollout
        {
            RunId = runId, Step = step, TaskId = task, SampleIndex = sample, Environment = r.GetString(3),
            Reward = r.GetDouble(4), ShapedReward = r.GetDouble(5), Truncated = r.GetInt32(6) != 0, Turns = r.GetInt32(7), Reason = r.GetString(8),
            CreatedAt = ParseTime(r.GetString(9), $"rollout {runId}/{step}/{task}/{sample}: field 'created_at'"),
            Tokens = b.Tokens, Generated = b.Generated, SamplerLogProbs = b.SamplerLogProbs, Messages = b.ToMessages($"{Name}: rollout {runId}/{step}/{task}/{sample}"),
            Components = b.Components, Evidence = b.Evidence, GenerateSeconds = b.GenerateSeconds, EnvironmentSeconds = b.EnvironmentSeconds,
            Advantage = b.Advantage, TrainerLogProbs = b.TrainerLogProbs, ImportanceWeights = b.ImportanceWeights, TokenMasked = b.TokenMasked,
            SequenceMasked = b.SequenceMasked, MaskedReason = b.MaskedReason, TokenTexts = b.TokenTexts,
        };
    }

    /// <summary>The masked_reason column: the reason, or a stand-in when only the flag was recorded; null when not masked.</summary>
    internal static object MaskedColumn(bool? sequenceMasked, string? reason) =>
        reason is { Length: > 0 } ? reason : sequenceMasked == true ? "masked" : DBNull.Value;

    /// <summary>The search_text column: every message's text, reasoning and tool calls, lower-cased.</summary>
    internal static string SearchText(IReadOnlyList<Message> messages)
    {
        var sb = new StringBuilder();
        foreach (var m in messages)
        {
            sb.Append(m.Content).Append('\n');
            if (m.Reasoning != null) sb.Append(m.Reasoning).Append('\n');
            if (m.ToolCalls is { Count: > 0 } calls) sb.Append(StoredToolCalls.ToJson(calls)).Append('\n');
        }
        return sb.ToString().ToLowerInvariant();
    }

    /// <summary>
    /// Fills schema 3's columns for rows written before it, from their blobs: 1,000 rows at a time in key order (a keyset
    /// walk over the primary key, so each batch starts where the last ended instead of scanning for unfilled rows again).
    /// </summary>
    private async Task BackfillV3Async(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        (string Run, int Step, string Task, int Sample)? last = null;
        while (true)
        {
            var batch = new List<(string Run, int Step, string Task, int Sample, RolloutBlob Blob)>();
            string after = last == null ? "" : "WHERE (run_id, step, task_id, sample_index) > (@run, @step, @task, @sample)";
            (string, object)[] args = last is { } l ? [("@run", l.Run), ("@step", l.Step), ("@task", l.Task), ("@sample", l.Sample)] : [];
            await using (var cmd = Cmd(c, tx, $"SELECT run_id, step, task_id, sample_index, blob FROM gym_rollouts {after} ORDER BY run_id, step, task_id, sample_index LIMIT 1000", args))
            await using (var r = await cmd.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct))
                    batch.Add((r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetInt32(3),
                        RolloutBlob.Unpack(r.GetFieldValue<byte[]>(4), $"{Name}: rollout {r.GetString(0)}/{r.GetInt32(1)}/{r.GetString(2)}/{r.GetInt32(3)}")));
            if (batch.Count == 0) return;
            await using var update = Cmd(c, tx, """
                UPDATE gym_rollouts SET advantage = @advantage, masked_reason = @masked, search_text = @search
                WHERE run_id = @run AND step = @step AND task_id = @task AND sample_index = @sample
                """, ("@advantage", DBNull.Value), ("@masked", DBNull.Value), ("@search", ""), ("@run", ""), ("@step", 0), ("@task", ""), ("@sample", 0));
            foreach (var (run, step, task, sample, b) in batch)
            {
                object[] values = [b.Advantage is { } a ? a : DBNull.Value, MaskedColumn(b.SequenceMasked, b.MaskedReason), SearchText(b.ToMessages($"{Name}: rollout {run}/{step}/{task}/{sample}")), run, step, task, sample];
                for (int i = 0; i < values.Length; i++) update.Parameters[i].Value = values[i];
                await update.ExecuteNonQueryAsync(ct);
            }
            last = (batch[^1].Run, batch[^1].Step, batch[^1].Task, batch[^1].Sample);
        }
    }

    /// <summary>Checks, without writing, that the database is a rollout store of exactly this build's schema.</summary>
    internal async Task CheckSchemaAsync(CancellationToken ct)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        var tables = await RelevantTablesAsync(c, tx, ct);
        if (!tables.Contains("gym_store_version"))
            throw new InvalidDataException(tables.Count == 0 ? $"{Name}: an empty database, not a Nemotron.Gym rollout store"
                : $"{Name}: not a Nemotron.Gym rollout store (it has tables {string.Join(", ", tables.Take(8))} but no gym_store_version)");
        int version;
        await using (var cmd = Cmd(c, tx, "SELECT MAX(version) FROM gym_store_version"))
            version = await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt32(v, CultureInfo.InvariantCulture) : 0;
        if (version > SchemaVersion)
            throw new InvalidDataException($"{Name}: rollout store schema version {version} is newer than this build understands ({SchemaVersion}); use a newer gym");
        if (version < SchemaVersion)
            throw new InvalidDataException($"{Name}: rollout store schema version {version} predates this build's ({SchemaVersion}); " +
                "reading it never writes, so upgrade it once by opening it with this build's gym for writing (`gym runs list --store ...` does)");
    }

    public async Task<IReadOnlyList<string>> EnvironmentsAsync(string runId, CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, "SELECT DISTINCT environment FROM gym_rollouts WHERE run_id = @run", ("@run", runId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var all = new List<string>();
        while (await r.ReadAsync(ct)) all.Add(r.GetString(0));
        return [.. all.Order(StringComparer.Ordinal)];
    }

    /// <summary>The WHERE clause of a filter: fixed text with numbered parameters; every value a user gave is a parameter.</summary>
    private static (string Where, List<(string, object)> Args) FilterClause(RolloutFilter f)
    {
        var args = new List<(string, object)> { ("@run", f.RunId) };
        var where = new StringBuilder("run_id = @run");
        void Add(string condition, string name, object value) { where.Append(" AND ").Append(condition); args.Add((name, value)); }
        if (f.Environment is { } env) Add("environment = @env", "@env", env);
        if (f.FromStep is { } from) Add("step >= @from", "@from", from);
        if (f.ToStep is { } to) Add("step <= @to", "@to", to);
        if (f.MinReward is { } rmin) Add("reward >= @rmin", "@rmin", rmin);
        if (f.MaxReward is { } rmax) Add("reward <= @rmax", "@rmax", rmax);
        if (f.MinAdvantage is { } amin) Add("advantage >= @amin", "@amin", amin);
        if (f.MaxAdvantage is { } amax) Add("advantage <= @amax", "@amax", amax);
        if (f.Truncated is { } t) Add("truncated = @trunc", "@trunc", t ? 1 : 0);
        if (f.Masked is { } m) where.Append(m ? " AND masked_reason IS NOT NULL" : " AND masked_reason IS NULL");
        if (f.MinTurns is { } tmin) Add("turns >= @tmin", "@tmin", tmin);
        if (f.MaxTurns is { } tmax) Add("turns <= @tmax", "@tmax", tmax);
        if (f.MinLength is { } lmin) Add("generated_tokens >= @lmin", "@lmin", lmin);
        if (f.MaxLength is { } lmax) Add("generated_tokens <= @lmax", "@lmax", lmax);
        if (f.TaskId is { } task) Add("task_id = @task", "@task", task);
        if (f.Text is { Length: > 0 } text)
        {
            // LIKE's wildcards in the text are escaped, so the text matches as written.
            string pattern = "%" + text.ToLowerInvariant().Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_") + "%";
            Add("search_text LIKE @text ESCAPE '\\'", "@text", pattern);
        }
        return (where.ToString(), args);
    }

    private static string OrderClause(RolloutFilter f)
    {
        // Descending reverses every key (ties too), so an index can be read backwards.
        string d = f.Descending ? " DESC" : "";
        string key = $"step{d}, task_id{d}, sample_index{d}";
        return f.Sort switch
        {
            RolloutSort.Step => key,
            RolloutSort.Reward => $"reward{d}, {key}",
            // The IS NULL term puts rollouts without an advantage last in both databases (they order NULLs differently).
            RolloutSort.Advantage => $"(advantage IS NULL), advantage{d}, {key}",
            RolloutSort.Length => $"generated_tokens{d}, {key}",
            RolloutSort.Turns => $"turns{d}, {key}",
            RolloutSort.TaskId => $"task_id{d}, step{d}, sample_index{d}",
            _ => throw new ArgumentOutOfRangeException(nameof(f), f.Sort, "unknown sort"),
        };
    }

    public async Task<RolloutPage> ReadRolloutPageAsync(RolloutFilter f, CancellationToken ct = default)
    {
        var (where, args) = FilterClause(f);
        await using var c = await OpenConnectionAsync(ct);
        long total;
        int countLimit = Math.Max(1, f.CountLimit);
        await using (var count = Cmd(c, null, $"SELECT COUNT(*) FROM (SELECT 1 FROM gym_rollouts WHERE {where} LIMIT @countlimit) AS matches", [.. args, ("@countlimit", countLimit + 1)]))
            total = Convert.ToInt64(await count.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
        var rows = new List<RolloutSummary>();
        await using var cmd = Cmd(c, null, $"""
            SELECT step, task_id, sample_index, environment, reward, shaped_reward, advantage, truncated, turns, generated_tokens, masked_reason, reason
            FROM gym_rollouts WHERE {where} ORDER BY {OrderClause(f)} LIMIT @limit OFFSET @offset
            """, [.. args, ("@limit", Math.Clamp(f.Limit, 0, 1000)), ("@offset", Math.Max(0, f.Offset))]);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            rows.Add(new RolloutSummary(f.RunId, r.GetInt32(0), r.GetString(1), r.GetInt32(2), r.GetString(3), r.GetDouble(4), r.GetDouble(5),
                r.IsDBNull(6) ? null : r.GetDouble(6), r.GetInt32(7) != 0, r.GetInt32(8), r.GetInt32(9), r.IsDBNull(10) ? null : r.GetString(10), r.GetString(11)));
        return total > countLimit ? new RolloutPage(rows, countLimit, TotalIsAtLeast: true) : new RolloutPage(rows, total);
    }

    public async Task<StoredRollout?> ReadRolloutAsync(string runId, int step, string taskId, int sampleIndex, CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, $"SELECT {RolloutColumns} FROM gym_rollouts WHERE run_id = @run AND step = @step AND task_id = @task AND sample_index = @sample",
            ("@run", runId), ("@step", step), ("@task", taskId), ("@sample", sampleIndex));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? RolloutFromRow(runId, r) : null;
    }

    public async Task<IReadOnlyList<StoredRollout>> ReadGroupAsync(string runId, int step, string taskId, CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, $"SELECT {RolloutColumns} FROM gym_rollouts WHERE run_id = @run AND step = @step AND task_id = @task ORDER BY sample_index",
            ("@run", runId), ("@step", step), ("@task", taskId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var all = new List<StoredRollout>();
        while (await r.ReadAsync(ct)) all.Add(RolloutFromRow(runId, r));
        return all;
    }

    public async IAsyncEnumerable<(int Step, string MetricsJson)> ReadStepMetricsAsync(string runId, int afterStep, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var c = await OpenConnectionAsync(ct);
        await using var cmd = Cmd(c, null, "SELECT step, metrics_json FROM gym_steps WHERE run_id = @run AND step > @after ORDER BY step", ("@run", runId), ("@after", afterStep));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) yield return (r.GetInt32(0), r.GetString(1));
    }
}
