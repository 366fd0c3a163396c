using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Grpo;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Store;

namespace Nemotron.Gym.Runs.Tests;

public sealed class RunResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed class Recorder(int cancelAfter, CancellationTokenSource cts) : IRlObserver
    {
        public Dictionary<int, int> RolloutsPerStep = new();
        public readonly List<string> Messages = new();
        public void OnStep(GrpoStepMetrics m, int totalSteps) { if (m.Step == cancelAfter) cts.Cancel(); }
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) { }
        public void OnMessage(string message) => Messages.Add(message);
    }

    private async Task<(RlOutcome Outcome, Recorder Seen, RunInfo Info)> RunOnce(GymRunConfig cfg, int cancelAfter)
    {
        // Each call is a fresh host: a silo started, the run driven, the silo stopped (a restarted host between calls).
        var silo = await GymSilo.StartAsync(new GymSiloOptions
        {
            SiloPort = 21111, GatewayPort = 31000, PluginFolders = [Nemotron.Gym.TestSupport.RepoPaths.Plugins], StateStorage = "sqlite:" + Path.Combine(_dir, "gym-state.db"),
        });
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            using var cts = new CancellationTokenSource();
            var seen = new Recorder(cancelAfter, cts);
            await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection);
            var before = await store.ReadRolloutsAsync(new RolloutQuery(cfg.RunId)).Select(r => r.Step).ToHashSetAsync();
            using var backend = new CpuBackend();
            var outcome = await GymRun.RunAsync(cfg, backend, grains, store, seen, cts.Token);
            // The steps this run stored (the trainer's sink awaited each before going on).
            seen.RolloutsPerStep = (await store.ReadRolloutsAsync(new RolloutQuery(cfg.RunId)).ToListAsync())
                .Where(r => !before.Contains(r.Step)).GroupBy(r => r.Step).ToDictionary(g => g.Key, g => g.Count());
            var info = (await grains.GetGrain<IRunGrain>(cfg.RunId).Get())!;
            return (outcome, seen, info);
        }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
        }
    }

    [Fact]
    public async Task AnInterruptedRunResumesAfterARestartFromItsLastCheckpointAndStoresEveryRolloutOnce()
    {
        using (var backend = new CpuBackend())
        using (var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 256)))
        {
            model.InitializeWeights(3);
            Checkpoint.Save(Path.Combine(_dir, "sft"), model, new ByteTokenizer());
        }
        var cfg = new GymRunConfig
        {
            Out = Path.Combine(_dir, "runs", "resume"), Init = Path.Combine(_dir, "sft"), Device = "cpu", Seed = 5,
            Environments =
            [
                new BlendEntry { Name = "math", Weight = 1, Settings = new() { ["difficulty"] = "1" }, TrainTasks = 20, EvalTasks = 2 },
                new BlendEntry { Name = "reasoning", Weight = 1, Settings = new() { ["difficulty"] = "1" }, TrainTasks = 20, EvalTasks = 2 },
            ],
            Grpo = new GrpoSettings { TasksPerStep = 2, GroupSize = 2, DynamicFiltering = false },
            Rollout = new RolloutSettings { MaxNewTokens = 8 },
            Train = new RlTrainSettings { Steps = 3, EvalEvery = 3, CheckpointEvery = 1, WarmupSteps = 0 },
        };

        var (first, seen1, info1) = await RunOnce(cfg, cancelAfter: 2);
        Assert.True(first.Interrupted);
        Assert.Equal((RunStatus.Paused, 2), (info1.Status, info1.Step));
        Assert.Equal([1, 2], seen1.RolloutsPerStep.Keys.Order());

        var (second, seen2, info2) = await RunOnce(cfg, cancelAfter: -1);
        Assert.False(second.Interrupted);
        Assert.Contains(seen2.Messages, m => m.Contains("resumed from") && m.Contains("at step 2"));
        Assert.Equal([3], seen2.RolloutsPerStep.Keys);
        Assert.Equal(RunStatus.Completed, info2.Status);

        await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection);
        var all = await store.ReadRolloutsAsync(new RolloutQuery("resume")).ToListAsync();
        Assert.Equal(seen1.RolloutsPerStep.Values.Sum() + seen2.RolloutsPerStep.Values.Sum(), all.Count);
        Assert.Equal(all.Count, all.Select(r => (r.Step, r.TaskId, r.SampleIndex)).Distinct().Count());
        Assert.Equal([1, 2, 3], (await store.ReadStepMetricsAsync("resume").ToListAsync()).Select(m => m.Step));
        Assert.Equal("completed", Assert.Single(await store.ListRunsAsync()).Status);
        Assert.All(all, r => Assert.Contains(r.Environment, new[] { "math", "reasoning" }));
        Assert.All(all, r => Assert.True(r.GenerateSeconds > 0, $"{r.TaskId}/{r.SampleIndex}: generation time not stored"));

        // What the trainer did with each rollout is stored with it (no group is filtered in this config, so every
        // rollout was trained on): its advantage, and per token lp_old, the IS weight, the mask and the token's text.
        Assert.All(all, r =>
        {
            Assert.NotNull(r.Advantage);
            Assert.Equal(r.Tokens.Length, r.TokenTexts!.Length);
            Assert.Equal(r.Tokens.Length, r.TrainerLogProbs!.Length);
            Assert.Equal(r.Tokens.Length, r.ImportanceWeights!.Length);
            Assert.Equal(r.Tokens.Length, r.TokenMasked!.Length);
            for (int i = 0; i < r.Tokens.Length; i++)
                if (r.Generated[i] == 0) Assert.Equal(0f, r.TrainerLogProbs[i]);
                // The sampler runs the trainer's own fp32 weights here, so lp_old and lp_gen agree closely.
                else Assert.True(Math.Abs(r.TrainerLogProbs[i] - r.SamplerLogProbs[i]) < 1e-2, $"token {i}: lp_old {r.TrainerLogProbs[i]} vs lp_gen {r.SamplerLogProbs[i]}");
        });
        // The same command on the completed run says so and changes nothing: every rollout and step stays.
        var (third, seen3, info3) = await RunOnce(cfg, cancelAfter: -1);
        Assert.Equal((RunStatus.Completed, 3, false), (info3.Status, third.Steps, third.Interrupted));
        Assert.Contains(seen3.Messages, m => m.Contains("is complete"));
        Assert.Empty(seen3.RolloutsPerStep);
        await using (var again = await RolloutStores.OpenAsync(cfg.StoreConnection))
        {
            Assert.Equal(all.Count, await again.CountRolloutsAsync("resume"));
            Assert.Equal([1, 2, 3], (await again.ReadStepMetricsAsync("resume").ToListAsync()).Select(m => m.Step));
        }

        // Advantages are group-relative: they sum to (about) zero over each group.
        foreach (var g in all.GroupBy(r => (r.Step, r.TaskId)))
            Assert.True(Math.Abs(g.Sum(r => r.Advantage!.Value)) < 1e-6, $"group {g.Key}: advantages sum to {g.Sum(r => r.Advantage!.Value)}");
    }
}
