using System.Diagnostics;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// CPU backend figures: matrix-product GFLOP/s at the demo model's shapes beside the machine's measured
/// FMA peak on one and two threads, then training tokens/s of the demo model. Args: [width tokens].
/// </summary>
public sealed class KernelsBenchmark : IBenchmark
{
    public string Name => "kernels";
    public string Description => "CPU matrix-product GFLOP/s at the demo model's shapes vs. measured FMA peak (1 and 2 threads), and demo training tokens/s";

    public Task<int> RunAsync(string[] args)
    {
        double peak1 = FmaPeak.Measure(1), peak2 = FmaPeak.Measure(Environment.ProcessorCount);
        Console.WriteLine($"FMA peak: {peak1:F1} GFLOP/s on 1 thread, {peak2:F1} GFLOP/s on {Environment.ProcessorCount} threads");
        Console.WriteLine();
        int width = args.Length > 0 ? int.Parse(args[0]) : 192, tokens = args.Length > 1 ? int.Parse(args[1]) : 16 * 192;
        var shapes = new (string What, int M, int N, int K, bool TA, bool TB)[]
        {
            ("qkv forward      x·Wᵀ", tokens, 3 * width, width, false, true),
            ("mlp up forward   x·Wᵀ", tokens, 4 * width, width, false, true),
            ("mlp down forward x·Wᵀ", tokens, width, 4 * width, false, true),
            ("mlp up dinput    dy·W", tokens, width, 4 * width, false, false),
            ("mlp up dweight   dyᵀ·x", 4 * width, width, tokens, true, false),
            ("lm head          x·Eᵀ", tokens, 288, width, false, true),
            ("decode qkv (B=64)", 64, 3 * width, width, false, true),
        };
        Console.WriteLine($"{"shape",-26} {"M",6} {"N",6} {"K",6} {"1 thread",10} {"2 threads",10}   (GFLOP/s; % of peak)");
        foreach (var s in shapes)
        {
            double g1 = Measure(1, s.M, s.N, s.K, s.TA, s.TB), g2 = Measure(Environment.ProcessorCount, s.M, s.N, s.K, s.TA, s.TB);
            Console.WriteLine($"{s.What,-26} {s.M,6} {s.N,6} {s.K,6} {g1,10:F1} {g2,10:F1}   ({100 * g1 / peak1:F0}% / {100 * g2 / peak2:F0}%)");
        }
        Console.WriteLine();
        var demo = new Nemotron.Gym.Model.GptConfig(4, width, 6, 192, 267);
        var (tps, gflops) = TrainBenchmark.MeasureTraining(new CpuBackend(), demo, batch: tokens / 192, seconds: 10);
        Console.WriteLine($"demo model training ({demo.ParameterCount / 1e6:F2}M parameters, batch {tokens / 192}×192): {tps:N0} tokens/s, {gflops:F1} GFLOP/s of model math ({100 * gflops / peak2:F0}% of the 2-thread FMA peak)");
        return Task.FromResult(0);
    }

    private static double Measure(int threads, int m, int n, int k, bool ta, bool tb)
    {
        using var be = new CpuBackend(threads);
        var rng = new Random(1);
        using var a = be.Allocate(DType.F32, (long)m * k, "a");
        using var b = be.Allocate(DType.F32, (long)k * n, "b");
        using var c = be.Allocate(DType.F32, (long)m * n, "c");
        be.Upload(a, Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray());
        be.Upload(b, Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble()).ToArray());
        be.MatMul(c, a, b, m, n, k, ta, tb); // warm-up (JIT, page faults)
        int reps = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < 0.4 || reps < 3)
        {
            be.MatMul(c, a, b, m, n, k, ta, tb);
            reps++;
        }
        return 2.0 * m * n * k * reps / sw.Elapsed.TotalSeconds / 1e9;
    }
}
