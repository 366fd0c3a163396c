using System.Diagnostics;
using System.Text.Json.Nodes;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Cli.Arithmetic;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Store;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Proof that GRPO learns: on the foundation's arithmetic task, pretrain, fine-tune with early stopping
/// on the held-out loss, then run GRPO over the arithmetic environment (exact-match reward) on an in-process
/// silo, as `gym rl` does, and compare held-out exact-match reward (greedy, 500 problems never trained on) before
/// and after. Runs GRPO
/// twice from the same SFT checkpoint: with sequence-level masked importance sampling and with none;
/// the sampler holds a bf16 copy of the weights, so the two really differ. Fixed seeds throughout.
/// Args: [out-folder] [--reuse-sft] (--reuse-sft: keep the pretrain and SFT checkpoints of an earlier run in the same folder, to compare GRPO settings).
/// </summary>
public sealed class GrpoLearningBenchmark : IBenchmark
{
    public string Name => "grpo-learning";
    public string Description => "Pretrain → SFT (early stopping) → GRPO on arithmetic: held-out exact match before/after, seq_mis vs none";

    // The budget: a pretraining short enough that fine-tuning alone does not saturate the task.
    private const int PretrainSteps = 500, RlSteps = 200;
    // SFT sees this many conversations (the first ones of the training split), so that its held-out loss
    // really stops improving within the budget; GRPO then draws prompts from the whole training split.
    private const int SftConversations = 1500;

    public async Task<int> RunAsync(string[] args)
    {
        string root = args.Length > 0 && !args[0].StartsWith("--") ? args[0] : "runs/bench-grpo";
        bool reuse = args.Contains("--reuse-sft");
        var clock = Stopwatch.StartNew();
        using var backend = new CpuBackend();
        var quiet = new LineObserver();
        var data = Path.Combine(root, "data");
        if (!File.Exists(Path.Combine(data, ArithmeticCorpus.Eval))) ArithmeticCorpus.Write(data, new ArithmeticCorpusSpec(), seed: 1);

        var pretrain = new PretrainConfig
        {
            Out = Path.Combine(root, "pretrain"), Seed = 1, Device = "cpu",
            Model = new ModelSettings { Layers = 4, Width = 192, Heads = 6, Context = 192 },
            Data = new TextDataSettings { Train = [Path.Combine(data, ArithmeticCorpus.PretrainTrain)], Valid = [Path.Combine(data, ArithmeticCorpus.PretrainValid)] },
            Train = new TrainSettings { BatchSize = 16, Steps = PretrainSteps, Lr = 3e-3f, MinLr = 3e-4f, WarmupSteps = 30, DecayFraction = 0.25f, EvalEvery = 250, EvalBatches = 4, CheckpointEvery = 0 },
        };
        string sftFinal = Path.Combine(root, "sft", "final");
        if (reuse && File.Exists(Path.Combine(sftFinal, Checkpoint.ManifestFile)))
        {
            Console.WriteLine($"reusing {sftFinal}");
            foreach (var d in Directory.GetDirectories(root, "grpo-*")) Directory.Delete(d, true);
            await RunBoth(backend, root, sftFinal, clock, 0, 0, 0);
            return 0;
        }
        var pt = Stages.Pretrain(pretrain, backend, quiet, default);
        double tPretrain = clock.Elapsed.TotalSeconds;

        string sftSubset = Path.Combine(data, "sft.subset.jsonl");
        File.WriteAllLines(sftSubset, File.ReadLines(Path.Combine(data, ArithmeticCorpus.SftTrain)).Take(SftConversations));
        var sft = new SftConfig
        {
            Out = Path.Combine(root, "sft"), Seed = 1, Device = "cpu", Init = pt.FinalCheckpoint,
            Data = new ChatDataSettings { Train = [sftSubset], Valid = [Path.Combine(data, ArithmeticCorpus.SftValid)] },
            // Early stopping: up to 3000 steps, stop when the held-out loss has not improved for 3 evaluations.
            Train = new TrainSettings { BatchSize = 32, Steps = 3000, Lr = 1e-3f, MinLr = 1e-4f, WarmupSteps = 20, DecayFraction = 0, EvalEvery = 50, EvalBatches = 8, CheckpointEvery = 0, Patience = 3 },
        };
        var st = Stages.Sft(sft, backend, quiet, default);
        double tSft = clock.Elapsed.TotalSeconds - tPretrain;
        Console.WriteLine($"SFT stopped after {st.Steps} steps (best held-out loss {st.BestValidationLoss:F4} at step {st.BestStep}{(st.EarlyStopped ? ", early stop" : "")})");
        await RunBoth(backend, root, st.FinalCheckpoint, clock, tPretrain, tSft, st.Steps);
        return 0;
    }

