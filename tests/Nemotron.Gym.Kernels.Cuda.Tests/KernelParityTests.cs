using static Nemotron.Gym.Kernels.Cuda.Tests.Host;

namespace Nemotron.Gym.Kernels.Cuda.Tests;

/// <summary>
/// Every operation of the CUDA backend against its CPU twin, forward and backward, at several shapes including odd
/// sizes and unaligned views. Tolerances: fp32 kernels within 1e-5 relative (different summation orders); matrix
/// products, which round their operands to bf16, exactly as a CPU product of the rounded operands (to fp32
/// accumulation order) and within 1e-2·sqrt(k)·max|a|·max|b| of the unrounded one; tensor-core attention within
/// 1.5e-2 (forward) and 3e-2 (backward) of the largest reference value.
/// </summary>
[Collection("gpu")]
[Trait("Category", "Gpu")]
public sealed class KernelParityTests(GpuFixture fx)
{
    private readonly IComputeBackend _cpu = fx.Cpu;

    [Fact]
    public void Reports_the_device()
    {
        var gpu = fx.Require();
        TestContext.Current.TestOutputHelper?.WriteLine(gpu.Description);
        Assert.False(string.IsNullOrWhiteSpace(gpu.Description));
    }

    // ---- memory ----------------------------------------------------------------------------------

    [Fact]
    public void Upload_download_copy_and_fill_move_the_right_elements()
    {
        var gpu = fx.Require();
        using var t = gpu.Allocate(DType.F32, 1001, "t");
        Assert.All(Get(t), v => Assert.Equal(0f, v));  // allocations are zeroed
        var data = Randn(1001, 1);
        gpu.Upload(t, data.AsSpan(3, 500), offset: 7);
        var back = new float[500];
        gpu.Download(t, back, offset: 7);
        Assert.Equal(data.AsSpan(3, 500).ToArray(), back);

        using var u = gpu.Allocate(DType.F32, 1001, "u");
        gpu.Fill(u, 2.5f);
        gpu.Copy(u, 1, t, 7, 499);
        var all = Get(u);
        Assert.Equal(2.5f, all[0]);
        Assert.Equal(data.AsSpan(3, 499).ToArray(), all.AsSpan(1, 499).ToArray());
        Assert.Equal(2.5f, all[500]);

        var view = u.Slice(3, 11);
        gpu.Fill(view, -1f);
        all = Get(u);
        Assert.Equal(data[4], all[2]);
        Assert.Equal(-1f, all[3]);
        Assert.Equal(-1f, all[13]);
        Assert.Equal(data[16], all[14]);

        using var ints = Put(gpu, new[] { 1, -2, 3, int.MaxValue }, "ints");
        Assert.Equal(new[] { 1, -2, 3, int.MaxValue }, GetInts(ints));
    }

    // ---- elementwise -----------------------------------------------------------------------------

    public static TheoryData<int, int> ElementwiseSizes() => new() { { 1, 0 }, { 3, 0 }, { 1000, 0 }, { 4099, 1 }, { 1_048_579, 0 }, { 65_537, 3 } };

