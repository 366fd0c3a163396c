using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Grpo;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Store;
using Nemotron.Gym.TestSupport;
using Orleans.Configuration;

namespace Nemotron.Gym.Runs.Tests;

// Alone: two silos, membership probes and a training run need the two cores to themselves to keep their timings.
[CollectionDefinition(nameof(TwoSiloRunTests), DisableParallelization = true)]
public sealed class TwoSiloCollection;

/// <summary>
/// A run on a two-silo cluster (loopback, membership in a real PostgreSQL): the trainer's process hosts silo A, silo B
/// is a second host. Episodes are placed on both; B goes away in the middle of a step; the run completes and the store
/// holds every rollout exactly once.
/// </summary>
[Collection(nameof(TwoSiloRunTests))]
public sealed class TwoSiloRunTests(ITestOutputHelper output) : IDisposable
{
    private const int Steps = 3, TasksPerStep = 2, GroupSize = 4;
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-2silo-").FullName;
    private readonly ConcurrentQueue<string> _log = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact(Timeout = 180_000)]
    public Task ASiloThatCrashesWithEpisodesInFlightIsDeclaredDeadAndTheRunCompletesWithEveryRolloutOnce() => RunWithSiloBLost(crash: true, TestContext.Current.CancellationToken);

    [Fact(Timeout = 180_000)]
    public Task ASiloThatShutsDownWithEpisodesInFlightHandsOverAndTheRunCompletesWithEveryRolloutOnce() => RunWithSiloBLost(crash: false, TestContext.Current.CancellationToken);

    private void Note(string line) => _log.Enqueue($"{_clock.Elapsed.TotalSeconds,6:0.00}s {line}");

    private async Task RunWithSiloBLost(bool crash, CancellationToken timeout)
    {
        await using var pg = await PostgresServer.StartAsync();
        // One database for the cluster: membership, run state and rollouts side by side, as a deployment would.
        string db = await pg.CreateDatabaseAsync();
        Note("postgres up");

        var a = new SiloProbe("A");
        var b = new SiloProbe("B") { FreezeOnHold = crash };
        // Shutdown: the trainer's next Step to one of B's episodes waits in silo A until B has left.
        var trainerSide = new HeldOnTheWay(b);
        var placement = new AlternatingEpisodePlacement();
        var crashable = new CrashableMembership(new PostgresMembershipTable(db, "two-silo"));
        // Crash: calls time out before the crashed silo is declared dead (15-35 s on 2 cores), so the held calls, and
        // replays placed on the dead silo meanwhile, fail as timeouts first, as they do with Orleans' 30 s on a slow machine.
        TimeSpan? responseTimeout = crash ? TimeSpan.FromSeconds(6) : null;
        using var hostA = await StartSilo(a, db, placement, table: null, crash ? null : trainerSide, responseTimeout);
        Note("silo A up");
        var hostB = await StartSilo(b, db, placement, crash ? crashable : null, outgoing: null, responseTimeout);
        Note("silo B up");
        var siloA = hostA.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        placement.RunGrainHome = hostB.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        var heldCall = crash ? b.Held : trainerSide.Held;
        Task? stopB = null;
        try
        {
            var grains = hostA.Services.GetRequiredService<IGrainFactory>();
            var management = grains.GetGrain<IManagementGrain>(0);
            Assert.Equal(2, (await management.GetHosts(onlyActive: true)).Count);

            var cfg = Config("postgres:" + db);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(timeout);
            var observer = new StepObserver(step => { if (step == 1) b.Armed = trainerSide.Armed = true; Note($"step {step} done"); });
            await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection);
            using var backend = new CpuBackend();
            // The trainer runs in silo A's process and reaches the cluster through it.
            var run = Task.Run(() => GymRun.RunAsync(cfg, backend, grains, store, observer, cts.Token));

            // B goes away in step 2 while a Step call to one of its episodes is in flight: held inside B (crash), or
            // on its way from the trainer (shutdown).
            var first = await Task.WhenAny(heldCall.Task, run);
            Assert.True(first == heldCall.Task, "the run ended before a Step call to silo B was held");
            string held = heldCall.Task.Result;
            Assert.True(a.Graded.Count > 0 && b.Graded.Count > 0, $"both silos grade step 1's episodes (A {a.Graded.Count}, B {b.Graded.Count})");
            Assert.True(b.RunGrainCalls > 0 && a.RunGrainCalls == 0, "the run grain is on B");
            Note($"holding a Step to B ({held}); graded so far: A {a.Graded.Count}, B {b.Graded.Count}; {(crash ? "crashing" : "shutting down")} B");
            var stopping = Stopwatch.StartNew();
            if (crash)
            {
                // A crash: B answers nothing more (the probe froze its episode calls), cannot write membership (so it
                // never says it is leaving), and its sockets close once its stop gives up on the table. A must notice
                // by probing and declare it dead with its own vote.
                crashable.Crash();
                stopB = hostB.StopAsync(new CancellationToken(canceled: true));
            }
            else
            {
                stopB = hostB.StopAsync();
                await stopB;
                trainerSide.Release();
            }
            var seenGone = WhenGone(management, stopping).WaitAsync(TimeSpan.FromSeconds(90));

            var outcome = await run;
            Note($"run done; A saw B gone {await seenGone:0.0}s after the stop began");
            Assert.False(outcome.Interrupted);
            await stopB;
            Note($"silo B stopped after {stopping.Elapsed.TotalSeconds:0.0}s");

            var membership = await new PostgresMembershipTable(db, "two-silo").ReadAll();
            var entryB = membership.Members.Single(m => m.Item1.SiloName == "B").Item1;
            Assert.Equal(SiloStatus.Dead, entryB.Status);
            Assert.Equal(SiloStatus.Active, membership.Members.Single(m => m.Item1.SiloName == "A").Item1.Status);
            // Crash: A's vote declared B dead. Shutdown: B said so itself.
            Assert.Equal(crash, entryB.SuspectTimes?.Any(v => v.Item1.Equals(siloA)) == true);

            // The held episode was replayed on a new grain (a '#n' key), on A.
            Assert.Contains(a.Graded, key => key.StartsWith(held + "#", StringComparison.Ordinal));
            // The run grain was lost with B; its state in PostgreSQL carried the run on A.
            Assert.True(a.RunGrainCalls > 0, "the run grain came back on A");
            var info = (await grains.GetGrain<IRunGrain>(cfg.RunId).Get())!;
            Assert.Equal((RunStatus.Completed, Steps), (info.Status, info.Step));

            // Every rollout exactly once: each step has each of its tasks' GroupSize samples, once.
            var rollouts = await store.ReadRolloutsAsync(new RolloutQuery(cfg.RunId)).ToListAsync();
            Assert.Equal(Steps * TasksPerStep * GroupSize, rollouts.Count);
            Assert.Equal(Enumerable.Range(1, Steps), rollouts.Select(r => r.Step).Distinct().Order());
            foreach (var step in rollouts.GroupBy(r => r.Step))
            {
                Assert.Equal(TasksPerStep, step.Select(r => r.TaskId).Distinct().Count());
                foreach (var group in step.GroupBy(r => r.TaskId))
                    Assert.Equal(Enumerable.Range(0, GroupSize), group.Select(r => r.SampleIndex).Order());
            }
            // The replays finished their episodes: no rollout is an environment failure.
            Assert.All(rollouts, r => Assert.DoesNotContain("environment_error", r.Components.Keys));
            Assert.Equal(Enumerable.Range(1, Steps), (await store.ReadStepMetricsAsync(cfg.RunId).ToListAsync()).Select(m => m.Step));
            Assert.Equal("completed", Assert.Single(await store.ListRunsAsync()).Status);
            Note($"checked; graded: A {a.Graded.Count}, B {b.Graded.Count}");
        }
        finally
        {
            b.Release();
            trainerSide.Release();
            try { await (stopB ?? hostB.StopAsync(new CancellationToken(canceled: true))); }
            finally
            {
                hostB.Dispose();
                await hostA.StopAsync(new CancellationToken(canceled: true));
                output.WriteLine(string.Join("\n", _log));
            }
        }
    }

    // Seconds from the stop until A's view of the cluster no longer has B active.
    private static async Task<double> WhenGone(IManagementGrain management, Stopwatch since)
    {
        while ((await management.GetHosts(onlyActive: true)).Count > 1) await Task.Delay(100);
        return since.Elapsed.TotalSeconds;
    }

    private GymRunConfig Config(string store)
    {
        using (var backend = new CpuBackend())
        using (var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 256)))
        {
            model.InitializeWeights(3);
            Checkpoint.Save(Path.Combine(_dir, "sft"), model, new ByteTokenizer());
        }
        return new GymRunConfig
        {
            Out = Path.Combine(_dir, "runs", "two-silo"), Init = Path.Combine(_dir, "sft"), Device = "cpu", Seed = 9, Store = store,
            Environments =
            [
                new BlendEntry { Name = "math", Weight = 1, Settings = new() { ["difficulty"] = "1" }, TrainTasks = 10, EvalTasks = 0 },
                new BlendEntry { Name = "reasoning", Weight = 1, Settings = new() { ["difficulty"] = "1" }, TrainTasks = 10, EvalTasks = 0 },
            ],
            Grpo = new GrpoSettings { TasksPerStep = TasksPerStep, GroupSize = GroupSize, DynamicFiltering = false },
            Rollout = new RolloutSettings { MaxNewTokens = 8 },
            Train = new RlTrainSettings { Steps = Steps, EvalEvery = Steps, CheckpointEvery = Steps, WarmupSteps = 0 },
        };
    }

    private async Task<IHost> StartSilo(SiloProbe probe, string db, AlternatingEpisodePlacement placement, CrashableMembership? table, HeldOnTheWay? outgoing, TimeSpan? responseTimeout)
    {
        var options = new GymSiloOptions
        {
            Membership = "postgres", Postgres = db, ClusterId = "two-silo", Address = "127.0.0.1", SiloPort = Ports.Free(), GatewayPort = Ports.Free(),
            PluginFolders = [RepoPaths.Plugins],
        };
        return await GymSilo.StartAsync(options, configure: silo =>
        {
            silo.Configure<SiloOptions>(o => o.SiloName = probe.Name);
            // Seconds, not Orleans' production minutes: probe often, three missed probes suspect, one vote declares
            // (the only other silo), and everyone reads the table often. A dead silo's probes fail at once (connection
            // refused), so it is declared in about a second; a live one would have to stall for seconds to be.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(2);
                o.NumMissedProbesLimit = 3;
                o.NumVotesForDeathDeclaration = 1;
                o.TableRefreshTimeout = TimeSpan.FromSeconds(1);
                o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
                // Bounds how long a silo retries its own status writes: a crashed silo's stop gives up on them soon.
                if (table != null) o.MaxJoinAttemptTime = TimeSpan.FromSeconds(5);
            });
            if (table != null) silo.Services.AddSingleton<IMembershipTable>(table);
            if (responseTimeout is { } timeout) silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = timeout);
            silo.AddIncomingGrainCallFilter(probe);
            if (outgoing != null) silo.AddOutgoingGrainCallFilter(outgoing);
            placement.UseOn(silo);
            silo.Services.AddSingleton<ILoggerProvider>(new NoteLogger(probe.Name, Note));
        });
    }

    private sealed class StepObserver(Action<int> stepDone) : IRlObserver
    {
        public void OnStep(GrpoStepMetrics m, int totalSteps) => stepDone(m.Step);
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) { }
        public void OnMessage(string message) { }
        public void OnRollouts(int step, IReadOnlyList<RolloutGroup> groups) { }
    }

    /// <summary>
    /// Sees every episode call on its silo: which episodes it opened and graded (and whether the run grain is here), and
    /// (once armed) the first Step call
    /// that arrives, which it can hold: then, as a crashed process, the silo answers no episode call any more.
    /// </summary>
    private sealed class SiloProbe(string name) : IIncomingGrainCallFilter
    {
        private readonly CancellationTokenSource _release = new();
        private volatile bool _frozen;
        public string Name => name;
        public bool FreezeOnHold { get; init; }
        public volatile bool Armed;
        public readonly ConcurrentDictionary<string, bool> Opened = new();
        public readonly ConcurrentQueue<string> Graded = new();
        public readonly TaskCompletionSource<string> Held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _runGrainCalls;
        public int RunGrainCalls => Volatile.Read(ref _runGrainCalls);

        public async Task Invoke(IIncomingGrainCallContext context)
        {
            if (context.Grain is RunGrain) Interlocked.Increment(ref _runGrainCalls);
            if (context.Grain is not EpisodeGrain) { await context.Invoke(); return; }
            string key = context.TargetId.Key.ToString()!;
            if (FreezeOnHold && Armed && context.MethodName == nameof(IEpisodeGrain.Step) && Held.TrySetResult(key)) _frozen = true;
            if (_frozen)
            {
                // A dead process answers nothing: its callers learn only when the cluster declares it dead.
                try { await Task.Delay(Timeout.Infinite, _release.Token); } catch (OperationCanceledException) { }
                throw new InvalidOperationException($"silo {name} crashed");
            }
            await context.Invoke();
            if (context.MethodName == nameof(IEpisodeGrain.Open)) Opened[key] = true;
            if (context.MethodName == nameof(IEpisodeGrain.Grade)) Graded.Enqueue(key);
        }

        public void Release() => _release.Cancel();
    }

    /// <summary>
    /// On the trainer's silo: once armed, holds the first Step call to an episode that <paramref name="home"/> opened,
    /// before it leaves, until released; the episode's state is on that silo when it goes.
    /// </summary>
    private sealed class HeldOnTheWay(SiloProbe home) : IOutgoingGrainCallFilter
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile bool Armed;
        public readonly TaskCompletionSource<string> Held = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task Invoke(IOutgoingGrainCallContext context)
        {
            if (Armed && context.MethodName == nameof(IEpisodeGrain.Step) && context.TargetId.Type.ToString() == "episode")
            {
                string key = context.TargetId.Key.ToString()!;
                if (home.Opened.ContainsKey(key) && Held.TrySetResult(key)) await _release.Task;
            }
            await context.Invoke();
        }

        public void Release() => _release.TrySetResult();
    }

    /// <summary>Membership that stops answering at once, as when the silo's process dies.</summary>
    private sealed class CrashableMembership(PostgresMembershipTable inner) : IMembershipTable
    {
        private volatile bool _crashed;
        public void Crash() => _crashed = true;
        private PostgresMembershipTable Alive => _crashed ? throw new IOException("silo crashed") : inner;

        public Task InitializeMembershipTable(bool tryInitTableVersion) => Alive.InitializeMembershipTable(tryInitTableVersion);
        public Task DeleteMembershipTableEntries(string clusterId) => Alive.DeleteMembershipTableEntries(clusterId);
        public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => Alive.CleanupDefunctSiloEntries(beforeDate);
        public Task<MembershipTableData> ReadRow(SiloAddress key) => Alive.ReadRow(key);
        public Task<MembershipTableData> ReadAll() => Alive.ReadAll();
        public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => Alive.InsertRow(entry, tableVersion);
        public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => Alive.UpdateRow(entry, etag, tableVersion);
        public Task UpdateIAmAlive(MembershipEntry entry) => Alive.UpdateIAmAlive(entry);
        public Task InitializeMembershipTableAsync(bool tryInitTableVersion, CancellationToken ct) => Alive.InitializeMembershipTableAsync(tryInitTableVersion, ct);
        public Task DeleteMembershipTableEntriesAsync(string clusterId, CancellationToken ct) => Alive.DeleteMembershipTableEntriesAsync(clusterId, ct);
        public Task CleanupDefunctSiloEntriesAsync(DateTimeOffset beforeDate, CancellationToken ct) => Alive.CleanupDefunctSiloEntriesAsync(beforeDate, ct);
        public Task<MembershipTableData> ReadRowAsync(SiloAddress key, CancellationToken ct) => Alive.ReadRowAsync(key, ct);
        public Task<MembershipTableData> ReadAllAsync(CancellationToken ct) => Alive.ReadAllAsync(ct);
        public Task<bool> InsertRowAsync(MembershipEntry entry, TableVersion tableVersion, CancellationToken ct) => Alive.InsertRowAsync(entry, tableVersion, ct);
        public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, TableVersion tableVersion, CancellationToken ct) => Alive.UpdateRowAsync(entry, etag, tableVersion, ct);
        public Task UpdateIAmAliveAsync(MembershipEntry entry, CancellationToken ct) => Alive.UpdateIAmAliveAsync(entry, ct);
    }

    /// <summary>Orleans' warnings and errors into the test's notes, for a failure's story.</summary>
    private sealed class NoteLogger(string silo, Action<string> note) : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) note($"[{silo} {logLevel}] {formatter(state, exception)}{(exception != null ? $" ({exception.GetType().Name}: {exception.Message})" : "")}");
        }
        public void Dispose() { }
    }
}
