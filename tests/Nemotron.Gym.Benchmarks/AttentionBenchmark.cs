using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Training attention on the CPU backend, fused small-head path against the generic GEMM path, at the demo
/// model's shape (6 heads of 32, 192 tokens, batch 16) and at a shorter SFT-like length. One thread, timed by
/// the thread's own CPU time, the two paths alternating round by round so a shared machine's load falls on
/// both alike; the median round of each is printed, and the best
/// total (the round least disturbed by other work).
/// With <c>--step</c>, also the demo's whole training step (4 layers, width 192, batch 16×192) on one thread with
/// each path, alternating one second at a time, so the attention's gain can be read against the whole step.
/// With <c>--decode</c>, decoding attention instead: the per-key loop against the blocked path (see MeasureDecode).
/// Args: [--rounds N] [--step | --decode] [batch seqLen channels heads].
/// </summary>
public sealed class AttentionBenchmark : IBenchmark
{
    public string Name => "attention";
    public string Description => "CPU training attention, fused small-head path vs. generic GEMM path (1 thread, thread CPU time, alternating rounds); --step for the whole demo training step; --decode for decoding attention, per-key loop vs. blocked path";

    public Task<int> RunAsync(string[] args)
    {
        int roundsAt = Array.IndexOf(args, "--rounds");
        int rounds = roundsAt >= 0 ? int.Parse(args[roundsAt + 1]) : 15;
        var positional = args.Where((a, i) => !a.StartsWith("--") && (roundsAt < 0 || i != roundsAt + 1)).Select(int.Parse).ToArray();
        var shapes = positional.Length == 4
            ? new[] { (positional[0], positional[1], positional[2], positional[3]) }
            : new[] { (16, 192, 192, 6), (32, 72, 192, 6) };
        if (args.Contains("--decode"))
        {
            MeasureDecode(rounds);
            return Task.FromResult(0);
        }
        Console.WriteLine($"clock: {(ThreadCpuClock.IsThreadTime ? "thread CPU time" : "wall time")}; {rounds} rounds per path, median shown (and the best total)");
        Console.WriteLine($"{"batch×seqLen, c/h",-22} {"path",-8} {"forward ms",11} {"backward ms",12} {"total ms",9} {"GFLOP/s",8} {"best ms",9}");
        foreach (var (b, t, c, h) in shapes)
        {
            // Model math only: two causal products forward (QKᵀ, PV), four backward (dP, dQ, dK, dV), each
            // 2·hs flops per (query, key) pair at or below the diagonal; the recomputed scores are not counted.
            double flops = 6 * 2.0 * b * h * (t * (t + 1) / 2.0) * (c / h);
            using var fused = new AttentionRun(new CpuBackend(1), b, t, c, h);
            using var generic = new AttentionRun(new CpuBackend(1) { FusedAttention = false }, b, t, c, h);
            fused.Time(); generic.Time(); // warm up: JIT, scratch buffers
            var f = new List<(double F, double B)>();
            var g = new List<(double F, double B)>();
            for (int r = 0; r < rounds; r++)
            {
                f.Add(fused.Time());
                g.Add(generic.Time());
            }
            double Median(IEnumerable<double> xs) => xs.OrderBy(x => x).ElementAt(rounds / 2);
            string shape = $"{b}×{t}, {c}/{h}";
            double ft = Median(f.Select(x => x.F + x.B)), gt = Median(g.Select(x => x.F + x.B));
            double fBest = f.Min(x => x.F + x.B), gBest = g.Min(x => x.F + x.B);
            Console.WriteLine($"{shape,-22} {"generic",-8} {1000 * Median(g.Select(x => x.F)),11:F2} {1000 * Median(g.Select(x => x.B)),12:F2} {1000 * gt,9:F2} {flops / gt / 1e9,8:F1} {1000 * gBest,9:F2}");
            Console.WriteLine($"{shape,-22} {"fused",-8} {1000 * Median(f.Select(x => x.F)),11:F2} {1000 * Median(f.Select(x => x.B)),12:F2} {1000 * ft,9:F2} {flops / ft / 1e9,8:F1} {1000 * fBest,9:F2}   {gt / ft:F2}× generic (best {gBest / fBest:F2}×)");
        }
        if (args.Contains("--step")) MeasureStep(rounds: 5);
        return Task.FromResult(0);
    }