    [Theory]
    [MemberData(nameof(ElementwiseSizes))]
    public void Elementwise_ops_match_the_cpu(int n, int offset)
    {
        var gpu = fx.Require();
        // offset > 0 runs on views that are not 16-byte aligned (the kernels' scalar path).
        var a = Randn(n + offset, 2, 3f);
        var b = Randn(n + offset, 3);
        var d = Randn(n + offset, 4, 0.1f);
        float[] Run(IComputeBackend be, Func<IComputeBackend, Tensor, Tensor, Tensor, Tensor, float[]> op)
        {
            using var ta = Put(be, a, "a");
            using var tb = Put(be, b, "b");
            using var td = Put(be, d, "d");
            using var to = be.Allocate(DType.F32, n + offset, "o");
            return op(be, ta.Slice(offset, n), tb.Slice(offset, n), td.Slice(offset, n), to.Slice(offset, n));
        }
        void Check(string what, Func<IComputeBackend, Tensor, Tensor, Tensor, Tensor, float[]> op, double atol, double rtol) =>
            Close(Run(_cpu, op), Run(gpu, op), atol, rtol, what);

        Check("add", (be, x, y, _, o) => { be.Add(o, x, y, n); return Get(o); }, 1e-6, 1e-6);
        Check("add in place", (be, x, y, _, _) => { be.Add(x, x, y, n); return Get(x); }, 1e-6, 1e-6);
        Check("scale", (be, x, _, _, _) => { be.Scale(x, -0.37f, n); return Get(x); }, 1e-6, 1e-6);
        Check("gelu", (be, x, _, _, o) => { be.GeluForward(o, x, n); return Get(o); }, 1e-5, 1e-5);
        Check("gelu backward accumulates", (be, x, y, acc, _) => { be.GeluBackward(acc, y, x, n); return Get(acc); }, 1e-5, 1e-5);

        using var ca = Put(_cpu, a, "a");
        using var ga = Put(gpu, a, "a");
        double expected = _cpu.SumOfSquares(ca.Slice(offset, n), n), actual = gpu.SumOfSquares(ga.Slice(offset, n), n);
        Assert.True(Math.Abs(expected - actual) <= 1e-6 * expected, $"sum of squares: {actual} vs {expected}");
    }

    // ---- matrix products -------------------------------------------------------------------------

    public static TheoryData<int, int, int, bool, bool> MatMulShapes()
    {
        var data = new TheoryData<int, int, int, bool, bool>();
        foreach (var (m, n, k) in new[] { (1, 1, 1), (7, 13, 5), (33, 17, 65), (128, 256, 64), (300, 771, 129) })
            foreach (var ta in new[] { false, true })
                foreach (var tb in new[] { false, true })
                    data.Add(m, n, k, ta, tb);
        return data;
    }

    [Theory]
    [MemberData(nameof(MatMulShapes))]
    public void MatMul_matches_the_cpu_on_bf16_operands(int m, int n, int k, bool transposeA, bool transposeB)
    {
        var gpu = fx.Require();
        var a = Randn((long)m * k, 10 + m);
        var b = Randn((long)k * n, 20 + n);
        var c0 = Randn((long)m * n, 30);
        float[] Run(IComputeBackend be, float[] av, float[] bv)
        {
            using var ta = Put(be, av, "A");
            using var tb = Put(be, bv, "B");
            using var tc = Put(be, c0, "C");
            be.MatMul(tc, ta, tb, m, n, k, transposeA, transposeB, alpha: 0.5f, beta: 1f);
            return Get(tc);
        }
        // The CPU stand-in multiplies in fp32: hand it the rounded operands the GPU would make.
        var actual = fx.IsStandIn ? Run(gpu, Bf16(a), Bf16(b)) : Run(gpu, a, b);
        float maxA = a.Max(Math.Abs), maxB = b.Max(Math.Abs);
        // Same operands as the GPU multiplies: only the fp32 accumulation order differs.
        Close(Run(_cpu, Bf16(a), Bf16(b)), actual, 2e-6 * k * maxA * maxB + 1e-5, 1e-5, "matmul vs cpu on bf16 operands");
        // Against the fp32 product: the bf16 tolerance.
        Close(Run(_cpu, a, b), actual, 1e-2 * Math.Sqrt(k) * maxA * maxB, 0, "matmul vs cpu in fp32");
    }

