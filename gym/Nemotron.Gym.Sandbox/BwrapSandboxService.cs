using System.Diagnostics;
using System.Globalization;
using System.Text;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// The default backend: bubblewrap, with no daemon. A one-shot run goes to a warm slot when one is ready
/// (<see cref="WarmSlot"/>: a sandbox kept alive between runs, reset after each, where a run is a fork and an exec);
/// otherwise, and for every session command, it runs cold: each goes through
/// <c>dash (joins the run's cgroups, sets the rlimits) → setpriv (drops to the slot's uid) → bwrap</c>,
/// and bwrap gives the program new user, pid, network, ipc, uts, cgroup and mount namespaces, the image's
/// root filesystem read-only, its own scratch tmpfs at /work and a small tmpfs at /tmp, no capabilities,
/// an empty environment, and forbids nested user namespaces. Limits: rlimits for CPU per process, file
/// size, open files and processes (per uid, hence a uid per slot); cgroups, where the machine has them,
/// for memory without swap, processes, total CPU time and peak memory. The wall clock is enforced here,
/// from outside: the process tree, the run's cgroups and every process of the slot's uid are killed.
/// </summary>
public sealed class BwrapSandboxService : ISandboxService, IDisposable
{
    private readonly SandboxSettings settings;
    private readonly UidSlots slots;
    private readonly CgroupLayout? cgroups;
    private readonly string scratchRoot;
    private readonly Dictionary<string, SandboxImage?> images = [];
    private long runCounter;
    private readonly string warmRoot;
    private readonly string? seccompPath;
    private readonly Dictionary<int, WarmSlot> warm = [];
    private readonly List<Task> warming = [];
    private int warmStarting;
    private int warmFailuresInARow;
    private long warmRuns, coldRuns, brokenWarmSlots;
    private volatile bool disposing;
    private readonly System.Collections.Concurrent.ConcurrentQueue<(double BeforeMs, double AfterMs)> warmCosts = new();

    /// <summary>The recent warm runs' own costs (<see cref="WarmSlot.LastCosts"/>), for the benchmark's table of parts.</summary>
    internal IReadOnlyList<(double BeforeMs, double AfterMs)> WarmRunCosts => [.. warmCosts];

    /// <inheritdoc />
    public string Backend => "bwrap";

    /// <summary>How cgroups are used on this machine (or why they are not).</summary>
    public string CgroupDescription { get; }

    /// <summary>How many sandboxes may run at once.</summary>
    public int SlotCount => slots.Count;

    /// <summary>How many slots this service keeps warm (0 when warm slots are off or this machine cannot have them).</summary>
    public int WarmSlotTarget { get; }

    /// <summary>Why there are no warm slots, or why the last one failed to start; null when all is well.</summary>
    public string? WarmSlotProblem { get; private set; }

    /// <summary>One-shot runs served by a warm slot so far.</summary>
    public long WarmRuns => Interlocked.Read(ref warmRuns);

    /// <summary>One-shot runs that went cold (no warm slot ready, or a broken one) so far.</summary>
    public long ColdRuns => Interlocked.Read(ref coldRuns);

    /// <summary>Warm slots found broken (and replaced) so far; <see cref="LastBrokenReason"/> says why the last one broke.</summary>
    public long BrokenWarmSlots => Interlocked.Read(ref brokenWarmSlots);

    /// <summary>Why the last broken warm slot broke; null when none has.</summary>
    public string? LastBrokenReason { get; private set; }

    /// <summary>
    /// Completes when no warm slot is being started or readied for its next run (that work goes on in the background
    /// after a run returns); for tests and benchmarks that want the pool at rest.
    /// </summary>
    public async Task SettleAsync()
    {
        for (var round = 0; round < 100; round++)
        {
            Task[] pending;
            lock (warming) pending = [.. warming.Where(t => !t.IsCompleted)];
            if (pending.Length == 0) return;
            try { await Task.WhenAll(pending); } catch (Exception) { }
        }
    }

