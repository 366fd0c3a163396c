using System.Data.Common;
using Npgsql;

namespace Nemotron.Gym.Store;

/// <summary>
/// A store in a PostgreSQL database (several silos or machines write one). The tables are prefixed gym_ in the
/// connection's schema, so the database can be shared with other things (Orleans membership, for one).
/// </summary>
internal sealed class PostgresRolloutStore(NpgsqlConnectionStringBuilder builder)
    : SqlRolloutStore($"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database ?? builder.Username}")
{
    // Any fixed number: the advisory lock that serializes creating and migrating the schema.
    private const long SchemaLockKey = 0x4E47_5354_4F52_45; // "NGSTORE"

    private readonly NpgsqlDataSource _dataSource = NpgsqlDataSource.Create(builder);

    protected override string BlobType => "BYTEA";
    protected override string RealType => "DOUBLE PRECISION";
    protected override string KeyTextType => "TEXT COLLATE \"C\""; // ordinal order, as in SQLite, whatever the database's locale

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct)
    {
        try { return await _dataSource.OpenConnectionAsync(ct); }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
        {
            throw new RolloutStoreUnavailableException($"rollout store {Name}: cannot connect ({e.Message}): check that the server is running and the connection string's host, port and database", e);
        }
    }

    protected override async Task LockSchemaAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        await using var cmd = Cmd(c, tx, "SELECT pg_advisory_xact_lock(@key)", ("@key", SchemaLockKey));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    protected override async Task<List<string>> RelevantTablesAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        var tables = new List<string>();
        await using var cmd = Cmd(c, tx, """
            SELECT table_name FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_name LIKE 'gym\_%' ORDER BY table_name
            """);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) tables.Add(r.GetString(0));
        return tables;
    }

    public override ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
