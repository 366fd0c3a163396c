using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using static Nemotron.Gym.Kernels.Tests.TestUtil;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>
/// Attention over shared prefixes (the training layout of the G rollouts of a prompt) against a plain attention in
/// double precision that lists every query's keys: a prefix position sees its prefix up to itself, a row position its
/// prefix's real tokens and its own positions up to itself. Output, logsumexp and the whole gradient (added onto what
/// dqkv held), on both CPU attention paths (the small-head register tiles and the GEMM one), prefixes of different and of zero length, rows longer than a
/// query block; and finite differences.
/// </summary>
public class PrefixAttentionTests
{
    /// <summary>Every (position → keys) of a layout, in order: the prefix block, then the rows.</summary>
    private static List<int>[] KeysOf(SharedPrefixLayout layout)
    {
        var keys = new List<int>[layout.Tokens];
        for (int p = 0; p < layout.Prefixes; p++)
            for (int t = 0; t < layout.PrefixLen; t++)
                keys[p * layout.PrefixLen + t] = Enumerable.Range(p * layout.PrefixLen, t + 1).ToList();
        for (int r = 0; r < layout.Rows; r++)
        {
            int p = layout.PrefixOfRow[r];
            long start = layout.PrefixTokens + (long)r * layout.RowLen;
            for (int t = 0; t < layout.RowLen; t++)
                keys[start + t] = Enumerable.Range(p * layout.PrefixLen, layout.PrefixLengths[p]).Concat(Enumerable.Range((int)start, t + 1)).ToList();
        }
        return keys;
    }

    private static (double[] Out, double[] Lse, double[] Grad) Reference(SharedPrefixLayout layout, float[] qkv, float[] dout, int c, int h)
    {
        int hs = c / h, c3 = 3 * c;
        double scale = 1 / Math.Sqrt(hs);
        var keysOf = KeysOf(layout);
        long n = layout.Tokens, np = layout.PrefixTokens;
        var o = new double[n * c];
        var lse = new double[n * h];
        var g = new double[n * c3];
        for (int i = 0; i < n; i++)
            for (int hh = 0; hh < h; hh++)
            {
                var keys = keysOf[i];
                double Q(int e) => qkv[(long)i * c3 + hh * hs + e];
                double K(int j, int e) => qkv[(long)j * c3 + c + hh * hs + e];
                double V(int j, int e) => qkv[(long)j * c3 + 2 * c + hh * hs + e];
                double DO(int e) => dout[(long)i * c + hh * hs + e];
                var p = new double[keys.Count];
                for (int j = 0; j < keys.Count; j++)
                {
                    double s = 0;
                    for (int e = 0; e < hs; e++) s += Q(e) * K(keys[j], e);
                    p[j] = s * scale;
                }
                double max = p.Max(), z = p.Sum(v => Math.Exp(v - max));
                for (int j = 0; j < p.Length; j++) p[j] = Math.Exp(p[j] - max) / z;
                // logsumexp: [prefix, head, t] for the prefix block, [row, head, t] for the rows.
                long lseAt = i < np
                    ? ((long)(i / layout.PrefixLen) * h + hh) * layout.PrefixLen + i % layout.PrefixLen
                    : np * h + ((long)((i - np) / layout.RowLen) * h + hh) * layout.RowLen + (i - np) % layout.RowLen;
                lse[lseAt] = max + Math.Log(z);
                for (int e = 0; e < hs; e++)
                    o[(long)i * c + hh * hs + e] = Enumerable.Range(0, keys.Count).Sum(j => p[j] * V(keys[j], e));
                var dp = new double[keys.Count];
                double rowDot = 0;
                for (int j = 0; j < keys.Count; j++)
                {
                    for (int e = 0; e < hs; e++) dp[j] += DO(e) * V(keys[j], e);
                    rowDot += p[j] * dp[j];
                }
                for (int j = 0; j < keys.Count; j++)
                {
                    double ds = p[j] * (dp[j] - rowDot) * scale;
                    for (int e = 0; e < hs; e++)
                    {
                        g[(long)i * c3 + hh * hs + e] += ds * K(keys[j], e);
                        g[(long)keys[j] * c3 + c + hh * hs + e] += ds * Q(e);
                        g[(long)keys[j] * c3 + 2 * c + hh * hs + e] += p[j] * DO(e);
                    }
                }
            }
        return (o, lse, g);
    }

