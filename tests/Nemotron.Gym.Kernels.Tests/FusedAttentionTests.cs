using System.Runtime.Intrinsics;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using static Nemotron.Gym.Kernels.Tests.TestUtil;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>
/// Training attention, both CPU paths (the fused small-head kernel and the generic GEMM path, selected with
/// <c>FusedAttention</c>), against a plain causal attention in double precision: output, logsumexp and every
/// part of the gradient (dQ, dK, dV, added onto what dqkv held). Shapes cover the demo's heads (hs = 32),
/// sizes that are not multiples of a vector or tile (hs = 24, 40), the widest fused head (64), sequences that
/// end inside a query block, and several sequences.
/// </summary>
public class FusedAttentionTests
{
    public static TheoryData<int, int, int, int, bool> Shapes()
    {
        var data = new TheoryData<int, int, int, int, bool>();
        foreach (bool fused in new[] { true, false })
        {
            data.Add(2, 150, 192, 6, fused); // hs = 32, as in the demo model
            data.Add(3, 37, 72, 3, fused);   // hs = 24, 37 rows: a ragged last block and key tile
            data.Add(2, 70, 80, 2, fused);   // hs = 40: padded to two column tiles
            data.Add(1, 65, 128, 2, fused);  // hs = 64, the widest fused head
            data.Add(2, 1, 16, 1, fused);    // one token
            data.Add(1, 33, 96, 12, fused);  // hs = 8
        }
        return data;
    }

    /// <summary>Plain causal attention and its gradient, in double, from the same fp32 inputs.</summary>
    private static (double[] Out, double[] Lse, double[] Grad) Reference(float[] qkv, float[] dout, int b, int t, int c, int h)
    {
        int hs = c / h, c3 = 3 * c;
        double scale = 1 / Math.Sqrt(hs);
        var o = new double[b * t * c];
        var lse = new double[b * h * t];
        var g = new double[b * t * c3];
        for (int bb = 0; bb < b; bb++)
            for (int hh = 0; hh < h; hh++)
            {
                double Q(int i, int e) => qkv[(bb * t + i) * c3 + hh * hs + e];
                double K(int i, int e) => qkv[(bb * t + i) * c3 + c + hh * hs + e];
                double V(int i, int e) => qkv[(bb * t + i) * c3 + 2 * c + hh * hs + e];
                double DO(int i, int e) => dout[(bb * t + i) * c + hh * hs + e];
                for (int i = 0; i < t; i++)
                {
                    var p = new double[i + 1];
                    for (int j = 0; j <= i; j++)
                    {
                        double s = 0;
                        for (int e = 0; e < hs; e++) s += Q(i, e) * K(j, e);
                        p[j] = s * scale;
                    }
                    double max = p.Max(), z = 0;
                    for (int j = 0; j <= i; j++) z += Math.Exp(p[j] - max);
                    for (int j = 0; j <= i; j++) p[j] = Math.Exp(p[j] - max) / z;
                    lse[(bb * h + hh) * t + i] = max + Math.Log(z);
                    for (int e = 0; e < hs; e++)
                    {
                        double s = 0;
                        for (int j = 0; j <= i; j++) s += p[j] * V(j, e);
                        o[(bb * t + i) * c + hh * hs + e] = s;
                    }
                    // dP_j = dO·V_j ; dS_j = P_j (dP_j − Σ_k P_k dP_k)
                    var dp = new double[i + 1];
                    double rowDot = 0;
                    for (int j = 0; j <= i; j++)
                    {
                        for (int e = 0; e < hs; e++) dp[j] += DO(i, e) * V(j, e);
                        rowDot += p[j] * dp[j];
                    }
                    for (int j = 0; j <= i; j++)
                    {
                        double ds = p[j] * (dp[j] - rowDot) * scale;
                        for (int e = 0; e < hs; e++)
                        {
                            g[(bb * t + i) * c3 + hh * hs + e] += ds * K(j, e);
                            g[(bb * t + j) * c3 + c + hh * hs + e] += ds * Q(i, e);
                            g[(bb * t + j) * c3 + 2 * c + hh * hs + e] += p[j] * DO(i, e);
                        }
                    }
                }
            }
        return (o, lse, g);
    }

    /// <summary>|got − want| within <paramref name="tolerance"/> of the larger of 1 and the reference's largest magnitude.</summary>
    private static void AssertClose(double[] want, float[] got, double tolerance, string what)
    {
        double scale = Math.Max(1, want.Max(Math.Abs));
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= tolerance * scale, $"{what}[{i}]: {got[i]} vs reference {want[i]} (scale {scale:G3})");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardAndBackwardMatchTheReference(int b, int t, int c, int h, bool fused)
    {
        using var be = new CpuBackend(2) { FusedAttention = fused };
        var rng = new Random(b * 1000 + t * 10 + c);
        int n = b * t;
        var qkv = Random(rng, n * 3 * c, 1.5f);
        var dout = Random(rng, n * c);
        var seed = Random(rng, n * 3 * c);
        var (wantOut, wantLse, wantGrad) = Reference(qkv, dout, b, t, c, h);

        var (output, logsumexp, got) = RunAttention(be, qkv, dout, b, t, c, h, dqkvStart: seed);
        AssertClose(wantOut, output, 1e-5, "output");
        AssertClose(wantLse, logsumexp, 1e-5, "logsumexp");
        for (int i = 0; i < got!.Length; i++) got[i] -= seed[i]; // backward adds onto dqkv
        AssertClose(wantGrad, got, 3e-5, "dqkv");
    }

    [Fact]
    public void FusedAndGenericPathsAgreeAtTheDemoShape()
    {
        // The demo's pretraining shape, beside the generic path: both are fp32 and differ only in rounding.
        int b = 2, t = 192, c = 192, h = 6, n = b * t;
        var rng = new Random(20);
        var qkv = Random(rng, n * 3 * c, 2f);
        var dout = Random(rng, n * c);
        (float[] Output, float[] Lse, float[]? Dqkv) Run(bool fused)
        {
            using var be = new CpuBackend(2) { FusedAttention = fused };
            return RunAttention(be, qkv, dout, b, t, c, h);
        }
        var (outFused, _, gradFused) = Run(true);
        var (outGeneric, _, gradGeneric) = Run(false);
        AssertClose(outGeneric.Select(v => (double)v).ToArray(), outFused, 1e-5, "output");
        AssertClose(gradGeneric!.Select(v => (double)v).ToArray(), gradFused!, 3e-5, "dqkv");
    }

    [Fact]
    public void TheDemoShapeTakesTheFusedPathWhereAvx512Runs()
    {
        // Guards the dispatch: a change that silently sent hs = 32 back to the generic path would pass every
        // parity test above and lose the speed.
        using var be = new CpuBackend(1);
        Assert.Equal(Vector512.IsHardwareAccelerated, be.UsesFusedAttentionFor(32));
        Assert.False(be.UsesFusedAttentionFor(CpuBackend.FusedAttentionMaxHeadSize + 8));
        using var generic = new CpuBackend(1) { FusedAttention = false };
        Assert.False(generic.UsesFusedAttentionFor(32));
    }

    [Theory]
    [InlineData(2, 19, 24, 3)]
    [InlineData(1, 70, 64, 2)]
    public void GenericPathGradientMatchesFiniteDifferences(int b, int t, int c, int h)
    {
        // GradientTests covers whichever path the machine takes; this keeps the generic path's gradient
        // checked on machines that take the fused one.
        using var be = new CpuBackend(2) { FusedAttention = false };
        CheckAttentionGradient(be, b, t, c, h, "generic attention dqkv");
    }
}
