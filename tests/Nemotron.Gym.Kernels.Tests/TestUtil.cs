using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>Random tensors, host round-trips and finite differences for backend tests.</summary>
internal static class TestUtil
{
    public static float[] Random(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static Tensor Put(IComputeBackend be, float[] data, string name = "t")
    {
        var t = be.Allocate(DType.F32, data.Length, name);
        be.Upload(t, data);
        return t;
    }

    public static Tensor PutInts(IComputeBackend be, int[] data, string name = "i")
    {
        var t = be.Allocate(DType.I32, data.Length, name);
        be.Upload(t, data);
        return t;
    }

    public static float[] Get(IComputeBackend be, Tensor t, long n = -1)
    {
        var a = new float[n < 0 ? t.Length : n];
        be.Download(t, a);
        return a;
    }

    public static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    /// <summary>
    /// Central differences of a scalar function of <paramref name="x"/> at a sample of indices,
    /// compared with <paramref name="analytic"/>. The error is measured relative to the gradient's scale
    /// so that near-zero entries do not dominate.
    /// </summary>
    public static void CheckGradient(string what, float[] x, float[] analytic, Func<double> loss, float h = 1e-2f, double tolerance = 2e-2, int samples = 40, int seed = 1)
    {
        var rng = new Random(seed);
        double scale = 1e-3;
        foreach (var g in analytic) scale = Math.Max(scale, Math.Abs(g));
        int count = Math.Min(samples, x.Length);
        var indices = count == x.Length ? Enumerable.Range(0, x.Length) : Enumerable.Range(0, count).Select(_ => rng.Next(x.Length));
        foreach (int i in indices)
        {
            float orig = x[i];
            x[i] = orig + h;
            double up = loss();
            x[i] = orig - h;
            double down = loss();
            x[i] = orig;
            double numeric = (up - down) / (2 * h);
            double err = Math.Abs(numeric - analytic[i]) / scale;
            Assert.True(err < tolerance, $"{what}[{i}]: analytic {analytic[i]:G6} vs numeric {numeric:G6} (relative error {err:G3}, scale {scale:G3})");
        }
    }

    /// <summary>
    /// Finite differences of Σ r·attention(qkv) against the backward's dqkv, for random qkv and r (seeded by the shape),
    /// on whichever attention path <paramref name="be"/> takes.
    /// </summary>
    public static void CheckAttentionGradient(IComputeBackend be, int b, int t, int c, int h, string what)
    {
        var rng = new Random(b * 100 + t);
        int n = b * t;
        var qkv = Random(rng, n * 3 * c, 1.5f);
        var r = Random(rng, n * c);
        double Loss() => Dot(RunAttention(be, qkv, null, b, t, c, h).Output, r);
        var (_, _, dqkv) = RunAttention(be, qkv, r, b, t, c, h);
        CheckGradient(what, qkv, dqkv!, Loss, h: 1e-3f, samples: 80);
    }

    /// <summary>
    /// One attention forward of <paramref name="qkv"/> on <paramref name="be"/> (output and logsumexp), then, when
    /// <paramref name="dout"/> is given, its backward, which adds onto <paramref name="dqkvStart"/> (zeros if null).
    /// </summary>
    public static (float[] Output, float[] Lse, float[]? Dqkv) RunAttention(IComputeBackend be, float[] qkv, float[]? dout, int b, int t, int c, int h, float[]? dqkvStart = null)
    {
        int n = b * t;
        using var tq = Put(be, qkv);
        using var o = be.Allocate(DType.F32, n * c, "o");
        using var lse = be.Allocate(DType.F32, b * h * t, "lse");
        be.AttentionForward(o, lse, tq, b, t, c, h);
        if (dout == null) return (Get(be, o), Get(be, lse), null);
        using var td = Put(be, dout);
        using var dq = dqkvStart == null ? be.Allocate(DType.F32, n * 3 * c, "dqkv") : Put(be, dqkvStart);
        be.AttentionBackward(dq, td, tq, o, lse, b, t, c, h);
        return (Get(be, o), Get(be, lse), Get(be, dq));
    }
}
