using Microsoft.Data.Sqlite;
using Npgsql;

namespace Nemotron.Gym.Store;

/// <summary>A store that cannot be reached (a server down, a wrong address); the message names it and what to check.</summary>
public sealed class RolloutStoreUnavailableException(string message, Exception inner) : IOException(message, inner);

/// <summary>Opens rollout stores by connection text.</summary>
public static class RolloutStores
{
    /// <summary>What <see cref="OpenAsync"/> accepts, for messages.</summary>
    public const string AcceptedForms = "sqlite:PATH, a PATH ending in .db, or postgres:NPGSQL-CONNECTION-STRING";

    /// <summary>
    /// Opens (creating or migrating its schema when needed) the store that <paramref name="connection"/> names:
    /// <c>sqlite:PATH</c> or a bare path ending in <c>.db</c> for a SQLite file (WAL mode, made on first open), or
    /// <c>postgres:CONNECTION-STRING</c> (an Npgsql connection string) for PostgreSQL.
    /// </summary>
    /// <exception cref="ArgumentException">The text is none of the accepted forms.</exception>
    /// <exception cref="InvalidDataException">The SQLite file exists but is not a rollout store, or its schema is newer than this build.</exception>
    public static async Task<IRolloutStore> OpenAsync(string connection, CancellationToken ct = default)
    {
        SqlRolloutStore store;
        if (connection.StartsWith("postgres:", StringComparison.Ordinal))
        {
            NpgsqlConnectionStringBuilder builder;
            try { builder = new NpgsqlConnectionStringBuilder(connection["postgres:".Length..]); }
            catch (ArgumentException e) { throw new ArgumentException($"rollout store 'postgres:...': not an Npgsql connection string ({e.Message})", nameof(connection), e); }
            store = new PostgresRolloutStore(builder);
        }
        else if (connection.StartsWith("sqlite:", StringComparison.Ordinal) || (connection.EndsWith(".db", StringComparison.Ordinal) && !connection.Contains("://")))
        {
            string path = connection.StartsWith("sqlite:", StringComparison.Ordinal) ? connection["sqlite:".Length..] : connection;
            if (path.Length == 0) throw new ArgumentException($"rollout store '{connection}': no file path after 'sqlite:' (accepted: {AcceptedForms})", nameof(connection));
            path = Path.GetFullPath(path);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            store = new SqliteRolloutStore(path);
        }
        else throw new ArgumentException($"rollout store '{connection}': unknown form (accepted: {AcceptedForms})", nameof(connection));

        try { await store.InitializeAsync(ct); }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
        return store;
    }
}
