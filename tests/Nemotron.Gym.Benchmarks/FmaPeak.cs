using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Measures the machine's fused multiply-add throughput, the ceiling any float kernel can reach: 24
/// independent accumulator chains, enough to cover FMA latency on cores with two FMA pipes.
/// </summary>
internal static class FmaPeak
{
    /// <summary>GFLOP/s of independent FMA chains on <paramref name="threads"/> threads.</summary>
    public static double Measure(int threads, double seconds = 0.5)
    {
        long iterations = 2_000_000;
        // Calibrate so the timed run lasts about the requested time.
        var sw = Stopwatch.StartNew();
        Chains(iterations / 10);
        double perIteration = sw.Elapsed.TotalSeconds / (iterations / 10);
        iterations = Math.Max(1_000_000, (long)(seconds / perIteration));
        sw.Restart();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => Chains(iterations));
        double elapsed = sw.Elapsed.TotalSeconds;
        return threads * iterations * FlopsPerIteration / elapsed / 1e9;
    }

    /// <summary>GFLOP/s of the same chains on the calling thread alone, timed by <paramref name="clock"/> (e.g. the thread's CPU time).</summary>
    public static double MeasureOnThisThread(Func<double> clock, double seconds = 0.5)
    {
        long iterations = 1_000_000;
        double start = clock();
        Chains(iterations);
        double perIteration = Math.Max(1e-12, (clock() - start) / iterations);
        iterations = Math.Max(1_000_000, (long)(seconds / perIteration));
        start = clock();
        Chains(iterations);
        return iterations * FlopsPerIteration / (clock() - start) / 1e9;
    }

    private static readonly long FlopsPerIteration = 24L * 2 * (Vector512.IsHardwareAccelerated ? 16 : 8);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains(long iterations)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            var m = Vector512.Create(0.999f); var a = Vector512.Create(1e-3f);
            Vector512<float> x0 = Vector512.Create(1f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0, x12 = x0, x13 = x0, x14 = x0, x15 = x0, x16 = x0, x17 = x0, x18 = x0, x19 = x0, x20 = x0, x21 = x0, x22 = x0, x23 = x0;
            for (long i = 0; i < iterations; i++)
            {
                x0 = Vector512.FusedMultiplyAdd(x0, m, a);
                x1 = Vector512.FusedMultiplyAdd(x1, m, a);
                x2 = Vector512.FusedMultiplyAdd(x2, m, a);
                x3 = Vector512.FusedMultiplyAdd(x3, m, a);
                x4 = Vector512.FusedMultiplyAdd(x4, m, a);
                x5 = Vector512.FusedMultiplyAdd(x5, m, a);
                x6 = Vector512.FusedMultiplyAdd(x6, m, a);
                x7 = Vector512.FusedMultiplyAdd(x7, m, a);
                x8 = Vector512.FusedMultiplyAdd(x8, m, a);
                x9 = Vector512.FusedMultiplyAdd(x9, m, a);
                x10 = Vector512.FusedMultiplyAdd(x10, m, a);
                x11 = Vector512.FusedMultiplyAdd(x11, m, a);
                x12 = Vector512.FusedMultiplyAdd(x12, m, a);
                x13 = Vector512.FusedMultiplyAdd(x13, m, a);
                x14 = Vector512.FusedMultiplyAdd(x14, m, a);
                x15 = Vector512.FusedMultiplyAdd(x15, m, a);
                x16 = Vector512.FusedMultiplyAdd(x16, m, a);
                x17 = Vector512.FusedMultiplyAdd(x17, m, a);
                x18 = Vector512.FusedMultiplyAdd(x18, m, a);
                x19 = Vector512.FusedMultiplyAdd(x19, m, a);
                x20 = Vector512.FusedMultiplyAdd(x20, m, a);
                x21 = Vector512.FusedMultiplyAdd(x21, m, a);
                x22 = Vector512.FusedMultiplyAdd(x22, m, a);
                x23 = Vector512.FusedMultiplyAdd(x23, m, a);
            }
            return Vector512.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11 + x12 + x13 + x14 + x15 + x16 + x17 + x18 + x19 + x20 + x21 + x22 + x23);
        }
        else
        {
            var m = Vector256.Create(0.999f); var a = Vector256.Create(1e-3f);
            Vector256<float> x0 = Vector256.Create(1f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0, x12 = x0, x13 = x0, x14 = x0, x15 = x0, x16 = x0, x17 = x0, x18 = x0, x19 = x0, x20 = x0, x21 = x0, x22 = x0, x23 = x0;
            for (long i = 0; i < iterations; i++)
            {
                x0 = Vector256.FusedMultiplyAdd(x0, m, a);
                x1 = Vector256.FusedMultiplyAdd(x1, m, a);
                x2 = Vector256.FusedMultiplyAdd(x2, m, a);
                x3 = Vector256.FusedMultiplyAdd(x3, m, a);
                x4 = Vector256.FusedMultiplyAdd(x4, m, a);
                x5 = Vector256.FusedMultiplyAdd(x5, m, a);
                x6 = Vector256.FusedMultiplyAdd(x6, m, a);
                x7 = Vector256.FusedMultiplyAdd(x7, m, a);
                x8 = Vector256.FusedMultiplyAdd(x8, m, a);
                x9 = Vector256.FusedMultiplyAdd(x9, m, a);
                x10 = Vector256.FusedMultiplyAdd(x10, m, a);
                x11 = Vector256.FusedMultiplyAdd(x11, m, a);
                x12 = Vector256.FusedMultiplyAdd(x12, m, a);
                x13 = Vector256.FusedMultiplyAdd(x13, m, a);
                x14 = Vector256.FusedMultiplyAdd(x14, m, a);
                x15 = Vector256.FusedMultiplyAdd(x15, m, a);
                x16 = Vector256.FusedMultiplyAdd(x16, m, a);
                x17 = Vector256.FusedMultiplyAdd(x17, m, a);
                x18 = Vector256.FusedMultiplyAdd(x18, m, a);
                x19 = Vector256.FusedMultiplyAdd(x19, m, a);
                x20 = Vector256.FusedMultiplyAdd(x20, m, a);
                x21 = Vector256.FusedMultiplyAdd(x21, m, a);
                x22 = Vector256.FusedMultiplyAdd(x22, m, a);
                x23 = Vector256.FusedMultiplyAdd(x23, m, a);
            }
            return Vector256.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11 + x12 + x13 + x14 + x15 + x16 + x17 + x18 + x19 + x20 + x21 + x22 + x23);
        }
    }
}
