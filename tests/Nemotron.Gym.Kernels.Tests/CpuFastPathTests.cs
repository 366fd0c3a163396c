using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using static Nemotron.Gym.Kernels.Tests.TestUtil;

namespace Nemotron.Gym.Kernels.Tests;

/// <summary>
/// The CPU backend's shortcuts against plain references: the kept packed copy of a reused matrix operand,
/// the one-pass GELU, the RMSNorm rows in registers, and decoding attention over a cache of per-row lengths.
/// </summary>
public class CpuFastPathTests
{
    private readonly CpuBackend _be = new(2);

    private static double[] NaiveTimesTransposed(float[] x, float[] w, int n, int m, int k)
    {
        var y = new double[n * m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)x[i * k + p] * w[j * k + p];
                y[i * m + j] = s;
            }
        return y;
    }

    private static void AssertClose(double[] want, float[] got, string what)
    {
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= 2e-4 * (1 + Math.Abs(want[i])), $"{what}: [{i}] = {got[i]}, expected {want[i]}");
    }

    [Fact]
    public void ReusedWeightIsRepackedAfterEveryWrite()
    {
        // The weight is a slice of a larger buffer, as the model's parameters are: a write to another slice
        // bumps the same storage's version and must not leave a stale packed copy in use either.
        int n = 64, m = 70, k = 48;
        var rng = new Random(5);
        var x = Random(rng, n * k);
        using var parameters = _be.Allocate(DType.F32, 2 * m * k, "parameters");
        var w = parameters.Slice(m * k, m * k, "w");
        using var tx = Put(_be, x);
        using var ty = _be.Allocate(DType.F32, n * m, "y");
        for (int round = 0; round < 3; round++)
        {
            var wHost = Random(rng, m * k);
            _be.Upload(parameters, wHost, m * k);
            var want = NaiveTimesTransposed(x, wHost, n, m, k);
            // Several uses of one version: the first packs to scratch, the second keeps a copy, later ones reuse it.
            for (int use = 0; use < 4; use++)
            {
                _be.MatMul(ty, tx, w, n, m, k, false, true);
                AssertClose(want, Get(_be, ty), $"round {round} use {use}");
            }
            // A write elsewhere in the storage, with the weight's own values untouched.
            _be.Upload(parameters, Random(rng, 3), 0);
            _be.MatMul(ty, tx, w, n, m, k, false, true);
            AssertClose(want, Get(_be, ty), $"round {round} after a neighbouring write");
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void ProductWithAnOperandTooLargeToPackWholeMatchesTheNaiveLoop(bool ta, bool tb)
    {
        // op(B) of 4000 × 300 (4.8 MB) is packed one K block at a time (a weight gradient's shape: K = tokens).
        int m = 13, n = 300, k = 4000;
        var rng = new Random(11);
        var a = Random(rng, m * k);
        var b = Random(rng, k * n);
        var c0 = Random(rng, m * n);
        using var tA = Put(_be, a);
        using var tB = Put(_be, b);
        using var tC = Put(_be, c0);
        _be.MatMul(tC, tA, tB, m, n, k, ta, tb, 0.5f, 1f);
        var got = Get(_be, tC);
        var want = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                want[i * n + j] = 0.5 * s + c0[i * n + j];
            }
        AssertClose(want, got, $"ta={ta} tb={tb}");
    }

    [Fact]
    public void DecodeWithASharedPrefixGivesWhatTheRowsOwnCacheGives()
    {
        // Six rows in two groups of three sharing a prompt (one group with a prompt of 5, one of 9), two rows with
        // their own prompt (prefix length 0 and a prefix of their own), at positions past their prefixes.
        int batch = 8, channels = 192, heads = 6, maxT = 24, prefixT = 12;
        int[] positions = [5, 9, 14, 20, 9, 11, 3, 23];
        int[] rows = [0, 0, 0, 1, 1, 1, 2, 3];
        int[] lengths = [5, 5, 5, 9, 9, 9, 0, 12];
        var rng = new Random(17);
        var prefixKeys = Random(rng, 4 * prefixT * channels);
        var prefixValues = Random(rng, 4 * prefixT * channels);
        var keys = Random(rng, batch * maxT * channels);
        var values = Random(rng, batch * maxT * channels);
        for (int b = 0; b < batch; b++) // the rows' own caches hold copies of their prefixes
        {
            Array.Copy(prefixKeys, rows[b] * prefixT * channels, keys, b * maxT * channels, lengths[b] * channels);
            Array.Copy(prefixValues, rows[b] * prefixT * channels, values, b * maxT * channels, lengths[b] * channels);
        }
        var qkv = Random(rng, batch * 3 * channels);
        using var tp = PutInts(_be, positions);
        using var tq = Put(_be, qkv);
        using var pk = Put(_be, prefixKeys);
        using var pv = Put(_be, prefixValues);
        float[] Decode(DecodePrefix? prefix)
        {
            using var tk = Put(_be, keys);
            using var tv = Put(_be, values);
            using var to = _be.Allocate(DType.F32, batch * channels, "o");
            if (prefix == null) _be.AttentionDecode(to, tq, tk, tv, tp, batch, channels, heads, maxT);
            else _be.AttentionDecode(to, tq, tk, tv, tp, batch, channels, heads, maxT, prefix);
            return Get(_be, to);
        }
        var plain = Decode(null);
        var shared = Decode(new DecodePrefix(pk, pv, prefixT, rows, lengths));
        Assert.Equal(plain, shared);
        // The prefix really is read from the prefix rows: different prefix values change the rows that share them.
        prefixValues[rows[3] * prefixT * channels] += 1f;
        using var pv2 = Put(_be, prefixValues);
        var changed = Decode(new DecodePrefix(pk, pv2, prefixT, rows, lengths));
        Assert.NotEqual(plain[3 * channels], changed[3 * channels]);
        Assert.Equal(plain[0], changed[0]);
        // A prefix that reaches the row's own position is refused: that key was just written to the row.
        var bad = (int[])lengths.Clone();
        bad[0] = positions[0] + 1;
        Assert.Throws<ArgumentOutOfRangeException>(() => Decode(new DecodePrefix(pk, pv, prefixT, rows, bad)));
    }

    [Fact]
    public void GeluForwardMatchesTheTanhFormula()
    {
        int n = 1037; // not a multiple of any vector width: the scalar tail runs too
        var rng = new Random(8);
        var x = Random(rng, n, 12f);
        x[0] = 100f; x[1] = -100f; x[2] = 0f; x[3] = 1e-6f; x[n - 1] = -30f;
        using var tx = Put(_be, x);
        using var ty = _be.Allocate(DType.F32, n, "y");
        _be.GeluForward(ty, tx, n);
        var got = Get(_be, ty);
        for (int i = 0; i < n; i++)
        {
            double xi = x[i];
            double want = 0.5 * xi * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (xi + 0.044715 * xi * xi * xi)));
            Assert.True(Math.Abs(got[i] - want) <= 2e-6 * (1 + Math.Abs(want)), $"gelu({xi}) = {got[i]}, expected {want}");
        }
    }

    [Theory]
    [InlineData(192, 6)] // the demo model's heads of 32
    [InlineData(60, 3)]  // heads of 20: vector and scalar tails
    [InlineData(120, 3)] // heads of 40: a block of 32 output lanes and one of 8
    [InlineData(192, 3)] // heads of 64: two blocks of 32
    [InlineData(80, 5)]  // heads of 16: a value pass of 64 channels, then one of 16
    [InlineData(96, 3)]  // heads of 32: a value pass of 64 channels, then two of 16
    public void DecodeMatchesNaiveAttentionAtEachRowsOwnPosition(int channels, int heads)
    {
        int batch = 7, maxT = 40, hs = channels / heads;
        var rng = new Random(channels);
        var keys = Random(rng, batch * maxT * channels);
        var values = Random(rng, batch * maxT * channels);
        var qkv = Random(rng, batch * 3 * channels);
        // Lengths 1, 8, 40, 17, 32, 16 and 33: blocks of 16 keys that end inside, at and one past a block's end.
        int[] positions = [0, 7, 39, 16, 31, 15, 32];
        using var tk = Put(_be, keys);
        using var tv = Put(_be, values);
        using var tq = Put(_be, qkv);
        using var tp = PutInts(_be, positions);
        using var to = _be.Allocate(DType.F32, batch * channels, "o");
        _be.AttentionDecode(to, tq, tk, tv, tp, batch, channels, heads, maxT);
        var got = Get(_be, to);
        for (int b = 0; b < batch; b++)
        {
            int len = positions[b] + 1;
            // The step's own key and value are the ones just written at its position.
            double K(int s, int e) => s == positions[b] ? qkv[b * 3 * channels + channels + e] : keys[(b * maxT + s) * channels + e];
            double V(int s, int e) => s == positions[b] ? qkv[b * 3 * channels + 2 * channels + e] : values[(b * maxT + s) * channels + e];
            for (int h = 0; h < heads; h++)
            {
                var scores = new double[len];
                for (int s = 0; s < len; s++)
                {
                    double dot = 0;
                    for (int e = 0; e < hs; e++) dot += qkv[b * 3 * channels + h * hs + e] * K(s, h * hs + e);
                    scores[s] = dot / Math.Sqrt(hs);
                }
                double max = scores.Max(), sum = scores.Sum(z => Math.Exp(z - max));
                for (int e = 0; e < hs; e++)
                {
                    double want = 0;
                    for (int s = 0; s < len; s++) want += Math.Exp(scores[s] - max) / sum * V(s, h * hs + e);
                    Assert.True(Math.Abs(got[b * channels + h * hs + e] - want) <= 1e-5, $"row {b} head {h} channel {e}: {got[b * channels + h * hs + e]}, expected {want}");
                }
            }
        }
    }

    [Theory]
    [InlineData(7, 192)] // the demo's width: the vector path
    [InlineData(3, 64)]
    [InlineData(5, 33)]  // not a multiple of 16: the general path
    public void RmsNormMatchesADoublePrecisionReferenceAndAddsIntoItsGradients(int n, int c)
    {
        var rng = new Random(n + c);
        var x = Random(rng, n * c, 2f);
        var w = Random(rng, c);
        var dy = Random(rng, n * c);
        var dxBefore = Random(rng, n * c);
        var dwBefore = Random(rng, c);
        using var tx = Put(_be, x);
        using var tw = Put(_be, w);
        using var tdy = Put(_be, dy);
        using var ty = _be.Allocate(DType.F32, n * c, "y");
        using var rs = _be.Allocate(DType.F32, n, "rstd");
        using var tdx = Put(_be, dxBefore);
        using var tdw = Put(_be, dwBefore);
        _be.RmsNormForward(ty, rs, tx, tw, n, c, 1e-5f);
        _be.RmsNormBackward(tdx, tdw, tdy, tx, tw, rs, n, c);

        var y = new double[n * c];
        var dx = new double[n * c];
        var dw = dwBefore.Select(v => (double)v).ToArray();
        for (int i = 0; i < n; i++)
        {
            double ms = 0, dot = 0;
            for (int j = 0; j < c; j++) ms += (double)x[i * c + j] * x[i * c + j];
            double r = 1 / Math.Sqrt(ms / c + 1e-5);
            for (int j = 0; j < c; j++) dot += (double)dy[i * c + j] * w[j] * x[i * c + j];
            for (int j = 0; j < c; j++)
            {
                int k = i * c + j;
                y[k] = x[k] * r * w[j];
                dx[k] = dxBefore[k] + r * w[j] * dy[k] - x[k] * r * r * r / c * dot;
                dw[j] += dy[k] * x[k] * r;
            }
        }
        AssertClose(y, Get(_be, ty), "rmsnorm y");
        AssertClose(dx, Get(_be, tdx), "rmsnorm dx (added to what it held)");
        AssertClose(dw, Get(_be, tdw), "rmsnorm dw (added to what it held)");
    }
}
