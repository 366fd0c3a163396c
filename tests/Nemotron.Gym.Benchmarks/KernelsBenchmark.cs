using System.Diagnostics;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// The CPU backend against the machine's own FMA peak: matrix products at the demo model's shapes, the demo
/// model's training step on one and two threads, one generation round of the RL sampler's shape (batch 64),
/// and each target of the CPU-speed issue beside the figure it started from. With <c>--breakdown</c>, a
/// per-operation profile of a training step and of a generation round, single-threaded in the thread's CPU
/// time (steady on a shared machine) and on every core in wall time.
/// With <c>--rl-training-only</c>, only the RL stage's training step, plain rows beside shared prompts.
/// Args: [--breakdown] [--shapes-only] [--generation-only] [--rl-training-only] [--seconds S] [width tokens].
/// </summary>
public sealed class KernelsBenchmark : IBenchmark
{
    public string Name => "kernels";
    public string Description => "CPU backend vs. measured FMA peak: GEMM at the demo's shapes, demo training step (1 and 2 threads), decode round at batch 64, the issue's targets; --breakdown for per-op profiles";

    /// <summary>The figures the CPU-speed issue started from (2-core CI machine, nothing else running, main at ac95295).</summary>
    private static class Today
    {
        public const double Peak1 = 112, Peak2 = 263;
        public const double GemmLowPercent = 44, GemmHighPercent = 55;
        public const double DecodePercent = 20;
        public const double TrainingTokensPerSecond = 6548, TrainingPercent = 29;
        public const string DemoWallTime = "25m28s";
    }