    [Fact]
    public void Batched_MatMul_with_a_broadcast_operand_and_k_zero_match_the_cpu()
    {
        var gpu = fx.Require();
        const int m = 9, n = 11, k = 6, batch = 3;
        var a = Bf16(Randn(m * k, 1));                  // one A for every batch entry (stride 0)
        var b = Bf16(Randn(batch * (k * n + 5), 2));    // padded stride
        var c = Randn(batch * m * n, 3);
        float[] Run(IComputeBackend be, int kk, float beta)
        {
            using var ta = Put(be, a, "A");
            using var tb = Put(be, b, "B");
            using var tc = Put(be, c, "C");
            be.MatMul(tc, ta, tb, m, n, kk, false, false, 1f, beta, batch, 0, k * n + 5, m * n);
            return Get(tc);
        }
        Close(Run(_cpu, k, 0f), Run(gpu, k, 0f), 1e-5, 1e-5, "batched matmul");
        Close(Run(_cpu, 0, 0.5f), Run(gpu, 0, 0.5f), 0, 0, "k = 0 scales C by beta");
    }

    [Fact]
    public void A_weight_written_after_a_product_is_converted_again()
    {
        var gpu = fx.Require();
        var a = Bf16(Randn(4 * 8, 1));
        var w1 = Bf16(Randn(8 * 5, 2));
        var w2 = Bf16(Randn(8 * 5, 3));
        using var ta = Put(gpu, a, "A");
        using var tw = Put(gpu, w1, "W");
        using var tc = gpu.Allocate(DType.F32, 20, "C");
        gpu.MatMul(tc, ta, tw, 4, 5, 8, false, false);
        gpu.Upload(tw, w2);  // the cached bf16 copy of W is now stale
        gpu.MatMul(tc, ta, tw, 4, 5, 8, false, false);
        using var ca = Put(_cpu, a, "A");
        using var cw = Put(_cpu, w2, "W");
        using var cc = _cpu.Allocate(DType.F32, 20, "C");
        _cpu.MatMul(cc, ca, cw, 4, 5, 8, false, false);
        Close(Get(cc), Get(tc), 1e-5, 1e-5, "product after the weight changed");
    }

    // ---- embedding and normalization -------------------------------------------------------------

    [Theory]
    [InlineData(13, 37, 50, 20)]
    [InlineData(1, 1, 1, 1)]
    [InlineData(300, 768, 1000, 512)]
    public void Embedding_matches_the_cpu(int n, int channels, int vocab, int context)
    {
        var gpu = fx.Require();
        var wte = Randn((long)vocab * channels, 1);
        var wpe = Randn((long)context * channels, 2);
        var tokens = Ints(n, 3, Math.Min(vocab, 5));  // few distinct ids: rows collide in the backward scatter
        var positions = Ints(n, 4, context);
        var dout = Randn((long)n * channels, 5);
        (float[] Out, float[] DTok, float[] DPos) Run(IComputeBackend be)
        {
            using var tt = Put(be, wte, "wte");
            using var tp = Put(be, wpe, "wpe");
            using var tk = Put(be, tokens, "tokens");
            using var ps = Put(be, positions, "positions");
            using var o = be.Allocate(DType.F32, (long)n * channels, "out");
            using var g = Put(be, dout, "dout");
            using var dt = Put(be, Randn((long)vocab * channels, 6), "dwte");
            using var dp = Put(be, Randn((long)context * channels, 7), "dwpe");
            be.EmbeddingForward(o, tk, ps, tt, tp, n, channels);
            be.EmbeddingBackward(dt, dp, g, tk, ps, n, channels);
            return (Get(o), Get(dt), Get(dp));
        }
        var (co, ct, cp) = Run(_cpu);
        var (go, gt, gp) = Run(gpu);
        Close(co, go, 0, 0, "embedding forward");
        Close(ct, gt, 1e-5, 1e-5, "token table gradient");
        Close(cp, gp, 1e-5, 1e-5, "position table gradient");
    }

