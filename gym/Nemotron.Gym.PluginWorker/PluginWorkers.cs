using System.Collections.Concurrent;
using System.Text.Json;
using MessagePack;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.PluginWorker;

/// <summary>How plugins are hosted: in worker processes (the default) or in the host's own process.</summary>
public sealed record PluginWorkerSettings
{
    /// <summary>
    /// Run plugins in the host's own process, as plain objects (for stepping through a plugin in a debugger). A plugin
    /// can then end or hang the host; out of process, it can only end its worker.
    /// </summary>
    public bool InProcess { get; init; }
    /// <summary>Worker processes per plugin; episodes are spread over them, and a crash loses only that worker's episodes.</summary>
    public int WorkersPerPlugin { get; init; } = 2;
    /// <summary>"auto" (bubblewrap where it can run, else plain processes), "bwrap" (required), or "none".</summary>
    public string Isolation { get; init; } = "auto";
    /// <summary>Memory of one worker (its GC heap limit, and its memory cgroup where there is one).</summary>
    public long MemoryBytes { get; init; } = 2L << 30;
    /// <summary>CPU cores one worker may use (a CPU cgroup quota); 0 for no limit.</summary>
    public double Cpus { get; init; } = 1;
    /// <summary>The unprivileged uid workers run as under bubblewrap (apart from the sandbox's uids, 61000 and up).</summary>
    public int Uid { get; init; } = 62000;
    /// <summary>How long a call that ran past its time limit may take to stop after it is cancelled before its worker is killed.</summary>
    public TimeSpan KillGrace { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// Grade an episode in its worker as soon as a step ends it, before the host asks (the host always grades an ended
    /// episode): one round trip fewer per episode. The plugin's grader then runs even if the host never asks for the
    /// grade (an episode abandoned after its last step); closing that episode cancels the grading, bounded by <see cref="KillGrace"/>.
    /// </summary>
    public bool GradeAhead { get; init; } = true;
    /// <summary>How long a worker may take to start and load a plugin.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Where the workers' stderr lines and restarts are reported.</summary>
    public Action<string> Log { get; init; } = _ => { };

    /// <summary>Whether workers go under bubblewrap (resolved from <see cref="Isolation"/>; "bwrap" without it is an error).</summary>
    public bool UseBubblewrap => Isolation switch
    {
        "none" => false,
        "bwrap" => WorkerLaunch.BubblewrapUnavailable() is { } why ? throw new InvalidOperationException($"plugin isolation 'bwrap': {why}") : true,
        "auto" => WorkerLaunch.BubblewrapUnavailable() == null,
        _ => throw new ArgumentException($"plugin isolation: expected auto, bwrap or none, got '{Isolation}'"),
    };

    /// <summary>The process-wide default; the CLI's --in-process switch sets <see cref="InProcess"/> here.</summary>
    public static PluginWorkerSettings Default { get; set; } = new();
}

/// <summary>Counts of what the workers of one host went through.</summary>
/// <param name="Started">Worker processes started (first starts and restarts).</param>
/// <param name="Died">Workers that ended while in use (exit, crash, kill).</param>
/// <param name="Killed">Workers killed by the host (a call past its time limit that ignored cancellation).</param>
public sealed record WorkerCounts(int Started, int Died, int Killed);

/// <summary>
/// The plugin hosts of one process (a silo, or the CLI). Out of process, plugins are discovered, initialized and run in
/// worker processes: one pool of <see cref="PluginWorkerSettings.WorkersPerPlugin"/> per plugin assembly, started on
/// first use and restarted after a crash. The environments it returns are <see cref="PluginEnvironment"/>s as the
/// in-process loader makes them, so <see cref="HostedEnvironment"/> (timeouts, typed failures, grade checks) and
/// everything above it works the same in both modes. In process, it is <see cref="PluginLoader"/>.
/// </summary>
public sealed class PluginWorkers(PluginWorkerSettings settings) : IAsyncDisposable, IDisposable
{
    private readonly ConcurrentDictionary<string, WorkerPool> _pools = new(StringComparer.Ordinal);
    private readonly Lazy<bool> _bubblewrap = new(() => settings.UseBubblewrap);
    private int _started, _died, _killed;

