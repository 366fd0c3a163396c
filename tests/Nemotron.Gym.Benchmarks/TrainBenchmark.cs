using System.Diagnostics;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Training and generation throughput of the demo model on the CPU backend, with the share of time
/// each operation takes. Args: [layers width heads context batch].
/// </summary>
public sealed class TrainBenchmark : IBenchmark
{
    public string Name => "train";
    public string Description => "CPU training tokens/s and generation tokens/s of the demo model, with a per-operation breakdown";

    public Task<int> RunAsync(string[] args)
    {
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        var cfg = new GptConfig(Arg(0, 4), Arg(1, 192), Arg(2, 6), Arg(3, 192), 267);
        int batch = Arg(4, 16), t = cfg.Context;
        Console.WriteLine($"model: {cfg.Layers} layers, width {cfg.Width}, {cfg.Heads} heads, context {cfg.Context}: {cfg.ParameterCount / 1e6:F2}M parameters; batch {batch}×{t}");

        var timing = new TimingBackend(new CpuBackend());
        var (tps, gflops) = MeasureTraining(timing, cfg, batch, seconds: 10);
        Console.WriteLine($"training: {tps:N0} tokens/s ({gflops:F1} GFLOP/s of model math), {batch * t / tps * 1000:F0} ms per step");
        PrintBreakdown(timing, batch * t / tps * timing.Steps);

        // Generation: 64 prompts of 40 tokens, 100 new tokens each, sampled at temperature 1.
        timing.Reset();
        var (genTps, secs) = MeasureGeneration(timing, cfg);
        Console.WriteLine($"\ngeneration (batch 64, 40-token prompts, 100 new tokens): {genTps:N0} tokens/s");
        PrintBreakdown(timing, secs);
        return Task.FromResult(0);
    }

    /// <summary>
    /// One generation round of the RL sampler's shape: 64 prompts of 40 tokens, 100 new tokens each at temperature 1,
    /// from seeded weights. Returns generated tokens/s and the round's seconds, both by <paramref name="clock"/> (default: wall time).
    /// </summary>
    public static (double TokensPerSecond, double Seconds) MeasureGeneration(IComputeBackend backend, GptConfig cfg, Func<double>? clock = null, DType cacheType = DType.F32)
    {
        var prompts = Enumerable.Range(0, 64).Select(i => Enumerable.Range(0, 40).Select(j => (i * 7 + j) % 250).ToArray()).ToList();
        var (tps, secs, _) = TimeRound(backend, cfg, prompts, new GenerationOptions(100, new SamplingParams(1f), 1, []), warmUp: false, clock, cacheType);
        return (tps, secs);
    }

    /// <summary>
    /// One generation round as the demo's RL stage runs it: 16 prompts of 110 tokens (the demo's prompts average
    /// about that), each sampled 8 times (128 rows, one prefill per prompt), up to 112 new tokens at temperature 1,
    /// and 5 of the 267 tokens ending a row, so rows finish at spread lengths (about 42 tokens on average; the
    /// pretraining model's 192 positions stop the longest at 82) and the sampler compacts them away as they do.
    /// Returns generated tokens/s, the round's seconds (by <paramref name="clock"/>, default wall time) and the mean length.
    /// </summary>
    public static (double TokensPerSecond, double Seconds, double MeanLength) MeasureRlGeneration(IComputeBackend backend, GptConfig cfg, Func<double>? clock = null, DType cacheType = DType.F32)
    {
        var prompts = Enumerable.Range(0, 128).Select(i => Enumerable.Range(0, 110).Select(j => (i / 8 * 7 + j) % 250 + 10).ToArray()).ToList();
        return TimeRound(backend, cfg, prompts, new GenerationOptions(112, new SamplingParams(1f), 1, [0, 1, 2, 3, 4]), warmUp: true, clock, cacheType);
    }

    /// <summary>
    /// One timed <see cref="Sampler.Generate"/> of <paramref name="prompts"/> from seeded weights, after an untimed one of
    /// the first 8 prompts when <paramref name="warmUp"/> (it allocates the caches), keys and values kept as
    /// <paramref name="cacheType"/>: tokens/s, seconds, mean length.
    /// </summary>
    private static (double TokensPerSecond, double Seconds, double MeanLength) TimeRound(IComputeBackend backend, GptConfig cfg, List<int[]> prompts,
        GenerationOptions options, bool warmUp, Func<double>? clock, DType cacheType)
    {
        clock ??= () => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        using var model = new GptModel(backend, cfg) { CacheType = cacheType };
        model.InitializeWeights(1);
        using var sampler = new Sampler(model);
        if (warmUp) sampler.Generate(prompts.Take(8).ToList(), options);
        double start = clock();
        var gens = sampler.Generate(prompts, options);
        double secs = clock() - start;
        return (gens.Sum(g => g.Tokens.Length) / secs, secs, gens.Average(g => g.Tokens.Length));
    }

    /// <summary>
    /// The demo's model as its pretraining stage trains it: 4 layers of <paramref name="width"/>, 6 heads, windows of 192
    /// byte tokens (gym/Nemotron.Gym.Cli/Configs/demo-pretrain.yaml).
    /// </summary>
    public static GptConfig DemoModel(int width = 192) => new(4, width, 6, 192, 267);

