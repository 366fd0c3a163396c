using System.Diagnostics;
using System.Globalization;

namespace Nemotron.Gym.PluginWorker;

/// <summary>
/// How a worker process is started. Under bubblewrap (the default where it can run: Linux, root, bwrap and setpriv
/// installed) the chain is <c>sh (joins the worker's cgroups) → prlimit → setpriv (an unprivileged uid; left out when a
/// folder to bind is private to root, see <see cref="Build(PluginWorkerSettings, IReadOnlyList{string}, bool, WorkerCgroup?)"/>) → bwrap →
/// dotnet worker</c>: new user, pid, network, ipc, uts and mount namespaces; the host's /usr (and the /bin, /lib
/// links into it), the .NET runtime, the worker's own folder and the plugin's folder, all read-only; a private /tmp;
/// no network unless the plugin's manifest asks for it; no capabilities; an empty environment. Memory is bounded by a
/// memory cgroup where the machine has one and always by the .NET GC's hard heap limit; CPU by a CPU cgroup quota.
/// </summary>
internal static class WorkerLaunch
{
    private static readonly string WorkerAssembly = typeof(WorkerLaunch).Assembly.Location;

    /// <summary>
    /// The variable that carries the host's build of this assembly to the worker. Host and worker speak a protocol of
    /// this build; a worker started from files replaced since the host started (a rebuild or an upgrade during a run)
    /// refuses to serve instead of misreading the host (once, a changed open reply reached an older host as empty
    /// prompts, and a whole evaluation scored nothing without an error).
    /// </summary>
    public const string BuildVariable = "NEMOTRON_GYM_WORKER_BUILD";

    /// <summary>This build of the protocol: the assembly's module version id (deterministic builds: same source, same id).</summary>
    public static readonly string BuildId = typeof(WorkerLaunch).Assembly.ManifestModule.ModuleVersionId.ToString("N");

    /// <summary>Exit code of a worker whose build is not the host's.</summary>
    public const int OtherBuildExitCode = 3;

    /// <summary>The dotnet host that runs this process (the worker uses the same runtime).</summary>
    private static string DotnetHost()
    {
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!; // <root>/shared/Microsoft.NETCore.App/<version>
        var root = Path.GetFullPath(Path.Combine(runtimeDir, "..", "..", ".."));
        var candidate = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        return File.Exists(candidate) ? candidate : "dotnet";
    }