    [Fact]
    public void An_out_of_range_token_is_reported_at_the_next_synchronization()
    {
        var gpu = fx.Require();
        if (fx.IsStandIn) Assert.Skip("the CPU reports it at the call");
        using var tt = Put(gpu, Randn(40, 1), "wte");
        using var tp = Put(gpu, Randn(40, 2), "wpe");
        using var tk = Put(gpu, new[] { 1, 10 }, "tokens");
        using var ps = Put(gpu, new[] { 0, 1 }, "positions");
        using var o = gpu.Allocate(DType.F32, 8, "out");
        gpu.EmbeddingForward(o, tk, ps, tt, tp, 2, 4);
        var e = Assert.Throws<ArgumentOutOfRangeException>(gpu.Synchronize);
        Assert.Contains("token id 10 at row 1", e.Message);
        gpu.Synchronize();  // reported once
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(5, 64)]
    [InlineData(33, 1000)]
    [InlineData(300, 768)]
    public void RmsNorm_matches_the_cpu(int n, int channels)
    {
        var gpu = fx.Require();
        var x = Randn((long)n * channels, 1, 2f);
        var w = Randn(channels, 2);
        var dy = Randn((long)n * channels, 3);
        (float[] Y, float[] R, float[] Dx, float[] Dw) Run(IComputeBackend be)
        {
            using var tx = Put(be, x, "x");
            using var tw = Put(be, w, "w");
            using var ty = be.Allocate(DType.F32, (long)n * channels, "y");
            using var tr = be.Allocate(DType.F32, n, "rstd");
            using var tdy = Put(be, dy, "dy");
            using var tdx = Put(be, Randn((long)n * channels, 4), "dx");  // backward accumulates
            using var tdw = Put(be, Randn(channels, 5), "dw");
            be.RmsNormForward(ty, tr, tx, tw, n, channels, 1e-5f);
            be.RmsNormBackward(tdx, tdw, tdy, tx, tw, tr, n, channels);
            return (Get(ty), Get(tr), Get(tdx), Get(tdw));
        }
        var c = Run(_cpu);
        var g = Run(gpu);
        Close(c.Y, g.Y, 1e-5, 1e-5, "rmsnorm output");
        Close(c.R, g.R, 1e-6, 1e-5, "rmsnorm rstd");
        Close(c.Dx, g.Dx, 1e-5, 1e-4, "rmsnorm dinput");
        Close(c.Dw, g.Dw, 1e-4, 1e-4, "rmsnorm dweight");
    }

    // ---- attention -------------------------------------------------------------------------------

    public static TheoryData<int, int, int, int, int> AttentionShapes() => new()
    {
        // batch, seqLen, channels, heads, qkv offset (an unaligned view forces the fp32 SIMT kernels)
        { 1, 1, 16, 1, 0 },
        { 2, 7, 64, 4, 0 },      // hs 16
        { 1, 200, 64, 2, 0 },    // hs 32, partial last tile
        { 1, 65, 128, 2, 0 },    // hs 64, one row past a tile
        { 2, 130, 256, 2, 0 },   // hs 128
        { 2, 17, 768, 12, 0 },   // GPT-2 heads
        { 1, 33, 96, 2, 0 },     // hs 48: SIMT
        { 2, 70, 128, 2, 1 },    // hs 64, unaligned: SIMT
    };

    [Theory]
    [MemberData(nameof(AttentionShapes))]
    public void Attention_forward_and_backward_match_the_cpu(int batch, int seqLen, int channels, int heads, int offset)
    {
        var gpu = fx.Require();
        int hs = channels / heads;
        bool tensorCores = offset == 0 && hs is 16 or 32 or 64 or 128 && !fx.IsStandIn;
        long n = (long)batch * seqLen;
        var qkv = Randn(n * 3 * channels + offset, 1);
        var dout = Randn(n * channels, 2);
        var dqkv0 = Randn(n * 3 * channels, 3, 0.1f);
        (float[] O, float[] L, float[] D) Run(IComputeBackend be)
        {
            using var tq = Put(be, qkv, "qkv");
            using var to = be.Allocate(DType.F32, n * channels, "out");
            using var tl = be.Allocate(DType.F32, (long)batch * heads * seqLen, "lse");
            using var tdo = Put(be, dout, "dout");
            using var tdq = Put(be, dqkv0, "dqkv");
            var q = tq.Slice(offset, n * 3 * channels);
            be.AttentionForward(to, tl, q, batch, seqLen, channels, heads);
            be.AttentionBackward(tdq, tdo, q, to, tl, batch, seqLen, channels, heads);
            return (Get(to), Get(tl), Get(tdq));
        }
        var c = Run(_cpu);
        var g = Run(gpu);
        if (tensorCores)
        {
            CloseToScale(c.O, g.O, 1.5e-2, "attention output (bf16 tensor cores)");
            Close(c.L, g.L, 3e-2, 1e-2, "attention logsumexp (bf16 tensor cores)");
            CloseToScale(c.D, g.D, 3e-2, "attention dqkv (bf16 tensor cores)");
        }
        else
        {
            Close(c.O, g.O, 1e-5, 1e-4, "attention output");
            Close(c.L, g.L, 1e-5, 1e-5, "attention logsumexp");
            Close(c.D, g.D, 1e-4, 1e-3, "attention dqkv");
        }
    }

