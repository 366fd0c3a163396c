using System.Globalization;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// Where this machine lets us put a run in cgroups of its own, for limits that hold for the whole run
/// (memory without swap, process count) and for what rlimits cannot tell (total CPU time of all its
/// processes, peak memory, whether the kernel's OOM killer struck). Two layouts exist:
/// cgroup v2 (one hierarchy with memory and pids controllers) and cgroup v1 (a hierarchy per controller,
/// which hybrid machines such as ours still use for memory, pids and cpuacct). Without either, the
/// sandbox falls back to rlimits alone and reports CPU time and peak memory as unknown.
/// </summary>
internal sealed class CgroupLayout
{
    private const string GroupName = "nemotron-gym-sandbox";

    public bool IsV2 { get; }

    /// <summary>v2: the parent folder of run groups. v1: the parent folder per controller (memory, pids, cpuacct).</summary>
    private readonly IReadOnlyDictionary<string, string> parents;

    public string Description { get; }

    private CgroupLayout(bool isV2, IReadOnlyDictionary<string, string> parents, string description)
    {
        IsV2 = isV2;
        this.parents = parents;
        Description = description;
    }

    /// <summary>Finds a usable layout; null (with the reason) when this machine offers none we may write to.</summary>
    public static (CgroupLayout? Layout, string Reason) Detect()
    {
        if (!Native.IsRoot) return (null, "not root: cgroups are not writable, rlimits only");
        string[] mountLines, selfLines;
        try
        {
            mountLines = File.ReadAllLines("/proc/self/mountinfo");
            selfLines = File.ReadAllLines("/proc/self/cgroup");
        }
        catch (IOException e) { return (null, $"cannot read cgroup information: {e.Message}"); }

        // /proc/self/cgroup: "ID:controllers:path"; v2 is "0::path".
        var ownPath = new Dictionary<string, string>();
        foreach (var line in selfLines)
        {
            var fields = line.Split(':', 3);
            if (fields.Length != 3) continue;
            foreach (var controller in fields[1].Split(',')) ownPath[controller] = fields[2];
        }

        // mountinfo: "... mountpoint options - fstype source superoptions".
        var v1Mounts = new Dictionary<string, string>();
        string? v2Mount = null;
        foreach (var line in mountLines)
        {
            var halves = line.Split(" - ", 2);
            if (halves.Length != 2) continue;
            var left = halves[0].Split(' ');
            var right = halves[1].Split(' ');
            if (left.Length < 5 || right.Length < 3) continue;
            if (right[0] == "cgroup2") v2Mount ??= left[4];
            else if (right[0] == "cgroup")
                foreach (var option in right[2].Split(','))
                    if (option is "memory" or "pids" or "cpuacct") v1Mounts[option] = left[4];
        }

        if (v2Mount is not null && TryV2(v2Mount) is { } v2) return (v2, v2.Description);
        if (v1Mounts.ContainsKey("memory") && v1Mounts.ContainsKey("pids") && v1Mounts.ContainsKey("cpuacct"))
        {
            var v1Parents = new Dictionary<string, string>();
            try
            {
                foreach (var (controller, mountPoint) in v1Mounts)
                {
                    var own = ownPath.GetValueOrDefault(controller, "/").TrimStart('/');
                    var parent = Path.Combine(mountPoint, own, GroupName);
                    Directory.CreateDirectory(parent);
                    v1Parents[controller] = parent;
                }
                // Children of a v1 memory group are only limited by it when the hierarchy is in effect.
                var hierarchy = Path.Combine(v1Parents["memory"], "memory.use_hierarchy");
                if (File.Exists(hierarchy) && File.ReadAllText(hierarchy).Trim() != "1") File.WriteAllText(hierarchy, "1");
                return (new CgroupLayout(false, v1Parents, "cgroup v1 (memory, pids, cpuacct)"), "cgroup v1 (memory, pids, cpuacct)");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return (null, $"cgroup v1 controllers present but not writable ({e.Message}): rlimits only");
            }
        }
        return (null, v2Mount is null ? "no cgroup memory and pids controllers: rlimits only"
                                      : $"cgroup v2 at {v2Mount} has no usable memory and pids controllers: rlimits only");
    }