    private static async Task RunBoth(IComputeBackend backend, string root, string sftCheckpoint, Stopwatch clock, double tPretrain, double tSft, int sftSteps)
    {
        var results = new List<(string Mode, RlOutcome Outcome, List<GrpoStepMetrics> Steps, double Seconds)>();
        foreach (var mode in new[] { IsCorrection.SeqMis, IsCorrection.None })
        {
            var t0 = clock.Elapsed.TotalSeconds;
            var (outcome, steps) = await RunGrpo(backend, root, sftCheckpoint, mode);
            results.Add((mode == IsCorrection.SeqMis ? "seq_mis" : "none", outcome, steps, clock.Elapsed.TotalSeconds - t0));
        }

        Console.WriteLine();
        Console.WriteLine($"pretrain {PretrainSteps} steps: {tPretrain / 60:F1} min; SFT {sftSteps} steps: {tSft / 60:F1} min");
        var sftAcc = results[0].Outcome.Before["arithmetic"];
        Console.WriteLine($"held-out exact match of the SFT checkpoint: {sftAcc:P1}");
        foreach (var (mode, outcome, steps, secs) in results)
        {
            double after = outcome.After["arithmetic"];
            Console.WriteLine($"GRPO is_correction={mode,-8} {RlSteps} steps in {secs / 60:F1} min: held-out {sftAcc:P1} → {after:P1} ({100 * (after - sftAcc):+0.0;-0.0} points); " +
                $"pipeline total {(tPretrain + tSft + secs) / 60:F1} min");
        }
        Console.WriteLine();
        Console.WriteLine("step   reward(seq_mis) is_oob(seq_mis) mismatch(seq_mis)  reward(none)");
        var a = results[0].Steps;
        var b = results[1].Steps;
        for (int i = 0; i < a.Count; i += 10)
        {
            int hi = Math.Min(a.Count, i + 10);
            Console.WriteLine($"{a[i].Step,4}-{a[hi - 1].Step,-4} {a.Skip(i).Take(10).Average(m => m.RewardMean),10:F3} {a.Skip(i).Take(10).Average(m => m.IsOobFraction),14:P1} {a.Skip(i).Take(10).Average(m => m.Mismatch),16:E2} {b.Skip(i).Take(10).Average(m => m.RewardMean),13:F3}");
        }
        Console.WriteLine($"\ntotal {clock.Elapsed.TotalMinutes:F1} min; metrics in {root}/grpo-*/metrics.jsonl");
    }

    private static async Task<(RlOutcome, List<GrpoStepMetrics>)> RunGrpo(IComputeBackend backend, string root, string init, IsCorrection mode)
    {
        var name = mode == IsCorrection.SeqMis ? "grpo-seq_mis" : "grpo-none";
        var cfg = new GymRunConfig
        {
            Out = Path.Combine(root, name), Init = init, Seed = 1, Device = "cpu",
            Environments = [new BlendEntry { Name = "arithmetic", TrainTasks = 4000, EvalTasks = 500 }],
            Grpo = new GrpoSettings { TasksPerStep = 16, GroupSize = 8, IsCorrection = mode, IsMin = 0.5f, IsMax = 2f, MicroBatch = 64 },
            Rollout = new RolloutSettings { MaxNewTokens = 96, SamplerPrecision = SamplerPrecision.Bf16 },
            Train = new RlTrainSettings { Steps = RlSteps, Lr = 1e-4f, MinLr = 1e-5f, WarmupSteps = 5, DecayFraction = 0.2f, EvalEvery = 40, CheckpointEvery = 0 },
        };
        var options = GymSiloOptions.For(cfg.Cluster);
        options.StateStorage = "sqlite:" + Path.Combine(root, "gym-state.db");
        options.PluginFolders.Add(Nemotron.Gym.TestSupport.RepoPaths.Plugins);
        using var silo = await GymSilo.StartAsync(options);
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection);
            var steps = new List<GrpoStepMetrics>();
            var outcome = await GymRun.RunAsync(cfg, backend, grains, store, new RlLineObserver(name, steps), default);
            return (outcome, steps);
        }
        finally { await silo.StopAsync(CancellationToken.None); }
    }

    private sealed class LineObserver : ITrainingObserver
    {
        public void OnStep(StepReport r) { if (r.Step % 100 == 0) Console.WriteLine($"  step {r.Step} loss {r.Loss:F4} ({r.TokensPerSecond:N0} tok/s)"); }
        public void OnEval(EvalReport r) => Console.WriteLine($"  step {r.Step} held-out loss {r.Loss:F4}{(r.Improved ? " *" : "")}");
        public void OnMessage(string message) => Console.WriteLine("  " + message);
    }

    private sealed class RlLineObserver(string name, List<GrpoStepMetrics> steps) : IRlObserver
    {
        public void OnStep(GrpoStepMetrics m, int totalSteps)
        {
            steps.Add(m);
            if (m.Step % 10 == 0) Console.WriteLine($"  {name} step {m.Step}: reward {m.RewardMean:F3}, is_oob {m.IsOobFraction:P1}, mismatch {m.Mismatch:E2}, gen {m.GenerateSeconds:F1}s, train {m.TrainSeconds:F1}s");
        }
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) => Console.WriteLine($"  {name} step {step}: held-out {scores["arithmetic"]:P1}");
        public void OnMessage(string message) => Console.WriteLine($"  {name}: {message}");
    }
}
