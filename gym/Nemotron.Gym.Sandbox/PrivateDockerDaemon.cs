using System.Diagnostics;
using Docker.DotNet;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// A Docker engine of the gym's own, for machines where none runs (no systemd, services blocked): dockerd
/// on a private socket with a private data root, and no bridge, no iptables, no masquerading, since
/// sandbox containers have no network at all. It outlives the command that started it (it runs in its
/// own session); <see cref="Stop"/> ends it.
/// </summary>
public static class PrivateDockerDaemon
{
    /// <summary>The folder of its socket, pid file and exec root.</summary>
    public const string RunDirectory = "/run/nemotron-gym-docker";

    /// <summary>Its image and container store.</summary>
    public const string DataRoot = "/var/lib/nemotron-gym/docker";

    /// <summary>The endpoint the docker backend uses by default.</summary>
    public const string DefaultEndpoint = "unix://" + RunDirectory + "/docker.sock";

    /// <summary>Whether an engine answers at <paramref name="endpoint"/>.</summary>
    public static async Task<bool> IsAnsweringAsync(string endpoint, CancellationToken cancellation)
    {
        try
        {
            using var configuration = new DockerClientConfiguration(new Uri(endpoint));
            using var client = configuration.CreateClient();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            await client.System.PingAsync(timeout.Token);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>
    /// Starts the private engine unless it already answers, and waits until it does. Returns what happened
    /// ("already running", "started ..."), or throws with the engine's log when it did not come up.
    /// </summary>
    public static Task<string> EnsureRunningAsync(TimeSpan timeout, CancellationToken cancellation) =>
        EnsureRunningAsync(RunDirectory, DataRoot, timeout, cancellation);

    /// <summary>The endpoint of an engine whose run folder is <paramref name="runDirectory"/>.</summary>
    public static string EndpointOf(string runDirectory) => "unix://" + Path.Combine(runDirectory, "docker.sock");

    /// <summary>
    /// As <see cref="EnsureRunningAsync(TimeSpan, CancellationToken)"/> for an engine of its own in
    /// <paramref name="runDirectory"/> (socket, pid file, exec root) over <paramref name="dataRoot"/>: a test that kills
    /// its engine must not take the one other tests share.
    /// </summary>
    public static async Task<string> EnsureRunningAsync(string runDirectory, string dataRoot, TimeSpan timeout, CancellationToken cancellation)
    {
        var endpoint = EndpointOf(runDirectory);
        if (await IsAnsweringAsync(endpoint, cancellation)) return $"already running at {endpoint}";
        Directory.CreateDirectory(runDirectory);
        // One starter at a time: two engines started on one folder fight over its pid file and socket, and the
        // loser's clean-up below would kill the winner's container shims.
        await using var held = await HostFileLock.TakeAsync(Path.Combine(runDirectory, "start.lock"), timeout, cancellation);
        if (await IsAnsweringAsync(endpoint, cancellation)) return $"already running at {endpoint} (started by another process)";
        var dockerd = new[] { "/usr/sbin/dockerd", "/usr/bin/dockerd" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("dockerd is not installed (Debian: apt-get install docker.io)");
        Directory.CreateDirectory(dataRoot);
        var log = Path.Combine(runDirectory, "dockerd.log");
        var pidFile = Path.Combine(runDirectory, "dockerd.pid");
        // A pid file left by an engine that died would stop the new one from starting; the container shims it left (a
        // container half created when it died sits in `runc init` for ever) are no one's to stop but ours.
        if (File.Exists(pidFile) && !IsAlive(File.ReadAllText(pidFile))) File.Delete(pidFile);
        KillOrphanShims(runDirectory);
        // gVisor, where installed, as the runtime "runsc"; it needs its own network off as well.
        var daemonConfig = Path.Combine(runDirectory, "daemon.json");
        var runsc = new[] { "/usr/bin/runsc", "/usr/local/bin/runsc" }.FirstOrDefault(File.Exists);
        File.WriteAllText(daemonConfig, runsc is null ? "{}\n"
            : $$"""{ "runtimes": { "runsc": { "path": "{{runsc}}", "runtimeArgs": ["--network=none"] } } }""" + "\n");
        var start = new ProcessStartInfo("/usr/bin/setsid") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
        {
            "-f", "/bin/sh", "-c", "exec \"$@\" >>'" + log + "' 2>&1 </dev/null", "sh",
            dockerd, "--iptables=false", "--ip-masq=false", "--bridge=none",
            "-H", endpoint, "--config-file", daemonConfig, "--data-root", dataRoot, "--exec-root", Path.Combine(runDirectory, "exec"), "--pidfile", pidFile,
        }) start.ArgumentList.Add(a);
        using (var launcher = Process.Start(start)!) await launcher.WaitForExitAsync(cancellation);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (await IsAnsweringAsync(endpoint, cancellation)) return $"started dockerd at {endpoint} (data {dataRoot}, log {log}) in {clock.Elapsed.TotalSeconds:0.0} s";
            await Task.Delay(100, cancellation);
        }
        var tail = File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(20)) : "(no log)";
        throw new InvalidOperationException($"dockerd did not answer at {endpoint} within {timeout.TotalSeconds} s; the end of {log}:\n{tail}");
    }

    /// <summary>Stops the private engine (SIGTERM, then waits up to 20 s); false when none was running.</summary>
    public static bool Stop() => Stop(RunDirectory);

    /// <summary>Stops the engine of <paramref name="runDirectory"/>; false when none was running.</summary>
    public static bool Stop(string runDirectory)
    {
        var pidFile = Path.Combine(runDirectory, "dockerd.pid");
        if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid)) return false;
        if (!Native.Signal(pid, Native.SIGTERM)) return false;
        // dockerd stops its containers and containerd before it exits.
        for (var waited = 0; waited < 200 && Directory.Exists($"/proc/{pid}"); waited++) Thread.Sleep(100);
        KillOrphanShims(runDirectory);
        return true;
    }

    /// <summary>
    /// Kills the containerd shims of the engine in <paramref name="runDirectory"/> and everything under them, when that
    /// engine is gone (a SIGKILLed dockerd leaves them running, unknown to the next one). Returns how many went.
    /// </summary>
    public static int KillOrphanShims(string runDirectory)
    {
        var pidFile = Path.Combine(runDirectory, "dockerd.pid");
        if (File.Exists(pidFile) && IsAlive(File.ReadAllText(pidFile))) return 0;
        var address = Path.Combine(runDirectory, "exec") + "/";
        var parents = new Dictionary<int, int>();
        var shims = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // The fields after the command's closing parenthesis: state, then the parent's pid.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1]);
                var command = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (command.Contains("containerd-shim", StringComparison.Ordinal) && command.Contains(address, StringComparison.Ordinal)) shims.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { }
        }
        var doomed = new HashSet<int>(shims);
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var (pid, parent) in parents)
                if (doomed.Contains(parent) && doomed.Add(pid)) grew = true;
        }
        foreach (var pid in doomed) Native.Kill(pid);
        return doomed.Count;
    }

    private static bool IsAlive(string pidText) => int.TryParse(pidText.Trim(), out var pid) && Directory.Exists($"/proc/{pid}");
}
