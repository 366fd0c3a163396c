using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using static Nemotron.Gym.Kernels.Tests.TestUtil;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>
/// Every backward operation against central finite differences of its forward. The scalar checked is
/// L = Σ R ⊙ forward(x) for a fixed random R, whose gradient the backward gets as doutput = R.
/// </summary>
public class GradientTests
{
    private readonly CpuBackend _be = new(2);

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(1000)]
    public void Gelu(int n)
    {
        var rng = new Random(n);
        var x = Random(rng, n, 3f);
        var r = Random(rng, n);
        double Loss()
        {
            using var tx = Put(_be, x);
            using var ty = _be.Allocate(DType.F32, n, "y");
            _be.GeluForward(ty, tx, n);
            return Dot(Get(_be, ty), r);
        }
        using var tx = Put(_be, x);
        using var tr = Put(_be, r);
        var seed = Random(rng, n);
        using var dx = Put(_be, seed);
        _be.GeluBackward(dx, tr, tx, n);
        var analytic = Get(_be, dx).Select((v, i) => v - seed[i]).ToArray(); // backward adds
        CheckGradient("gelu dx", x, analytic, Loss, h: 1e-3f);
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(5, 33)]
    [InlineData(12, 64)]
    [InlineData(3, 192)] // the demo's width
    public void RmsNorm(int n, int c)
    {
        var rng = new Random(n * c);
        var x = Random(rng, n * c, 2f);
        var w = Random(rng, c);
        var r = Random(rng, n * c);
        double Loss()
        {
            using var tx = Put(_be, x);
            using var tw = Put(_be, w);
            using var ty = _be.Allocate(DType.F32, n * c, "y");
            using var rs = _be.Allocate(DType.F32, n, "rstd");
            _be.RmsNormForward(ty, rs, tx, tw, n, c, 1e-5f);
            return Dot(Get(_be, ty), r);
        }
        using var tx = Put(_be, x);
        using var tw = Put(_be, w);
        using var ty = _be.Allocate(DType.F32, n * c, "y");
        using var rs = _be.Allocate(DType.F32, n, "rstd");
        _be.RmsNormForward(ty, rs, tx, tw, n, c, 1e-5f);
        using var tr = Put(_be, r);
        using var dx = _be.Allocate(DType.F32, n * c, "dx");
        using var dw = _be.Allocate(DType.F32, c, "dw");
        _be.RmsNormBackward(dx, dw, tr, tx, tw, rs, n, c);
        CheckGradient("rmsnorm dx", x, Get(_be, dx), Loss, h: 1e-3f);
        CheckGradient("rmsnorm dw", w, Get(_be, dw), Loss, h: 1e-3f);
    }

    [Theory]
    [InlineData(1, 1, 8, 1)]
    [InlineData(2, 7, 16, 2)]
    [InlineData(3, 19, 24, 3)]
    [InlineData(1, 64, 32, 4)]
    [InlineData(2, 150, 16, 2)]
    [InlineData(1, 70, 64, 2)]
    public void Attention(int b, int t, int c, int h)
    {
        CheckAttentionGradient(_be, b, t, c, h, "attention dqkv");
    }

    [Theory]
    [InlineData(2, 9, 12, 3)]
    [InlineData(1, 131, 8, 2)]
    [InlineData(2, 150, 96, 3)] // heads of 32, as in the demo model: the vector paths of the softmax
    public void AttentionMatchesNaiveSoftmaxAndIsCausal(int b, int t, int c, int h)
    {
        int hs = c / h;
        var rng = new Random(3);
        var qkv = Random(rng, b * t * 3 * c);
        using var tq = Put(_be, qkv);
        using var o = _be.Allocate(DType.F32, b * t * c, "o");
        using var lse = _be.Allocate(DType.F32, b * h * t, "lse");
        _be.AttentionForward(o, lse, tq, b, t, c, h);
        var got = Get(_be, o);
        for (int bb = 0; bb < b; bb++)
            for (int hh = 0; hh < h; hh++)
                for (int i = 0; i < t; i++)
                {
                    var s = new double[i + 1];
                    for (int j = 0; j <= i; j++)
                    {
                        double d = 0;
                        for (int e = 0; e < hs; e++)
                            d += qkv[(bb * t + i) * 3 * c + hh * hs + e] * qkv[(bb * t + j) * 3 * c + c + hh * hs + e];
                        s[j] = d / Math.Sqrt(hs);
                    }
                    double max = s.Max(), z = s.Sum(v => Math.Exp(v - max));
                    for (int e = 0; e < hs; e++)
                    {
                        double want = 0;
                        for (int j = 0; j <= i; j++) want += Math.Exp(s[j] - max) / z * qkv[(bb * t + j) * 3 * c + 2 * c + hh * hs + e];
                        Assert.Equal(want, got[(bb * t + i) * c + hh * hs + e], 1e-4);
                    }
                }
    }

    [Theory]
    [InlineData(1, 5, 5)]
    [InlineData(6, 17, 20)]
    [InlineData(4, 300, 320)]
    public void SoftmaxCrossEntropy(int n, int vocab, int stride)
    {
        var rng = new Random(n + vocab);
        var z = Random(rng, n * stride, 4f);
        var targets = Enumerable.Range(0, n).Select(i => i == 1 ? -1 : rng.Next(vocab)).ToArray();
        var weights = Random(rng, n);
        using var tt = PutInts(_be, targets);
        using var tw = Put(_be, weights);
        double Loss()
        {
            using var tz = Put(_be, z);
            using var lp = _be.Allocate(DType.F32, n, "lp");
            using var lse = _be.Allocate(DType.F32, n, "lse");
            _be.SoftmaxCrossEntropyForward(lp, lse, null, tz, tt, n, vocab, stride);
            return -Dot(Get(_be, lp), weights);
        }
        using var tz = Put(_be, z);
        using var lp = _be.Allocate(DType.F32, n, "lp");
        using var lse = _be.Allocate(DType.F32, n, "lse");
        using var ent = _be.Allocate(DType.F32, n, "entropy");
        _be.SoftmaxCrossEntropyForward(lp, lse, ent, tz, tt, n, vocab, stride);
        using var dz = Put(_be, Random(rng, n * stride)); // garbage that must be overwritten
        _be.SoftmaxCrossEntropyBackward(dz, tz, lse, tt, tw, n, vocab, stride);
        var grad = Get(_be, dz);
        CheckGradient("cross-entropy dlogits", z, grad, Loss, h: 1e-3f, samples: 60);
        for (int i = 0; i < n; i++)
            for (int j = vocab; j < stride; j++) Assert.Equal(0f, grad[i * stride + j]);

        // Entropy against its definition.
        var e = Get(_be, ent);
        for (int i = 0; i < n; i++)
        {
            var row = z.Skip(i * stride).Take(vocab).Select(v => (double)v).ToArray();
            double max = row.Max(), zsum = row.Sum(v => Math.Exp(v - max));
            double h = -row.Sum(v => { double p = Math.Exp(v - max) / zsum; return p * Math.Log(p); });
            Assert.Equal(h, e[i], 1e-3);
        }
    }

    [Fact]
    public void Embedding()
    {
        int n = 11, c = 6, vocab = 5, ctx = 8;
        var rng = new Random(4);
        var wte = Random(rng, vocab * c);
        var wpe = Random(rng, ctx * c);
        var tokens = Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        var positions = Enumerable.Range(0, n).Select(i => i % ctx).ToArray();
        var r = Random(rng, n * c);
        using var tt = PutInts(_be, tokens);
        using var tp = PutInts(_be, positions);
        double Loss()
        {
            using var a = Put(_be, wte);
            using var b = Put(_be, wpe);
            using var o = _be.Allocate(DType.F32, n * c, "o");
            _be.EmbeddingForward(o, tt, tp, a, b, n, c);
            return Dot(Get(_be, o), r);
        }
        using var dwte = _be.Allocate(DType.F32, vocab * c, "dwte");
        using var dwpe = _be.Allocate(DType.F32, ctx * c, "dwpe");
        using var tr = Put(_be, r);
        _be.EmbeddingBackward(dwte, dwpe, tr, tt, tp, n, c);
        CheckGradient("embedding dwte", wte, Get(_be, dwte), Loss, samples: 100);
        CheckGradient("embedding dwpe", wpe, Get(_be, dwpe), Loss, samples: 100);
    }

    [Fact]
    public void EmbeddingRejectsOutOfRangeTokens()
    {
        using var wte = _be.Allocate(DType.F32, 4 * 2, "wte");
        using var wpe = _be.Allocate(DType.F32, 4 * 2, "wpe");
        using var tt = PutInts(_be, [1, 9]);
        using var tp = PutInts(_be, [0, 1]);
        using var o = _be.Allocate(DType.F32, 4, "o");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _be.EmbeddingForward(o, tt, tp, wte, wpe, 2, 2));
        Assert.Contains("token id 9", e.Message);
    }

    [Fact]
    public void LinearLayerGradientsThroughMatMul()
    {
        // y = x · Wᵀ (x: n×k, W: m×k) as the model uses it; dx = dy · W, dW += dyᵀ · x.
        int n = 7, k = 10, m = 6;
        var rng = new Random(8);
        var x = Random(rng, n * k);
        var w = Random(rng, m * k);
        var r = Random(rng, n * m);
        double Loss()
        {
            using var tx = Put(_be, x);
            using var tw = Put(_be, w);
            using var ty = _be.Allocate(DType.F32, n * m, "y");
            _be.MatMul(ty, tx, tw, n, m, k, false, true);
            return Dot(Get(_be, ty), r);
        }
        using var tx = Put(_be, x);
        using var tw = Put(_be, w);
        using var tr = Put(_be, r);
        using var dx = _be.Allocate(DType.F32, n * k, "dx");
        using var dw = _be.Allocate(DType.F32, m * k, "dw");
        _be.MatMul(dx, tr, tw, n, k, m, false, false);
        _be.MatMul(dw, tr, tx, m, k, n, true, false, 1f, 1f);
        CheckGradient("linear dx", x, Get(_be, dx), Loss);
        CheckGradient("linear dw", w, Get(_be, dw), Loss);
    }
}