    /// <summary>
    /// Optimizer steps per second on random tokens, as tokens/s and GFLOP/s of model math (after one warm-up step),
    /// timed by <paramref name="clock"/> (default: wall time).
    /// </summary>
    public static (double TokensPerSecond, double Gflops) MeasureTraining(IComputeBackend backend, GptConfig cfg, int batch, double seconds, Func<double>? clock = null)
    {
        clock ??= () => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        int t = cfg.Context;
        using var model = new GptModel(backend, cfg);
        model.InitializeWeights(1);
        using var opt = new AdamWOptimizer(model, new AdamWSettings());
        var rng = new Random(1);
        var tokens = Enumerable.Range(0, batch * t).Select(_ => rng.Next(cfg.Vocab)).ToArray();
        var batchData = new TokenBatch(batch, t, tokens, tokens.Select(x => (x + 1) % cfg.Vocab).ToArray());
        var weights = Enumerable.Repeat(1f / (batch * t), batch * t).ToArray();
        void Step()
        {
            model.ZeroGradients();
            model.Forward(batchData);
            model.Backward(weights);
            model.ClipGradients(1f);
            opt.Update(1e-3f);
        }
        Step();
        if (backend is TimingBackend tb) tb.Reset();
        int steps = 0;
        double start = clock();
        while (clock() - start < seconds || steps < 3) { Step(); steps++; }
        double elapsed = clock() - start;
        if (backend is TimingBackend tb2) tb2.Steps = steps;
        double tps = steps * batch * t / elapsed;
        return (tps, cfg.TrainingFlopsPerToken(t) * tps / 1e9);
    }

    /// <summary>
    /// One RL training step as the demo's GRPO trainer takes it: 16 prompts of 110 tokens, 8 rollouts each of 20-112
    /// generated tokens (seeded, about 66 on average), in micro-batches of 64 rows, forward with entropy and backward
    /// over the generated tokens, then one AdamW update, on the demo's RL model (context 256). With
    /// <paramref name="sharePrompts"/> the micro-batches hold each prompt once (docs/grpo.md, share_prompts); without,
    /// every row holds its whole sequence. <paramref name="similarLengths"/>: a prompt's rollouts lie within ±5 tokens of
    /// a length drawn per prompt, as in the demo's RL stage (median spread within a group 4 tokens, standard deviation
    /// across groups 32, seed 51); otherwise each rollout's length is drawn on its own, the worst case for shared
    /// prompts, whose rows are padded to their micro-batch's longest. Returns the median seconds of
    /// <paramref name="steps"/> steps after a warm-up, and the rollouts' tokens per second at that median.
    /// </summary>
    public static (double Seconds, double TokensPerSecond) MeasureRlTraining(IComputeBackend backend, int width, bool sharePrompts, bool similarLengths, int steps = 5, Func<double>? clock = null, Action? afterWarmUp = null)
    {
        var cfg = new GptConfig(4, width, 6, 256, 267);
        using var model = new GptModel(backend, cfg);
        model.InitializeWeights(1);
        using var opt = new AdamWOptimizer(model, new AdamWSettings());
        var rng = new Random(5);
        var sequences = new List<int[]>();
        var generated = new List<byte[]>();
        for (int p = 0; p < 16; p++)
        {
            var prompt = Enumerable.Range(0, 110).Select(_ => rng.Next(10, 260)).ToArray();
            int center = rng.Next(25, 108);
            for (int g = 0; g < 8; g++)
            {
                int n = similarLengths ? center + rng.Next(-5, 6) : rng.Next(20, 113);
                sequences.Add(prompt.Concat(Enumerable.Range(0, n).Select(_ => rng.Next(10, 260))).ToArray());
                generated.Add(Enumerable.Range(0, 110 + n).Select(i => (byte)(i >= 110 ? 1 : 0)).ToArray());
            }
        }
        // The trainer's own micro-batches (GrpoTrainer), each with a loss weight on every scored position.
        var micros = Nemotron.Gym.Training.Grpo.PromptGrouping.Batches(sequences, generated, 64, sharePrompts, 0)
            .Select(m => (m.Batch, Weights: m.Batch.Targets.Select(t => t < 0 ? 0f : 1e-4f).ToArray())).ToList();
        void Step()
        {
            model.ZeroGradients();
            foreach (var (batch, weights) in micros)
            {
                model.Forward(batch, withEntropy: true);
                model.Backward(weights);
            }
            model.ClipGradients(1f);
            opt.Update(1e-4f);
        }
        clock ??= () => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        Step();
        afterWarmUp?.Invoke();
        var times = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            double start = clock();
            Step();
            times.Add(clock() - start);
        }
        times.Sort();
        double median = times[times.Count / 2];
        return (median, sequences.Sum(s => s.Length - 1) / median);
    }

    internal static void PrintBreakdown(TimingBackend timing, double total, int lines = 12)
    {
        foreach (var (op, (s, calls)) in timing.Times.OrderByDescending(kv => kv.Value.Seconds).Take(lines))
            Console.WriteLine($"  {op,-36} {100 * s / total,5:F1}%  {1000 * s / Math.Max(1, timing.Steps),8:F2} ms/step  ({calls} calls)");
    }
}
