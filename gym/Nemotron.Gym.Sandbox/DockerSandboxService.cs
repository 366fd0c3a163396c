using System.Diagnostics;
using System.Globalization;
using Docker.DotNet;
using Docker.DotNet.Models;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// The Docker backend, through Docker.DotNet. Every container: no network (NetworkDisabled, network mode
/// none), memory with memory+swap equal to it, a pids limit, a read-only root (the image built from
/// <c>sandbox-images/</c>), tmpfs /tmp, its scratch folder (a host tmpfs, as in the bwrap backend) bound at
/// /work, all capabilities dropped, no-new-privileges, user 65534, an init that reaps orphans, and a
/// label naming the silo. A one-shot run is a container of its own; a session is a warm container
/// kept alive by a sleeping process, each command an exec in it, after which every other process in the
/// container is killed. Timeouts kill the container from outside. A reaper removes this silo's
/// containers that no live sandbox owns, at start and on a timer. The engine must run on this host
/// (scratch folders are bind mounts).
/// </summary>
public sealed class DockerSandboxService : ISandboxService, IAsyncDisposable
{
    /// <summary>Label carrying the silo's name on every container this backend makes.</summary>
    public const string SiloLabel = "nemotron-gym.silo";

    private const int SandboxUid = 65534;
    private readonly SandboxSettings settings;
    private readonly DockerClientConfiguration configuration;
    private readonly DockerClient client;
    private readonly SemaphoreSlim slots;
    private readonly string scratchRoot;
    private readonly string namePrefix;
    private readonly HashSet<string> live = [];
    private readonly Dictionary<string, Task<SandboxImage>> imports = [];
    private readonly Timer reaper;
    private long counter;

    /// <inheritdoc />
    public string Backend => settings.DockerRuntime is null ? "docker" : $"docker ({settings.DockerRuntime})";

    private DockerSandboxService(SandboxSettings settings, DockerClientConfiguration configuration, DockerClient client, string scratchRoot)
    {
        this.settings = settings;
        this.configuration = configuration;
        this.client = client;
        this.scratchRoot = scratchRoot;
        slots = new SemaphoreSlim(settings.Slots, settings.Slots);
        namePrefix = $"ngym-{Sanitize(settings.SiloName)}-{Environment.ProcessId}-";
        reaper = new Timer(_ => _ = ReapAsync(), null, settings.ReaperPeriod, settings.ReaperPeriod);
    }

