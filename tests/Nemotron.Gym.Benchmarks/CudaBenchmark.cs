using System.Diagnostics;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cuda;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// CUDA backend throughput at GPT-2 shapes: training tokens/s and MFU, generation tokens/s at batch 1, 64 and 256,
/// and at batch 1 the share of the memory-bandwidth bound. peer/torch_peer.py prints the same table for PyTorch.
/// Args: [seconds per training measurement (default 20)] [--peak-tflops X] [--breakdown]: with --breakdown, the
/// time of each operation (and of each matrix-product shape) in a GPT-2 small training step, synchronizing after each.
/// </summary>
public sealed class CudaBenchmark : IBenchmark
{
    public string Name => "cuda";
    public string Description => "CUDA training tokens/s + MFU and generation tokens/s at GPT-2 shapes (compare: peer/torch_peer.py)";

    // Dense bf16 tensor-core peaks (no sparsity), by the device name's model.
    private static readonly (string Model, double Tflops)[] Peaks = [("H200", 989), ("H100", 989), ("A100", 312), ("L40S", 362), ("A10", 125)];

    private static readonly (string Name, GptConfig Config, int Batch)[] Models =
    [
        ("gpt2-small 12L/768", new GptConfig(12, 768, 12, 1024, 50304), 8),
        ("small 6L/384", new GptConfig(6, 384, 6, 1024, 50304), 16),
    ];

    public Task<int> RunAsync(string[] args)
    {
        double seconds = args.Length > 0 && double.TryParse(args[0], out var s) ? s : 20;
        int peakAt = Array.IndexOf(args, "--peak-tflops");
        using var cuda = CudaBackend.TryCreate(out var reason);
        if (cuda == null)
        {
            Console.Error.WriteLine($"cuda benchmark: no CUDA backend ({reason})");
            return Task.FromResult(1);
        }
        var ctx = cuda.Context;
        double peak = peakAt >= 0 ? double.Parse(args[peakAt + 1]) * 1e12
            : Peaks.FirstOrDefault(p => ctx.DeviceName.Contains(p.Model, StringComparison.OrdinalIgnoreCase)).Tflops * 1e12;
        Console.WriteLine(cuda.Description);
        Console.WriteLine($"bf16 peak {(peak > 0 ? $"{peak / 1e12:F0} TFLOP/s" : "unknown (--peak-tflops X)")}, memory bandwidth {ctx.PeakMemoryBandwidth / 1e9:F0} GB/s");
        Console.WriteLine();
        if (args.Contains("--breakdown"))
        {
            var (name, cfg, batch) = Models[0];
            var timing = new TimingBackend(cuda, matMulShapes: true);
            var (tps, _) = TrainBenchmark.MeasureTraining(timing, cfg, batch, Math.Min(seconds, 5));
            double stepSeconds = batch * cfg.Context / tps;
            Console.WriteLine($"{name} training step, {batch}x{cfg.Context}, synchronizing after every operation: {stepSeconds * 1000:F1} ms");
            TrainBenchmark.PrintBreakdown(timing, stepSeconds * timing.Steps, lines: 30);
            Console.WriteLine();
        }
        PrintHeader();

        foreach (var (name, cfg, batch) in Models)
        {
            var (tps, gflops) = TrainBenchmark.MeasureTraining(cuda, cfg, batch, seconds);
            PrintRow("train", name, $"{batch}x{cfg.Context}", tps, peak > 0 ? $"MFU {100 * gflops * 1e9 / peak:F1}%" : $"{gflops / 1e3:F1} TFLOP/s");
        }
        foreach (var (name, cfg, _) in Models)
            foreach (int batch in new[] { 1, 64, 256 })
            {
                var (tps, meanPosition) = MeasureGeneration(cuda, cfg, batch, promptLength: 16, newTokens: 128);
                string note = "";
                if (batch == 1 && ctx.PeakMemoryBandwidth > 0)
                {
                    // Each decoded token must at least read every weight once (the bf16 copies the products use) and
                    // the KV cache so far (fp32).
                    double bytes = 2.0 * (cfg.ParameterCount - (long)cfg.Context * cfg.Width) + 2.0 * cfg.Layers * cfg.Width * 4 * meanPosition;
                    note = $"{100 * bytes * tps / ctx.PeakMemoryBandwidth:F1}% of bandwidth bound";
                }
                PrintRow("generate", name, batch.ToString(), tps, note);
            }
        return Task.FromResult(0);
    }

    /// <summary>The table both this benchmark and torch_peer.py print.</summary>
    internal static void PrintHeader()
    {
        Console.WriteLine($"| {"workload",-8} | {"model",-20} | {"batch",-9} | {"tokens/s",12} | {"notes",-32} |");
        Console.WriteLine($"|{new string('-', 10)}|{new string('-', 22)}|{new string('-', 11)}|{new string('-', 14)}|{new string('-', 34)}|");
    }

    internal static void PrintRow(string workload, string model, string batch, double tokensPerSecond, string notes) =>
        Console.WriteLine($"| {workload,-8} | {model,-20} | {batch,-9} | {tokensPerSecond,12:N0} | {notes,-32} |");

    /// <summary>New tokens per second of sampled generation (temperature 1, no stop tokens), after a warm-up round.</summary>
    private static (double TokensPerSecond, double MeanPosition) MeasureGeneration(IComputeBackend backend, GptConfig cfg, int batch, int promptLength, int newTokens)
    {
        using var model = new GptModel(backend, cfg);
        model.InitializeWeights(1);
        using var sampler = new Sampler(model);
        // Distinct prompts: the sampler prefills identical prompts once, which would flatter the figure.
        var prompts = Enumerable.Range(0, batch).Select(i => Enumerable.Range(0, promptLength).Select(j => (i * 131 + j * 7) % cfg.Vocab).ToArray()).ToList();
        var options = new GenerationOptions(newTokens, new SamplingParams(1f), 1, [], MaxBatch: batch);
        sampler.Generate(prompts.Take(Math.Min(batch, 4)).ToList(), options with { MaxNewTokens = 8 });
        var sw = Stopwatch.StartNew();
        var generations = sampler.Generate(prompts, options);
        double secs = sw.Elapsed.TotalSeconds;
        return (generations.Sum(g => g.Tokens.Length) / secs, promptLength + newTokens / 2.0);
    }
}