    /// <summary>
    /// One decoding step's attention (6 heads of 32, four layers, each call over its own layer's caches), per-key loop
    /// against the blocked path over fp32 and over bf16 caches, one thread by its own CPU time, alternating: 8 rows (the
    /// four layers' caches, 6.4 MB in fp32, fit the last-level cache), 64 rows (they come from memory), and the RL
    /// sampler's 128 rows that share 16 prompts of 110 positions, 21 positions past them.
    /// </summary>
    private static void MeasureDecode(int rounds)
    {
        const int channels = 192, heads = 6, maxT = 256;
        Console.WriteLine($"decode attention, 1 thread, thread CPU time; {rounds} alternating rounds of 4 calls, median (best)");
        Console.WriteLine($"{"rows × positions",-40} {"per key ns/(key·head)",22} {"blocked",16} {"ratio",7} {"blocked, bf16",16} {"ratio",7}");
        foreach (var (rows, len, group) in new[] { (8, 131, 0), (64, 131, 0), (128, 131, 8) })
        {
            var perKey = new DecodeRun(new CpuBackend(1) { BlockedDecode = false }, rows, len, group, channels, heads, maxT, DType.F32);
            var blocked = new DecodeRun(new CpuBackend(1), rows, len, group, channels, heads, maxT, DType.F32);
            var halves = new DecodeRun(new CpuBackend(1), rows, len, group, channels, heads, maxT, DType.BF16);
            perKey.Time(); blocked.Time(); halves.Time();
            var a = new List<double>();
            var b = new List<double>();
            var h = new List<double>();
            for (int r = 0; r < rounds; r++) { a.Add(perKey.Time()); b.Add(blocked.Time()); h.Add(halves.Time()); }
            double unit = 1e9 / (4.0 * rows * len * heads);
            double Median(List<double> xs) => xs.OrderBy(x => x).ElementAt(xs.Count / 2);
            string shape = group > 0 ? $"{rows} × {len}, prompts of 110 shared by {group}" : $"{rows} × {len}, own caches";
            Console.WriteLine($"{shape,-40} {Median(a) * unit,14:F1} ({a.Min() * unit:F1}) {Median(b) * unit,8:F1} ({b.Min() * unit:F1}) {Median(a) / Median(b),6:F2}× {Median(h) * unit,8:F1} ({h.Min() * unit:F1}) {Median(a) / Median(h),6:F2}×");
            perKey.Dispose();
            blocked.Dispose();
            halves.Dispose();
        }
    }

    /// <summary>A decoding step's tensors: every row at position len − 1 of its cache, optionally sharing prompts.</summary>
    private sealed class DecodeRun : IDisposable
    {
        private readonly CpuBackend _be;
        private readonly Tensor _qkv, _positions, _out;
        private readonly Tensor[] _keys, _values;
        private readonly Tensor?[] _prefixKeys, _prefixValues;
        private readonly DecodePrefix?[] _prefix;
        private readonly int _rows, _channels, _heads, _maxT;

