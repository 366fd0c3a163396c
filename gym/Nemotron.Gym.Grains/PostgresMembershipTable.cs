using System.Text.Json;
using Npgsql;
using Orleans.Runtime;

namespace Nemotron.Gym.Grains;

/// <summary>
/// Cluster membership in PostgreSQL (over Npgsql), so silos on several machines form one cluster.
/// Orleans' own ADO.NET clustering needs Microsoft's SQL scripts, which its package does not ship; this table is ours.
/// <para>
/// Two tables: one version row per cluster (the table version and its etag) and one row per silo (the entry as JSON,
/// a row etag, and the columns queries need). Inserts and updates lock the version row, compare its etag with the
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
    private const long SchemaLock = 0x67796d5f6d656d; // "gym_mem"

    private async Task<NpgsqlConnection> Open()
    {
        var c = new NpgsqlConnection(connectionString);
        await c.OpenAsync();
        return c;
    }

    private NpgsqlCommand Command(NpgsqlConnection c, string sql, NpgsqlTransaction? tx = null)
    {
        var cmd = new NpgsqlCommand(sql, c, tx);
        cmd.Parameters.AddWithValue("c", clusterId);
        return cmd;
    }

    /// <inheritdoc />
    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        await using var c = await Open();
        await using var tx = await c.BeginTransactionAsync();
        // CREATE TABLE IF NOT EXISTS is not safe against a concurrent CREATE of the same table (a unique violation
        // in the catalog): the advisory lock makes the second silo wait, then find the tables there.
        await using (var cmd = new NpgsqlCommand($"""
            SELECT pg_advisory_xact_lock({SchemaLock});
            CREATE TABLE IF NOT EXISTS gym_membership_version (
                cluster_id TEXT PRIMARY KEY, version INT NOT NULL, etag TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS gym_membership (
                cluster_id TEXT NOT NULL, address TEXT NOT NULL, etag BIGINT NOT NULL, status INT NOT NULL,
                entry_json TEXT NOT NULL, start_time TIMESTAMPTZ NOT NULL, i_am_alive TIMESTAMPTZ NOT NULL, last_vote TIMESTAMPTZ,
                PRIMARY KEY (cluster_id, address));
            """, c, tx))
            await cmd.ExecuteNonQueryAsync();
        if (tryInitTableVersion)
        {
            await using var init = Command(c, "INSERT INTO gym_membership_version VALUES (@c, 0, @e) ON CONFLICT DO NOTHING", tx);
            init.Parameters.AddWithValue("e", NewEtag());
            await init.ExecuteNonQueryAsync();
        }
        await tx.CommitAsync();
    }

    /// <inheritdoc />
    public async Task DeleteMembershipTableEntries(string clusterId)
    {
        await using var c = await Open();
        await using var cmd = new NpgsqlCommand("DELETE FROM gym_membership WHERE cluster_id = @c; DELETE FROM gym_membership_version WHERE cluster_id = @c", c);
        cmd.Parameters.AddWithValue("c", clusterId);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <inheritdoc />
    public async Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate)
    {
        // Every entry that is not Active and has shown no sign of life (start, heartbeat, or a vote against it) since
        // beforeDate: a recent death vote keeps a dead entry, so silos still see that it died.
        await using var c = await Open();
        await using var cmd = Command(c, """
            DELETE FROM gym_membership WHERE cluster_id = @c AND status <> @active
              AND GREATEST(start_time, i_am_alive, last_vote) < @before
            """);
        cmd.Parameters.AddWithValue("active", (int)SiloStatus.Active);
        cmd.Parameters.AddWithValue("before", beforeDate.UtcDateTime);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <inheritdoc />
    public Task<MembershipTableData> ReadRow(SiloAddress key) => Read(key);

    /// <inheritdoc />
    public Task<MembershipTableData> ReadAll() => Read(null);

    private async Task<MembershipTableData> Read(SiloAddress? key)
    {
        // One statement, one snapshot: the version and the rows are read together.
        await using var c = await Open();
        await using var cmd = Command(c, """
            SELECT v.version, v.etag, m.entry_json, m.etag, m.i_am_alive
            FROM gym_membership_version v LEFT JOIN gym_membership m ON m.cluster_id = v.cluster_id
            """ + (key != null ? " AND m.address = @a" : "") + " WHERE v.cluster_id = @c");
        if (key != null) cmd.Parameters.AddWithValue("a", key.ToParsableString());
        var rows = new List<Tuple<MembershipEntry, string>>();
        TableVersion? version = null;
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
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
    public async Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        await using var c = await Open();
        await using var tx = await c.BeginTransactionAsync();
        if (!await LockVersion(c, tx, tableVersion)) return false;
        await using (var cmd = Command(c, """
            INSERT INTO gym_membership (cluster_id, address, etag, status, entry_json, start_time, i_am_alive, last_vote)
            VALUES (@c, @a, 0, @s, @j, @start, @alive, @vote) ON CONFLICT DO NOTHING
            """, tx))
        {
            AddEntry(cmd, entry);
            cmd.Parameters.AddWithValue("alive", Utc(entry.IAmAliveTime));
            if (await cmd.ExecuteNonQueryAsync() != 1) return false; // the silo is already there
        }
        await SetVersion(c, tx, tableVersion.Version);
        await tx.CommitAsync();
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        if (!long.TryParse(etag, out long rowEtag)) return false;
        await using var c = await Open();
        await using var tx = await c.BeginTransactionAsync();
        if (!await LockVersion(c, tx, tableVersion)) return false;
        // The I-am-alive column is the heartbeat's: a membership change carries whatever time its caller last read,
        // which may be older than the latest heartbeat.
        await using (var cmd = Command(c, """
            UPDATE gym_membership SET etag = etag + 1, status = @s, entry_json = @j, start_time = @start, last_vote = @vote,
                i_am_alive = GREATEST(i_am_alive, @alive)
            WHERE cluster_id = @c AND address = @a AND etag = @e
            """, tx))
        {
            AddEntry(cmd, entry);
            cmd.Parameters.AddWithValue("alive", Utc(entry.IAmAliveTime));
            cmd.Parameters.AddWithValue("e", rowEtag);
            if (await cmd.ExecuteNonQueryAsync() != 1) return false; // no such silo, or its row changed since it was read
        }
        await SetVersion(c, tx, tableVersion.Version);
        await tx.CommitAsync();
        return true;
    }

    /// <inheritdoc />
    public async Task UpdateIAmAlive(MembershipEntry entry)
    {
        await using var c = await Open();
        await using var cmd = Command(c, "UPDATE gym_membership SET i_am_alive = @alive WHERE cluster_id = @c AND address = @a");
        cmd.Parameters.AddWithValue("a", entry.SiloAddress.ToParsableString());
        cmd.Parameters.AddWithValue("alive", Utc(entry.IAmAliveTime));
        await cmd.ExecuteNonQueryAsync();
    }

    // Locks the cluster's version row for this transaction; false when its etag is not the one the caller read.
    private async Task<bool> LockVersion(NpgsqlConnection c, NpgsqlTransaction tx, TableVersion expected)
    {
        await using var cmd = Command(c, "SELECT etag FROM gym_membership_version WHERE cluster_id = @c FOR UPDATE", tx);
        object? current = await cmd.ExecuteScalarAsync();
        if (current is not string etag)
            throw new InvalidOperationException($"membership table for cluster '{clusterId}' is not initialized (no version row)");
        return etag == expected.VersionEtag;
    }

    private async Task SetVersion(NpgsqlConnection c, NpgsqlTransaction tx, int version)
    {
        await using var cmd = Command(c, "UPDATE gym_membership_version SET version = @v, etag = @e WHERE cluster_id = @c", tx);
        cmd.Parameters.AddWithValue("v", version);
        cmd.Parameters.AddWithValue("e", NewEtag());
        await cmd.ExecuteNonQueryAsync();
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