    public Task<int> RunAsync(string[] args)
    {
        bool breakdown = args.Contains("--breakdown");
        int secondsAt = Array.IndexOf(args, "--seconds");
        double seconds = secondsAt >= 0 ? double.Parse(args[secondsAt + 1], System.Globalization.CultureInfo.InvariantCulture) : 5;
        var positional = args.Where((a, i) => !a.StartsWith("--") && (secondsAt < 0 || i != secondsAt + 1)).ToArray();
        int width = positional.Length > 0 ? int.Parse(positional[0]) : 192, tokens = positional.Length > 1 ? int.Parse(positional[1]) : 16 * 192;
        int threads = Environment.ProcessorCount;
        if (args.Contains("--rl-training-only") && breakdown)
        {
            // Where the RL stage's training step goes (shared prompts, lengths as in the demo), one thread by its own CPU time.
            double peak = FmaPeak.MeasureOnThisThread(ThreadCpuClock.Now);
            var timing = new TimingBackend(new CpuBackend(1), matMulShapes: true, clock: ThreadCpuClock.Now);
            const int steps = 3;
            var (median, _) = TrainBenchmark.MeasureRlTraining(timing, width, sharePrompts: true, similarLengths: true, steps, ThreadCpuClock.Now, timing.Reset);
            PrintProfile($"RL training step, shared prompts, 1 thread (thread CPU time): {median * 1000:F0} ms per step (median of {steps})", timing, median, steps, peak);
            return Task.FromResult(0);
        }
        if (args.Contains("--rl-training-only"))
        {
            PrintRlTraining(width, threads);
            return Task.FromResult(0);
        }
        if (args.Contains("--generation-only") && breakdown)
        {
            // Where a round's time goes, one thread by its own CPU time (steady on a shared host), both rounds.
            var model = TrainBenchmark.DemoModel(width);
            double peak = FmaPeak.MeasureOnThisThread(ThreadCpuClock.Now);
            var timing = new TimingBackend(new CpuBackend(1), matMulShapes: true, clock: ThreadCpuClock.Now);
            TrainBenchmark.MeasureRlGeneration(timing, model, ThreadCpuClock.Now);
            timing.Reset();
            var (_, rlRound, _) = TrainBenchmark.MeasureRlGeneration(timing, model, ThreadCpuClock.Now);
            PrintProfile($"RL-shaped round, 1 thread (thread CPU time): {rlRound * 1000:F0} ms per round", timing, rlRound, 1, peak);
            timing.Reset();
            var (_, plainRound) = TrainBenchmark.MeasureGeneration(timing, model, ThreadCpuClock.Now);
            PrintProfile($"generation round, 1 thread (thread CPU time): {plainRound * 1000:F0} ms per round", timing, plainRound, 1, peak);
            return Task.FromResult(0);
        }
        if (args.Contains("--generation-only"))
        {
            // The sampler's two rounds, ten times each after a warm-up, for a before/after of a decoding change
            // (one round is a fraction of a second, and a shared host's noise is larger than that). Decode attention
            // by its per-key loop, by its blocked path, and by the blocked path over bf16 caches (the CPU backend's
            // bf16 sampler, as the demo's RL stage runs) alternate round by round, so all see the same host.
            var model = TrainBenchmark.DemoModel(width);
            using var perKey = new CpuBackend(threads) { BlockedDecode = false };
            using var blocked = new CpuBackend(threads);
            var variants = new (string Name, CpuBackend Backend, DType Cache)[]
                { ("per-key loop, fp32", perKey, DType.F32), ("blocked, fp32", blocked, DType.F32), ("blocked, bf16 cache", blocked, DType.BF16) };
            var plain = variants.Select(_ => new List<double>()).ToArray();
            var rl = variants.Select(_ => new List<double>()).ToArray();
            var lengths = new double[variants.Length];
            for (int i = 0; i < 11; i++)
                for (int v = 0; v < variants.Length; v++)
                {
                    var (tps, _) = TrainBenchmark.MeasureGeneration(variants[v].Backend, model, cacheType: variants[v].Cache);
                    var (rTps, _, rLength) = TrainBenchmark.MeasureRlGeneration(variants[v].Backend, model, cacheType: variants[v].Cache);
                    if (i == 0) continue;
                    plain[v].Add(tps);
                    rl[v].Add(rTps);
                    lengths[v] = rLength;
                }
            string Median(List<double> xs) { xs.Sort(); return $"{xs[xs.Count / 2],7:N0} ({xs[0]:N0}–{xs[^1]:N0})"; }
            double Ratio(List<double>[] xs, int v) => xs[v][xs[v].Count / 2] / xs[0][xs[0].Count / 2];
            Console.WriteLine($"tokens/s, {threads} threads, median (range) of {plain[0].Count} rounds; ratio to the per-key loop");
            Console.WriteLine($"{"decode attention",-22} {"generation round (64 prompts × 100 tokens)",44} {"RL-shaped round",40}");
            for (int v = 0; v < variants.Length; v++)
                Console.WriteLine($"{variants[v].Name,-22} {Median(plain[v]),28} {Ratio(plain, v),6:F2}× {Median(rl[v]),26} {Ratio(rl, v),6:F2}× (rows end at {lengths[v]:F0} tokens)");
            return Task.FromResult(0);
        }

        double peak1 = FmaPeak.Measure(1), peak2 = FmaPeak.Measure(threads);
        double peak1Cpu = FmaPeak.MeasureOnThisThread(ThreadCpuClock.Now);
        string clockName = ThreadCpuClock.IsThreadTime ? "thread CPU time" : "wall time";
        Console.WriteLine($"FMA peak: {peak1:F1} GFLOP/s on 1 thread ({peak1Cpu:F1} by {clockName}), {peak2:F1} GFLOP/s on {threads} threads");
        Console.WriteLine();

        var shapes = new (string What, int M, int N, int K, bool TA, bool TB, bool Training)[]
        {
            ("qkv forward      x·Wᵀ", tokens, 3 * width, width, false, true, true),
            ("mlp up forward   x·Wᵀ", tokens, 4 * width, width, false, true, true),
            ("mlp down forward x·Wᵀ", tokens, width, 4 * width, false, true, true),
            ("mlp up dinput    dy·W", tokens, width, 4 * width, false, false, true),
            ("mlp up dweight   dyᵀ·x", 4 * width, width, tokens, true, false, true),
            ("mlp down dweight dyᵀ·h", width, 4 * width, tokens, true, false, true),
            ("lm head          x·Eᵀ", tokens, 288, width, false, true, true),
            ("decode qkv (B=64)", 64, 3 * width, width, false, true, false),
            // The RL sampler's live rows before the first ones finish (128) and on the way down (104).
            ("decode mlp up (B=128)", 128, 4 * width, width, false, true, false),
            ("decode mlp up (B=104)", 104, 4 * width, width, false, true, false),
        };
        Console.WriteLine($"{"shape",-26} {"M",6} {"N",6} {"K",6} {"1 thread",10} {threads + " threads",10}   (GFLOP/s; % of peak; 1 thread by {clockName})");
        double gemmLow = double.MaxValue, gemmHigh = 0, decodePercent = 0;
        foreach (var s in shapes)
        {
            double g1 = MeasureGemm(1, s.M, s.N, s.K, s.TA, s.TB, s.Training, ThreadCpuClock.Now);
            double g2 = MeasureGemm(threads, s.M, s.N, s.K, s.TA, s.TB, s.Training, null);
            double p2 = 100 * g2 / peak2;
            Console.WriteLine($"{s.What,-26} {s.M,6} {s.N,6} {s.K,6} {g1,10:F1} {g2,10:F1}   ({100 * g1 / peak1Cpu:F0}% / {p2:F0}%)");
            if (s.Training) { gemmLow = Math.Min(gemmLow, p2); gemmHigh = Math.Max(gemmHigh, p2); }
            else if (s.M == 64) decodePercent = p2; // the issue's decode figure: batch 64
        }
        Console.WriteLine();
        if (args.Contains("--shapes-only")) return Task.FromResult(0);

        var demo = TrainBenchmark.DemoModel(width);
        int batch = tokens / 192;
        var (tps1, _) = TrainBenchmark.MeasureTraining(new CpuBackend(1), demo, batch, seconds);
        var (tps1Cpu, gflops1Cpu) = TrainBenchmark.MeasureTraining(new CpuBackend(1), demo, batch, seconds, ThreadCpuClock.Now);
        var (tps2, gflops2) = TrainBenchmark.MeasureTraining(new CpuBackend(threads), demo, batch, seconds);
        double trainPercent = 100 * gflops2 / peak2, scaling = tps2 / tps1;
        Console.WriteLine($"demo training step ({demo.ParameterCount / 1e6:F2}M parameters, batch {batch}×192):");
        Console.WriteLine($"  1 thread:  {tps1,8:N0} tokens/s ({tps1Cpu:N0} by {clockName}: {gflops1Cpu:F1} GFLOP/s = {100 * gflops1Cpu / peak1Cpu:F0}% of the 1-thread peak)");
        Console.WriteLine($"  {threads} threads: {tps2,8:N0} tokens/s, {gflops2:F1} GFLOP/s of model math = {trainPercent:F0}% of the {threads}-thread peak; {scaling:F2}× one thread");
        var (genTps, genSeconds) = TrainBenchmark.MeasureGeneration(new CpuBackend(threads), demo);
        Console.WriteLine($"generation round (64 prompts of 40 tokens, 100 new tokens each, T = 1), {threads} threads: {genTps:N0} tokens/s, {genSeconds:F2} s");
        var (rlTps, rlSeconds, rlLength) = TrainBenchmark.MeasureRlGeneration(new CpuBackend(threads), demo);
        Console.WriteLine($"RL-shaped round (16 prompts of 110 tokens × 8 samples, stop tokens end rows at {rlLength:F0} tokens on average), {threads} threads: {rlTps:N0} tokens/s, {rlSeconds:F2} s");
        var (bfTps, bfSeconds, bfLength) = TrainBenchmark.MeasureRlGeneration(new CpuBackend(threads), demo, cacheType: DType.BF16);
        Console.WriteLine($"  the same with bf16 keys and values (the demo's bf16 sampler; rows end at {bfLength:F0} tokens): {bfTps:N0} tokens/s, {bfSeconds:F2} s");
        PrintRlTraining(width, threads);
        Console.WriteLine();

        Console.WriteLine($"{"target (issue: CPU backend twice as fast)",-44} {"today",12} {"now",12} {"ratio",7} {"target",9}  met");
        void Row(string what, string today, string now, double? ratio, string target, bool? met) =>
            Console.WriteLine($"{what,-44} {today,12} {now,12} {(ratio is { } r ? $"{r:F2}×" : "—"),7} {target,9}  {(met is { } m ? m ? "yes" : "no" : "—")}");
        Row("FMA peak, GFLOP/s, 1 thread", $"{Today.Peak1:F0}", $"{peak1:F0}", peak1 / Today.Peak1, "—", null);
        Row($"FMA peak, GFLOP/s, {threads} threads", $"{Today.Peak2:F0}", $"{peak2:F0}", peak2 / Today.Peak2, "—", null);
        Row($"GEMM at training shapes, % of {threads}-thr peak", $"{Today.GemmLowPercent:F0}–{Today.GemmHighPercent:F0}%", $"{gemmLow:F0}–{gemmHigh:F0}%",
            gemmLow / Today.GemmLowPercent, "—", null);
        Row("decode GEMM at batch 64, % of peak", $"{Today.DecodePercent:F0}%", $"{decodePercent:F0}%", decodePercent / Today.DecodePercent, "≥ 50%", decodePercent >= 50);
        Row($"training step, % of {threads}-thread peak", $"{Today.TrainingPercent:F0}%", $"{trainPercent:F0}%", trainPercent / Today.TrainingPercent, "≥ 60%", trainPercent >= 60);
        Row("training step, tokens/s", $"{Today.TrainingTokensPerSecond:N0}", $"{tps2:N0}", tps2 / Today.TrainingTokensPerSecond, "≥ 2×", tps2 >= 2 * Today.TrainingTokensPerSecond);
        Row($"training step, {threads} threads over 1", "—", $"{scaling:F2}×", null, "≥ 1.8×", scaling >= 1.8);
        Row("generation round, tokens/s", "side by side", $"{genTps:N0}", null, "≥ 2×", null);
        Row("gym demo wall time", Today.DemoWallTime, "side by side", null, "≥ 2×", null);
        Console.WriteLine("(today: the issue's figures from a quiet 2-core machine; now: this run, on this machine as it is)");
        // The last two need the issue's main (ac95295) built beside this one, so no single run can print them.
        Console.WriteLine("(generation round and gym demo: the issue's main and this one run one after the other on one machine,");
        Console.WriteLine(" in kernels/Nemotron.Gym.Kernels/Cpu/PERF.md, \"Side by side with the issue's main\")");

        if (breakdown)
        {
            Console.WriteLine();
            foreach (int n in new[] { 1, threads }.Distinct())
            {
                Func<double>? clock = n == 1 ? ThreadCpuClock.Now : null;
                double peak = n == 1 ? peak1Cpu : peak2;
                string how = n == 1 ? clockName : "wall time";
                var timing = new TimingBackend(new CpuBackend(n), matMulShapes: true, clock: clock);
                var (tps, _) = TrainBenchmark.MeasureTraining(timing, demo, batch, Math.Min(seconds, 3), clock);
                double stepSeconds = batch * 192 / tps;
                PrintProfile($"training step, {n} thread{(n == 1 ? "" : "s")} ({how}): {stepSeconds * 1000:F0} ms per step", timing, stepSeconds, timing.Steps, peak);
                timing.Reset();
                var (_, roundSeconds) = TrainBenchmark.MeasureGeneration(timing, demo, clock);
                PrintProfile($"generation round, {n} thread{(n == 1 ? "" : "s")} ({how}): {roundSeconds * 1000:F0} ms per round", timing, roundSeconds, 1, peak);
            }
        }
        return Task.FromResult(0);
    }

