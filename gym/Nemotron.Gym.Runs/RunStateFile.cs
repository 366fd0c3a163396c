using Microsoft.Data.Sqlite;

namespace Nemotron.Gym.Runs;

/// <summary>
/// Where a one-process run keeps its run-grain state: <c>gym-state.db</c> inside the run folder, so the state goes
/// wherever the run's checkpoints go and deleting the folder deletes the run. Earlier versions kept one
/// <c>gym-state.db</c> beside the run folders (in their parent); a run found there is moved into its folder the first
/// time it is run again.
/// </summary>
public static class RunStateFile
{
    /// <summary>The state file's name.</summary>
    public const string FileName = "gym-state.db";

    /// <summary>The state file of the run in <paramref name="runFolder"/>.</summary>
    public static string PathFor(string runFolder) => Path.Combine(Path.GetFullPath(runFolder), FileName);

    /// <summary>The shared state file earlier versions used for <paramref name="runFolder"/>.</summary>
    public static string LegacyPathFor(string runFolder) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(runFolder).TrimEnd(Path.DirectorySeparatorChar))!, FileName);

    /// <summary>
    /// Moves the state of run <paramref name="runId"/> from the legacy shared file into the run folder's own file, when
    /// the folder still holds that run (its config record) and has no state file yet. The row is copied first and
    /// deleted from the shared file only after the copy is committed, so a kill in between leaves a copy, never none.
    /// Returns true when a state was moved.
    /// </summary>
    public static bool MoveLegacyState(string runFolder, string runId)
    {
        string target = PathFor(runFolder), legacy = LegacyPathFor(runFolder);
        if (File.Exists(target) || !File.Exists(legacy) || !File.Exists(Path.Combine(runFolder, "config.yaml"))) return false;
        var rows = new List<(string GrainId, string StateName, long Etag, string Json, string Updated)>();
        using (var from = Open(legacy, SqliteOpenMode.ReadOnly))
        {
            using var find = from.CreateCommand();
            find.CommandText = "SELECT grain_id, state_name, etag, state_json, updated FROM grain_state WHERE state_name = 'run' AND grain_id LIKE @suffix ESCAPE '\\'";
            find.Parameters.AddWithValue("@suffix", "%/" + runId.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_"));
            try
            {
                using var r = find.ExecuteReader();
                while (r.Read()) rows.Add((r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3), r.GetString(4)));
            }
            catch (SqliteException e)
            {
                throw new InvalidDataException($"{legacy}: cannot read the run state kept there by an earlier version ({e.Message}); move or delete the file", e);
            }
        }
        if (rows.Count == 0) return false;
        // The schema is the grain storage's own; it is created here so the copy lands in the same table.
        var temp = target + ".moving";
        if (File.Exists(temp)) File.Delete(temp);
        using (var to = Open(temp, SqliteOpenMode.ReadWriteCreate))
        {
            using var tx = to.BeginTransaction();
            using (var create = to.CreateCommand())
            {
                create.CommandText = "CREATE TABLE IF NOT EXISTS grain_state (grain_id TEXT NOT NULL, state_name TEXT NOT NULL, etag INTEGER NOT NULL, state_json TEXT NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (grain_id, state_name))";
                create.ExecuteNonQuery();
            }
            foreach (var row in rows)
            {
                using var insert = to.CreateCommand();
                insert.CommandText = "INSERT INTO grain_state (grain_id, state_name, etag, state_json, updated) VALUES (@g, @s, @e, @j, @u)";
                insert.Parameters.AddWithValue("@g", row.GrainId);
                insert.Parameters.AddWithValue("@s", row.StateName);
                insert.Parameters.AddWithValue("@e", row.Etag);
                insert.Parameters.AddWithValue("@j", row.Json);
                insert.Parameters.AddWithValue("@u", row.Updated);
                insert.ExecuteNonQuery();
            }
            tx.Commit();
        }
        SqliteConnection.ClearAllPools();
        File.Move(temp, target);
        using (var from = Open(legacy, SqliteOpenMode.ReadWrite))
        {
            foreach (var row in rows)
            {
                using var delete = from.CreateCommand();
                delete.CommandText = "DELETE FROM grain_state WHERE grain_id = @g AND state_name = @s";
                delete.Parameters.AddWithValue("@g", row.GrainId);
                delete.Parameters.AddWithValue("@s", row.StateName);
                delete.ExecuteNonQuery();
            }
        }
        SqliteConnection.ClearAllPools();
        return true;
    }

    private static SqliteConnection Open(string path, SqliteOpenMode mode)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString());
        c.Open();
        return c;
    }
}