    // On v2 the run groups live in a group of ours at the root of the hierarchy: the root may enable
    // controllers for its children while it holds processes, which no other group may.
    private static CgroupLayout? TryV2(string mountPoint)
    {
        try
        {
            var controllers = File.ReadAllText(Path.Combine(mountPoint, "cgroup.controllers")).Split(' ', StringSplitOptions.TrimEntries);
            if (!controllers.Contains("memory") || !controllers.Contains("pids")) return null;
            File.WriteAllText(Path.Combine(mountPoint, "cgroup.subtree_control"), "+memory +pids");
            var parent = Path.Combine(mountPoint, GroupName);
            Directory.CreateDirectory(parent);
            File.WriteAllText(Path.Combine(parent, "cgroup.subtree_control"), "+memory +pids");
            return new CgroupLayout(true, new Dictionary<string, string> { ["v2"] = parent }, $"cgroup v2 at {mountPoint} (memory, pids)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Creates the groups of one run with its limits.</summary>
    public RunCgroup Create(string runName, long memoryBytes, int processes)
    {
        var group = Create(runName);
        try { group.SetLimits(memoryBytes, processes); }
        catch
        {
            group.Dispose();
            throw;
        }
        return group;
    }

    /// <summary>Creates the groups of one run without limits yet (a warm slot's agent waits in them for the run).</summary>
    public RunCgroup Create(string runName)
    {
        var folders = parents.ToDictionary(p => p.Key, p => Path.Combine(p.Value, runName));
        foreach (var folder in folders.Values) Directory.CreateDirectory(folder);
        return new RunCgroup(IsV2, folders);
    }

    /// <summary>The processes in groups whose names start with <paramref name="prefix"/> and end with <paramref name="suffix"/>.</summary>
    public IReadOnlyList<int> ProcessIdsOfGroups(string prefix, string suffix)
    {
        var found = new List<int>();
        var parent = parents.Values.First();
        try
        {
            foreach (var folder in Directory.GetDirectories(parent, prefix + "*"))
            {
                if (!folder.EndsWith(suffix, StringComparison.Ordinal)) continue;
                try
                {
                    foreach (var line in File.ReadAllLines(Path.Combine(folder, "cgroup.procs")))
                        if (int.TryParse(line, out var pid)) found.Add(pid);
                }
                catch (IOException) { }
            }
        }
        catch (IOException) { }
        return found;
    }

    /// <summary>Removes the groups whose names <paramref name="matches"/> accepts (killing what is still in them).</summary>
    public void RemoveGroups(Func<string, bool> matches)
    {
        var names = new HashSet<string>();
        foreach (var parent in parents.Values)
        {
            try { names.UnionWith(Directory.GetDirectories(parent).Select(Path.GetFileName).Where(n => n is not null && matches(n))!); }
            catch (IOException) { }
        }
        foreach (var name in names) Create(name).Dispose();
    }

    /// <summary>Removes run groups left by an earlier process (killing what is still in them).</summary>
    public void RemoveLeftovers()
    {
        foreach (var parent in parents.Values)
            foreach (var folder in Directory.GetDirectories(parent))
                new RunCgroup(IsV2, new Dictionary<string, string> { ["x"] = folder }).Dispose();
    }
}

/// <summary>The cgroups of one run.</summary>
internal sealed class RunCgroup(bool isV2, IReadOnlyDictionary<string, string> folders) : IDisposable
{
    /// <summary>The files a process writes its pid into to join every group of the run.</summary>
    public IEnumerable<string> ProcsFiles => folders.Values.Select(f => Path.Combine(f, "cgroup.procs"));

    /// <summary>Sets the memory limit (no swap around it) and the process limit of the groups.</summary>
    public void SetLimits(long memoryBytes, int processes)
    {
        var memory = memoryBytes.ToString(CultureInfo.InvariantCulture);
        if (isV2)
        {
            var dir = folders["v2"];
            File.WriteAllText(Path.Combine(dir, "memory.max"), memory);
            TryWrite(Path.Combine(dir, "memory.swap.max"), "0");
            File.WriteAllText(Path.Combine(dir, "pids.max"), processes.ToString(CultureInfo.InvariantCulture));
        }
        else
        {
            // memory+swap equal to memory: no swap around the limit (the file exists only with swap accounting). The
            // memory limit may never be above memory+swap: a lower one goes first, a higher one second.
            var memsw = Path.Combine(folders["memory"], "memory.memsw.limit_in_bytes");
            var current = ReadLong(("memory", "memory.limit_in_bytes"));
            if (current is { } now && now < memoryBytes) TryWrite(memsw, memory);
            File.WriteAllText(Path.Combine(folders["memory"], "memory.limit_in_bytes"), memory);
            TryWrite(memsw, memory);
            File.WriteAllText(Path.Combine(folders["pids"], "pids.max"), processes.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static void TryWrite(string path, string value)
    {
        if (File.Exists(path)) File.WriteAllText(path, value);
    }

    /// <summary>Moves a process (all its threads) into every group of this run; its later children start here too.</summary>
    public void Add(int pid)
    {
        var text = pid.ToString(CultureInfo.InvariantCulture);
        foreach (var procs in ProcsFiles) File.WriteAllText(procs, text);
    }

    /// <summary>The processes in the groups now (read from the first controller's list).</summary>
    public IReadOnlyList<int> ProcessIds
    {
        get
        {
            var found = new List<int>();
            try
            {
                foreach (var line in File.ReadAllLines(ProcsFiles.First()))
                    if (int.TryParse(line, out var pid)) found.Add(pid);
            }
            catch (IOException) { }
            return found;
        }
    }

    public long? PeakMemoryBytes => ReadLong(isV2 ? ("v2", "memory.peak") : ("memory", "memory.max_usage_in_bytes"));

    public TimeSpan? CpuTime
    {
        get
        {
            if (isV2)
            {
                var usec = ReadKey("v2", "cpu.stat", "usage_usec");
                return usec is null ? null : TimeSpan.FromMicroseconds(usec.Value);
            }
            var ns = ReadLong(("cpuacct", "cpuacct.usage"));
            return ns is null ? null : TimeSpan.FromTicks(ns.Value / 100);
        }
    }

    /// <summary>Whether the kernel killed a process of the run for going past the memory limit.</summary>
    public bool OomKilled => (isV2 ? ReadKey("v2", "memory.events", "oom_kill") : ReadKey("memory", "memory.oom_control", "oom_kill")) > 0;

    /// <summary>Whether an allocation ever hit the memory limit (the program may have coped, or died of it).</summary>
    public bool HitMemoryLimit => isV2 ? ReadKey("v2", "memory.events", "max") > 0 : ReadLong(("memory", "memory.failcnt")) > 0;

    /// <summary>
    /// Kills every process in the run's groups but <paramref name="spare"/>, repeating until none other is left (a
    /// forking program adds more while we kill). True when none is left.
    /// </summary>
    public bool KillAll(int spare = 0)
    {
        for (var round = 0; round < 50; round++)
        {
            var any = false;
            foreach (var folder in folders.Values)
            {
                string[] pids;
                try { pids = File.ReadAllLines(Path.Combine(folder, "cgroup.procs")); }
                catch (IOException) { continue; }
                foreach (var line in pids)
                    if (int.TryParse(line, out var pid) && pid != spare) { Native.Kill(pid); any = true; }
            }
            if (!any) return true;
            Thread.Sleep(round < 10 ? 1 : 5);
        }
        return false;
    }

    /// <summary>True once <see cref="Dispose"/> removed every group: no process of the run is left anywhere.</summary>
    public bool Removed { get; private set; }

    public void Dispose()
    {
        KillAll();
        var removed = true;
        foreach (var folder in folders.Values)
        {
            // A group can be removed once its last process is reaped, which may take a moment after SIGKILL.
            var gone = false;
            for (var attempt = 0; attempt < 100 && !gone; attempt++)
            {
                try { Directory.Delete(folder); gone = true; }
                catch (DirectoryNotFoundException) { gone = true; }
                catch (IOException) { KillAll(); Thread.Sleep(5); }
            }
            removed &= gone;
        }
        Removed = removed;
    }

    private long? ReadLong((string Controller, string File) at)
    {
        if (!folders.TryGetValue(at.Controller, out var folder)) return null;
        try { return long.Parse(File.ReadAllText(Path.Combine(folder, at.File)).Trim(), CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or FormatException) { return null; }
    }

    private long? ReadKey(string controller, string file, string key)
    {
        if (!folders.TryGetValue(controller, out var folder)) return null;
        try
        {
            foreach (var line in File.ReadLines(Path.Combine(folder, file)))
            {
                var parts = line.Split(' ', 2);
                if (parts.Length == 2 && parts[0] == key) return long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
        }
        catch (Exception e) when (e is IOException or FormatException) { }
        return null;
    }
}
