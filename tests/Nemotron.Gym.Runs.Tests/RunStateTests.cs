using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Store;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Runs.Tests;

/// <summary>
/// The run state and the run folder agree: a deleted folder starts a new run, a changed config is refused naming the
/// keys (or discarded on request), and state kept by earlier versions beside the folder moves into it.
/// </summary>
public sealed class RunStateTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-run-state-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed class Messages(Action<int>? onStep = null) : IRlObserver
    {
        public readonly List<string> Seen = new();
        public void OnStep(GrpoStepMetrics m, int totalSteps) => onStep?.Invoke(m.Step);
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) { }
        public void OnMessage(string message) => Seen.Add(message);
    }

    private GymRunConfig Config(int steps)
    {
        var sft = Path.Combine(_dir, "sft");
        if (!Directory.Exists(sft))
        {
            using var backend = new CpuBackend();
            using var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 16, Heads: 2, Context: 128));
            model.InitializeWeights(3);
            Checkpoint.Save(sft, model, new ByteTokenizer());
        }
        return new GymRunConfig
        {
            Out = Path.Combine(_dir, "runs", "state"), Init = sft, Device = "cpu", Seed = 5,
            Environments = [new BlendEntry { Name = "math", Settings = new() { ["difficulty"] = "1" }, TrainTasks = 6, EvalTasks = 0 }],
            Grpo = new GrpoSettings { TasksPerStep = 1, GroupSize = 2, DynamicFiltering = false },
            Rollout = new RolloutSettings { MaxNewTokens = 4 },
            Train = new RlTrainSettings { Steps = steps, EvalEvery = 100, CheckpointEvery = 1, WarmupSteps = 0 },
        };
    }

    /// <summary>One host: a silo whose run state is <paramref name="stateFile"/>, the run driven, the silo stopped.</summary>
    private static async Task<(RlOutcome Outcome, RunInfo Info, Messages Seen)> RunOnce(GymRunConfig cfg, string stateFile, bool newRun = false, int cancelAfter = -1)
    {
        var silo = await GymSilo.StartAsync(new GymSiloOptions
        {
            SiloPort = 21311, GatewayPort = 31311, PluginFolders = [Nemotron.Gym.TestSupport.RepoPaths.Plugins], StateStorage = "sqlite:" + stateFile,
        });
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            using var cts = new CancellationTokenSource();
            var seen = new Messages(s => { if (s == cancelAfter) cts.Cancel(); });
            await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection);
            using var backend = new CpuBackend();
            var outcome = await GymRun.RunAsync(cfg, backend, grains, store, seen, cts.Token, newRun);
            return (outcome, (await grains.GetGrain<IRunGrain>(cfg.RunId).Get())!, seen);
        }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
        }
    }

    private static async Task<List<(int Step, string Task, int Sample)>> Stored(GymRunConfig cfg)
    {
        await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection);
        return await store.ReadRolloutsAsync(new RolloutQuery(cfg.RunId)).Select(r => (r.Step, r.TaskId, r.SampleIndex)).ToListAsync();
    }

    [Fact]
    public async Task ADeletedRunFolderStartsANewRunAndAChangedConfigIsRefusedNamingTheKeysUnlessANewRunIsAsked()
    {
        // State shared by all runs outside the folder, as with a PostgreSQL cluster: the folder is the truth.
        string shared = Path.Combine(_dir, "shared-state.db");
        var cfg = Config(2);
        var (first, info1, _) = await RunOnce(cfg, shared);
        Assert.Equal((RunStatus.Completed, false), (info1.Status, first.Interrupted));

        Directory.Delete(cfg.Out, recursive: true);
        var (again, info2, seen2) = await RunOnce(cfg, shared);
        Assert.Equal((RunStatus.Completed, 2, false), (info2.Status, again.Steps, again.Interrupted));
        Assert.Contains(seen2.Seen, m => m.Contains("holds no run") && m.Contains("replaced by a new run"));
        var rows = await Stored(cfg);
        Assert.Equal([1, 2], rows.Select(r => r.Step).Distinct().Order());
        Assert.Equal(rows.Count, rows.Distinct().Count());

        // Another step count and seed: refused, naming the run's config record and both keys; nothing changes.
        var changed = Config(3);
        changed.Seed = 6;
        changed.Device = "auto"; // how it runs, not what: not a reason to refuse
        var record = File.ReadAllText(Path.Combine(cfg.Out, "config.yaml"));
        var e = await Assert.ThrowsAsync<ConfigException>(() => RunOnce(changed, shared));
        Assert.Contains(Path.Combine(cfg.Out, "config.yaml"), e.Message);
        Assert.Contains("train.steps: 2 → 3", e.Message);
        Assert.Contains("seed: 5 → 6", e.Message);
        Assert.DoesNotContain("device", e.Message);
        Assert.Contains("--new-run", e.Message);
        Assert.Equal(record, File.ReadAllText(Path.Combine(cfg.Out, "config.yaml")));
        Assert.Equal(rows.Count, (await Stored(cfg)).Count);

        // Asked for explicitly: the old run is discarded and the new one runs from step 1.
        var (fresh, info3, _) = await RunOnce(changed, shared, newRun: true);
        Assert.Equal((RunStatus.Completed, 3, false), (info3.Status, fresh.Steps, fresh.Interrupted));
        var after = await Stored(changed);
        Assert.Equal([1, 2, 3], after.Select(r => r.Step).Distinct().Order());
        Assert.Equal(after.Count, after.Distinct().Count());
        await using var store = await RolloutStores.OpenAsync(changed.StoreConnection);
        Assert.Equal([1, 2, 3], (await store.ReadStepMetricsAsync(changed.RunId).ToListAsync()).Select(m => m.Step));
    }

    [Fact]
    public async Task StateKeptBesideTheRunFolderByEarlierVersionsMovesIntoTheFolderAndTheRunResumes()
    {
        var cfg = Config(3);
        string legacy = RunStateFile.LegacyPathFor(cfg.Out);
        Assert.Equal(Path.Combine(_dir, "runs", "gym-state.db"), legacy);
        var (paused, info1, _) = await RunOnce(cfg, legacy, cancelAfter: 1);
        Assert.Equal((RunStatus.Paused, true), (info1.Status, paused.Interrupted));

        Assert.True(RunStateFile.MoveLegacyState(cfg.Out, cfg.RunId));
        Assert.True(File.Exists(RunStateFile.PathFor(cfg.Out)));
        Assert.False(RunStateFile.MoveLegacyState(cfg.Out, cfg.RunId)); // once only

        var (done, info2, seen) = await RunOnce(cfg, RunStateFile.PathFor(cfg.Out));
        Assert.Equal((RunStatus.Completed, 3), (info2.Status, done.Steps));
        Assert.Contains(seen.Seen, m => m.Contains("resumed from") && m.Contains("at step 1"));
        Assert.Equal(info1.Created, info2.Created); // the same run, not a new one
        var rows = await Stored(cfg);
        Assert.Equal(rows.Count, rows.Distinct().Count());

        // The state left the shared file: a run folder deleted now cannot be confused by it.
        var otherSilo = await GymSilo.StartAsync(new GymSiloOptions { SiloPort = 21312, GatewayPort = 31312, PluginFolders = [], StateStorage = "sqlite:" + legacy });
        try { Assert.Null(await ((IGrainFactory)otherSilo.Services.GetService(typeof(IGrainFactory))!).GetGrain<IRunGrain>(cfg.RunId).Get()); }
        finally { await otherSilo.StopAsync(); otherSilo.Dispose(); }
    }
}
