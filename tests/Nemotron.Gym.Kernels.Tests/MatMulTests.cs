using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using static Nemotron.Gym.Kernels.Tests.TestUtil;

namespace Nemotron.Gym.Kernels.Tests;

public class MatMulTests
{
    /// <summary>The obvious triple loop in double precision: the reference.</summary>
    private static double[] Naive(float[] a, float[] b, float[] c0, int m, int n, int k, bool ta, bool tb, float alpha, float beta)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                {
                    double av = ta ? a[p * m + i] : a[i * k + p];
                    double bv = tb ? b[j * k + p] : b[p * n + j];
                    s += av * bv;
                }
                c[i * n + j] = alpha * s + beta * c0[i * n + j];
            }
        return c;
    }

    public static TheoryData<int, int, int, bool, bool> Shapes()
    {
        var data = new TheoryData<int, int, int, bool, bool>();
        int[][] dims = [[1, 1, 1], [1, 37, 19], [7, 5, 3], [33, 65, 17], [96, 512, 256], [100, 33, 300], [129, 257, 70], [8, 32, 1], [3, 1000, 40], [100, 70, 2300], [40, 300, 2300]];
        foreach (var d in dims)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    data.Add(d[0], d[1], d[2], ta, tb);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesNaiveLoop(int m, int n, int k, bool ta, bool tb)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        using var be = new CpuBackend(2);
        var a = Random(rng, m * k);
        var b = Random(rng, k * n);
        var c0 = Random(rng, m * n);
        foreach (var (alpha, beta) in new[] { (1f, 0f), (0.5f, 1f), (-2f, 0.25f) })
        {
            using var ta_ = Put(be, a);
            using var tb_ = Put(be, b);
            using var tc = Put(be, c0);
            be.MatMul(tc, ta_, tb_, m, n, k, ta, tb, alpha, beta);
            var got = Get(be, tc);
            var want = Naive(a, b, c0, m, n, k, ta, tb, alpha, beta);
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - want[i]) <= 1e-4 * (1 + Math.Abs(want[i])) + 1e-5 * k,
                    $"C[{i / n},{i % n}] = {got[i]} expected {want[i]} (m={m} n={n} k={k} ta={ta} tb={tb} alpha={alpha} beta={beta})");
        }
    }

    [Fact]
    public void BatchedWithStridesMatchesPerMatrixProducts()
    {
        int batch = 3, m = 17, n = 9, k = 13;
        var rng = new Random(5);
        using var be = new CpuBackend(2);
        long sa = m * k + 4, sb = k * n + 2, sc = m * n + 3;
        var a = Random(rng, (int)(sa * batch));
        var b = Random(rng, (int)(sb * batch));
        var c = new float[sc * batch];
        using var ta = Put(be, a);
        using var tb = Put(be, b);
        using var tc = Put(be, c);
        be.MatMul(tc, ta, tb, m, n, k, false, true, 1f, 0f, batch, sa, sb, sc);
        var got = Get(be, tc);
        for (int z = 0; z < batch; z++)
        {
            var want = Naive(a[(int)(z * sa)..(int)(z * sa + m * k)], b[(int)(z * sb)..(int)(z * sb + k * n)], new float[m * n], m, n, k, false, true, 1f, 0f);
            for (int i = 0; i < m * n; i++)
                Assert.Equal(want[i], got[z * sc + i], 1e-4);
        }
        // The gaps between matrices are left alone.
        Assert.Equal(0f, got[m * n]);
    }

    /// <summary>Rows shared out (a short K; the RL sampler's 97–128 live rows, in two even blocks), and K cut in two (a weight gradient's long K, transposed A).</summary>
    [Theory]
    [InlineData(200, 300, 150, false)]
    [InlineData(101, 192, 192, false)]
    [InlineData(128, 768, 192, false)]
    [InlineData(200, 300, 2600, true)]
    [InlineData(100, 300, 2600, true)] // computed as its transpose (n ≥ 2m)
    public void SingleThreadAndTwoThreadsAgreeExactly(int m, int n, int k, bool transA)
    {
        var rng = new Random(9);
        var a = Random(rng, m * k);
        var b = Random(rng, k * n);
        float[] Run(int threads)
        {
            using var be = new CpuBackend(threads);
            using var ta = Put(be, a);
            using var tb = Put(be, b);
            using var tc = be.Allocate(DType.F32, m * n, "c");
            be.MatMul(tc, ta, tb, m, n, k, transA, false);
            return Get(be, tc);
        }
        Assert.Equal(Run(1), Run(2));
        Assert.Equal(Run(1), Run(3));
    }

    /// <summary>
    /// A wide Aᵀ·B (few rows of C, many columns: the MLP down projection's weight gradient) is computed as its transpose
    /// Bᵀ·A; every element must come out bit-identical to the direct product, with and without K cut in two, with
    /// ragged edges, and for each beta (0 overwrites, 1 accumulates a gradient, else scales first).
    /// </summary>
    [Theory]
    [InlineData(40, 100, 600)]
    [InlineData(37, 301, 2100)]
    [InlineData(64, 768, 2600)]
    public unsafe void TransposedWeightGradientIsBitIdentical(int m, int n, int k)
    {
        var rng = new Random(m + n + k);
        var a = Random(rng, m * k);
        var b = Random(rng, k * n);
        var c0 = Random(rng, m * n);
        foreach (var (alpha, beta) in new[] { (1f, 0f), (1f, 1f), (0.5f, 0.25f) })
        {
            var direct = (float[])c0.Clone();
            var swapped = (float[])c0.Clone();
            fixed (float* pa = a, pb = b, pd = direct, ps = swapped)
            {
                CpuGemm.Gemm(pd, pa, pb, m, n, k, transA: true, transB: false, alpha, beta, null, allowTransposed: false);
                CpuGemm.Gemm(ps, pa, pb, m, n, k, transA: true, transB: false, alpha, beta, null);
            }
            Assert.Equal(direct, swapped);
            Assert.NotEqual(c0, swapped);
        }
    }

    [Fact]
    public void RejectsTooSmallTensorsNamingThem()
    {
        using var be = new CpuBackend(1);
        using var a = be.Allocate(DType.F32, 6, "weights");
        using var b = be.Allocate(DType.F32, 6, "b");
        using var c = be.Allocate(DType.F32, 4, "c");
        var e = Assert.Throws<ArgumentException>(() => be.MatMul(c, a, b, 2, 2, 4, false, false));
        Assert.Contains("weights", e.Message);
    }
}