    /// <summary>Warm slots ready now.</summary>
    public int WarmSlotsReady { get { lock (warm) return warm.Count; } }

    /// <summary>
    /// The processes this service's warm slots keep between runs (bwrap and its agent, one pair per slot; bwrap in its
    /// slot's keeper cgroup), also of slots still starting: the only processes of its uids while no run is under way.
    /// </summary>
    public IReadOnlyList<int> WarmKeeperProcessIds
    {
        get
        {
            var found = new List<int>();
            foreach (var uid in slots.All)
                found.AddRange(cgroups?.ProcessIdsOfGroups($"{KeeperGroupPrefix}{uid}-", $"-{Environment.ProcessId}") ?? []);
            lock (warm) found.AddRange(warm.Values.Select(s => s.AgentProcessId));
            return found;
        }
    }

    internal const string KeeperGroupPrefix = "warm-";

    private BwrapSandboxService(SandboxSettings settings, UidSlots slots, CgroupLayout? cgroups, string cgroupDescription, string scratchRoot,
        string? seccompPath)
    {
        this.settings = settings;
        this.slots = slots;
        this.cgroups = cgroups;
        CgroupDescription = cgroupDescription;
        this.scratchRoot = scratchRoot;
        this.seccompPath = seccompPath;
        warmRoot = Path.Combine(settings.ScratchDirectory, "bwrap-warm");
        // A warm slot needs cgroups (its run's processes are killed by group: a uid sweep would take the slot's own too)
        // and the seccomp filter (what namespaces keep between runs is refused).
        WarmSlotProblem = settings.EffectiveWarmSlots == 0 ? "warm slots are off (warm_slots: 0)"
            : cgroups is null ? $"no warm slots without cgroups ({cgroupDescription})"
            : seccompPath is null ? $"no warm slots: no seccomp filter for {System.Runtime.InteropServices.RuntimeInformation.OSArchitecture}"
            : null;
        WarmSlotTarget = WarmSlotProblem is null ? settings.EffectiveWarmSlots : 0;
    }