    private static (float[] Out, float[] Lse, float[]? Grad) Run(IComputeBackend be, SharedPrefixLayout layout, float[] qkv, float[]? dout, int c, int h, float[]? dqkvStart = null)
    {
        long n = layout.Tokens;
        using var tq = Put(be, qkv);
        using var o = be.Allocate(DType.F32, n * c, "o");
        using var lse = be.Allocate(DType.F32, n * h, "lse");
        be.PrefixAttentionForward(o, lse, tq, layout, c, h);
        if (dout == null) return (Get(be, o), Get(be, lse), null);
        using var td = Put(be, dout);
        using var dq = dqkvStart == null ? be.Allocate(DType.F32, n * 3 * c, "dqkv") : Put(be, dqkvStart);
        be.PrefixAttentionBackward(dq, td, tq, o, lse, layout, c, h);
        return (Get(be, o), Get(be, lse), Get(be, dq));
    }

    private static void AssertClose(double[] want, float[] got, double tolerance, string what)
    {
        double scale = Math.Max(1, want.Max(Math.Abs));
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= tolerance * scale, $"{what}[{i}]: {got[i]} vs reference {want[i]} (scale {scale:G3})");
    }

    public static TheoryData<int, bool> Cases()
    {
        var data = new TheoryData<int, bool>();
        foreach (bool fused in new[] { true, false })
            for (int shape = 0; shape < 3; shape++) data.Add(shape, fused);
        return data;
    }

    private static (SharedPrefixLayout Layout, int C, int H) Shape(int shape) => shape switch
    {
        // Two prompts of different lengths, five rows: hs = 8.
        0 => (new SharedPrefixLayout(2, 7, 5, 9, [0, 1, 0, 1, 1], [5, 7]), 16, 2),
        // The demo's heads (hs = 32), rows and prefixes longer than a 64-row query block, a prompt of length 0.
        1 => (new SharedPrefixLayout(3, 90, 7, 70, [0, 0, 0, 1, 1, 2, 0], [90, 77, 0]), 192, 6),
        // One prefix, one row, one position each: hs = 24.
        _ => (new SharedPrefixLayout(1, 1, 1, 1, [0], [1]), 72, 3),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForwardAndBackwardMatchTheReference(int shape, bool fused)
    {
        var (layout, c, h) = Shape(shape);
        using var be = new CpuBackend(2) { FusedAttention = fused };
        Assert.True(((IComputeBackend)be).SupportsSharedPrefixes);
        var rng = new Random(100 + shape);
        long n = layout.Tokens;
        var qkv = Random(rng, (int)n * 3 * c, 1.5f);
        var dout = Random(rng, (int)n * c);
        var start = Random(rng, (int)n * 3 * c);
        var (wantOut, wantLse, wantGrad) = Reference(layout, qkv, dout, c, h);
        var (output, lse, got) = Run(be, layout, qkv, dout, c, h, start);
        AssertClose(wantOut, output, 1e-5, "output");
        AssertClose(wantLse, lse, 1e-5, "logsumexp");
        for (int i = 0; i < got!.Length; i++) got[i] -= start[i];
        AssertClose(wantGrad, got, 3e-5, "dqkv");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void GradientMatchesFiniteDifferences(bool fused)
    {
        var layout = new SharedPrefixLayout(2, 6, 4, 5, [1, 0, 1, 1], [4, 6]);
        int c = 24, h = 3;
        using var be = new CpuBackend(2) { FusedAttention = fused };
        var rng = new Random(7);
        var qkv = Random(rng, (int)layout.Tokens * 3 * c, 1.5f);
        var r = Random(rng, (int)layout.Tokens * c);
        double Loss() => Dot(Run(be, layout, qkv, null, c, h).Out, r);
        var (_, _, dqkv) = Run(be, layout, qkv, r, c, h);
        CheckGradient("prefix attention dqkv", qkv, dqkv!, Loss, h: 1e-3f, samples: 120);
    }

    [Fact]
    public void ALayoutThatDoesNotAddUpIsRefusedByName()
    {
        Assert.Contains("row 1 continues prefix 2", Assert.Throws<ArgumentException>(() => new SharedPrefixLayout(2, 4, 2, 3, [0, 2], [4, 4]).Validate()).Message);
        Assert.Contains("prefix 0 has 5 tokens", Assert.Throws<ArgumentException>(() => new SharedPrefixLayout(1, 4, 1, 3, [0], [5]).Validate()).Message);
        Assert.Contains("1 prefix indices for 2 rows", Assert.Throws<ArgumentException>(() => new SharedPrefixLayout(1, 4, 2, 3, [0], [4]).Validate()).Message);
    }
}
