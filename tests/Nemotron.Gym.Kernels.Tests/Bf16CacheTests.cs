using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using static Nemotron.Gym.Kernels.Tests.TestUtil;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>
/// The CPU backend's bf16 key and value caches: rounding on the way in, exact widening on the way out, and decoding
/// over them giving exactly what decoding over an fp32 cache of the same rounded values gives.
/// </summary>
public class Bf16CacheTests : IDisposable
{
    private readonly CpuBackend _be = new(2);

    public void Dispose() => _be.Dispose();

    /// <summary>Values through a bf16 tensor and back.</summary>
    private float[] RoundTrip(float[] values)
    {
        using var t = _be.Allocate(DType.BF16, values.Length, "bf16");
        _be.Upload(t, values);
        var back = new float[values.Length];
        _be.Download(t, back);
        return back;
    }

    [Fact]
    public void UploadRoundsToNearestWithTiesToEvenAndDownloadWidensExactly()
    {
        float one = 1f, ulp = MathF.Pow(2, -7); // bf16 keeps 7 mantissa bits: 1 + 2^-7 is 1's neighbour
        float[] input =
        [
            one, -2.5f, 0f,
            one + ulp / 2,                    // halfway, 1 is even: down
            one + 3 * ulp / 2,                // halfway, 1 + ulp is odd: up to 1 + 2 ulp
            one + ulp / 2 + MathF.Pow(2, -20), // just past halfway: up
            -(one + ulp / 2 + MathF.Pow(2, -20)),
            float.PositiveInfinity, float.MaxValue, float.NaN, 1e-40f,
        ];
        var got = RoundTrip(input);
        float[] want = [one, -2.5f, 0f, one, one + 2 * ulp, one + ulp, -(one + ulp), float.PositiveInfinity, float.PositiveInfinity, float.NaN, got[10]];
        Assert.Equal(want, got);
        // Three times over: the first 32 widen 16 at a time (AVX-512), the rest one by one.
        Assert.Equal(want.Concat(want).Concat(want), RoundTrip(input.Concat(input).Concat(input).ToArray()));
        // A subnormal lands on the nearest multiple of bf16's smallest step, 2^-133: within half of it.
        Assert.True(Math.Abs((double)got[10] - 1e-40f) <= Math.Pow(2, -134), $"{got[10]}");
        // Widening is exact: what came back goes through unchanged.
        Assert.Equal(got, RoundTrip(got));
    }

    [Fact]
    public void CopyMovesBf16ElementsAndRefusesMixedTypes()
    {
        var values = Random(new Random(3), 40);
        using var a = _be.Allocate(DType.BF16, 40, "a");
        using var b = _be.Allocate(DType.BF16, 40, "b");
        _be.Upload(a, values);
        _be.Copy(b, 10, a, 5, 20);
        var got = new float[40];
        _be.Download(b, got);
        var rounded = RoundTrip(values);
        Assert.Equal(rounded[5..25], got[10..30]);
        Assert.All(got[..10].Concat(got[30..]), x => Assert.Equal(0f, x));
        using var f = _be.Allocate(DType.F32, 40, "f32");
        var e = Assert.Throws<ArgumentException>(() => _be.Copy(f, 0, a, 0, 4));
        Assert.Contains("BF16", e.Message);
    }

    [Theory]
    [InlineData(192, 6, true)]  // the demo model, blocked path
    [InlineData(192, 6, false)] // the demo model, per-key loop
    [InlineData(60, 3, true)]   // heads of 20: the per-key loop whatever the setting
    [InlineData(96, 3, true)]   // heads of 32, 96 channels: value passes of 64 and 16 channels
    public void DecodeOverABf16CacheIsDecodeOverTheRoundedValues(int channels, int heads, bool blocked)
    {
        int batch = 7, maxT = 40, prefixT = 12;
        var rng = new Random(channels + (blocked ? 1 : 0));
        var keys = Random(rng, batch * maxT * channels);
        var values = Random(rng, batch * maxT * channels);
        var qkv = Random(rng, batch * 3 * channels);
        var prefixKeys = Random(rng, 2 * prefixT * channels);
        var prefixValues = Random(rng, 2 * prefixT * channels);
        int[] positions = [0, 7, 39, 16, 31, 15, 32];
        int[] rows = [0, 0, 0, 1, 1, 1, 1];
        int[] lengths = [0, 5, 5, 9, 9, 9, 12];
        using var be = new CpuBackend(2) { BlockedDecode = blocked };
        using var tp = PutInts(be, positions);
        // The fp32 reference holds the values a bf16 cache holds, and so does its step's qkv.
        var roundedQkv = (float[])qkv.Clone();
        for (int b = 0; b < batch; b++)
        {
            var kv = RoundTrip(qkv[(b * 3 * channels + channels)..((b + 1) * 3 * channels)]);
            kv.CopyTo(roundedQkv, b * 3 * channels + channels);
        }
        float[] Decode(DType type, float[] stepQkv, bool shared)
        {
            Tensor Cache(float[] data, string name)
            {
                var t = be.Allocate(type, data.Length, name);
                be.Upload(t, type == DType.F32 ? RoundTrip(data) : data);
                return t;
            }
            using var tk = Cache(keys, "keys");
            using var tv = Cache(values, "values");
            using var pk = Cache(prefixKeys, "prefix keys");
            using var pv = Cache(prefixValues, "prefix values");
            using var tq = Put(be, stepQkv);
            using var to = be.Allocate(DType.F32, batch * channels, "o");
            if (shared) be.AttentionDecode(to, tq, tk, tv, tp, batch, channels, heads, maxT, new DecodePrefix(pk, pv, prefixT, rows, lengths));
            else be.AttentionDecode(to, tq, tk, tv, tp, batch, channels, heads, maxT);
            // The step's key landed in the cache, rounded.
            var cached = new float[channels];
            be.Download(tk, cached, (long)(1 * maxT + positions[1]) * channels);
            Assert.Equal(RoundTrip(qkv[(3 * channels + channels)..(3 * channels + 2 * channels)]), cached);
            return Get(be, to);
        }
        foreach (bool shared in new[] { false, true })
        {
            var want = Decode(DType.F32, roundedQkv, shared);
            var got = Decode(DType.BF16, qkv, shared);
            Assert.Equal(want, got);
        }
    }

    [Fact]
    public void KvCacheWriteRoundsIntoABf16CacheAndRefusesMixedCaches()
    {
        int batch = 2, seqLen = 3, channels = 16, maxT = 5;
        var qkv = Random(new Random(8), batch * seqLen * 3 * channels);
        using var tq = Put(_be, qkv);
        using var keys = _be.Allocate(DType.BF16, batch * maxT * channels, "keys");
        using var values = _be.Allocate(DType.BF16, batch * maxT * channels, "values");
        _be.KvCacheWrite(keys, values, tq, batch, seqLen, channels, maxT);
        var got = new float[channels];
        _be.Download(values, got, (long)(1 * maxT + 2) * channels); // row 1, position 2
        int at = (1 * seqLen + 2) * 3 * channels + 2 * channels;
        Assert.Equal(RoundTrip(qkv[at..(at + channels)]), got);
        using var f32 = _be.Allocate(DType.F32, batch * maxT * channels, "f32 values");
        var e = Assert.Throws<ArgumentException>(() => _be.KvCacheWrite(keys, f32, tq, batch, seqLen, channels, maxT));
        Assert.Contains("f32 values", e.Message);
    }
}