    /// <summary>
    /// Checks the machine (root, bwrap, setpriv, dash), claims uids, finds cgroups, and clears what an
    /// earlier process left on the claimed uids. Returns the reason instead when this host cannot run it.
    /// </summary>
    public static (BwrapSandboxService? Service, string? Error) Create(SandboxSettings settings)
    {
        if (!OperatingSystem.IsLinux()) return (null, "the bwrap backend needs Linux");
        if (!Native.IsRoot) return (null, "the bwrap backend runs as root (it drops each sandbox to an unprivileged uid of its own)");
        foreach (var tool in new[] { "bwrap", "setpriv", "dash" })
            if (FindOnPath(tool) is null)
                return (null, $"'{tool}' is not installed (Debian: apt-get install bubblewrap util-linux dash)");
        try
        {
            var scratchRoot = Path.Combine(settings.ScratchDirectory, "bwrap");
            Directory.CreateDirectory(scratchRoot);
            // Sandbox uids must reach their own scratch folder through this one, but may not list it.
            File.SetUnixFileMode(settings.ScratchDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            File.SetUnixFileMode(scratchRoot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            var slots = new UidSlots(Path.Combine(settings.ScratchDirectory, "uids"), settings.FirstUid, settings.Slots);
            var (layout, cgroupDescription) = CgroupLayout.Detect();
            string? seccompPath = null;
            if (SeccompFilter.ForThisMachine() is { } filter)
            {
                seccompPath = Path.Combine(settings.ScratchDirectory, "seccomp.bpf");
                File.WriteAllBytes(seccompPath, filter);
            }
            var service = new BwrapSandboxService(settings, slots, layout, cgroupDescription, scratchRoot, seccompPath);
            service.RemoveLeftovers();
            service.Prewarm();
            return (service, null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return (null, $"bwrap backend: {e.Message}");
        }
    }

    // Scratch folders are named "UID-..." so whatever an earlier process left on a uid we now hold can go.
    private void RemoveLeftovers()
    {
        foreach (var uid in slots.Claimed)
        {
            UidSlots.KillAllOf(uid);
            foreach (var folder in Directory.GetDirectories(scratchRoot, $"{uid}-*"))
            {
                while (Native.Unmount(folder)) { }
                try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
            }
            WarmSlot.RemoveFolder(Path.Combine(warmRoot, uid.ToString(CultureInfo.InvariantCulture)));
        }
        // Groups of runs and warm slots that an ended process left on the uids now ours ("UID-..." and "warm-UID-...").
        var claimed = slots.Claimed.Select(u => u.ToString(CultureInfo.InvariantCulture)).ToHashSet();
        cgroups?.RemoveGroups(name =>
        {
            var parts = name.Split('-');
            return parts.Length >= 3 && (claimed.Contains(parts[0]) || (parts[0] + "-" == KeeperGroupPrefix && claimed.Contains(parts[1])));
        });
    }

    private bool HasWarm(int uid, SandboxImage? image)
    {
        lock (warm) return warm.TryGetValue(uid, out var slot) && !slot.Broken && (image is null || slot.Image.RootFs == image.RootFs);
    }

    // Fills the warm slots for the default image in the background; runs that come meanwhile take the other uids or go cold.
    private void Prewarm()
    {
        if (WarmSlotTarget == 0 || FindImage(new SandboxRunRequest(new SandboxCommand(["true"])).Image) is not { } image) return;
        for (var i = 0; i < WarmSlotTarget; i++)
        {
            if (slots.TryAcquire(u => !HasWarm(u, null)) is not { } uid) break;
            ReleaseOrWarm(uid, image);
        }
    }

    /// <summary>
    /// Gives a uid back; first, when fewer slots than wanted are warm (or starting) and this uid has none, starts one on
    /// it in the background, holding the uid until it is up (a slot's keeper and a cold run must not share a uid).
    /// </summary>
    private void ReleaseOrWarm(int uid, SandboxImage image)
    {
        bool start;
        lock (warm)
        {
            start = !disposing && WarmSlotTarget > 0 && warmFailuresInARow < 3 && !warm.ContainsKey(uid) && warm.Count + warmStarting < WarmSlotTarget;
            if (start) warmStarting++;
        }
        if (!start)
        {
            slots.Release(uid);
            return;
        }
        var task = Task.Run(async () =>
        {
            try
            {
                var folder = Path.Combine(warmRoot, uid.ToString(CultureInfo.InvariantCulture));
                Directory.CreateDirectory(warmRoot);
                var (slot, error) = await WarmSlot.StartAsync(uid, image, folder, cgroups!, seccompPath!, Dash, () => NewRunName(uid));
                lock (warm)
                {
                    warmStarting--;
                    if (slot is not null && !disposing)
                    {
                        warm[uid] = slot;
                        warmFailuresInARow = 0;
                        slot = null;
                    }
                    else if (slot is null)
                    {
                        warmFailuresInARow++;
                        WarmSlotProblem = $"a warm slot failed to start: {error}";
                    }
                }
                slot?.Dispose();
            }
            finally { slots.Release(uid); }
        });
        lock (warming)
        {
            warming.RemoveAll(t => t.IsCompleted);
            warming.Add(task);
        }
    }

    // Takes a uid's warm slot out of service and kills it (a broken one, one of another image, or a uid a session needs).
    private void Retire(int uid)
    {
        WarmSlot? slot;
        lock (warm)
        {
            if (!warm.Remove(uid, out slot)) return;
        }
        if (slot.Broken)
        {
            Interlocked.Increment(ref brokenWarmSlots);
            LastBrokenReason = slot.BrokenReason;
        }
        slot.Dispose();
    }

    /// <summary>
    /// Runs in the uid's warm slot when it has a ready one for the image. On a result, the slot is readied for its next
    /// run in the background, holding the uid meanwhile; null means the caller runs it cold (and then releases the uid).
    /// </summary>
    private async Task<SandboxResult?> TryWarmAsync(int uid, SandboxImage image, SandboxRunRequest request, SandboxLimits limits, CancellationToken cancellation)
    {
        WarmSlot? slot;
        lock (warm) warm.TryGetValue(uid, out slot);
        if (slot is null) return null;
        if (slot.Image.RootFs != image.RootFs || slot.Broken)
        {
            Retire(uid);
            return null;
        }
        var result = await slot.TryRunAsync(request, limits, cancellation);
        if (result is null)
        {
            Retire(uid);
            return null;
        }
        if (slot.LastCosts is { } costs)
        {
            warmCosts.Enqueue(costs);
            while (warmCosts.Count > 4096) warmCosts.TryDequeue(out _);
        }
        var recycling = Task.Run(() =>
        {
            try
            {
                slot.Recycle();
                if (slot.Broken) Retire(uid);
            }
            finally { ReleaseOrWarm(uid, image); }
        });
        lock (warming)
        {
            warming.RemoveAll(t => t.IsCompleted);
            warming.Add(recycling);
        }
        return result;
    }

    /// <inheritdoc />
    public async ValueTask<SandboxResult> RunAsync(SandboxRunRequest request, CancellationToken cancellation)
    {
        var limits = request.Command.Limits ?? settings.Limits;
        if (Refuse(request.Command, limits) is { } refused) return refused;
        var image = FindImage(request.Image);
        if (image is null) return SandboxResult.Failure(MissingImage(request.Image));
        int uid;
        try { uid = await slots.AcquireAsync(cancellation, u => HasWarm(u, image)); }
        catch (OperationCanceledException) { return Cancelled(TimeSpan.Zero); }
        ScratchFolder? scratch = null;
        var releaseHere = true;
        try
        {
            if (await TryWarmAsync(uid, image, request, limits, cancellation) is { } warmResult)
            {
                Interlocked.Increment(ref warmRuns);
                releaseHere = false;
                return warmResult;
            }
            Interlocked.Increment(ref coldRuns);
            scratch = ScratchFolder.Create(NewScratchPath(uid), limits.FileSizeBytes, uid);
            if (request.Files is { Count: > 0 } files && scratch.Put(files) is { Ok: false } put)
                return SandboxResult.Failure($"files: {put.Error}");
            return await ExecuteAsync(uid, image, scratch, request.Command, limits, limits, cancellation);
        }
        catch (IOException e)
        {
            return SandboxResult.Failure($"bwrap backend: {e.Message}");
        }
        finally
        {
            // The run's processes are gone by now (ExecuteAsync made sure): nothing else ran as this uid.
            scratch?.Dispose();
            if (releaseHere) ReleaseOrWarm(uid, image);
        }
    }

    /// <inheritdoc />
    public async ValueTask<ISandboxSession> OpenSessionAsync(SandboxSessionOptions options, CancellationToken cancellation)
    {
        var limits = options.Limits ?? settings.Limits;
        if (limits.Validate() is { Count: > 0 } problems) return new FailedSession($"limits: {string.Join("; ", problems)}");
        var image = FindImage(options.Image);
        if (image is null) return new FailedSession(MissingImage(options.Image));
        int uid;
        try { uid = await slots.AcquireAsync(cancellation, u => !HasWarm(u, null)); }
        catch (OperationCanceledException) { return new FailedSession("cancelled while waiting for a free sandbox slot"); }
        try
        {
            // A session's commands are cold runs, and its reset sweeps the uid: a warm slot on it must go first.
            Retire(uid);
            var scratch = ScratchFolder.Create(NewScratchPath(uid), limits.FileSizeBytes, uid);
            return new BwrapSession(this, uid, image, scratch, limits);
        }
        catch (IOException e)
        {
            slots.Release(uid);
            return new FailedSession($"bwrap backend: {e.Message}");
        }
    }

    private string NewScratchPath(int uid) =>
        Path.Combine(scratchRoot, $"{uid}-{Environment.ProcessId}-{Interlocked.Increment(ref runCounter)}");

    private string NewRunName(int uid) => $"{uid}-{Environment.ProcessId}-{Interlocked.Increment(ref runCounter)}";

    private SandboxImage? FindImage(string name)
    {
        lock (images)
        {
            if (!images.TryGetValue(name, out var image) || image is null)
                images[name] = image = SandboxImage.Load(settings.ImagesDirectory, name);
            return image;
        }
    }

    private string MissingImage(string name) =>
        $"image '{name}' is not built in {settings.ImagesDirectory} (run `gym sandbox images build`)";

    internal static SandboxResult? Refuse(SandboxCommand command, SandboxLimits limits)
    {
        if (command.Argv.Count == 0 || string.IsNullOrEmpty(command.Argv[0])) return SandboxResult.Failure("empty command");
        if (command.Argv.Any(a => a.Contains('\0'))) return SandboxResult.Failure("an argument contains a NUL character");
        if (limits.Validate() is { Count: > 0 } problems) return SandboxResult.Failure($"limits: {string.Join("; ", problems)}");
        return null;
    }

    internal static SandboxResult Cancelled(TimeSpan wall) =>
        new(SandboxOutcome.Killed, null, null, SandboxOutput.Empty, SandboxOutput.Empty, wall, null, null, "cancelled by the caller");

    /// <summary>Runs one command as <paramref name="uid"/> over a scratch folder; kills everything of the run before it returns.</summary>
    internal async Task<SandboxResult> ExecuteAsync(int uid, SandboxImage image, ScratchFolder scratch, SandboxCommand command,
        SandboxLimits limits, SandboxLimits sessionLimits, CancellationToken cancellation)
    {
        var runName = NewRunName(uid);
        var statusFile = Path.Combine(scratchRoot, $"{runName}.status");
        RunCgroup? cgroup = null;
        var clock = Stopwatch.StartNew();
        try
        {
            // bwrap itself takes two processes (its monitor and the namespace's init) beside the program's.
            var processLimit = sessionLimits.Processes + 2;
            cgroup = cgroups?.Create(runName, sessionLimits.MemoryBytes, processLimit);
            var start = BuildStart(uid, image, scratch, command, limits, sessionLimits, processLimit, cgroup, statusFile);
            using var process = new Process { StartInfo = start };
            process.Start();
            var stdout = new OutputCapture(limits.OutputBytes);
            var stderr = new OutputCapture(limits.OutputBytes);
            var ended = new CancellationTokenSource();
            string? endReason = null;
            void End(string reason)
            {
                lock (ended)
                {
                    if (endReason is not null) return;
                    endReason = reason;
                }
                KillRun(process, cgroup, uid);
            }
            stdout.Exceeded += () => End("output");
            stderr.Exceeded += () => End("output");
            var readOut = Task.Run(() => stdout.ReadAsync(process.StandardOutput.BaseStream));
            var readErr = Task.Run(() => stderr.ReadAsync(process.StandardError.BaseStream));
            var writeIn = Task.Run(async () =>
            {
                try
                {
                    if (command.Stdin is { Length: > 0 } input) await process.StandardInput.BaseStream.WriteAsync(input, ended.Token);
                    process.StandardInput.Close();
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
            });
            using (cancellation.Register(() => End("cancelled")))
            {
                var exited = process.WaitForExitAsync();
                var deadline = clock.Elapsed + limits.WallTime;
                while (!exited.IsCompleted)
                {
                    var left = deadline - clock.Elapsed;
                    if (left <= TimeSpan.Zero) { End("wall"); break; }
                    // With cgroups the run's total CPU is polled (rlimits only count per process).
                    await Task.WhenAny(exited, Task.Delay(cgroup is null ? left : TimeSpan.FromMilliseconds(Math.Min(25, left.TotalMilliseconds + 1))));
                    if (cgroup?.CpuTime > limits.CpuTime) { End("cpu"); break; }
                }
                // After a kill, the process tree is gone within milliseconds; the bound guards a stuck pipe.
                await exited.WaitAsync(TimeSpan.FromSeconds(10));
            }
            ended.Cancel();
            await Task.WhenAll(readOut, readErr).WaitAsync(TimeSpan.FromSeconds(5));
            var wall = clock.Elapsed;
            var exitCode = process.ExitCode;
            // When the program ends, bwrap's init ends and the kernel kills what is left of the pid namespace;
            // the cgroup sweep here and the uid sweep when the slot is released are the backstops.
            cgroup?.KillAll();
            // bwrap reports the program's pid once the sandbox is set up: no pid means the sandbox failed, not the program.
            var started = File.Exists(statusFile) && File.ReadAllText(statusFile).Contains("\"child-pid\"", StringComparison.Ordinal);
            return Classify(exitCode, endReason, started, stdout.ToOutput(), stderr.ToOutput(), wall, limits, cgroup);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            return SandboxResult.Failure($"bwrap backend: {e.Message}", clock.Elapsed);
        }
        finally
        {
            cgroup?.Dispose();
            // A run whose cgroups were emptied and removed left no process anywhere (a process cannot leave its
            // cgroup unprivileged); without cgroups, or when one would not go, every process of the uid is swept
            // (a /proc scan, a few ms a run on a busy host).
            if (cgroup is not { Removed: true }) UidSlots.KillAllOf(uid);
            try { File.Delete(statusFile); } catch (IOException) { }
        }
    }

    /// <summary>Kills a run from outside: bwrap, then whatever its cgroups and its uid still hold.</summary>
    private static void KillRun(Process process, RunCgroup? cgroup, int uid)
    {
        // bwrap first: its namespace's init dies with it (--die-with-parent), and with the init the kernel kills
        // every process of the pid namespace at once, however fast a fork bomb multiplies. The sweeps are the backstop.
        try { process.Kill(entireProcessTree: false); } catch (InvalidOperationException) { } catch (System.ComponentModel.Win32Exception) { }
        cgroup?.KillAll();
        UidSlots.KillAllOf(uid);
    }

    /// <summary>The result of a run from how it ended (<paramref name="exitCode"/>: 128+N for death by signal N).</summary>
    internal static SandboxResult Classify(int exitCode, string? endReason, bool started, SandboxOutput stdout, SandboxOutput stderr,
        TimeSpan wall, SandboxLimits limits, RunCgroup? cgroup)
    {
        var cpu = cgroup?.CpuTime;
        var peak = cgroup?.PeakMemoryBytes;
        SandboxResult Make(SandboxOutcome outcome, int? code, int? signal, string? detail) => new(outcome, code, signal, stdout, stderr, wall, cpu, peak, detail);

        if (endReason is null && !started)
            return Make(SandboxOutcome.SandboxError, null, null, $"bwrap failed before the program started (exit {exitCode}): {Trim(stderr.Text)}");
        // bwrap exits with 128+N when the program died of signal N.
        int? signal = exitCode is > 128 and < 128 + 65 ? exitCode - 128 : null;
        int? code = signal is null ? exitCode : null;
        switch (endReason)
        {
            case "cancelled": return Make(SandboxOutcome.Killed, null, Native.SIGKILL, "cancelled by the caller");
            case "output": return Make(SandboxOutcome.OutputLimit, null, Native.SIGKILL, $"wrote more than {limits.OutputBytes} bytes to stdout or stderr");
            case "wall": return Make(SandboxOutcome.Timeout, null, Native.SIGKILL, $"ran past the wall-time limit of {limits.WallTime.TotalSeconds:0.###} s");
            case "cpu": return Make(SandboxOutcome.Timeout, null, Native.SIGKILL, $"used more than {limits.CpuTime.TotalSeconds:0.###} s of CPU");
        }
        const int SIGXCPU = 24;
        if (signal == SIGXCPU || (signal == Native.SIGKILL && cpu >= limits.CpuTime))
            return Make(SandboxOutcome.Timeout, code, signal, $"used more than {limits.CpuTime.TotalSeconds:0.###} s of CPU");
        if (cgroup is not null ? cgroup.OomKilled || (cgroup.HitMemoryLimit && exitCode != 0)
                               : exitCode != 0 && stderr.Text.Contains("MemoryError", StringComparison.Ordinal))
            return Make(SandboxOutcome.MemoryLimit, code, signal, $"ran out of its {limits.MemoryBytes >> 20} MiB of memory");
        return Make(SandboxOutcome.Ok, code, signal, null);
    }

    private static string Trim(string text) => text.Length <= 500 ? text.Trim() : text[..500].Trim() + " ...";

    private ProcessStartInfo BuildStart(int uid, SandboxImage image, ScratchFolder scratch, SandboxCommand command, SandboxLimits limits,
        SandboxLimits sessionLimits, int processLimit, RunCgroup? cgroup, string statusFile)
    {
        string Number(long n) => n.ToString(CultureInfo.InvariantCulture);
        var cpuSeconds = (long)Math.Max(1, Math.Ceiling(limits.CpuTime.TotalSeconds));
        // The shell joins the run's cgroups before anything of the run exists, sets the rlimits with its own ulimit
        // (dash's units: -f in 512-byte blocks, -v in KiB; one exec fewer than prlimit, which cost a few ms a run),
        // and opens bwrap's status file as fd 3. A limit given alone sets soft and hard; CPU gets a soft limit one
        // second under the hard one, so SIGXCPU comes before SIGKILL.
        var script = new StringBuilder();
        foreach (var procs in cgroup?.ProcsFiles ?? []) script.Append("echo $$ > '").Append(procs).Append("' && ");
        script.Append("ulimit -p ").Append(processLimit)
            .Append(" && ulimit -n ").Append(limits.OpenFiles)
            .Append(" && ulimit -f ").Append(Number((sessionLimits.FileSizeBytes + 511) / 512))
            .Append(" && ulimit -t ").Append(cpuSeconds + 1).Append(" && ulimit -S -t ").Append(cpuSeconds)
            .Append(" && ulimit -c 0");
        // Without a memory cgroup, address space is the only memory limit there is.
        if (cgroup is null) script.Append(" && ulimit -v ").Append(Number((sessionLimits.MemoryBytes + 1023) / 1024));
        script.Append(" && exec 3>'").Append(statusFile).Append('\'');
        if (seccompPath is not null) script.Append(" 4<'").Append(seccompPath).Append('\'');
        script.Append(" && exec \"$@\"");
        var start = LaunchAsSlotUid(Dash, script.ToString(), uid);
        var args = start.ArgumentList;
        foreach (var a in new[]
        {
            "bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--json-status-fd", "3",
        }) args.Add(a);
        if (seccompPath is not null) foreach (var a in new[] { "--seccomp", "4" }) args.Add(a);
        foreach (var a in new[]
        {
            "--ro-bind", image.RootFs, "/", "--proc", "/proc",
            // A minimal /dev (null, zero, random, tty, ...), read-only but for a capped /dev/shm.
            "--dev", "/dev", "--perms", "1777", "--size", Number(sessionLimits.FileSizeBytes), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
            "--bind", scratch.HostPath, "/work",
            "--perms", "1777", "--size", Number(sessionLimits.FileSizeBytes), "--tmpfs", "/tmp",
            "--chdir", "/work", "--clearenv",
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/work", "--setenv", "TMPDIR", "/tmp",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--",
        }) args.Add(a);
        foreach (var a in command.Argv) args.Add(a);
        return start;
    }

    private static readonly string Dash = FindOnPath("dash") ?? "/bin/dash";

    /// <summary>
    /// The launch both paths share: <paramref name="dash"/> runs <paramref name="script"/> (cgroups, rlimits, the status
    /// and seccomp descriptors) as root, which ends by exec-ing its arguments: setpriv down to the slot's
    /// <paramref name="uid"/>, then whatever the caller adds (bwrap and its options). Standard streams redirected.
    /// </summary>
    internal static ProcessStartInfo LaunchAsSlotUid(string dash, string script, int uid)
    {
        var start = new ProcessStartInfo(dash)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        // Nothing of the host's environment (tokens, passwords) may reach the sandbox.
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var a in new[] { "-c", script, "sh", "setpriv", $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--" }) start.ArgumentList.Add(a);
        return start;
    }

    private static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
            .Append("/usr/sbin").Append("/usr/bin").Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    /// <summary>Gives a session's uid back (its processes swept); a warm slot may start on it, as after a cold run.</summary>
    internal void ReleaseSlot(int uid, SandboxImage image)
    {
        UidSlots.KillAllOf(uid);
        ReleaseOrWarm(uid, image);
    }

    /// <summary>Kills the warm slots and releases the claimed uids (sandboxes still running are killed by their own calls' ends).</summary>
    public void Dispose()
    {
        disposing = true;
        // A slot being readied may still hand its uid on to a start; once disposing, none begins, so this ends.
        for (var round = 0; round < 10; round++)
        {
            Task[] starting;
            lock (warming) starting = [.. warming.Where(t => !t.IsCompleted)];
            if (starting.Length == 0) break;
            try { Task.WaitAll(starting, TimeSpan.FromSeconds(30)); } catch (AggregateException) { }
        }
        List<WarmSlot> all;
        lock (warm)
        {
            all = [.. warm.Values];
            warm.Clear();
        }
        foreach (var slot in all) slot.Dispose();
        slots.Dispose();
    }

    /// <summary>A bwrap session: a slot (uid) and a scratch folder held for its life; each command is a fresh bwrap over that folder.</summary>
    private sealed class BwrapSession(BwrapSandboxService owner, int uid, SandboxImage image, ScratchFolder scratch, SandboxLimits limits) : ScratchSession(scratch)
    {

        public override async ValueTask<SandboxResult> ExecAsync(SandboxCommand command, CancellationToken cancellation)
        {
            var commandLimits = command.Limits is null ? limits
                : limits with { WallTime = command.Limits.WallTime, CpuTime = command.Limits.CpuTime, OutputBytes = command.Limits.OutputBytes };
            if (Refuse(command, commandLimits) is { } refused) return refused;
            try { await turn.WaitAsync(cancellation); }
            catch (OperationCanceledException) { return Cancelled(TimeSpan.Zero); }
            try
            {
                if (disposed) return SandboxResult.Failure("the session is closed");
                return await owner.ExecuteAsync(uid, image, Scratch, command, commandLimits, limits, cancellation);
            }
            finally { turn.Release(); }
        }

        public override async ValueTask<SandboxStatus> ResetAsync(CancellationToken cancellation)
        {
            await turn.WaitAsync(cancellation);
            try
            {
                if (disposed) return SandboxStatus.Failed("the session is closed");
                UidSlots.KillAllOf(uid);
                Scratch.Clear();
                return SandboxStatus.Success;
            }
            catch (IOException e) { return SandboxStatus.Failed($"reset: {e.Message}"); }
            finally { turn.Release(); }
        }

        public override async ValueTask DisposeAsync()
        {
            await turn.WaitAsync();
            try
            {
                if (disposed) return;
                disposed = true;
                Scratch.Dispose();
                owner.ReleaseSlot(uid, image);
            }
            finally { turn.Release(); }
        }
    }
}

/// <summary>A session that could not be opened: every call reports why.</summary>
internal sealed class FailedSession(string reason) : ISandboxSession
{
    public ValueTask<SandboxResult> ExecAsync(SandboxCommand command, CancellationToken cancellation) => ValueTask.FromResult(SandboxResult.Failure(reason));
    public ValueTask<SandboxStatus> PutFilesAsync(IReadOnlyList<SandboxFile> files, CancellationToken cancellation) => ValueTask.FromResult(SandboxStatus.Failed(reason));
    public ValueTask<SandboxFileRead> GetFileAsync(string path, long maxBytes, CancellationToken cancellation) => ValueTask.FromResult(new SandboxFileRead(null, false, reason));
    public ValueTask<SandboxStatus> ResetAsync(CancellationToken cancellation) => ValueTask.FromResult(SandboxStatus.Failed(reason));
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