    /// <summary>
    /// Connects to the engine (it must answer), removes this silo's leftover containers and scratch
    /// folders, and starts the reaper. Returns the reason instead when the engine cannot be used.
    /// </summary>
    public static async Task<(DockerSandboxService? Service, string? Error)> CreateAsync(SandboxSettings settings, CancellationToken cancellation)
    {
        if (!Native.IsRoot) return (null, "the docker backend runs as root (it mounts each sandbox's scratch tmpfs)");
        DockerClientConfiguration? configuration = null;
        try
        {
            configuration = new DockerClientConfiguration(new Uri(settings.DockerEndpoint));
            var client = configuration.CreateClient();
            using (var ping = CancellationTokenSource.CreateLinkedTokenSource(cancellation))
            {
                ping.CancelAfter(TimeSpan.FromSeconds(5));
                await client.System.PingAsync(ping.Token);
            }
            var scratchRoot = Path.Combine(settings.ScratchDirectory, "docker");
            Directory.CreateDirectory(scratchRoot);
            var service = new DockerSandboxService(settings, configuration, client, scratchRoot);
            await service.ReapAsync();
            return (service, null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
        {
            configuration?.Dispose();
            return (null, $"docker engine at {settings.DockerEndpoint} does not answer: {e.Message} (start one with `gym sandbox docker start`)");
        }
    }

    /// <inheritdoc />
    public async ValueTask<SandboxResult> RunAsync(SandboxRunRequest request, CancellationToken cancellation)
    {
        var limits = request.Command.Limits ?? settings.Limits;
        if (BwrapSandboxService.Refuse(request.Command, limits) is { } refused) return refused;
        try { await slots.WaitAsync(cancellation); }
        catch (OperationCanceledException) { return BwrapSandboxService.Cancelled(TimeSpan.Zero); }
        var clock = Stopwatch.StartNew();
        var name = NewName();
        ScratchFolder? scratch = null;
        try
        {
            var image = await ImageAsync(request.Image, cancellation);
            scratch = ScratchFolder.Create(Path.Combine(scratchRoot, name), limits.FileSizeBytes, SandboxUid);
            if (request.Files is { Count: > 0 } files && scratch.Put(files) is { Ok: false } put)
                return SandboxResult.Failure($"files: {put.Error}");
            var create = ContainerSpec(name, image, scratch, limits, request.Command.Argv);
            create.AttachStdin = create.OpenStdin = create.StdinOnce = true;
            create.AttachStdout = create.AttachStderr = true;
            var id = (await client.Containers.CreateContainerAsync(create, cancellation)).ID;
            using var stream = await client.Containers.AttachContainerAsync(id, false,
                new ContainerAttachParameters { Stream = true, Stdin = true, Stdout = true, Stderr = true }, cancellation);
            await client.Containers.StartContainerAsync(id, new ContainerStartParameters(), cancellation);
            var run = await PumpAsync(stream, request.Command.Stdin, limits, clock,
                exitCode: async () =>
                {
                    var wait = await client.Containers.WaitContainerAsync(id, CancellationToken.None);
                    return (int)wait.StatusCode;
                },
                kill: () => KillContainerAsync(id), cancellation);
            var state = (await client.Containers.InspectContainerAsync(id, CancellationToken.None)).State;
            // The engine records why a container's process could not be started; its exit code then says nothing about the program.
            if (!string.IsNullOrEmpty(state.Error)) return SandboxResult.Failure($"docker: {state.Error}", run.Wall);
            return Classify(run, state.OOMKilled, limits);
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException or InvalidOperationException
                                  || (e is OperationCanceledException && !cancellation.IsCancellationRequested))
        {
            return SandboxResult.Failure($"docker: {e.Message}", clock.Elapsed);
        }
        catch (OperationCanceledException)
        {
            return BwrapSandboxService.Cancelled(clock.Elapsed);
        }
        finally
        {
            await RemoveContainerAsync(name, keepOwned: true);
            scratch?.Dispose();
            Disown(name);
            slots.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<ISandboxSession> OpenSessionAsync(SandboxSessionOptions options, CancellationToken cancellation)
    {
        var limits = options.Limits ?? settings.Limits;
        if (limits.Validate() is { Count: > 0 } problems) return new FailedSession($"limits: {string.Join("; ", problems)}");
        try { await slots.WaitAsync(cancellation); }
        catch (OperationCanceledException) { return new FailedSession("cancelled while waiting for a free sandbox slot"); }
        var name = NewName();
        ScratchFolder? scratch = null;
        try
        {
            var image = await ImageAsync(options.Image, cancellation);
            scratch = ScratchFolder.Create(Path.Combine(scratchRoot, name), limits.FileSizeBytes, SandboxUid);
            var session = new DockerSession(this, name, image, scratch, limits);
            await session.StartContainerAsync(cancellation);
            return session;
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException or InvalidOperationException or OperationCanceledException)
        {
            await RemoveContainerAsync(name, keepOwned: true);
            scratch?.Dispose();
            Disown(name);
            slots.Release();
            return new FailedSession($"docker: {e.Message}");
        }
    }

    private string NewName()
    {
        var name = namePrefix + Interlocked.Increment(ref counter).ToString(CultureInfo.InvariantCulture);
        lock (live) live.Add(name);
        return name;
    }

    private static string Sanitize(string text) => new(text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());

    /// <summary>The image's tag in the engine, imported from its tar the first time it is asked for.</summary>
    private Task<SandboxImage> ImageAsync(string name, CancellationToken cancellation)
    {
        lock (imports)
        {
            if (!imports.TryGetValue(name, out var task) || task.IsFaulted || task.IsCanceled)
                imports[name] = task = ImportAsync(name, cancellation);
            return task;
        }
    }

    private async Task<SandboxImage> ImportAsync(string name, CancellationToken cancellation)
    {
        var image = SandboxImage.Load(settings.ImagesDirectory, name)
            ?? throw new InvalidOperationException($"image '{name}' is not built in {settings.ImagesDirectory} (run `gym sandbox images build`)");
        await EnsureImportedAsync(client, image, cancellation);
        return image;
    }

    /// <summary>Imports an image's tar into the engine under its tag, unless the tag is there already.</summary>
    public static async Task<bool> EnsureImportedAsync(DockerClient client, SandboxImage image, CancellationToken cancellation)
    {
        try
        {
            await client.Images.InspectImageAsync(image.DockerImage, cancellation);
            return false;
        }
        catch (DockerImageNotFoundException) { }
        var colon = image.DockerImage.LastIndexOf(':');
        await using var tar = File.OpenRead(image.Tarball);
        await client.Images.CreateImageAsync(
            new ImagesCreateParameters { FromSrc = "-", Repo = image.DockerImage[..colon], Tag = image.DockerImage[(colon + 1)..] },
            tar, null, new Progress<JSONMessage>(), cancellation);
        await client.Images.InspectImageAsync(image.DockerImage, cancellation);
        return true;
    }

    private CreateContainerParameters ContainerSpec(string name, SandboxImage image, ScratchFolder scratch, SandboxLimits limits, IReadOnlyList<string> argv)
    {
        var cpuSeconds = (long)Math.Max(1, Math.Ceiling(limits.CpuTime.TotalSeconds));
        var gvisor = settings.DockerRuntime == "runsc";
        return new CreateContainerParameters
        {
            Name = name,
            Image = image.DockerImage,
            Cmd = [.. argv],
            User = $"{SandboxUid}:{SandboxUid}",
            WorkingDir = "/work",
            Hostname = "sandbox",
            Env = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "TMPDIR=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"],
            NetworkDisabled = true,
            Labels = new Dictionary<string, string> { [SiloLabel] = settings.SiloName },
            HostConfig = new HostConfig
            {
                NetworkMode = "none",
                Memory = limits.MemoryBytes,
                MemorySwap = limits.MemoryBytes,
                // One more for the init process. gVisor (runsc 2022-12 on cgroup v1) refuses to start a container
                // with a pids limit; under it the nproc rlimit below, which its kernel enforces, bounds processes.
                PidsLimit = gvisor ? null : limits.Processes + 1,
                ReadonlyRootfs = true,
                CapDrop = ["ALL"],
                SecurityOpt = ["no-new-privileges"],
                Init = true,
                Runtime = settings.DockerRuntime,
                Ulimits =
                [
                    new Ulimit { Name = "nofile", Soft = limits.OpenFiles, Hard = limits.OpenFiles },
                    new Ulimit { Name = "fsize", Soft = limits.FileSizeBytes, Hard = limits.FileSizeBytes },
                    new Ulimit { Name = "cpu", Soft = cpuSeconds, Hard = cpuSeconds + 1 },
                    new Ulimit { Name = "core", Soft = 0, Hard = 0 },
                    .. (gvisor ? new[] { new Ulimit { Name = "nproc", Soft = limits.Processes + 1, Hard = limits.Processes + 1 } } : []),
                ],
                Tmpfs = new Dictionary<string, string> { ["/tmp"] = $"rw,exec,nosuid,nodev,size={limits.FileSizeBytes},mode=1777" },
                Mounts = [new Mount { Type = "bind", Source = scratch.HostPath, Target = "/work" }],
            },
        };
    }

    private sealed record PumpResult(int? ExitCode, string? EndReason, SandboxOutput Stdout, SandboxOutput Stderr, TimeSpan Wall);

    /// <summary>Feeds stdin, reads both outputs under their cap, and enforces the wall clock by killing from outside.</summary>
    private static async Task<PumpResult> PumpAsync(MultiplexedStream stream, byte[]? stdin, SandboxLimits limits, Stopwatch clock,
        Func<Task<int>> exitCode, Func<Task> kill, CancellationToken cancellation)
    {
        var stdout = new OutputCapture(limits.OutputBytes);
        var stderr = new OutputCapture(limits.OutputBytes);
        string? endReason = null;
        var killed = new TaskCompletionSource();
        void End(string reason)
        {
            lock (killed)
            {
                if (endReason is not null) return;
                endReason = reason;
            }
            _ = kill().ContinueWith(_ => killed.TrySetResult(), TaskScheduler.Default);
        }
        stdout.Exceeded += () => End("output");
        stderr.Exceeded += () => End("output");
        var feed = Task.Run(async () =>
        {
            try
            {
                if (stdin is { Length: > 0 }) await stream.WriteAsync(stdin, 0, stdin.Length, CancellationToken.None);
                stream.CloseWrite();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
        });
        var read = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var chunk = await stream.ReadOutputAsync(buffer, 0, buffer.Length, CancellationToken.None);
                    if (chunk.EOF) return;
                    // Past the cap, output is drained and dropped: the engine reports the exit only once it is drained.
                    (chunk.Target == MultiplexedStream.TargetStream.StandardError ? stderr : stdout).Add(buffer.AsSpan(0, chunk.Count));
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
        });
        using (cancellation.Register(() => End("cancelled")))
        {
            var deadline = Task.Delay(limits.WallTime);
            // The output ends when the program does (or is killed: a flood is killed as soon as it passes the cap).
            await Task.WhenAny(read, deadline);
            if (!read.IsCompleted) End("wall");
            if (endReason is not null) await killed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        var code = await exitCode().WaitAsync(TimeSpan.FromSeconds(30));
        var wall = clock.Elapsed;
        stream.Dispose();
        await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(2)));
        return new PumpResult(code, endReason, stdout.ToOutput(), stderr.ToOutput(), wall);
    }

    private static SandboxResult Classify(PumpResult run, bool oomKilled, SandboxLimits limits)
    {
        int? signal = run.ExitCode is > 128 and < 128 + 65 ? run.ExitCode - 128 : null;
        int? code = signal is null ? run.ExitCode : null;
        SandboxResult Make(SandboxOutcome outcome, string? detail) => new(outcome, code, signal, run.Stdout, run.Stderr, run.Wall, null, null, detail);
        switch (run.EndReason)
        {
            case "cancelled": return Make(SandboxOutcome.Killed, "cancelled by the caller");
            case "output": return Make(SandboxOutcome.OutputLimit, $"wrote more than {limits.OutputBytes} bytes to stdout or stderr");
            case "wall": return Make(SandboxOutcome.Timeout, $"ran past the wall-time limit of {limits.WallTime.TotalSeconds:0.###} s");
        }
        const int SIGXCPU = 24;
        if (signal == SIGXCPU) return Make(SandboxOutcome.Timeout, $"used more than {limits.CpuTime.TotalSeconds:0.###} s of CPU");
        if (oomKilled || (run.ExitCode != 0 && run.Stderr.Text.Contains("MemoryError", StringComparison.Ordinal)))
            return Make(SandboxOutcome.MemoryLimit, $"ran out of its {limits.MemoryBytes >> 20} MiB of memory");
        return Make(SandboxOutcome.Ok, null);
    }

    private async Task KillContainerAsync(string id)
    {
        try { await client.Containers.KillContainerAsync(id, new ContainerKillParameters { Signal = "KILL" }, CancellationToken.None); }
        catch (DockerApiException) { } // already stopped
    }

    /// <summary>Ends ownership of a name once its container and scratch folder are gone.</summary>
    private void Disown(string name)
    {
        lock (live) live.Remove(name);
    }

    /// <summary>Removes a container; the name stays owned (not reaped) while <paramref name="keepOwned"/>, for a session that brings up its next container.</summary>
    private async Task RemoveContainerAsync(string name, bool keepOwned = false)
    {
        try { await client.Containers.RemoveContainerAsync(name, new ContainerRemoveParameters { Force = true }, CancellationToken.None); }
        catch (DockerApiException) { } // never created, or gone
        catch (HttpRequestException) { } // engine gone: the reaper removes it once the engine is back
        if (!keepOwned) lock (live) live.Remove(name);
    }

    /// <summary>
    /// Removes this silo's containers and scratch folders that no live sandbox owns (see <see cref="IsLeftover"/>);
    /// runs at start and every <see cref="SandboxSettings.ReaperPeriod"/>. Returns how many containers went.
    /// </summary>
    public async Task<int> ReapAsync()
    {
        var removed = 0;
        try
        {
            var containers = await client.Containers.ListContainersAsync(new ContainersListParameters
            {
                All = true,
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{SiloLabel}={settings.SiloName}"] = true } },
            }, CancellationToken.None);
            foreach (var container in containers)
            {
                var name = container.Names.FirstOrDefault()?.TrimStart('/') ?? container.ID;
                if (!IsLeftover(name)) continue;
                try
                {
                    await client.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true }, CancellationToken.None);
                    removed++;
                }
                catch (DockerApiException) { }
            }
            foreach (var folder in Directory.GetDirectories(scratchRoot, $"ngym-{Sanitize(settings.SiloName)}-*"))
            {
                if (!IsLeftover(Path.GetFileName(folder))) continue;
                while (Native.Unmount(folder)) { }
                try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
            }
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException) { }
        return removed;
    }

    /// <summary>
    /// Whether a container or scratch folder of this silo (named "ngym-SILO-PID-N") belongs to no live
    /// sandbox: one of this process that no sandbox owns any more (its removal failed, say because the
    /// engine was down), or one whose process has ended. Another live process of the same silo name
    /// keeps its own.
    /// </summary>
    private bool IsLeftover(string name)
    {
        lock (live)
            if (live.Contains(name)) return false;
        if (name.StartsWith(namePrefix, StringComparison.Ordinal)) return true;
        var rest = name.Split('-');
        var pidText = rest.Length >= 2 ? rest[^2] : "";
        return !int.TryParse(pidText, out var pid) || !Directory.Exists($"/proc/{pid}");
    }

    /// <summary>Stops the reaper and closes the client (sandboxes still open are removed by their owners, or by the next start's reaper).</summary>
    public async ValueTask DisposeAsync()
    {
        await reaper.DisposeAsync();
        client.Dispose();
        configuration.Dispose();
    }

    /// <summary>A warm container: a sleeping keeper under init, commands as execs, the scratch folder bound at /work.</summary>
    private sealed class DockerSession(DockerSandboxService owner, string name, SandboxImage image, ScratchFolder scratch, SandboxLimits limits) : ScratchSession(scratch)
    {
        private string? containerId;
        private HashSet<int> keepers = [];
        private string? pidNamespace;

        public async Task StartContainerAsync(CancellationToken cancellation)
        {
            var create = owner.ContainerSpec(name, image, Scratch, limits, ["sleep", "infinity"]);
            containerId = (await owner.client.Containers.CreateContainerAsync(create, cancellation)).ID;
            await owner.client.Containers.StartContainerAsync(containerId, new ContainerStartParameters(), cancellation);
            var init = (int)(await owner.client.Containers.InspectContainerAsync(containerId, cancellation)).State.Pid;
            pidNamespace = NamespaceOf(init) ?? throw new InvalidOperationException($"cannot read the pid namespace of container {name} (init pid {init})");
            // The init and the keeper it started; wait for the keeper to appear.
            for (var attempt = 0; attempt < 200; attempt++)
            {
                keepers = [.. ProcessesIn(pidNamespace)];
                if (keepers.Count >= 2) return;
                await Task.Delay(5, cancellation);
            }
            throw new InvalidOperationException($"container {name} did not start its keeper process");
        }

        private static string? NamespaceOf(int pid)
        {
            try { return new FileInfo($"/proc/{pid}/ns/pid").LinkTarget; }
            catch (IOException) { return null; }
        }

        private static IEnumerable<int> ProcessesIn(string pidNamespace)
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
                if (int.TryParse(Path.GetFileName(dir), out var pid) && NamespaceOf(pid) == pidNamespace)
                    yield return pid;
        }

        /// <summary>Kills every process in the container but its init and keeper (double-forked daemons, leftovers of a command).</summary>
        private void KillStrays()
        {
            if (pidNamespace is null) return;
            for (var round = 0; round < 20; round++)
            {
                var strays = ProcessesIn(pidNamespace).Where(p => !keepers.Contains(p)).ToList();
                if (strays.Count == 0) return;
                foreach (var pid in strays) Native.Kill(pid);
                Thread.Sleep(5);
            }
        }

        private async Task RecreateAsync(CancellationToken cancellation)
        {
            await owner.RemoveContainerAsync(name, keepOwned: true);
            await StartContainerAsync(cancellation);
        }

        public override async ValueTask<SandboxResult> ExecAsync(SandboxCommand command, CancellationToken cancellation)
        {
            var commandLimits = command.Limits is null ? limits
                : limits with { WallTime = command.Limits.WallTime, CpuTime = command.Limits.CpuTime, OutputBytes = command.Limits.OutputBytes };
            if (BwrapSandboxService.Refuse(command, commandLimits) is { } refused) return refused;
            try { await turn.WaitAsync(cancellation); }
            catch (OperationCanceledException) { return BwrapSandboxService.Cancelled(TimeSpan.Zero); }
            var clock = Stopwatch.StartNew();
            try
            {
                if (disposed) return SandboxResult.Failure("the session is closed");
                // A command that was killed took the container with it: bring up a fresh one over the same Scratch folder.
                if (containerId is null) await RecreateAsync(cancellation);
                var exec = await owner.client.Exec.ExecCreateContainerAsync(containerId!, new ContainerExecCreateParameters
                {
                    Cmd = [.. command.Argv],
                    User = $"{SandboxUid}:{SandboxUid}",
                    WorkingDir = "/work",
                    AttachStdin = true,
                    AttachStdout = true,
                    AttachStderr = true,
                }, cancellation);
                using var stream = await owner.client.Exec.StartAndAttachContainerExecAsync(exec.ID, false, cancellation);
                var id = containerId!;
                var run = await PumpAsync(stream, command.Stdin, commandLimits, clock,
                    exitCode: async () =>
                    {
                        // The exec's exit code is known once its process is gone; after a kill the container is gone with it.
                        for (var attempt = 0; attempt < 400; attempt++)
                        {
                            var inspect = await owner.client.Exec.InspectContainerExecAsync(exec.ID, CancellationToken.None);
                            if (!inspect.Running) return (int)inspect.ExitCode;
                            await Task.Delay(5);
                        }
                        return 128 + Native.SIGKILL;
                    },
                    kill: async () =>
                    {
                        await owner.KillContainerAsync(id);
                        containerId = null;
                    }, cancellation);
                var oom = false;
                if (containerId is not null) KillStrays();
                else oom = (await owner.client.Containers.InspectContainerAsync(id, CancellationToken.None)).State.OOMKilled;
                if (!oom && run.ExitCode == 128 + Native.SIGKILL && containerId is not null)
                {
                    // A memory cgroup kill ends the exec's process, not necessarily the container; docker marks only the container.
                    oom = (await owner.client.Containers.InspectContainerAsync(id, CancellationToken.None)).State.OOMKilled;
                }
                return Classify(run, oom, commandLimits);
            }
            catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException or InvalidOperationException
                                      || (e is OperationCanceledException && !cancellation.IsCancellationRequested))
            {
                containerId = null;
                return SandboxResult.Failure($"docker: {e.Message}", clock.Elapsed);
            }
            catch (OperationCanceledException)
            {
                return BwrapSandboxService.Cancelled(clock.Elapsed);
            }
            finally { turn.Release(); }
        }

        public override async ValueTask<SandboxStatus> ResetAsync(CancellationToken cancellation)
        {
            await turn.WaitAsync(cancellation);
            try
            {
                if (disposed) return SandboxStatus.Failed("the session is closed");
                // A new container (fresh /tmp, no processes) over an emptied Scratch folder. The Scratch tmpfs
                // is emptied rather than replaced: the container binds this very mount.
                await owner.RemoveContainerAsync(name, keepOwned: true);
                containerId = null;
                Scratch.Empty();
                await RecreateAsync(cancellation);
                return SandboxStatus.Success;
            }
            catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or InvalidOperationException)
            {
                containerId = null;
                return SandboxStatus.Failed($"docker reset: {e.Message}");
            }
            finally { turn.Release(); }
        }

        public override async ValueTask DisposeAsync()
        {
            await turn.WaitAsync();
            try
            {
                if (disposed) return;
                disposed = true;
                await owner.RemoveContainerAsync(name, keepOwned: true);
                Scratch.Dispose();
                owner.Disown(name);
                owner.slots.Release();
            }
            finally { turn.Release(); }
        }
    }
}