    /// <summary>The settings.</summary>
    public PluginWorkerSettings Settings => settings;

    /// <summary>Whether workers run under bubblewrap.</summary>
    public bool Bubblewrapped => !settings.InProcess && _bubblewrap.Value;

    /// <summary>What the workers went through so far.</summary>
    public WorkerCounts Counts => new(_started, _died, _killed);

    /// <summary>Every environment under the search paths (each a plugin folder, or a folder of them), and the plugins that failed.</summary>
    public (List<PluginEnvironment> Environments, List<PluginError> Errors) LoadAll(IEnumerable<string> searchPaths)
    {
        if (settings.InProcess) return PluginLoader.LoadAll(searchPaths);
        var folders = PluginLoader.FindPluginFolders(searchPaths).Select(f => Path.GetFullPath(f)).ToList();
        var (envs, errors) = Task.Run(() => DescribeAllAsync(folders)).GetAwaiter().GetResult();
        return PluginLoader.KeepFirstByName(envs, errors);
    }

    /// <summary>
    /// Describes many plugin folders in one worker (one start instead of one per plugin). A plugin that ends that worker
    /// is reported, and the folders after it go to a new worker.
    /// </summary>
    private async Task<(List<PluginEnvironment>, List<PluginError>)> DescribeAllAsync(List<string> folders)
    {
        var envs = new List<PluginEnvironment>();
        var errors = new List<PluginError>();
        var pending = new Queue<string>(folders);
        while (pending.Count > 0)
        {
            WorkerProcess worker;
            try { worker = StartWorker([.. pending], "describe", network: false); }
            catch (EnvironmentCallException e)
            {
                errors.AddRange(pending.Select(f => new PluginError(f, e.Message)));
                break;
            }
            try
            {
                while (pending.Count > 0 && worker.Alive)
                {
                    var (found, error) = await DescribeIn(worker, Request.DescribeFolder, pending.Dequeue());
                    envs.AddRange(found);
                    if (error != null) errors.Add(error);
                }
            }
            finally { await worker.DisposeAsync(); }
        }
        return (envs, errors);
    }

    /// <summary>The environments of one plugin folder.</summary>
    public (List<PluginEnvironment> Environments, PluginError? Error) LoadFolder(string folder)
    {
        if (settings.InProcess) return PluginLoader.LoadFolder(folder);
        var (envs, errors) = Task.Run(() => DescribeAllAsync([Path.GetFullPath(folder)])).GetAwaiter().GetResult();
        return (envs, errors.FirstOrDefault());
    }

    /// <summary>The environments of one plugin assembly.</summary>
    public (List<PluginEnvironment> Environments, PluginError? Error) LoadAssembly(string assembly)
    {
        if (settings.InProcess) return PluginLoader.LoadAssembly(assembly);
        assembly = Path.GetFullPath(assembly);
        if (!File.Exists(assembly)) return ([], new PluginError(assembly, "assembly not found"));
        return Task.Run(async () =>
        {
            var worker = StartWorker([Path.GetDirectoryName(assembly)!], "describe", network: false);
            try { return await DescribeIn(worker, Request.DescribeAssembly, assembly); }
            finally { await worker.DisposeAsync(); }
        }).GetAwaiter().GetResult();
    }