    public static TheoryData<int, int, int, int> DecodeShapes() => new()
    {
        { 1, 64, 4, 50 },     // batch 1: the keys are split across blocks
        { 3, 256, 2, 50 },    // hs 128
        { 64, 64, 4, 33 },
        { 2, 96, 2, 700 },    // hs 48, long cache
    };

    [Theory]
    [MemberData(nameof(DecodeShapes))]
    public void Kv_cache_and_decode_match_the_cpu(int batch, int channels, int heads, int maxSeqLen)
    {
        var gpu = fx.Require();
        int prefill = Math.Min(5, maxSeqLen - 1);
        var prompt = Randn((long)batch * prefill * 3 * channels, 1);
        var kc0 = Randn((long)batch * maxSeqLen * channels, 2);
        var vc0 = Randn((long)batch * maxSeqLen * channels, 3);
        var step = Randn((long)batch * 3 * channels, 4);
        var positions = Ints(batch, 5, maxSeqLen);
        positions[0] = maxSeqLen - 1;
        if (batch > 1) positions[1] = 0;
        (float[] K, float[] V, float[] O) Run(IComputeBackend be)
        {
            using var kc = Put(be, kc0, "k");
            using var vc = Put(be, vc0, "v");
            using var tp = Put(be, prompt, "prompt qkv");
            using var ts = Put(be, step, "step qkv");
            using var pos = Put(be, positions, "positions");
            using var o = be.Allocate(DType.F32, (long)batch * channels, "out");
            be.KvCacheWrite(kc, vc, tp, batch, prefill, channels, maxSeqLen);
            be.AttentionDecode(o, ts, kc, vc, pos, batch, channels, heads, maxSeqLen);
            return (Get(kc), Get(vc), Get(o));
        }
        var c = Run(_cpu);
        var g = Run(gpu);
        Close(c.K, g.K, 0, 0, "key cache");
        Close(c.V, g.V, 0, 0, "value cache");
        Close(c.O, g.O, 1e-5, 1e-4, "decode output");
    }

