using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Nemotron.Gym.Store;

/// <summary>
/// A store in one SQLite file. WAL mode lets readers (the web UI) run beside a writer; a busy timeout makes a writer
/// in another process wait for the file lock instead of failing; write transactions are BEGIN IMMEDIATE, so they queue.
/// </summary>
internal sealed class SqliteRolloutStore(string path, bool readOnly = false) : SqlRolloutStore(path)
{
    private const int BusyTimeoutSeconds = 60;

    private readonly string _connectionString = new SqliteConnectionStringBuilder
    {
        DataSource = path, Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = BusyTimeoutSeconds,
    }.ToString();

    protected override string BlobType => "BLOB";
    protected override string RealType => "REAL";
    protected override string KeyTextType => "TEXT"; // SQLite compares text bytewise by default

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        try
        {
            await c.OpenAsync(ct);
            // Per connection: SQLite waits for the lock itself (finer than the driver's retry loop); NORMAL sync is safe in WAL mode.
            await using var cmd = Cmd(c, null, $"PRAGMA busy_timeout = {BusyTimeoutSeconds * 1000}; PRAGMA synchronous = NORMAL;");
            await cmd.ExecuteNonQueryAsync(ct);
            return c;
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 26) // SQLITE_NOTADB
        {
            await c.DisposeAsync();
            throw new InvalidDataException($"{Name}: not a SQLite database, so not a Nemotron.Gym rollout store", e);
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    protected override async Task PrepareAsync(DbConnection c, CancellationToken ct)
    {
        try
        {
            await using var cmd = Cmd(c, null, "PRAGMA journal_mode = WAL");
            await cmd.ExecuteNonQueryAsync(ct);
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 26)
        {
            throw new InvalidDataException($"{Name}: not a SQLite database, so not a Nemotron.Gym rollout store", e);
        }
    }

    // BEGIN IMMEDIATE (the driver's default) already holds the write lock.
    protected override Task LockSchemaAsync(DbConnection c, DbTransaction tx, CancellationToken ct) => Task.CompletedTask;

    protected override async Task<List<string>> RelevantTablesAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        var tables = new List<string>();
        await using var cmd = Cmd(c, tx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) tables.Add(r.GetString(0));
        return tables;
    }

    public override ValueTask DisposeAsync()
    {
        // Closes this file's pooled connections, so the file can be moved or deleted once the store is gone.
        using var c = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(c);
        return ValueTask.CompletedTask;
    }
}