    /// <summary>The runtime config for the worker: its own when it was built as an app, else one written beside the host's temp files.</summary>
    private static string RuntimeConfig()
    {
        var own = Path.ChangeExtension(WorkerAssembly, ".runtimeconfig.json");
        if (File.Exists(own)) return own;
        var folder = Path.Combine(Path.GetTempPath(), "nemotron-gym-worker");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"net{Environment.Version.Major}.{Environment.Version.Minor}.runtimeconfig.json");
        if (!File.Exists(path))
            File.WriteAllText(path, new System.Text.Json.Nodes.JsonObject
            {
                ["runtimeOptions"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["tfm"] = $"net{Environment.Version.Major}.{Environment.Version.Minor}",
                    ["framework"] = new System.Text.Json.Nodes.JsonObject { ["name"] = "Microsoft.NETCore.App", ["version"] = $"{Environment.Version.Major}.{Environment.Version.Minor}.0" },
                    ["configProperties"] = new System.Text.Json.Nodes.JsonObject { ["System.Globalization.Invariant"] = true },
                },
            }.ToJsonString());
        return path;
    }

    /// <summary>Whether bubblewrap can be used here, and if not, why.</summary>
    public static string? BubblewrapUnavailable()
    {
        if (!OperatingSystem.IsLinux()) return "bubblewrap needs Linux";
        if (Environment.UserName != "root" && !IsRoot()) return "workers are put under bubblewrap only when the host runs as root (it drops them to an unprivileged uid)";
        foreach (var tool in new[] { "bwrap", "setpriv", "prlimit" })
            if (FindOnPath(tool) == null) return $"'{tool}' is not installed (Debian: apt-get install bubblewrap util-linux)";
        return null;
    }

    private static bool IsRoot()
    {
        try { return File.ReadAllLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0"); }
        catch (IOException) { return false; }
    }

    private static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    /// <summary>The start of a worker for the plugin in <paramref name="pluginFolder"/>.</summary>
    public static ProcessStartInfo Build(PluginWorkerSettings settings, string pluginFolder, bool network, WorkerCgroup? cgroup) =>
        Build(settings, [pluginFolder], network, cgroup);

    /// <summary>The start of a worker that may read several plugin folders (discovery reads them all in one worker).</summary>
    public static ProcessStartInfo Build(PluginWorkerSettings settings, IReadOnlyList<string> pluginFolders, bool network, WorkerCgroup? cgroup)
    {
        string pluginFolder = pluginFolders[0];
        string dotnet = DotnetHost();
        string[] worker = [dotnet, "exec", "--runtimeconfig", RuntimeConfig(), WorkerAssembly];
        if (!settings.UseBubblewrap)
        {
            var plain = new ProcessStartInfo(worker[0]) { WorkingDirectory = pluginFolder };
            foreach (var a in worker[1..]) plain.ArgumentList.Add(a);
            plain.Environment["DOTNET_GCHeapHardLimit"] = "0x" + settings.MemoryBytes.ToString("x", CultureInfo.InvariantCulture);
            plain.Environment["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0";
            plain.Environment["DOTNET_TieredPGO"] = "0";
            plain.Environment[BuildVariable] = BuildId;
            return plain;
        }
        var args = new List<string>();
        var script = "";
        foreach (var procs in cgroup?.ProcsFiles ?? []) script += $"echo $$ > '{procs}' && ";
        args.AddRange(["-c", script + "exec \"$@\"", "sh"]);
        args.AddRange(["prlimit", "--nofile=4096", "--core=0", "--nproc=8192", "--"]);
        List<string> binds = [DotnetRoot(dotnet), Path.GetDirectoryName(WorkerAssembly)!, Path.GetDirectoryName(RuntimeConfig())!, .. pluginFolders];
        binds = binds.Distinct().Where(b => !b.StartsWith("/usr/", StringComparison.Ordinal)).ToList();
        // bwrap resolves what it binds with the credentials it runs under. Best: an unprivileged uid (it can reach only
        // what everyone may read). When a folder to bind is private to root (a plugin under /root, a tool installed
        // in root's home), bwrap runs as root instead and maps root to the worker uid in the worker's user namespace:
        // the worker then reads what is bound as its owner would, and still sees nothing else of the host.
        if (binds.All(ReadableByEveryone))
            args.AddRange(["setpriv", $"--reuid={settings.Uid}", $"--regid={settings.Uid}", "--clear-groups", "--"]);
        args.AddRange(["bwrap", "--unshare-all", "--unshare-user", "--uid", settings.Uid.ToString(CultureInfo.InvariantCulture), "--gid", settings.Uid.ToString(CultureInfo.InvariantCulture),
            "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
        if (network) args.Add("--share-net");
        args.AddRange(["--ro-bind", "/usr", "/usr"]);
        foreach (var top in new[] { "/bin", "/sbin", "/lib", "/lib32", "/lib64" })
        {
            var info = new FileInfo(top);
            if (info.LinkTarget is { } target) args.AddRange(["--symlink", target, top]);
            else if (Directory.Exists(top)) args.AddRange(["--ro-bind", top, top]);
        }
        // /tmp first: folders under the host's /tmp (a test's plugins) are bound on top of the private one.
        args.AddRange(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        foreach (var b in binds) args.AddRange(["--ro-bind", b, b]);
        // What the runtime and a networked plugin read from /etc; nothing else of it (no passwd, no shadow).
        foreach (var etc in network ? new[] { "/etc/ld.so.cache", "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates" } : ["/etc/ld.so.cache"])
            args.AddRange(["--ro-bind-try", etc, etc]);
        args.AddRange(["--chdir", pluginFolder, "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "DOTNET_CLI_TELEMETRY_OPTOUT", "1", "--setenv", "DOTNET_NOLOGO", "1",
            // No spinning by idle thread-pool threads: requests come in bursts over a pipe, and a worker's threads spinning
            // between bursts burn CPU the host needs (the same in the plain start above).
            "--setenv", "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0",
            // No profile-guided re-JIT: a worker reaches its final code sooner (with it, the JIT was still instrumenting
            // and recompiling the hot path a second into a run, doubling the worker's CPU per episode then); measured
            // no slower once warm (same in the plain start above).
            "--setenv", "DOTNET_TieredPGO", "0",
            // The GC keeps the heap under the limit even without a memory cgroup (and reserves no more than it).
            "--setenv", "DOTNET_GCHeapHardLimit", "0x" + settings.MemoryBytes.ToString("x", CultureInfo.InvariantCulture),
            "--setenv", BuildVariable, BuildId,
            "--"]);
        args.AddRange(worker);
        var start = new ProcessStartInfo("/bin/sh");
        foreach (var a in args) start.ArgumentList.Add(a);
        return start;
    }

    /// <summary>Whether any user can list and read <paramref name="folder"/> (every folder above it searchable by others).</summary>
    internal static bool ReadableByEveryone(string folder)
    {
        if (OperatingSystem.IsWindows()) return true;
        try
        {
            if ((File.GetUnixFileMode(folder) & (UnixFileMode.OtherRead | UnixFileMode.OtherExecute)) != (UnixFileMode.OtherRead | UnixFileMode.OtherExecute)) return false;
            for (var dir = Path.GetDirectoryName(Path.GetFullPath(folder)); dir != null; dir = Path.GetDirectoryName(dir))
                if ((File.GetUnixFileMode(dir) & UnixFileMode.OtherExecute) == 0) return false;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static string DotnetRoot(string dotnet) => dotnet == "dotnet" ? "/usr/share/dotnet" : Path.GetDirectoryName(Path.GetFullPath(dotnet))!;
}

/// <summary>
/// The cgroups of one worker (cgroup v1 memory and cpu controllers, or v2), where the machine lets us make them: a
/// memory limit with the kernel's OOM killer behind it, and a CPU quota. Null where there are none; the GC's heap
/// limit still holds then.
/// </summary>
internal sealed class WorkerCgroup : IDisposable
{
    private const string Parent = "nemotron-gym-workers";
    private readonly List<string> _folders;

    private WorkerCgroup(List<string> folders) => _folders = folders;

    /// <summary>The files a process writes its pid into to join.</summary>
    public IEnumerable<string> ProcsFiles => _folders.Select(f => Path.Combine(f, "cgroup.procs"));

    /// <summary>Makes the cgroups for one worker, or returns null (with no error: a machine without writable cgroups).</summary>
    public static WorkerCgroup? TryCreate(string name, long memoryBytes, double cpus)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var folders = new List<string>();
        try
        {
            if (File.Exists("/sys/fs/cgroup/cgroup.controllers"))
            {
                var parent = Path.Combine("/sys/fs/cgroup", Parent);
                Directory.CreateDirectory(parent);
                File.WriteAllText(Path.Combine("/sys/fs/cgroup", "cgroup.subtree_control"), "+memory +cpu");
                File.WriteAllText(Path.Combine(parent, "cgroup.subtree_control"), "+memory +cpu");
                var folder = Path.Combine(parent, name);
                Directory.CreateDirectory(folder);
                folders.Add(folder);
                File.WriteAllText(Path.Combine(folder, "memory.max"), memoryBytes.ToString(CultureInfo.InvariantCulture));
                if (cpus > 0) File.WriteAllText(Path.Combine(folder, "cpu.max"), $"{(long)(cpus * 100_000)} 100000");
            }
            else if (Directory.Exists("/sys/fs/cgroup/memory") && Directory.Exists("/sys/fs/cgroup/cpu"))
            {
                var memory = Path.Combine("/sys/fs/cgroup/memory", Parent, name);
                Directory.CreateDirectory(memory);
                folders.Add(memory);
                File.WriteAllText(Path.Combine(memory, "memory.limit_in_bytes"), memoryBytes.ToString(CultureInfo.InvariantCulture));
                var cpu = Path.Combine("/sys/fs/cgroup/cpu", Parent, name);
                Directory.CreateDirectory(cpu);
                folders.Add(cpu);
                if (cpus > 0)
                {
                    File.WriteAllText(Path.Combine(cpu, "cpu.cfs_period_us"), "100000");
                    File.WriteAllText(Path.Combine(cpu, "cpu.cfs_quota_us"), ((long)(cpus * 100_000)).ToString(CultureInfo.InvariantCulture));
                }
            }
            else return null;
            return new WorkerCgroup(folders);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            new WorkerCgroup(folders).Dispose();
            return null;
        }
    }

    /// <summary>The memory limit the worker's cgroup enforces, read back (null when unknown).</summary>
    public long? MemoryLimit
    {
        get
        {
            foreach (var f in _folders)
                foreach (var file in new[] { "memory.max", "memory.limit_in_bytes" })
                    if (File.Exists(Path.Combine(f, file)) && long.TryParse(File.ReadAllText(Path.Combine(f, file)).Trim(), CultureInfo.InvariantCulture, out var v)) return v;
            return null;
        }
    }

    /// <summary>Removes the cgroups (their processes are gone by then; a leftover one is killed first).</summary>
    public void Dispose()
    {
        foreach (var f in _folders)
        {
            try
            {
                foreach (var pid in File.Exists(Path.Combine(f, "cgroup.procs")) ? File.ReadAllLines(Path.Combine(f, "cgroup.procs")) : [])
                    if (int.TryParse(pid, CultureInfo.InvariantCulture, out var p)) try { Process.GetProcessById(p).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
                Directory.Delete(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }
}