    // ---- loss and sampling -----------------------------------------------------------------------

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 100, 128)]
    [InlineData(3, 5000, 5003)]
    [InlineData(64, 50257, 50304)]
    public void Softmax_cross_entropy_matches_the_cpu(int n, int vocab, int stride)
    {
        var gpu = fx.Require();
        var logits = Randn((long)n * stride, 1, 4f);
        var targets = Ints(n, 2, vocab);
        targets[0] = -1;  // no target: logprob 0, no gradient
        var weights = Randn(n, 3);
        if (n > 2) weights[2] = 0f;
        (float[] Lp, float[] Lse, float[] H, float[] D) Run(IComputeBackend be)
        {
            using var z = Put(be, logits, "logits");
            using var t = Put(be, targets, "targets");
            using var w = Put(be, weights, "weights");
            using var lp = be.Allocate(DType.F32, n, "lp");
            using var lse = be.Allocate(DType.F32, n, "lse");
            using var h = be.Allocate(DType.F32, n, "entropy");
            using var d = Put(be, Randn((long)n * stride, 4), "dlogits");  // overwritten, padding included
            be.SoftmaxCrossEntropyForward(lp, lse, h, z, t, n, vocab, stride);
            be.SoftmaxCrossEntropyBackward(d, z, lse, t, w, n, vocab, stride);
            return (Get(lp), Get(lse), Get(h), Get(d));
        }
        var c = Run(_cpu);
        var g = Run(gpu);
        Close(c.Lse, g.Lse, 1e-5, 1e-6, "logsumexp");
        Close(c.Lp, g.Lp, 1e-5, 1e-5, "logprobs");
        Close(c.H, g.H, 1e-4, 1e-4, "entropy");
        Close(c.D, g.D, 1e-6, 1e-4, "dlogits");
    }

    public static TheoryData<float, int, float> SamplingCases() => new()
    {
        { 0f, 0, 1f },       // greedy
        { 1f, 0, 1f },
        { 0.7f, 40, 1f },
        { 1f, 0, 0.9f },
        { 1.3f, 50, 0.8f },
    };

    [Theory]
    [MemberData(nameof(SamplingCases))]
    public void Sampling_picks_the_cpu_tokens(float temperature, int topK, float topP)
    {
        var gpu = fx.Require();
        const int rows = 64, vocab = 1000, stride = 1024;
        var logits = Randn(rows * stride, 1, 3f);
        for (int j = 0; j < 10; j++) logits[5 * stride + 100 + j] = 50f;  // a tie: the lowest index wins
        var rng = new Random(7);
        var uniforms = Enumerable.Range(0, rows).Select(_ => (float)rng.NextDouble()).ToArray();
        var sampling = new SamplingParams(temperature, topK, topP);
        (int[] Tok, float[] Lp) Run(IComputeBackend be)
        {
            using var z = Put(be, logits, "logits");
            using var tok = be.Allocate(DType.I32, rows, "tokens");
            using var lp = be.Allocate(DType.F32, rows, "lp");
            be.SampleTokens(tok, lp, z, rows, vocab, stride, sampling, uniforms);
            return (GetInts(tok), Get(lp));
        }
        var c = Run(_cpu);
        var g = Run(gpu);
        if (temperature == 0f)
        {
            Assert.Equal(c.Tok, g.Tok);
            Assert.Equal(100, g.Tok[5]);
        }
        else
        {
            // Sums run in double on the GPU and in float on the CPU: a draw within rounding of a boundary may differ.
            int same = c.Tok.Zip(g.Tok).Count(p => p.First == p.Second);
            Assert.True(same >= rows - 1, $"{rows - same} of {rows} rows picked a different token");
        }
        var matched = Enumerable.Range(0, rows).Where(i => c.Tok[i] == g.Tok[i]).ToArray();
        Close(matched.Select(i => c.Lp[i]).ToArray(), matched.Select(i => g.Lp[i]).ToArray(), 1e-4, 1e-5, "sampled logprobs");
    }

    // ---- optimizer -------------------------------------------------------------------------------

    [Theory]
    [InlineData(1)]
    [InlineData(1_000_003)]
    public void AdamW_matches_the_cpu(int n)
    {
        var gpu = fx.Require();
        var p0 = Randn(n, 1);
        float[] Run(IComputeBackend be)
        {
            using var p = Put(be, p0, "p");
            using var g = be.Allocate(DType.F32, n, "g");
            using var m = be.Allocate(DType.F32, n, "m");
            using var v = be.Allocate(DType.F32, n, "v");
            for (int step = 1; step <= 5; step++)
            {
                be.Upload(g, Randn(n, 10 + step));
                be.AdamW(p, g, m, v, n, new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step));
            }
            return Get(p);
        }
        Close(Run(_cpu), Run(gpu), 1e-6, 1e-5, "adamw parameters after 5 steps");
    }
}