    /// <summary>
    /// Asks a worker to load a plugin and say what it holds: a plugin whose constructor ends the process is reported as
    /// a plugin error, and this process never runs its code. The answer is untrusted and checked like a plugin's own.
    /// </summary>
    private async Task<(List<PluginEnvironment>, PluginError?)> DescribeIn(WorkerProcess worker, Request kind, string path)
    {
        try
        {
            using var timeout = new CancellationTokenSource(settings.StartTimeout);
            var payload = await worker.CallAsync(kind, (ref MessagePackWriter w) => { w.WriteArrayHeader(1); w.Write(path); },
                $"describe {path}", settings.KillGrace, timeout.Token);
            var r = new MessagePackReader(payload);
            r.ReadArrayHeader();
            int n = r.ReadArrayHeader();
            var envs = new List<PluginEnvironment>();
            for (int i = 0; i < n; i++)
            {
                int fields = r.ReadArrayHeader();
                string assembly = WorkerProtocol.Text(ref r), type = WorkerProtocol.Text(ref r), json = WorkerProtocol.Text(ref r);
                // The fourth field: whether the class grades whole groups (IGroupGradedEnvironment).
                bool gradesGroups = fields >= 4 && r.ReadBoolean();
                for (int f = 4; f < fields; f++) r.Skip();
                var descriptor = JsonSerializer.Deserialize<EnvironmentDescriptor>(json) ?? throw new InvalidDataException("descriptor: null");
                if (PluginLoader.CheckDescriptor(descriptor) is { } problem) return ([], new PluginError(assembly, $"{type}: {problem}"));
                string pluginFolder = Path.GetDirectoryName(assembly)!;
                var pool = Pool(assembly, pluginFolder);
                envs.Add(new PluginEnvironment(descriptor, pluginFolder, assembly, null) { Factory = () => gradesGroups ? new GroupGradedWorkerEnvironment(pool, assembly, type, descriptor) : new WorkerEnvironment(pool, assembly, type, descriptor) });
            }
            PluginError? error = null;
            if (!r.TryReadNil())
            {
                r.ReadArrayHeader();
                error = new PluginError(WorkerProtocol.Text(ref r), WorkerProtocol.Text(ref r));
            }
            return (envs, error);
        }
        catch (Exception e) when (e is EnvironmentCallException or OperationCanceledException or InvalidDataException or MessagePackSerializationException or JsonException)
        {
            if (e is OperationCanceledException) worker.Kill($"killed: loading {path} did not finish within {settings.StartTimeout.TotalSeconds:0}s");
            string why = e is OperationCanceledException ? $"loading it did not finish within {settings.StartTimeout.TotalSeconds:0}s" : e.Message;
            return ([], new PluginError(path, $"the plugin's worker failed while loading it: {why}"));
        }
    }

    private WorkerPool Pool(string assembly, string folder) =>
        _pools.GetOrAdd(assembly, _ => new WorkerPool(this, folder, Math.Max(1, settings.WorkersPerPlugin)));

    /// <summary>Starts one worker for the plugin in <paramref name="folder"/>.</summary>
    internal WorkerProcess StartWorker(string folder, string role) => StartWorker([folder], role, PluginManifest.Read(folder).Network);

    /// <summary>Starts one worker that may read <paramref name="folders"/> (its working folder is the first).</summary>
    private WorkerProcess StartWorker(IReadOnlyList<string> folders, string role, bool network)
    {
        string name = $"{Path.GetFileName(folders[0])}/{role}";
        WorkerCgroup? cgroup = Bubblewrapped ? WorkerCgroup.TryCreate($"{Environment.ProcessId}-{Guid.NewGuid():N}", settings.MemoryBytes, settings.Cpus) : null;
        var start = WorkerLaunch.Build(settings with { Isolation = Bubblewrapped ? "bwrap" : "none" }, folders, network, cgroup);
        WorkerProcess worker;
        try { worker = WorkerProcess.Start(start, name, settings.Log); }
        catch { cgroup?.Dispose(); throw; }
        Interlocked.Increment(ref _started);
        _ = worker.Exited.ContinueWith(_ => cgroup?.Dispose(), TaskScheduler.Default);
        return worker;
    }

    /// <summary>Requests sent so far to the live workers of every pool (what the protocol costs per episode, for tests).</summary>
    internal long RequestsSent => _pools.Values.Sum(p => p.RequestsSent);

    internal void CountDeath(bool killed)
    {
        Interlocked.Increment(ref _died);
        if (killed) Interlocked.Increment(ref _killed);
    }

    /// <summary>Stops every worker (for hosts that dispose synchronously, such as a service provider's Dispose).</summary>
    public void Dispose() => Task.Run(() => DisposeAsync().AsTask()).GetAwaiter().GetResult();

    /// <summary>Stops every worker.</summary>
    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_pools.Values.Select(p => p.DisposeAsync().AsTask()));
        _pools.Clear();
    }
}

/// <summary>The workers of one plugin assembly: a fixed number of slots, each holding its current process.</summary>
internal sealed class WorkerPool(PluginWorkers owner, string folder, int size) : IAsyncDisposable
{
    private readonly WorkerSlot[] _slots = Enumerable.Range(0, size).Select(i => new WorkerSlot(owner, folder, i)).ToArray();
    private int _next;

