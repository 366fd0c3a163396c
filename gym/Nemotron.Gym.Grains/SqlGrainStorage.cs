using System.Data.Common;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using Orleans.Storage;

namespace Nemotron.Gym.Grains;

/// <summary>
/// Grain state as JSON rows in SQLite (a file beside the runs, the embedded default) or PostgreSQL (a cluster),
/// with an etag per row so two activations can never overwrite each other's state silently.
/// Connection: "sqlite:PATH" or "postgres:CONNECTION-STRING".
/// </summary>
public sealed class SqlGrainStorage : IGrainStorage
{
    private readonly string _connection;
    private readonly bool _postgres;
    private readonly SemaphoreSlim _schema = new(1, 1);
    private const long SchemaLock = 0x677261696e5f7374; // "grain_st"
    private bool _ready;

    public SqlGrainStorage(string connection)
    {
        if (connection.StartsWith("sqlite:", StringComparison.Ordinal))
        {
            var path = Path.GetFullPath(connection["sqlite:".Length..]);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            _connection = new SqliteConnectionStringBuilder { DataSource = path, DefaultTimeout = 30, Pooling = true }.ToString();
        }
        else if (connection.StartsWith("postgres:", StringComparison.Ordinal))
        {
            _connection = connection["postgres:".Length..];
            _postgres = true;
        }
        else throw new ArgumentException($"grain storage: expected 'sqlite:PATH' or 'postgres:CONNECTION-STRING', got '{connection}'");
    }

    private async Task<DbConnection> OpenAsync()
    {
        DbConnection c = _postgres ? new NpgsqlConnection(_connection) : new SqliteConnection(_connection);
        await c.OpenAsync();
        if (!_ready)
        {
            await _schema.WaitAsync();
            try
            {
                if (!_ready)
                {
                    const string create = "CREATE TABLE IF NOT EXISTS grain_state (grain_id TEXT NOT NULL, state_name TEXT NOT NULL, etag INTEGER NOT NULL, state_json TEXT NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (grain_id, state_name))";
                    // On PostgreSQL, two silos starting together can both pass IF NOT EXISTS and collide in the catalog;
                    // the advisory lock (held to the end of this one-batch transaction) makes the second wait instead.
                    await Exec(c, _postgres ? $"SELECT pg_advisory_xact_lock({SchemaLock}); {create};" : $"PRAGMA journal_mode=WAL; {create};");
                    _ready = true;
                }
            }
            finally { _schema.Release(); }
        }
        return c;
    }

    private static async Task Exec(DbConnection c, string sql)
    {
        if (sql.Length == 0) return;
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }

    private static DbCommand Command(DbConnection c, string sql, params (string Name, object Value)[] args)
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

    /// <inheritdoc />
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await using var c = await OpenAsync();
        await using var cmd = Command(c, "SELECT etag, state_json FROM grain_state WHERE grain_id = @g AND state_name = @s", ("@g", grainId.ToString()), ("@s", stateName));
        await using var r = await cmd.ExecuteReaderAsync();
        if (!await r.ReadAsync())
        {
            grainState.State = Activator.CreateInstance<T>();
            grainState.ETag = null;
            grainState.RecordExists = false;
            return;
        }
        long etag = r.GetInt64(0);
        try { grainState.State = JsonSerializer.Deserialize<T>(r.GetString(1)) ?? Activator.CreateInstance<T>(); }
        catch (JsonException e) { throw new InvalidDataException($"grain state {grainId}/{stateName}: stored JSON is unreadable ({e.Message})", e); }
        grainState.ETag = etag.ToString();
        grainState.RecordExists = true;
    }

    /// <inheritdoc />
    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string json = JsonSerializer.Serialize(grainState.State);
        string now = DateTimeOffset.UtcNow.ToString("O");
        await using var c = await OpenAsync();
        int changed;
        long next;
        if (grainState.ETag == null)
        {
            next = 1;
            await using var cmd = Command(c, "INSERT INTO grain_state (grain_id, state_name, etag, state_json, updated) VALUES (@g, @s, 1, @j, @u) ON CONFLICT DO NOTHING",
                ("@g", grainId.ToString()), ("@s", stateName), ("@j", json), ("@u", now));
            changed = await cmd.ExecuteNonQueryAsync();
        }
        else
        {
            long etag = long.Parse(grainState.ETag);
            next = etag + 1;
            await using var cmd = Command(c, "UPDATE grain_state SET etag = @n, state_json = @j, updated = @u WHERE grain_id = @g AND state_name = @s AND etag = @e",
                ("@g", grainId.ToString()), ("@s", stateName), ("@j", json), ("@u", now), ("@e", etag), ("@n", next));
            changed = await cmd.ExecuteNonQueryAsync();
        }
        if (changed != 1)
            throw new InconsistentStateException($"grain state {grainId}/{stateName}: written by someone else since it was read (etag {grainState.ETag ?? "none"})", "", grainState.ETag ?? "");
        grainState.ETag = next.ToString();
        grainState.RecordExists = true;
    }

    /// <inheritdoc />
    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await using var c = await OpenAsync();
        await using var cmd = Command(c, "DELETE FROM grain_state WHERE grain_id = @g AND state_name = @s", ("@g", grainId.ToString()), ("@s", stateName));
        await cmd.ExecuteNonQueryAsync();
        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = Activator.CreateInstance<T>();
    }

    /// <summary>Every stored state of one name, as (grain id, JSON): for listing runs without a silo.</summary>
    public async Task<IReadOnlyList<(string GrainId, string Json)>> ReadAllAsync(string stateName)
    {
        await using var c = await OpenAsync();
        await using var cmd = Command(c, "SELECT grain_id, state_json FROM grain_state WHERE state_name = @s ORDER BY grain_id", ("@s", stateName));
        await using var r = await cmd.ExecuteReaderAsync();
        var all = new List<(string, string)>();
        while (await r.ReadAsync()) all.Add((r.GetString(0), r.GetString(1)));
        return all;
    }
}