    /// <summary>The RL stage's training step with every prompt in every row, and with each prompt once (share_prompts), side by side.</summary>
    private static void PrintRlTraining(int width, int threads)
    {
        Console.WriteLine($"RL training step (16 prompts of 110 tokens × 8 rollouts of 20-112 tokens, micro-batches of 64), {threads} threads, median of 5:");
        foreach (bool similar in new[] { true, false })
        {
            var (plainSeconds, plainTps) = TrainBenchmark.MeasureRlTraining(new CpuBackend(threads), width, sharePrompts: false, similarLengths: similar);
            var (sharedSeconds, sharedTps) = TrainBenchmark.MeasureRlTraining(new CpuBackend(threads), width, sharePrompts: true, similarLengths: similar);
            Console.WriteLine(similar ? "  a prompt's rollouts within ±5 tokens of each other (as in the demo):" : "  every rollout's length drawn on its own:");
            Console.WriteLine($"    every row holds its prompt: {plainSeconds:F2} s ({plainTps:N0} rollout tokens/s)");
            Console.WriteLine($"    each prompt computed once:  {sharedSeconds:F2} s ({sharedTps:N0} rollout tokens/s), {plainSeconds / sharedSeconds:F2}× faster");
        }
    }

    /// <summary>Every operation in name order (a fixed structure run to run): time per step or round, share, and GFLOP/s for products.</summary>
    private static void PrintProfile(string title, TimingBackend timing, double total, int steps, double peak)
    {
        Console.WriteLine(title);
        Console.WriteLine($"  {"operation",-34} {"ms",9} {"share",7} {"calls",7} {"GFLOP/s",9} {"% peak",7}");
        double accounted = 0;
        foreach (var (op, (s, calls)) in timing.Times.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            accounted += s;
            string rate = timing.Flops.TryGetValue(op, out double f) ? $"{f / s / 1e9,9:F1} {100 * f / s / 1e9 / peak,6:F0}%" : $"{"",9} {"",7}";
            Console.WriteLine($"  {op,-34} {1000 * s / steps,9:F2} {100 * s / (total * steps),6:F1}% {calls / steps,7} {rate}");
        }
        Console.WriteLine($"  {"(outside the backend)",-34} {1000 * (total * steps - accounted) / steps,9:F2} {100 * (1 - accounted / (total * steps)),6:F1}%");
        Console.WriteLine();
    }

    private static double MeasureGemm(int threads, int m, int n, int k, bool ta, bool tb, bool freshB, Func<double>? clock)
    {
        clock ??= () => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        using var be = new CpuBackend(threads);
        var rng = new Random(1);
        using var a = be.Allocate(DType.F32, (long)m * k, "a");
        using var b = be.Allocate(DType.F32, (long)k * n, "b");
        using var c = be.Allocate(DType.F32, (long)m * n, "c");
        be.Upload(a, Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray());
        be.Upload(b, Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble()).ToArray());
        // With freshB each timed product gets a freshly written B, as in training where every weight changes
        // each step, so the figure includes packing B; decoding reuses its weights, so the decode shape does not.
        var bHost = new float[1];
        be.MatMul(c, a, b, m, n, k, ta, tb); // warm-up (JIT, page faults)
        int reps = 0;
        double start = clock(), elapsed;
        do
        {
            if (freshB) be.Upload(b, bHost, reps % (k * n));
            be.MatMul(c, a, b, m, n, k, ta, tb);
            reps++;
            elapsed = clock() - start;
        } while (elapsed < 0.4 || reps < 3);
        return 2.0 * m * n * k * reps / elapsed / 1e9;
    }
}