        public DecodeRun(CpuBackend be, int rows, int len, int group, int channels, int heads, int maxT, DType cacheType)
        {
            (_be, _rows, _channels, _heads, _maxT) = (be, rows, channels, heads, maxT);
            var rng = new Random(2);
            float[] Random(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            Tensor Put(float[] data, string name, DType type = DType.F32) { var t = be.Allocate(type, data.Length, name); be.Upload(t, data); return t; }
            _qkv = Put(Random((long)rows * 3 * channels), "qkv");
            // Four layers' caches, as a model has: one layer's, read four times, stayed in the caches of the chip
            // and showed gains that whole generation rounds, whose every layer comes from memory, did not.
            _keys = new Tensor[Layers];
            _values = new Tensor[Layers];
            _prefixKeys = new Tensor?[Layers];
            _prefixValues = new Tensor?[Layers];
            _prefix = new DecodePrefix?[Layers];
            for (int l = 0; l < Layers; l++)
            {
                _keys[l] = Put(Random((long)rows * maxT * channels), "keys", cacheType);
                _values[l] = Put(Random((long)rows * maxT * channels), "values", cacheType);
                if (group > 0)
                {
                    const int promptLength = 110;
                    int prompts = rows / group;
                    _prefixKeys[l] = Put(Random((long)prompts * promptLength * channels), "prefix keys", cacheType);
                    _prefixValues[l] = Put(Random((long)prompts * promptLength * channels), "prefix values", cacheType);
                    _prefix[l] = new DecodePrefix(_prefixKeys[l]!, _prefixValues[l]!, promptLength,
                        Enumerable.Range(0, rows).Select(r => r / group).ToArray(), Enumerable.Repeat(promptLength, rows).ToArray());
                }
            }
            _out = be.Allocate(DType.F32, (long)rows * channels, "output");
            _positions = be.Allocate(DType.I32, rows, "positions");
            be.Upload(_positions, Enumerable.Repeat(len - 1, rows).ToArray());
        }

        /// <summary>The demo model's layers: a step's four calls, each over its own layer's caches.</summary>
        private const int Layers = 4;

        /// <summary>Seconds of four calls (a step of the demo's four layers), by the thread clock.</summary>
        public double Time()
        {
            double t0 = ThreadCpuClock.Now();
            for (int layer = 0; layer < Layers; layer++)
                if (_prefix[layer] is not { } prefix) _be.AttentionDecode(_out, _qkv, _keys[layer], _values[layer], _positions, _rows, _channels, _heads, _maxT);
                else _be.AttentionDecode(_out, _qkv, _keys[layer], _values[layer], _positions, _rows, _channels, _heads, _maxT, prefix);
            return ThreadCpuClock.Now() - t0;
        }

        public void Dispose()
        {
            foreach (var t in new Tensor?[] { _qkv, _positions, _out }.Concat(_keys).Concat(_values).Concat(_prefixKeys).Concat(_prefixValues)) t?.Dispose();
            _be.Dispose();
        }
    }

    private static void MeasureStep(int rounds)
    {
        var demo = TrainBenchmark.DemoModel();
        const int batch = 16;
        var fused = new List<double>();
        var generic = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            foreach (bool useFused in new[] { true, false })
            {
                using var be = new CpuBackend(1) { FusedAttention = useFused };
                var (tps, _) = TrainBenchmark.MeasureTraining(be, demo, batch, 1, ThreadCpuClock.Now);
                (useFused ? fused : generic).Add(1000.0 * batch * demo.Context / tps);
            }
        }
        double f = fused.OrderBy(x => x).ElementAt(rounds / 2), g = generic.OrderBy(x => x).ElementAt(rounds / 2);
        Console.WriteLine();
        Console.WriteLine($"demo training step, 1 thread, median of {rounds} alternating one-second runs: generic attention {g:F0} ms, fused {f:F0} ms ({g / f:F2}×)");
    }

    /// <summary>One backend's tensors for a forward and backward at one shape.</summary>
    private sealed class AttentionRun : IDisposable
    {
        private readonly CpuBackend _be;
        private readonly Tensor _qkv, _out, _lse, _dout, _dqkv;
        private readonly int _b, _t, _c, _h;

        public AttentionRun(CpuBackend be, int b, int t, int c, int h)
        {
            (_be, _b, _t, _c, _h) = (be, b, t, c, h);
            var rng = new Random(1);
            float[] Random(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            long n = (long)b * t;
            _qkv = be.Allocate(DType.F32, n * 3 * c, "qkv");
            be.Upload(_qkv, Random(n * 3 * c));
            _dout = be.Allocate(DType.F32, n * c, "doutput");
            be.Upload(_dout, Random(n * c));
            _out = be.Allocate(DType.F32, n * c, "output");
            _lse = be.Allocate(DType.F32, (long)b * h * t, "logsumexp");
            _dqkv = be.Allocate(DType.F32, n * 3 * c, "dqkv");
        }

        /// <summary>Seconds of one forward and one backward, by the thread clock.</summary>
        public (double Forward, double Backward) Time()
        {
            double t0 = ThreadCpuClock.Now();
            _be.AttentionForward(_out, _lse, _qkv, _b, _t, _c, _h);
            double t1 = ThreadCpuClock.Now();
            _be.AttentionBackward(_dqkv, _dout, _qkv, _out, _lse, _b, _t, _c, _h);
            double t2 = ThreadCpuClock.Now();
            return (t1 - t0, t2 - t1);
        }

        public void Dispose()
        {
            foreach (var t in new[] { _qkv, _out, _lse, _dout, _dqkv }) t.Dispose();
            _be.Dispose();
        }
    }
}
