using System.Text.Json;
using Npgsql;
using Orleans.Runtime;

namespace Nemotron.Gym.Grains;

/// <summary>
/// Cluster membership in PostgreSQL (over ADO.NET/Npgsql), so silos on several machines form one cluster.
/// Orleans' own ADO.NET clustering needs Microsoft's SQL scripts, which its package does not ship; this table is
/// ours. Every change is one transaction that checks the table version's etag (Orleans' optimistic protocol);
/// I-am-alive heartbeats are a column of their own so they never contend with membership changes.
/// </summary>
public sealed class PostgresMembershipTable(string connectionString, string clusterId) : IMembershipTable
{
    private sealed record Row(string Address, int Status, int ProbePort, string HostName, string SiloName, string RoleName,
        int UpdateZone, int FaultZone, DateTime StartTime, List<(string Silo, DateTime Time)> Suspects);

    private async Task<NpgsqlConnection> Open()
    {
        var c = new NpgsqlConnection(connectionString);
        await c.OpenAsync();
        return c;
    }

    /// <inheritdoc />
    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        await using var c = await Open();
        await using (var cmd = new NpgsqlCommand("""
            CREATE TABLE IF NOT EXISTS gym_membership_version (cluster_id TEXT PRIMARY KEY, version INT NOT NULL, etag INT NOT NULL);
            CREATE TABLE IF NOT EXISTS gym_membership (cluster_id TEXT NOT NULL, address TEXT NOT NULL, etag INT NOT NULL,
                entry_json TEXT NOT NULL, status INT NOT NULL, i_am_alive TIMESTAMPTZ NOT NULL, PRIMARY KEY (cluster_id, address));
            """, c))
        {
            try { await cmd.ExecuteNonQueryAsync(); }
            catch (PostgresException e) when (e.SqlState is "23505" or "42P07") { } // another silo created them at the same moment
        }
        if (tryInitTableVersion)
        {
            await using var init = new NpgsqlCommand("INSERT INTO gym_membership_version VALUES (@c, 0, 0) ON CONFLICT DO NOTHING", c);
            init.Parameters.AddWithValue("c", clusterId);
            await init.ExecuteNonQueryAsync();
        }
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
        await using var c = await Open();
        await using var cmd = new NpgsqlCommand("DELETE FROM gym_membership WHERE cluster_id = @c AND status = @dead AND i_am_alive < @before", c);
        cmd.Parameters.AddWithValue("c", clusterId);
        cmd.Parameters.AddWithValue("dead", (int)SiloStatus.Dead);
        cmd.Parameters.AddWithValue("before", beforeDate.UtcDateTime);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <inheritdoc />
    public Task<MembershipTableData> ReadRow(SiloAddress key) => Read(key);

    /// <inheritdoc />
    public Task<MembershipTableData> ReadAll() => Read(null);

    private async Task<MembershipTableData> Read(SiloAddress? key)
    {
        await using var c = await Open();
        await using var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        var version = await Version(c, tx, forUpdate: false);
        var rows = new List<Tuple<MembershipEntry, string>>();
        await using (var cmd = new NpgsqlCommand("SELECT entry_json, etag, i_am_alive FROM gym_membership WHERE cluster_id = @c" + (key != null ? " AND address = @a" : ""), c, tx))
        {
            cmd.Parameters.AddWithValue("c", clusterId);
            if (key != null) cmd.Parameters.AddWithValue("a", key.ToParsableString());
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
                rows.Add(Tuple.Create(ToEntry(r.GetString(0), r.GetFieldValue<DateTime>(2)), r.GetInt32(1).ToString()));
        }
        await tx.CommitAsync();
        return new MembershipTableData(rows, version);
    }

