using System.Text.Json;
using Npgsql;
using Orleans.Runtime;

namespace Nemotron.Gym.Grains;

/// <summary>
/// Cluster membership in PostgreSQL (over Npgsql), so silos on several machines form one cluster.
/// Orleans' own ADO.NET clustering needs Microsoft's SQL scripts, which its package does not ship; this table is ours.
/// <para>
/// Two tables: silo_membership_version, one row per cluster (the table version and its etag), and silo_membership,
/// one row per silo (the entry as JSON, a row etag, and the columns queries need). Not gym_*: the rollout store, which
/// may share the database, treats every gym_* table as its own. Inserts and updates lock the version row, compare its etag with the
/// caller's, write the silo row and the new version, all in one transaction, so two silos that read the same version
/// cannot both write. Heartbeats touch only the I-am-alive column and change neither etag: a silo's heartbeat must
/// not make another silo's pending membership change fail.
/// </para>
/// </summary>
public sealed class PostgresMembershipTable(string connectionString, string clusterId) : IMembershipTable
{
    private sealed record Suspect(string Silo, DateTime Time);

    private sealed record Row(string Address, int Status, int ProxyPort, string? HostName, string? SiloName, string? RoleName,
        int UpdateZone, int FaultZone, DateTime StartTime, List<Suspect>? Suspects);

    // Any fixed key: it serializes schema creation across silos starting at the same moment.
    private const long SchemaLock = 0x73696c6f5f6d656d; // "silo_mem"

    private async Task<NpgsqlConnection> Open(CancellationToken ct)
    {
        var c = new NpgsqlConnection(connectionString);
        await c.OpenAsync(ct);
        return c;
    }

    private NpgsqlCommand Command(NpgsqlConnection c, string sql, NpgsqlTransaction? tx = null)
    {
        var cmd = new NpgsqlCommand(sql, c, tx);
        cmd.Parameters.AddWithValue("c", clusterId);
        return cmd;
    }

    // Orleans calls the cancellation-aware members; the plain ones (obsolete in Orleans) forward to them.

    /// <inheritdoc />
    public Task InitializeMembershipTable(bool tryInitTableVersion) => InitializeMembershipTableAsync(tryInitTableVersion, default);
    /// <inheritdoc />
    public Task DeleteMembershipTableEntries(string clusterId) => DeleteMembershipTableEntriesAsync(clusterId, default);
    /// <inheritdoc />
    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => CleanupDefunctSiloEntriesAsync(beforeDate, default);
    /// <inheritdoc />
    public Task<MembershipTableData> ReadRow(SiloAddress key) => ReadRowAsync(key, default);
    /// <inheritdoc />
    public Task<MembershipTableData> ReadAll() => ReadAllAsync(default);
    /// <inheritdoc />
    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => InsertRowAsync(entry, tableVersion, default);
    /// <inheritdoc />
    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => UpdateRowAsync(entry, etag, tableVersion, default);
    /// <inheritdoc />
    public Task UpdateIAmAlive(MembershipEntry entry) => UpdateIAmAliveAsync(entry, default);

