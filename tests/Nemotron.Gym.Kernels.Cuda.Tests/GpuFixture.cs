using Nemotron.Gym.Kernels.Cpu;

namespace Nemotron.Gym.Kernels.Cuda.Tests;

/// <summary>
/// One CUDA backend for all GPU tests, beside the CPU reference. With no GPU the tests skip, naming the reason.
/// NG_CUDA_TESTS_STANDIN=cpu puts a second CPU backend in the GPU's place: the tests then check their own
/// references and tolerances on a machine without a GPU (every comparison should pass trivially).
/// </summary>
public sealed class GpuFixture : IDisposable
{
    public GpuFixture()
    {
        Cpu = new CpuBackend();
        if (Environment.GetEnvironmentVariable("NG_CUDA_TESTS_STANDIN") == "cpu")
        {
            Gpu = new CpuBackend();
            Reason = "";
            IsStandIn = true;
            return;
        }
        Gpu = CudaBackend.TryCreate(out var reason);
        Reason = reason;
    }

    public CpuBackend Cpu { get; }
    public IComputeBackend? Gpu { get; }
    public string Reason { get; }
    public bool IsStandIn { get; }

    /// <summary>The CUDA backend, or a skip with the reason there is none.</summary>
    public IComputeBackend Require()
    {
        if (Gpu == null) Assert.Skip($"no CUDA backend here: {Reason}");
        return Gpu;
    }

    public void Dispose()
    {
        Gpu?.Dispose();
        Cpu.Dispose();
    }
}

[CollectionDefinition("gpu")]
public sealed class GpuCollection : ICollectionFixture<GpuFixture>;

/// <summary>Host-side data and comparisons for the parity tests.</summary>
internal static class Host
{
    /// <summary>Roughly normal values (sum of uniforms), deterministic per seed.</summary>
    public static float[] Randn(long n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = scale * (float)(rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 2f;
        return x;
    }

    public static int[] Ints(int n, int seed, int max)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => rng.Next(max)).ToArray();
    }

    public static Tensor Put(IComputeBackend be, float[] data, string name)
    {
        var t = be.Allocate(DType.F32, data.Length, name);
        be.Upload(t, data);
        return t;
    }

    public static Tensor Put(IComputeBackend be, int[] data, string name)
    {
        var t = be.Allocate(DType.I32, data.Length, name);
        be.Upload(t, data);
        return t;
    }

    public static float[] Get(Tensor t, long count = -1)
    {
        var x = new float[count < 0 ? t.Length : count];
        t.Backend.Download(t, x);
        return x;
    }

    public static int[] GetInts(Tensor t)
    {
        var x = new int[t.Length];
        t.Backend.Download(t, x);
        return x;
    }

    /// <summary>bf16 rounding as the kernels do it (nearest, ties to even).</summary>
    public static float Bf16(float f)
    {
        uint x = BitConverter.SingleToUInt32Bits(f);
        if ((x & 0x7fffffffu) > 0x7f800000u) return f;
        x += 0x7fffu + ((x >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(x & 0xffff0000u);
    }

    public static float[] Bf16(float[] x) => x.Select(Bf16).ToArray();

    /// <summary>Asserts |actual − expected| ≤ atol + rtol·|expected| everywhere, naming the worst element.</summary>
    public static void Close(float[] expected, float[] actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e) != double.IsNaN(a)) Assert.Fail($"{what}: element {i} is {a}, expected {e}");
            double excess = Math.Abs(a - e) - (atol + rtol * Math.Abs(e));
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
        }
        if (worst >= 0)
            Assert.Fail($"{what}: element {worst} of {expected.Length} is {actual[worst]}, expected {expected[worst]} (|diff| {Math.Abs(actual[worst] - expected[worst]):G3} > {atol:G3} + {rtol:G3}·|expected|)");
    }

    /// <summary>Asserts |actual − expected| ≤ rel·max|expected| + 1e-6: for bf16 products, whose error scales with the data.</summary>
    public static void CloseToScale(float[] expected, float[] actual, double rel, string what)
    {
        double max = expected.Length == 0 ? 0 : expected.Max(v => Math.Abs(v));
        Close(expected, actual, rel * max + 1e-6, 0, what);
    }
}
