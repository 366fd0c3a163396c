using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using static Nemotron.Gym.Kernels.Tests.TestUtil;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>
/// A kept packed weight whose values are all bf16 (the GRPO sampler's rounded copy) is multiplied from a bf16 copy:
/// the products must be the fp32 path's bit for bit, and a weight with one value that is not a bf16 must stay fp32.
/// </summary>
public class Bf16PackedWeightTests
{
    private static float[] RoundedToBf16(float[] values) =>
        values.Select(v => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) & 0xFFFF0000u)).ToArray();

    /// <summary>Four uses of one weight version (the first packs to scratch, the second keeps a copy, the rest reuse it): every C.</summary>
    private static List<float[]> Uses(CpuBackend be, float[] a, float[] b, float[] c0, int m, int n, int k, bool ta, bool tb, float alpha, float beta)
    {
        using var tA = Put(be, a);
        using var tB = Put(be, b);
        using var tC = be.Allocate(DType.F32, (long)m * n, "c");
        var results = new List<float[]>();
        for (int use = 0; use < 4; use++)
        {
            be.Upload(tC, c0);
            be.MatMul(tC, tA, tB, m, n, k, ta, tb, alpha, beta);
            results.Add(Get(be, tC));
        }
        return results;
    }

    [Theory]
    [InlineData(64, 768, 192, false, true, 1f, 0f)]    // the sampler's decoding shape, x·Wᵀ
    [InlineData(13, 100, 300, false, false, 0.5f, 1f)] // partial tiles in both directions, two K blocks, C added to
    [InlineData(70, 45, 33, true, true, 2f, 0.25f)]    // transposed A, one partial panel
    [InlineData(2560, 576, 192, false, true, 1f, 0f)]  // a prompt's prefill
    public void ProductsFromABf16WeightEqualTheFp32PathBitForBit(int m, int n, int k, bool ta, bool tb, float alpha, float beta)
    {
        var rng = new Random(m * 31 + n);
        var a = Random(rng, m * k);
        var b = RoundedToBf16(Random(rng, k * n));
        var c0 = Random(rng, m * n);
        using var bf16 = new CpuBackend(2);
        using var fp32 = new CpuBackend(2) { Bf16PackedWeights = false };
        var got = Uses(bf16, a, b, c0, m, n, k, ta, tb, alpha, beta);
        var want = Uses(fp32, a, b, c0, m, n, k, ta, tb, alpha, beta);
        Assert.Equal(CpuGemmHasBf16Kernel ? 3 : 0, bf16.Bf16Products);
        Assert.Equal(0, fp32.Bf16Products);
        for (int use = 0; use < want.Count; use++)
            for (int i = 0; i < want[use].Length; i++)
                Assert.True(BitConverter.SingleToUInt32Bits(want[use][i]) == BitConverter.SingleToUInt32Bits(got[use][i]),
                    $"use {use}, element {i}: {got[use][i]:R} from bf16, {want[use][i]:R} from fp32");
        // Both against the definition, so two equally wrong paths cannot pass.
        for (int i = 0; i < m; i += 7)
            for (int j = 0; j < n; j += 5)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                double expected = alpha * s + beta * c0[i * n + j];
                Assert.True(Math.Abs(got[3][i * n + j] - expected) <= 2e-4 * (1 + Math.Abs(expected)), $"[{i},{j}] = {got[3][i * n + j]}, expected {expected}");
            }
    }

    [Fact]
    public void AWeightWithOneValueThatIsNotABf16StaysFp32()
    {
        int m = 64, n = 96, k = 64;
        var rng = new Random(3);
        var a = Random(rng, m * k);
        var b = RoundedToBf16(Random(rng, k * n));
        b[k * n - 1] = BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(b[k * n - 1]) | 1u); // the last value, one bit off
        var c0 = new float[m * n];
        using var bf16 = new CpuBackend(2);
        using var fp32 = new CpuBackend(2) { Bf16PackedWeights = false };
        var got = Uses(bf16, a, b, c0, m, n, k, false, true, 1f, 0f);
        var want = Uses(fp32, a, b, c0, m, n, k, false, true, 1f, 0f);
        Assert.Equal(0, bf16.Bf16Products);
        for (int use = 0; use < want.Count; use++) Assert.Equal(want[use], got[use]);
    }

    [Fact]
    public void ANewWeightVersionIsPackedAgain()
    {
        // The sampler's weights are re-rounded after every optimizer step: the bf16 copy must follow the writes.
        int m = 64, n = 64, k = 32;
        var rng = new Random(9);
        var a = Random(rng, m * k);
        using var be = new CpuBackend(2);
        using var fp32 = new CpuBackend(2) { Bf16PackedWeights = false };
        using var tA = Put(be, a);
        using var tB = be.Allocate(DType.F32, k * n, "w");
        using var tC = be.Allocate(DType.F32, m * n, "c");
        for (int version = 0; version < 3; version++)
        {
            var b = RoundedToBf16(Random(rng, k * n));
            be.Upload(tB, b);
            var want = Uses(fp32, a, b, new float[m * n], m, n, k, false, true, 1f, 0f)[3];
            for (int use = 0; use < 3; use++)
            {
                be.MatMul(tC, tA, tB, m, n, k, false, true);
                Assert.Equal(want, Get(be, tC));
            }
        }
        Assert.Equal(CpuGemmHasBf16Kernel ? 6 : 0, be.Bf16Products);
    }

    private static bool CpuGemmHasBf16Kernel => System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
}
