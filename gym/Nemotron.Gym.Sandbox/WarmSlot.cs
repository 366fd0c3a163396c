using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// One bwrap sandbox kept alive between one-shot runs of a slot (one uid), so that a run costs a fork and an exec
/// inside namespaces that already exist instead of building them (bwrap's namespaces and mounts, setpriv, the shell).
/// Inside it, as pid 1, a small python agent waits for jobs on its stdin; for each it forks the program with the
/// run's rlimits, its own session, /work as its directory and the run's stdin/stdout/stderr (named pipes the host
/// opens the other ends of), and reports the exit status. Between runs nothing of a run survives:
/// <list type="bullet">
/// <item>every process of the run is in the run's own cgroups and is killed with them: the agent waits in a fresh set
/// of groups, made and entered after the previous run (moving a process between cgroups can cost a kernel grace
/// period, milliseconds, so it is kept off the run's path), forks the program there, and is spared by the kill; the
/// program raises its OOM score to the top before its exec (anyone may raise theirs; lowering the agent's would take
/// CAP_SYS_RESOURCE), so the kernel's OOM killer picks the run's processes, not the agent; groups that will not
/// empty break the slot;</item>
/// <item>/work, /tmp and /dev/shm are fresh tmpfs mounts per run: the host stacks them on shared mounts that the
/// sandbox binds, so they show through inside, and unmounts them after the run (nothing to clean, nothing to miss);</item>
/// <item>state the kernel keeps per namespace rather than per process (SysV IPC, POSIX message queues, keyrings) is
/// refused by the seccomp filter (<see cref="SeccompFilter"/>).</item>
/// </list>
/// The agent makes itself non-dumpable, so the run (same uid, no capabilities) can neither ptrace it nor read its
/// memory or descriptors; as pid 1 of its namespace it ignores signals it has no handler for, SIGKILL included.
/// Anything unexpected (the agent gone, a reply missing or late, a group that will not go) marks the slot broken:
/// it is disposed, never reused, and the run falls back to a cold bwrap.
/// </summary>
internal sealed class WarmSlot : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);
    private static readonly string[] FifoNames = ["in", "out", "err"];
    private const string ControlPath = "/dev/gym-run";

    private readonly Process bwrap;
    private readonly RunCgroup keeperGroup;
    private readonly int agentPid;
    private readonly string folder;
    private readonly CgroupLayout cgroups;
    private readonly Func<string> newGroupName;
    // The groups the agent waits in for the next run, and those of the last run until they are removed.
    private RunCgroup? prepared, finished;
    // Unmounting the last run's tmpfs and deleting its pipes, done by Recycle (or by Dispose, which removes them all).
    private Action? pendingCleanup;
    private int disposed;

    public int Uid { get; }
    public SandboxImage Image { get; }
    public bool Broken { get; private set; }
    public string? BrokenReason { get; private set; }
    public long Runs { get; private set; }

    /// <summary>
    /// The last run's own cost in ms: from the call to the program's fork (limits, mounts, files, pipes, the job), and
    /// from the agent's exit report to the result (the kill of what is left, output drained); null if it did not end so.
    /// </summary>
    public (double BeforeMs, double AfterMs)? LastCosts { get; private set; }

    private string WorkPath => Path.Combine(folder, "work");
    private string TmpPath => Path.Combine(folder, "tmp");
    private string ShmPath => Path.Combine(folder, "shm");
    private string ControlFolder => Path.Combine(folder, "run");

    private WarmSlot(int uid, SandboxImage image, string folder, Process bwrap, RunCgroup keeperGroup, int agentPid,
        CgroupLayout cgroups, Func<string> newGroupName)
    {
        Uid = uid;
        Image = image;
        this.folder = folder;
        this.bwrap = bwrap;
        this.keeperGroup = keeperGroup;
        this.agentPid = agentPid;
        this.cgroups = cgroups;
        this.newGroupName = newGroupName;
    }

    /// <summary>The process of the agent (pid 1 of the slot's namespaces), as the host sees it.</summary>
    public int AgentProcessId => agentPid;

    /// <summary>Removes what a warm slot in <paramref name="folder"/> left (its stacked and base mounts, its pipes).</summary>
    public static void RemoveFolder(string folder)
    {
        if (!Directory.Exists(folder)) return;
        foreach (var part in new[] { "work", "tmp", "shm" })
        {
            var path = Path.Combine(folder, part);
            for (var i = 0; i < 8 && Native.Unmount(path); i++) { }
        }
        try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Starts a slot for <paramref name="uid"/>; the reason instead when it cannot.</summary>
    public static async Task<(WarmSlot? Slot, string? Error)> StartAsync(int uid, SandboxImage image, string folder, CgroupLayout cgroups,
        string seccompPath, string dash, Func<string> newGroupName)
    {
        RemoveFolder(folder);
        RunCgroup? keeper = null;
        Process? process = null;
        try
        {
            Directory.CreateDirectory(folder);
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            foreach (var part in new[] { "work", "tmp", "shm" })
            {
                // A tiny read-only-to-the-sandbox base, shared so that each run's tmpfs, stacked on it, shows through.
                var path = Path.Combine(folder, part);
                Directory.CreateDirectory(path);
                Native.MountTmpfs(path, 4096, 0, "0755");
                Native.MakeShared(path);
            }
            Directory.CreateDirectory(Path.Combine(folder, "run"));
            File.SetUnixFileMode(Path.Combine(folder, "run"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            var statusFile = Path.Combine(folder, "status");
            keeper = cgroups.Create($"warm-{uid}-{Environment.ProcessId}", 128L << 20, 8);

            string Q(string path) => "'" + path.Replace("'", "'\\''") + "'";
            var script = new StringBuilder();
            foreach (var procs in keeper.ProcsFiles) script.Append("echo $$ > ").Append(Q(procs)).Append(" && ");
            script.Append("ulimit -c 0 && exec 3>").Append(Q(statusFile)).Append(" 4<").Append(Q(seccompPath)).Append(" && exec \"$@\"");
            var start = BwrapSandboxService.LaunchAsSlotUid(dash, script.ToString(), uid);
            foreach (var a in new[]
            {
                "bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
                "--hostname", "sandbox", "--die-with-parent", "--as-pid-1", "--new-session", "--cap-drop", "ALL",
                "--json-status-fd", "3", "--seccomp", "4",
                "--ro-bind", image.RootFs, "/", "--proc", "/proc",
                "--dev", "/dev", "--bind", Path.Combine(folder, "shm"), "/dev/shm", "--ro-bind", Path.Combine(folder, "run"), ControlPath,
                "--remount-ro", "/dev",
                "--bind", Path.Combine(folder, "work"), "/work", "--bind", Path.Combine(folder, "tmp"), "/tmp",
                "--chdir", "/", "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
                "--", "python3", "-I", "-S", "-c", AgentSource,
            }) start.ArgumentList.Add(a);

            process = await LauncherThread.StartAsync(start);
            var errors = process.StandardError.ReadToEndAsync();
            string? ready;
            try { ready = await process.StandardOutput.ReadLineAsync().WaitAsync(StartTimeout); }
            catch (TimeoutException) { ready = null; }
            if (ready != "ready")
            {
                try { process.Kill(); } catch (InvalidOperationException) { }
                var text = await errors.WaitAsync(TimeSpan.FromSeconds(2)).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : "");
                throw new IOException($"the warm sandbox did not come up ({(ready is null ? "no reply" : $"'{ready}'")}): {text.Trim()}");
            }
            var pid = ReadChildPid(File.ReadAllText(statusFile)) ?? throw new IOException("bwrap reported no child pid");
            File.Delete(statusFile);
            var slot = new WarmSlot(uid, image, folder, process, keeper, pid, cgroups, newGroupName);
            keeper = null;
            slot.Recycle();
            if (slot.Broken)
            {
                var reason = slot.BrokenReason;
                slot.Dispose();
                throw new IOException($"the warm sandbox's agent could not be placed in a cgroup: {reason}");
            }
            return (slot, null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            try { process?.Kill(); } catch (InvalidOperationException) { }
            keeper?.Dispose();
            process?.Dispose();
            RemoveFolder(folder);
            return (null, e.Message);
        }
    }

    private static int? ReadChildPid(string status)
    {
        foreach (var line in status.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var json = JsonDocument.Parse(line);
            if (json.RootElement.TryGetProperty("child-pid", out var pid)) return pid.GetInt32();
        }
        return null;
    }

    private void MarkBroken(string reason)
    {
        if (Broken) return;
        Broken = true;
        BrokenReason = reason;
    }

    /// <summary>
    /// Runs one program in the slot. Null when the run could not start here (the slot is then broken; the caller runs
    /// it cold); otherwise its result, sandbox errors included.
    /// </summary>
    public async Task<SandboxResult?> TryRunAsync(SandboxRunRequest request, SandboxLimits limits, CancellationToken cancellation)
    {
        if (Broken) return null;
        if (bwrap.HasExited) { MarkBroken("the warm sandbox ended"); return null; }
        if (prepared is null) { MarkBroken("no cgroup prepared"); return null; }
        var command = request.Command;
        var clock = Stopwatch.StartNew();
        RunCgroup? cgroup = null;
        ScratchFolder? work = null;
        var stacked = new List<string>();
        var hostEnds = new List<FileStream>();
        Task<List<FileStream>>? opening = null;
        var started = false;
        double startedAt = -1, exitAt = -1;
        LastCosts = null;
        try
        {
            // Two processes of the uid are the slot's own (bwrap and the agent), as bwrap's two are on a cold run.
            var processLimit = limits.Processes + 2;
            (cgroup, prepared, finished) = (prepared, null, prepared);
            // The agent is in these groups already: one process more than a cold run's groups hold.
            cgroup.SetLimits(limits.MemoryBytes, processLimit + 1);
            work = ScratchFolder.Stack(WorkPath, limits.FileSizeBytes, Uid);
            foreach (var path in new[] { TmpPath, ShmPath })
            {
                Native.MountTmpfs(path, limits.FileSizeBytes, Uid, "1777");
                stacked.Add(path);
            }
            if (request.Files is { Count: > 0 } files && work.Put(files) is { Ok: false } put)
                return SandboxResult.Failure($"files: {put.Error}");
            foreach (var name in FifoNames)
            {
                var path = Path.Combine(ControlFolder, name);
                Native.MakeFifo(path, 0x180);
                Native.ChangeOwner(path, Uid);
            }

            // The agent forks inside the run's groups, so the program and all it starts are there from their first instruction.
            var job = Job(command, limits, processLimit);
            // The host's ends wait for the agent's; started first, they are open as soon as the agent's are.
            opening = Task.Run(OpenHostEnds);
            // Not cancellable halfway (a job line cut short would break the slot); a cancellation kills the run once it is up.
            await bwrap.StandardInput.BaseStream.WriteAsync(job, CancellationToken.None);
            await bwrap.StandardInput.BaseStream.FlushAsync(CancellationToken.None);
            try { hostEnds.AddRange(await opening.WaitAsync(StartTimeout)); }
            catch (TimeoutException)
            {
                MarkBroken("the agent did not open the run's pipes");
                return null;
            }
            var reply = await ReadReplyAsync(StartTimeout);
            if (reply is null || !reply.StartsWith("started ", StringComparison.Ordinal))
            {
                MarkBroken($"the agent did not start the program ({reply ?? "no reply"})");
                return null;
            }
            started = true;
            startedAt = clock.Elapsed.TotalMilliseconds;
            Runs++;

            var (stdinEnd, stdoutEnd, stderrEnd) = (hostEnds[0], hostEnds[1], hostEnds[2]);
            var stdout = new OutputCapture(limits.OutputBytes);
            var stderr = new OutputCapture(limits.OutputBytes);
            var gate = new object();
            string? endReason = null;
            void End(string reason)
            {
                lock (gate)
                {
                    if (endReason is not null) return;
                    endReason = reason;
                }
                cgroup.KillAll(spare: agentPid);
            }
            stdout.Exceeded += () => End("output");
            stderr.Exceeded += () => End("output");
            var readOut = Task.Run(() => stdout.ReadAsync(stdoutEnd));
            var readErr = Task.Run(() => stderr.ReadAsync(stderrEnd));
            using var ended = new CancellationTokenSource();
            var writeIn = Task.Run(async () =>
            {
                try
                {
                    if (command.Stdin is { Length: > 0 } input) await stdinEnd.WriteAsync(input, ended.Token);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
                finally { try { stdinEnd.Dispose(); } catch (IOException) { } }
            });
            var exitLine = ReadReplyAsync(null);
            using (cancellation.Register(() => End("cancelled")))
            {
                var deadline = clock.Elapsed + limits.WallTime;
                while (!exitLine.IsCompleted)
                {
                    var left = deadline - clock.Elapsed;
                    if (left <= TimeSpan.Zero) { End("wall"); break; }
                    // The run's total CPU is polled (rlimits only count per process).
                    await Task.WhenAny(exitLine, Task.Delay(TimeSpan.FromMilliseconds(Math.Min(25, left.TotalMilliseconds + 1))));
                    if (cgroup.CpuTime > limits.CpuTime) { End("cpu"); break; }
                }
                // After a kill the agent reaps the program within milliseconds; the bound guards a stuck agent.
                await exitLine.WaitAsync(TimeSpan.FromSeconds(10));
                exitAt = clock.Elapsed.TotalMilliseconds;
            }
            ended.Cancel();
            var wall = clock.Elapsed;
            // What the program left running (a daemon) goes now, before its output can end.
            if (!cgroup.KillAll(spare: agentPid)) MarkBroken("a run's processes would not die");
            await Task.WhenAll(readOut, readErr).WaitAsync(TimeSpan.FromSeconds(5));
            await writeIn.WaitAsync(TimeSpan.FromSeconds(5));
            var exit = await exitLine;
            if (exit is null || !exit.StartsWith("exit ", StringComparison.Ordinal)
                || !int.TryParse(exit.AsSpan(5), NumberStyles.Integer, CultureInfo.InvariantCulture, out var status))
            {
                MarkBroken($"the agent did not report the program's end ({exit ?? "no reply"})");
                return SandboxResult.Failure($"bwrap backend: the warm sandbox's agent did not report the program's end", wall);
            }
            // Reported as a cold run's bwrap reports it: 128+N for death by signal N.
            var exitCode = status >= 0 ? status : 128 - status;
            return BwrapSandboxService.Classify(exitCode, endReason, started: true, stdout.ToOutput(), stderr.ToOutput(), wall, limits, cgroup);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException or InvalidOperationException)
        {
            MarkBroken(e.Message);
            if (!started) return null;
            return SandboxResult.Failure($"bwrap backend: {e.Message}", clock.Elapsed);
        }
        finally
        {
            // Opens still waiting for an agent that will not come are completed here, and what they opened closed.
            if (opening is { IsCompleted: false })
            {
                var partners = OpenPartners();
                _ = opening.ContinueWith(t =>
                {
                    if (t.IsCompletedSuccessfully) foreach (var end in t.Result) end.Dispose();
                    foreach (var partner in partners) partner.Dispose();
                }, TaskScheduler.Default);
            }
            foreach (var end in hostEnds) { try { end.Dispose(); } catch (IOException) { } }
            // Whatever happened, nothing of the run may outlive this call. Its mounts, pipes and groups go in Recycle,
            // off the run's path (or with the slot, if it broke).
            if (cgroup is not null && !cgroup.KillAll(spare: agentPid)) MarkBroken("a run's processes would not die");
            pendingCleanup = () =>
            {
                work?.Dispose();
                foreach (var path in stacked) Native.Unmount(path);
                foreach (var name in FifoNames) { try { File.Delete(Path.Combine(ControlFolder, name)); } catch (IOException) { } }
            };
            if (startedAt >= 0 && exitAt >= 0) LastCosts = (startedAt, clock.Elapsed.TotalMilliseconds - exitAt);
        }
    }

    /// <summary>
    /// Readies the slot for its next run, off the run's path: the agent moves into fresh groups and those of the last
    /// run are removed (their removal proves them empty). Anything failing breaks the slot.
    /// </summary>
    public void Recycle()
    {
        if (Broken) return;
        Interlocked.Exchange(ref pendingCleanup, null)?.Invoke();
        try
        {
            var next = cgroups.Create(newGroupName());
            prepared = next;
            next.Add(agentPid);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            MarkBroken($"preparing the next run's cgroups: {e.Message}");
            return;
        }
        if (finished is { } last)
        {
            finished = null;
            last.Dispose();
            if (!last.Removed) MarkBroken("a run's cgroups would not go");
        }
    }

    private byte[] Job(SandboxCommand command, SandboxLimits limits, int processLimit)
    {
        var cpuSeconds = (long)Math.Max(1, Math.Ceiling(limits.CpuTime.TotalSeconds));
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("argv");
            foreach (var a in command.Argv) json.WriteStringValue(a);
            json.WriteEndArray();
            json.WriteStartObject("env");
            json.WriteString("PATH", "/usr/local/bin:/usr/bin:/bin");
            json.WriteString("HOME", "/work");
            json.WriteString("TMPDIR", "/tmp");
            json.WriteString("LANG", "C.UTF-8");
            json.WriteString("PYTHONDONTWRITEBYTECODE", "1");
            json.WriteEndObject();
            // The same rlimits as a cold run's shell sets: CPU soft one second under hard, so SIGXCPU comes before SIGKILL.
            json.WriteStartArray("limits");
            void Limit(string name, long soft, long hard)
            {
                json.WriteStartArray();
                json.WriteStringValue(name);
                json.WriteNumberValue(soft);
                json.WriteNumberValue(hard);
                json.WriteEndArray();
            }
            Limit("NPROC", processLimit, processLimit);
            Limit("NOFILE", limits.OpenFiles, limits.OpenFiles);
            var fileSize = (limits.FileSizeBytes + 511) / 512 * 512;
            Limit("FSIZE", fileSize, fileSize);
            Limit("CPU", cpuSeconds, cpuSeconds + 1);
            Limit("CORE", 0, 0);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    // In the agent's order: stdin, then stdout, then stderr; each open waits for the agent's open of the other end.
    private List<FileStream> OpenHostEnds()
    {
        var ends = new List<FileStream>();
        try
        {
            foreach (var (name, flags, access) in new[] { ("in", Native.O_WRONLY, FileAccess.Write), ("out", Native.O_RDONLY, FileAccess.Read), ("err", Native.O_RDONLY, FileAccess.Read) })
            {
                var fd = Native.Open(Path.Combine(ControlFolder, name), flags | Native.O_CLOEXEC);
                ends.Add(new FileStream(new SafeFileHandle(fd, ownsHandle: true), access, bufferSize: 0));
            }
            return ends;
        }
        catch
        {
            foreach (var end in ends) end.Dispose();
            throw;
        }
    }

    // Opening a FIFO for reading and writing never waits; held open, it is the partner every open of the FIFO waits
    // for, now or later, so opens the agent will never answer complete.
    private List<SafeFileHandle> OpenPartners()
    {
        var partners = new List<SafeFileHandle>();
        foreach (var name in FifoNames)
        {
            try { partners.Add(new SafeFileHandle(Native.Open(Path.Combine(ControlFolder, name), Native.O_RDWR | Native.O_NONBLOCK | Native.O_CLOEXEC), ownsHandle: true)); }
            catch (IOException) { }
        }
        return partners;
    }

    private async Task<string?> ReadReplyAsync(TimeSpan? timeout)
    {
        var line = bwrap.StandardOutput.ReadLineAsync();
        try { return timeout is { } bound ? await line.WaitAsync(bound) : await line; }
        catch (TimeoutException) { return null; }
    }

    /// <summary>Kills the sandbox (bwrap, and with it its pid namespace) and removes its groups, mounts and pipes.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        MarkBroken("disposed");
        try { bwrap.Kill(entireProcessTree: false); } catch (InvalidOperationException) { } catch (System.ComponentModel.Win32Exception) { }
        keeperGroup.Dispose();
        prepared?.Dispose();
        finished?.Dispose();
        try { bwrap.WaitForExit(2000); } catch (InvalidOperationException) { }
        bwrap.Dispose();
        RemoveFolder(folder);
    }

    /// <summary>
    /// The agent, run as `python3 -I -S -c` (no file of ours in the image). Jobs are JSON lines on stdin; replies are
    /// "ready", "started PID", "failed WHY" and "exit STATUS" (negative: killed by that signal) on stdout.
    /// </summary>
    private const string AgentSource = """
        import ctypes, json, os, resource, select, signal
        # Not dumpable: the programs run as this very uid, and must not trace this process or read its memory.
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) != 0:
            raise SystemExit('prctl(PR_SET_DUMPABLE) failed')
        os.chdir('/')
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda number, frame: None)
        # As pid 1, only signals with a handler reach it from inside; python's own SIGINT handler would let a run end it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        child = 0
        def say(text):
            os.write(1, text.encode() + b'\n')
        def run(job):
            global child
            fds = []
            try:
                for name, mode in (('in', os.O_RDONLY), ('out', os.O_WRONLY), ('err', os.O_WRONLY)):
                    fds.append(os.open('/dev/gym-run/' + name, mode))
                pid = os.fork()
                if pid == 0:
                    try:
                        for target, fd in enumerate(fds):
                            os.dup2(fd, target)
                        signal.set_wakeup_fd(-1)
                        # The dispositions a cold run's program starts with: all default but SIGPIPE, ignored there too.
                        for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGXFSZ):
                            signal.signal(number, signal.SIG_DFL)
                        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
                        os.setsid()
                        # Dumpable again (as its exec would make it anyway), and the OOM killer's first choice, before
                        # this agent, which shares the run's cgroups.
                        libc.prctl(4, 1, 0, 0, 0)
                        with open('/proc/self/oom_score_adj', 'w') as adj:
                            adj.write('1000')
                        for name, soft, hard in job['limits']:
                            resource.setrlimit(getattr(resource, 'RLIMIT_' + name), (soft, hard))
                        os.chdir('/work')
                        os.execvpe(job['argv'][0], job['argv'], job['env'])
                    except BaseException as e:
                        try:
                            os.write(2, ('sandbox: cannot run %r: %s\n' % (job['argv'][0], e)).encode())
                        except BaseException:
                            pass
                    os._exit(127)
                child = pid
                say('started %d' % pid)
            except Exception as e:
                say('failed %s' % e)
            finally:
                for fd in fds:
                    os.close(fd)
        say('ready')
        pending = b''
        while True:
            readable = select.select([0, wake_r], [], [])[0]
            if wake_r in readable:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid == child:
                    child = 0
                    say('exit %d' % os.waitstatus_to_exitcode(status))
            if 0 in readable:
                data = os.read(0, 65536)
                if not data:
                    break
                pending += data
                while b'\n' in pending:
                    line, pending = pending.split(b'\n', 1)
                    run(json.loads(line))
        """;
}