    /// <inheritdoc />
    public async Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        await using var c = await Open();
        await using var tx = await c.BeginTransactionAsync();
        var current = await Version(c, tx, forUpdate: true);
        if (current.VersionEtag != tableVersion.VersionEtag) return false;
        await using (var cmd = new NpgsqlCommand("INSERT INTO gym_membership VALUES (@c, @a, 0, @j, @s, @alive) ON CONFLICT DO NOTHING", c, tx))
        {
            cmd.Parameters.AddWithValue("c", clusterId);
            cmd.Parameters.AddWithValue("a", entry.SiloAddress.ToParsableString());
            cmd.Parameters.AddWithValue("j", ToJson(entry));
            cmd.Parameters.AddWithValue("s", (int)entry.Status);
            cmd.Parameters.AddWithValue("alive", entry.IAmAliveTime.ToUniversalTime());
            if (await cmd.ExecuteNonQueryAsync() != 1) return false;
        }
        await SetVersion(c, tx, tableVersion.Version);
        await tx.CommitAsync();
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        await using var c = await Open();
        await using var tx = await c.BeginTransactionAsync();
        var current = await Version(c, tx, forUpdate: true);
        if (current.VersionEtag != tableVersion.VersionEtag) return false;
        await using (var cmd = new NpgsqlCommand("UPDATE gym_membership SET etag = etag + 1, entry_json = @j, status = @s, i_am_alive = @alive WHERE cluster_id = @c AND address = @a AND etag = @e", c, tx))
        {
            cmd.Parameters.AddWithValue("c", clusterId);
            cmd.Parameters.AddWithValue("a", entry.SiloAddress.ToParsableString());
            cmd.Parameters.AddWithValue("j", ToJson(entry));
            cmd.Parameters.AddWithValue("s", (int)entry.Status);
            cmd.Parameters.AddWithValue("alive", entry.IAmAliveTime.ToUniversalTime());
            cmd.Parameters.AddWithValue("e", int.Parse(etag));
            if (await cmd.ExecuteNonQueryAsync() != 1) return false;
        }
        await SetVersion(c, tx, tableVersion.Version);
        await tx.CommitAsync();
        return true;
    }

    /// <inheritdoc />
    public async Task UpdateIAmAlive(MembershipEntry entry)
    {
        await using var c = await Open();
        await using var cmd = new NpgsqlCommand("UPDATE gym_membership SET i_am_alive = @alive WHERE cluster_id = @c AND address = @a", c);
        cmd.Parameters.AddWithValue("c", clusterId);
        cmd.Parameters.AddWithValue("a", entry.SiloAddress.ToParsableString());
        cmd.Parameters.AddWithValue("alive", entry.IAmAliveTime.ToUniversalTime());
        await cmd.ExecuteNonQueryAsync();
    }

    private async Task<TableVersion> Version(NpgsqlConnection c, NpgsqlTransaction tx, bool forUpdate)
    {
        await using var cmd = new NpgsqlCommand("SELECT version, etag FROM gym_membership_version WHERE cluster_id = @c" + (forUpdate ? " FOR UPDATE" : ""), c, tx);
        cmd.Parameters.AddWithValue("c", clusterId);
        await using var r = await cmd.ExecuteReaderAsync();
        if (!await r.ReadAsync()) throw new InvalidOperationException($"membership table for cluster '{clusterId}' is not initialized");
        return new TableVersion(r.GetInt32(0), r.GetInt32(1).ToString());
    }

    private async Task SetVersion(NpgsqlConnection c, NpgsqlTransaction tx, int version)
    {
        await using var cmd = new NpgsqlCommand("UPDATE gym_membership_version SET version = @v, etag = etag + 1 WHERE cluster_id = @c", c, tx);
        cmd.Parameters.AddWithValue("c", clusterId);
        cmd.Parameters.AddWithValue("v", version);
        await cmd.ExecuteNonQueryAsync();
    }

    private static string ToJson(MembershipEntry e) => JsonSerializer.Serialize(new Row(e.SiloAddress.ToParsableString(), (int)e.Status, 0,
        e.HostName ?? "", e.SiloName ?? "", e.RoleName ?? "", e.UpdateZone, e.FaultZone, e.StartTime,
        (e.SuspectTimes ?? []).Select(s => (s.Item1.ToParsableString(), s.Item2)).ToList()), JsonOptions);

    private static MembershipEntry ToEntry(string json, DateTime iAmAlive)
    {
        var r = JsonSerializer.Deserialize<Row>(json, JsonOptions)!;
        return new MembershipEntry
        {
            SiloAddress = SiloAddress.FromParsableString(r.Address), Status = (SiloStatus)r.Status,
            HostName = r.HostName, SiloName = r.SiloName, RoleName = r.RoleName, UpdateZone = r.UpdateZone, FaultZone = r.FaultZone,
            StartTime = r.StartTime, IAmAliveTime = DateTime.SpecifyKind(iAmAlive, DateTimeKind.Utc),
            SuspectTimes = r.Suspects.Select(s => Tuple.Create(SiloAddress.FromParsableString(s.Silo), s.Time)).ToList(),
        };
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { IncludeFields = true };
}