    /// <inheritdoc />
    public async Task InitializeMembershipTableAsync(bool tryInitTableVersion, CancellationToken cancellationToken)
    {
        var ct = cancellationToken;
        await using var c = await Open(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        // CREATE TABLE IF NOT EXISTS is not safe against a concurrent CREATE of the same table (a unique violation
        // in the catalog): the advisory lock makes the second silo wait, then find the tables there.
        await using (var cmd = new NpgsqlCommand($"""
            SELECT pg_advisory_xact_lock({SchemaLock});
            CREATE TABLE IF NOT EXISTS silo_membership_version (
                cluster_id TEXT PRIMARY KEY, version INT NOT NULL, etag TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS silo_membership (
                cluster_id TEXT NOT NULL, address TEXT NOT NULL, etag BIGINT NOT NULL, status INT NOT NULL,
                entry_json TEXT NOT NULL, start_time TIMESTAMPTZ NOT NULL, i_am_alive TIMESTAMPTZ NOT NULL, last_vote TIMESTAMPTZ,
                PRIMARY KEY (cluster_id, address));
            """, c, tx))
            await cmd.ExecuteNonQueryAsync(ct);
        if (tryInitTableVersion)
        {
            await using var init = Command(c, "INSERT INTO silo_membership_version VALUES (@c, 0, @e) ON CONFLICT DO NOTHING", tx);
            init.Parameters.AddWithValue("e", NewEtag());
            await init.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    /// <inheritdoc />
    public async Task DeleteMembershipTableEntriesAsync(string clusterId, CancellationToken cancellationToken)
    {
        await using var c = await Open(cancellationToken);
        await using var cmd = new NpgsqlCommand("DELETE FROM silo_membership WHERE cluster_id = @c; DELETE FROM silo_membership_version WHERE cluster_id = @c", c);
        cmd.Parameters.AddWithValue("c", clusterId);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task CleanupDefunctSiloEntriesAsync(DateTimeOffset beforeDate, CancellationToken cancellationToken)
    {
        // Every entry that is not Active and has shown no sign of life (start, heartbeat, or a vote against it) since
        // beforeDate: a recent death vote keeps a dead entry, so silos still see that it died.
        await using var c = await Open(cancellationToken);
        await using var cmd = Command(c, """
            DELETE FROM silo_membership WHERE cluster_id = @c AND status <> @active
              AND GREATEST(start_time, i_am_alive, last_vote) < @before
            """);
        cmd.Parameters.AddWithValue("active", (int)SiloStatus.Active);
        cmd.Parameters.AddWithValue("before", beforeDate.UtcDateTime);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<MembershipTableData> ReadRowAsync(SiloAddress key, CancellationToken cancellationToken) => Read(key, cancellationToken);

    /// <inheritdoc />
    public Task<MembershipTableData> ReadAllAsync(CancellationToken cancellationToken) => Read(null, cancellationToken);

    private async Task<MembershipTableData> Read(SiloAddress? key, CancellationToken ct)
    {
        // One statement, one snapshot: the version and the rows are read together.
        await using var c = await Open(ct);
        await using var cmd = Command(c, """
            SELECT v.version, v.etag, m.entry_json, m.etag, m.i_am_alive
            FROM silo_membership_version v LEFT JOIN silo_membership m ON m.cluster_id = v.cluster_id
            """ + (key != null ? " AND m.address = @a" : "") + " WHERE v.cluster_id = @c");
        if (key != null) cmd.Parameters.AddWithValue("a", key.ToParsableString());
        var rows = new List<Tuple<MembershipEntry, string>>();
        TableVersion? version = null;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                version ??= new TableVersion(r.GetInt32(0), r.GetString(1));
                if (!r.IsDBNull(2))
                    rows.Add(Tuple.Create(ToEntry(r.GetString(2), r.GetFieldValue<DateTime>(4)), r.GetInt64(3).ToString()));
            }
        }
        // No version row: no silo has initialized the table yet (a client may read first); it is empty at version 0.
        return new MembershipTableData(rows, version ?? new TableVersion(0, "0"));
    }

    /// <inheritdoc />
    public async Task<bool> InsertRowAsync(MembershipEntry entry, TableVersion tableVersion, CancellationToken cancellationToken)
    {
        var ct = cancellationToken;
        await using var c = await Open(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        if (!await LockVersion(c, tx, tableVersion, ct)) return false;
        await using (var cmd = Command(c, """
            INSERT INTO silo_membership (cluster_id, address, etag, status, entry_json, start_time, i_am_alive, last_vote)
            VALUES (@c, @a, 0, @s, @j, @start, @alive, @vote) ON CONFLICT DO NOTHING
            """, tx))
        {
            AddEntry(cmd, entry);
            cmd.Parameters.AddWithValue("alive", Utc(entry.IAmAliveTime));
            if (await cmd.ExecuteNonQueryAsync(ct) != 1) return false; // the silo is already there
        }
        await SetVersion(c, tx, tableVersion.Version, ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, TableVersion tableVersion, CancellationToken cancellationToken)
    {
        var ct = cancellationToken;
        if (!long.TryParse(etag, out long rowEtag)) return false;
        await using var c = await Open(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        if (!await LockVersion(c, tx, tableVersion, ct)) return false;
        // The I-am-alive column is the heartbeat's: a membership change carries whatever time its caller last read,
        // which may be older than the latest heartbeat.
        await using (var cmd = Command(c, """
            UPDATE silo_membership SET etag = etag + 1, status = @s, entry_json = @j, start_time = @start, last_vote = @vote,
                i_am_alive = GREATEST(i_am_alive, @alive)
            WHERE cluster_id = @c AND address = @a AND etag = @e
            """, tx))
        {
            AddEntry(cmd, entry);
            cmd.Parameters.AddWithValue("alive", Utc(entry.IAmAliveTime));
            cmd.Parameters.AddWithValue("e", rowEtag);
            if (await cmd.ExecuteNonQueryAsync(ct) != 1) return false; // no such silo, or its row changed since it was read
        }
        await SetVersion(c, tx, tableVersion.Version, ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <inheritdoc />
    public async Task UpdateIAmAliveAsync(MembershipEntry entry, CancellationToken cancellationToken)
    {
        await using var c = await Open(cancellationToken);
        await using var cmd = Command(c, "UPDATE silo_membership SET i_am_alive = @alive WHERE cluster_id = @c AND address = @a");
        cmd.Parameters.AddWithValue("a", entry.SiloAddress.ToParsableString());
        cmd.Parameters.AddWithValue("alive", Utc(entry.IAmAliveTime));
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    // Locks the cluster's version row for this transaction; false when its etag is not the one the caller read.
    private async Task<bool> LockVersion(NpgsqlConnection c, NpgsqlTransaction tx, TableVersion expected, CancellationToken ct)
    {
        await using var cmd = Command(c, "SELECT etag FROM silo_membership_version WHERE cluster_id = @c FOR UPDATE", tx);
        object? current = await cmd.ExecuteScalarAsync(ct);
        if (current is not string etag)
            throw new InvalidOperationException($"membership table for cluster '{clusterId}' is not initialized (no version row)");
        return etag == expected.VersionEtag;
    }

    private async Task SetVersion(NpgsqlConnection c, NpgsqlTransaction tx, int version, CancellationToken ct)
    {
        await using var cmd = Command(c, "UPDATE silo_membership_version SET version = @v, etag = @e WHERE cluster_id = @c", tx);
        cmd.Parameters.AddWithValue("v", version);
        cmd.Parameters.AddWithValue("e", NewEtag());
        await cmd.ExecuteNonQueryAsync(ct);
    }

    // Unique, not a counter: after DeleteMembershipTableEntries a fresh version row must not reuse an old etag.
    private static string NewEtag() => Guid.NewGuid().ToString("N");

    private static void AddEntry(NpgsqlCommand cmd, MembershipEntry e)
    {
        cmd.Parameters.AddWithValue("a", e.SiloAddress.ToParsableString());
        cmd.Parameters.AddWithValue("s", (int)e.Status);
        cmd.Parameters.AddWithValue("j", ToJson(e));
        cmd.Parameters.AddWithValue("start", Utc(e.StartTime));
        var lastVote = e.SuspectTimes is { Count: > 0 } votes ? Utc(votes.Max(v => v.Item2)) : (object)DBNull.Value;
        cmd.Parameters.Add(new NpgsqlParameter("vote", NpgsqlTypes.NpgsqlDbType.TimestampTz) { Value = lastVote });
    }

    // Orleans' times are UTC whatever their Kind says (it compares them as UTC); timestamptz wants Kind=Utc.
    private static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);

    private static string ToJson(MembershipEntry e) => JsonSerializer.Serialize(new Row(e.SiloAddress.ToParsableString(), (int)e.Status, e.ProxyPort,
        e.HostName, e.SiloName, e.RoleName, e.UpdateZone, e.FaultZone, Utc(e.StartTime),
        e.SuspectTimes?.Select(s => new Suspect(s.Item1.ToParsableString(), Utc(s.Item2))).ToList()));

    private static MembershipEntry ToEntry(string json, DateTime iAmAlive)
    {
        var r = JsonSerializer.Deserialize<Row>(json) ?? throw new InvalidDataException($"membership entry is unreadable: {json}");
        return new MembershipEntry
        {
            SiloAddress = SiloAddress.FromParsableString(r.Address), Status = (SiloStatus)r.Status, ProxyPort = r.ProxyPort,
            HostName = r.HostName!, SiloName = r.SiloName!, RoleName = r.RoleName, UpdateZone = r.UpdateZone, FaultZone = r.FaultZone,
            StartTime = Utc(r.StartTime), IAmAliveTime = Utc(iAmAlive),
            SuspectTimes = r.Suspects?.Select(s => Tuple.Create(SiloAddress.FromParsableString(s.Silo), Utc(s.Time))).ToList(),
        };
    }
}
