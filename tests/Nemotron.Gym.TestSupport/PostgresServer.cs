using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Npgsql;

namespace Nemotron.Gym.TestSupport;

/// <summary>
/// A throwaway PostgreSQL server for tests: <c>initdb</c> into a temp folder, <c>postgres</c> on a free localhost
/// port (its unix socket in the same folder), durability off for speed; stopped and deleted on dispose.
/// Binaries are looked up in $NG_POSTGRES_BIN, on PATH, then in /usr/lib/postgresql/*/bin (Debian's package <c>postgresql</c>). PostgreSQL
/// refuses to run as root, so under root both run as the user <c>postgres</c> (else <c>nobody</c>) via setpriv.
/// </summary>
/// <example>
/// <code>
/// await using var pg = await PostgresServer.StartAsync();
/// string cs = await pg.CreateDatabaseAsync();   // a fresh, empty database; or use pg.ConnectionString
/// await using var store = await RolloutStores.OpenAsync("postgres:" + cs);
/// </code>
/// </example>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string Superuser = "postgres";

    private readonly Process _process;
    private readonly string _folder;
    private readonly ConcurrentQueue<string> _log;

    private PostgresServer(Process process, string folder, int port, ConcurrentQueue<string> log)
    {
        _process = process;
        _folder = folder;
        _log = log;
        Port = port;
        ConnectionString = ConnectionStringFor("postgres");
    }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>An Npgsql connection string to the server's <c>postgres</c> database as the superuser <c>postgres</c> (no password).</summary>
    public string ConnectionString { get; }

    /// <summary>The server's last log lines (for messages when something goes wrong).</summary>
    public string RecentLog => string.Join("\n", _log);

    /// <summary>Initializes a data folder and starts the server; returns once it accepts connections (about 1-2 s).</summary>
    /// <exception cref="InvalidOperationException">No PostgreSQL binaries were found, or the server did not start (the message says why).</exception>
    public static async Task<PostgresServer> StartAsync(CancellationToken ct = default)
    {
        string bin = FindBinaries() ?? throw new InvalidOperationException(
            $"PostgreSQL server binaries (initdb, postgres) were not found ({BinariesVariable}, PATH, /usr/lib/postgresql/*/bin). " +
            "Install them (Debian: apt-get install postgresql; test.sh does this) to run the PostgreSQL tests.");
        var runAs = RunAs.ForCurrentUser();
        // Under root the folder must be reachable by the unprivileged user: /tmp rather than root's own TMPDIR.
        string folder = Path.Combine(runAs.Uid is null ? Path.GetTempPath() : "/tmp", "gym-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        try
        {
            string data = Path.Combine(folder, "data"), sockets = Path.Combine(folder, "sock");
            Directory.CreateDirectory(sockets);
            runAs.Own(folder);
            runAs.Own(sockets);

            var (initExit, initOutput) = await RunToEndAsync(runAs.Command(Path.Combine(bin, "initdb"),
                ["-D", data, "-U", Superuser, "-A", "trust", "--no-sync", "--encoding=UTF8", "--locale=C", "--no-instructions"]), ct);
            if (initExit != 0) throw new InvalidOperationException($"initdb failed (exit {initExit}) in {folder}:\n{initOutput}");

            // A free port can be taken between our probe and the server's bind: try a few.
            for (int attempt = 1; ; attempt++)
            {
                int port = Ports.Free();
                var log = new ConcurrentQueue<string>();
                var process = StartLogged(runAs.Command(Path.Combine(bin, "postgres"),
                [
                    "-D", data, "-k", sockets, "-p", port.ToString(), "-h", "127.0.0.1",
                    "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off", "-c", "max_connections=200",
                ]), log);
                var server = new PostgresServer(process, folder, port, log);
                string? failure;
                try { failure = await server.WaitReadyAsync(sockets, TimeSpan.FromSeconds(60), ct); }
                catch
                {
                    await server.StopAsync();
                    throw;
                }
                if (failure == null) return server;
                await server.StopAsync();
                if (attempt < 4 && server.RecentLog.Contains("could not bind", StringComparison.OrdinalIgnoreCase)) continue;
                throw new InvalidOperationException($"postgres did not start ({failure}) in {folder}:\n{server.RecentLog}");
            }
        }
        catch
        {
            TryDelete(folder);
            throw;
        }
    }

    /// <summary>Creates an empty database (a fresh name unless given) and returns a connection string to it.</summary>
    public async Task<string> CreateDatabaseAsync(string? name = null, CancellationToken ct = default)
    {
        name ??= "db_" + Guid.NewGuid().ToString("N")[..12];
        await using (var c = new NpgsqlConnection(ConnectionString))
        {
            await c.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name.Replace("\"", "\"\"")}\"", c);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        return ConnectionStringFor(name);
    }

    /// <summary>Stops the server (fast shutdown: open sessions are ended) and deletes its folder.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        TryDelete(_folder);
    }

    /// <summary>An environment variable that names the folder of initdb and postgres, overriding the search.</summary>
    public const string BinariesVariable = "NG_POSTGRES_BIN";

    /// <summary>The folder with initdb and postgres ($NG_POSTGRES_BIN, else PATH, else the newest /usr/lib/postgresql/*/bin), or null.</summary>
    public static string? FindBinaries()
    {
        static bool Has(string dir) => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "postgres"));
        if (Environment.GetEnvironmentVariable(BinariesVariable) is { Length: > 0 } chosen) return Has(chosen) ? chosen : null;
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            if (Has(dir)) return dir;
        const string debian = "/usr/lib/postgresql";
        if (!Directory.Exists(debian)) return null;
        // The newest major version first.
        return Directory.GetDirectories(debian)
            .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out int v) ? v : -1)
            .Select(d => Path.Combine(d, "bin")).FirstOrDefault(Has);
    }

    private string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Port, Username = Superuser, Database = database, Timeout = 15, CommandTimeout = 60,
    }.ToString();

    private async Task<string?> WaitReadyAsync(string sockets, TimeSpan limit, CancellationToken ct)
    {
        var until = DateTime.UtcNow + limit;
        // Through our own unix socket, so a stranger that took the port first cannot answer for us; no pooling, so
        // the probe leaves no connection behind.
        string probe = new NpgsqlConnectionStringBuilder(ConnectionString) { Host = sockets, Pooling = false, Timeout = 2 }.ToString();
        while (DateTime.UtcNow < until)
        {
            if (_process.HasExited) return $"it exited with code {_process.ExitCode}";
            try
            {
                await using var c = new NpgsqlConnection(probe);
                await c.OpenAsync(ct);
                return null;
            }
            catch (NpgsqlException) { }
            catch (TimeoutException) { }
            await Task.Delay(50, ct);
        }
        return $"not accepting connections after {limit.TotalSeconds:0} s";
    }

    private async Task StopAsync()
    {
        if (_process.HasExited) { _process.Dispose(); return; }
        // SIGINT is PostgreSQL's fast shutdown; Process.Kill would be SIGKILL and leave its backends behind.
        _ = Native.kill(_process.Id, Native.SIGINT);
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try { await _process.WaitForExitAsync(wait.Token); }
        catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); }
        _process.Dispose();
    }

    private static ProcessStartInfo Plain(ProcessStartInfo psi)
    {
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.Environment["LC_ALL"] = "C"; // log lines in English, whatever the machine's locale
        return psi;
    }

    private static Process StartLogged(ProcessStartInfo psi, ConcurrentQueue<string> log)
    {
        var p = new Process { StartInfo = Plain(psi) };
        DataReceivedEventHandler keep = (_, e) =>
        {
            if (e.Data == null) return;
            log.Enqueue(e.Data);
            while (log.Count > 200) log.TryDequeue(out string? _);
        };
        p.OutputDataReceived += keep;
        p.ErrorDataReceived += keep;
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static async Task<(int Exit, string Output)> RunToEndAsync(ProcessStartInfo psi, CancellationToken ct)
    {
        var log = new ConcurrentQueue<string>();
        using var p = StartLogged(psi, log);
        await p.WaitForExitAsync(ct);
        return (p.ExitCode, string.Join("\n", log));
    }

    private static void TryDelete(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    // Who runs initdb and postgres: ourselves, or (under root) an unprivileged user through setpriv.
    private sealed record RunAs(int? Uid, int? Gid)
    {
        public static RunAs ForCurrentUser()
        {
            if (!OperatingSystem.IsLinux() || Native.geteuid() != 0) return new RunAs(null, null);
            foreach (string user in new[] { "postgres", "nobody" })
                if (File.ReadLines("/etc/passwd").Select(l => l.Split(':')).FirstOrDefault(f => f.Length > 3 && f[0] == user) is { } entry)
                    return new RunAs(int.Parse(entry[2]), int.Parse(entry[3]));
            return new RunAs(65534, 65534);
        }

        public ProcessStartInfo Command(string file, IEnumerable<string> args)
        {
            if (Uid is not { } uid) return With(new ProcessStartInfo(file), args);
            // setpriv execs in place (no fork), so the process we hold is postgres itself and our signals reach it.
            string setpriv = new[] { "/usr/bin/setpriv", "/bin/setpriv" }.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("running as root, and PostgreSQL refuses root, but setpriv (util-linux) was not found to drop privileges");
            return With(new ProcessStartInfo(setpriv), [$"--reuid={uid}", $"--regid={Gid}", "--clear-groups", file, .. args]);
        }

        public void Own(string path)
        {
            if (Uid is { } uid && Native.chown(path, uid, Gid ?? uid) != 0)
                throw new InvalidOperationException($"chown {uid} {path} failed (errno {Marshal.GetLastPInvokeError()})");
        }

        private static ProcessStartInfo With(ProcessStartInfo psi, IEnumerable<string> args)
        {
            foreach (string a in args) psi.ArgumentList.Add(a);
            return psi;
        }
    }

    private static class Native
    {
        public const int SIGINT = 2;
        [DllImport("libc", SetLastError = true)] public static extern int kill(int pid, int sig);
        [DllImport("libc")] public static extern uint geteuid();
        [DllImport("libc", SetLastError = true)] public static extern int chown(string path, int owner, int group);
    }
}