    public PluginWorkerSettings Settings => owner.Settings;

    /// <summary>
    /// Calls waiting on the first worker below which it takes every new episode. A worker answers the calls that are
    /// waiting together (one read, one write for a burst), so splitting a light load over several workers makes every
    /// batch smaller and costs CPU on both sides (measured on 2 cores, 64 math episodes in flight: one worker 25k
    /// grades/s, two 18k); the others take episodes when the first is this busy, or gone.
    /// </summary>
    internal const int SpillAt = 128;

    /// <summary>
    /// The slot for the next episode: the first while it has fewer than <see cref="SpillAt"/> calls waiting; beyond that,
    /// the one with the fewest calls waiting (a slot with no worker yet counts as idle), looking from a rotating start so
    /// that equally busy slots take turns. A worker that may be killed any moment (a cancelled call within its grace:
    /// <see cref="WorkerProcess.AwaitingKill"/>) takes new episodes only when every worker may: an episode opened on it
    /// would be lost with it and replayed (seen under load: a hung grader's worker took the next episode with it).
    /// </summary>
    public WorkerSlot Next()
    {
        if (_slots[0].Load < SpillAt && !_slots[0].AwaitingKill) return _slots[0];
        int start = (int)((uint)Interlocked.Increment(ref _next) % _slots.Length);
        return LeastLoaded(start, skipAwaitingKill: true) ?? LeastLoaded(start, skipAwaitingKill: false)!;
    }

    private WorkerSlot? LeastLoaded(int start, bool skipAwaitingKill)
    {
        WorkerSlot? best = null;
        int bestLoad = int.MaxValue;
        for (int i = 0; i < _slots.Length && bestLoad > 0; i++)
        {
            var slot = _slots[(start + i) % _slots.Length];
            if (skipAwaitingKill && slot.AwaitingKill) continue;
            int load = slot.Load;
            if (load < bestLoad) (best, bestLoad) = (slot, load);
        }
        return best;
    }

    /// <summary>Requests sent to the live workers of this pool.</summary>
    public long RequestsSent => _slots.Sum(s => s.Worker?.RequestsSent ?? 0);

    /// <summary>The first slot (environment start-up and task loading go there).</summary>
    public WorkerSlot First => _slots[0];

    public async ValueTask DisposeAsync() => await Task.WhenAll(_slots.Select(s => s.DisposeAsync().AsTask()));
}

/// <summary>One place in a pool: the process serving it now, replaced by a new one after it dies.</summary>
internal sealed class WorkerSlot(PluginWorkers owner, string folder, int index) : IAsyncDisposable
{
    private readonly object _lock = new();
    private WorkerProcess? _current;
    private bool _disposed;

    /// <summary>The worker serving this slot now, if any (started or not yet replaced).</summary>
    public WorkerProcess? Worker => Volatile.Read(ref _current);

    /// <summary>Whether this slot's live worker may be killed any moment (<see cref="WorkerProcess.AwaitingKill"/>).</summary>
    public bool AwaitingKill => Volatile.Read(ref _current) is { Alive: true } w && w.AwaitingKill;

    /// <summary>Calls waiting on this slot's worker (0 when it has none).</summary>
    public int Load => Volatile.Read(ref _current) is { Alive: true } w ? w.InFlight : 0;

    /// <summary>The live process, starting one when there is none (the first call, or the first after a death).</summary>
    public WorkerProcess Current()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_current is { Alive: true } live) return live;
            if (_current != null) owner.Settings.Log($"plugin worker {_current.Name} {_current.DeathReason}; starting a new one");
            var started = owner.StartWorker(folder, index.ToString(System.Globalization.CultureInfo.InvariantCulture));
            _ = started.Exited.ContinueWith(_ => owner.CountDeath(started.DeathReason?.StartsWith("killed", StringComparison.Ordinal) == true), TaskScheduler.Default);
            return _current = started;
        }
    }

    public async ValueTask DisposeAsync()
    {
        WorkerProcess? w;
        lock (_lock) { _disposed = true; w = _current; _current = null; }
        if (w != null) await w.DisposeAsync();
    }
}
