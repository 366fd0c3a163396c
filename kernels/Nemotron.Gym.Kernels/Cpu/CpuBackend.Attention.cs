using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Nemotron.Gym.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    [ThreadStatic] private static float[]? t_rowScratch;

    /// <summary>
    /// Whether decoding may take the blocked path (true by default; it is taken where AVX-512 is available and a head is
    /// a multiple of 16 channels). Benchmarks turn it off to time the per-key loop beside it on the same machine.
    /// </summary>
    internal bool BlockedDecode { get; init; } = true;

    private static float[] RowScratch(int length)
    {
        var s = t_rowScratch;
        if (s == null || s.Length < length) t_rowScratch = s = new float[Math.Max(length, 1024)];
        return s;
    }

    private static void CheckHeads(int channels, int heads, string op)
    {
        if (heads <= 0 || channels % heads != 0)
            throw new ArgumentException($"{op}: {channels} channels do not split into {heads} heads");
    }

    // Causal attention, one (sequence, head) pair per work item, as small matrix products through the
    // blocked GEMM (single-threaded inside a work item; the pairs themselves run in parallel). Queries go
    // in blocks of AttentionBlock rows; a block only meets the keys at or before its last row, which
    // skips most of the masked upper triangle.
    private const int AttentionBlock = 64;

    [ThreadStatic] private static float[]? t_attnScores, t_attnGrads;

    private static float[] Scratch(ref float[]? field, int length)
    {
        if (field == null || field.Length < length) field = new float[length];
        return field;
    }

    /// <inheritdoc />
    public void AttentionForward(Tensor output, Tensor logSumExp, Tensor qkv, int batch, int seqLen, int channels, int heads)
    {
        CheckHeads(channels, heads, "attention");
        long n = (long)batch * seqLen;
        float* x = Read(qkv, n * 3 * channels, "attention qkv");
        float* o = Write(output, DType.F32, n * channels, "attention output");
        float* lse = Write(logSumExp, DType.F32, (long)batch * heads * seqLen, "attention logsumexp");
        int hs = channels / heads, c3 = 3 * channels;
        float scale = 1f / MathF.Sqrt(hs);
        if (UsesFusedAttentionFor(hs))
        {
            ForHeadGroups(batch, heads, (long)seqLen * seqLen * hs, (b, h, nb, nh) =>
            {
                float* q = x + (long)b * seqLen * c3 + h * hs;
                FusedAttentionForwardHead(q, q + channels, q + 2 * channels, o + (long)b * seqLen * channels + h * hs,
                    lse + ((long)b * heads + h) * seqLen, seqLen, hs, channels, c3, scale, new NextHead(nb - b, nh - h, seqLen, hs, c3, channels, nb >= 0));
            });
            return;
        }
        ForRows(batch * heads, (long)seqLen * seqLen * hs, bh =>
        {
            int b = bh / heads, h = bh % heads;
            float* q = x + (long)b * seqLen * c3 + h * hs, k = q + channels, v = q + 2 * channels;
            float* outHead = o + (long)b * seqLen * channels + h * hs;
            float* lseRow = lse + ((long)b * heads + h) * seqLen;
            // The head's keys, packed once for every query block (each block uses a prefix of them).
            float* packedK = PackKeysOnce(k, c3, hs, seqLen, 0);
            fixed (float* s = Scratch(ref t_attnScores, AttentionBlock * seqLen))
            {
                for (int r0 = 0; r0 < seqLen; r0 += AttentionBlock)
                {
                    int rows = Math.Min(AttentionBlock, seqLen - r0), keys = r0 + rows;
                    // S = scale · Q[r0..] · K[0..keys)ᵀ, then a masked softmax per row, in place.
                    CpuGemm.Gemm(s, q + (long)r0 * c3, k, rows, keys, hs, false, true, scale, 0f, null, c3, c3, keys, packedK);
                    for (int i = 0; i < rows; i++)
                    {
                        int t = r0 + i;
                        lseRow[t] = SoftmaxRow(s + (long)i * keys, t + 1, keys);
                    }
                    // O[r0..] = P · V[0..keys)
                    CpuGemm.Gemm(outHead + (long)r0 * channels, s, v, rows, hs, keys, false, false, 1f, 0f, null, keys, c3, channels);
                }
            }
        });
    }

    /// <summary>
    /// Packs the first <paramref name="seqLen"/> rows of one head's keys (or values; row stride
    /// <paramref name="stride"/>, <paramref name="hs"/> wide) as the transposed right operand of a product
    /// with K = hs, into this thread's buffer <paramref name="slot"/>; null when hs is too wide for one block.
    /// </summary>
    private static float* PackKeysOnce(float* keys, int stride, int hs, int seqLen, int slot)
    {
        if (!CpuGemm.PacksAsOneBlock(hs)) return null;
        float* packed = CpuGemm.OperandBuffer(slot, CpuGemm.PackedBLength(seqLen, hs));
        CpuGemm.PackB(packed, keys, stride, true, hs, seqLen, null);
        return packed;
    }

    /// <summary>
    /// Softmax of row[0..live) in place, zeros in row[live..total); returns log Σ exp (the row's normalizer).
    /// One pass for the maximum, one for exp and the sum, one to scale: no per-call overhead of a library
    /// routine per pass, which at rows of a few dozen keys cost more than the arithmetic.
    /// </summary>
    private static float SoftmaxRow(float* row, int live, int total)
    {
        int j = 0;
        float max = float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && live >= 16)
        {
            var vmax = Vector512.Load(row);
            for (j = 16; j + 16 <= live; j += 16) vmax = Vector512.Max(vmax, Vector512.Load(row + j));
            max = MaxAcross(vmax);
        }
        for (; j < live; j++) max = MathF.Max(max, row[j]);
        j = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated)
        {
            var vm = Vector512.Create(max);
            var vs = Vector512<float>.Zero;
            for (; j + 16 <= live; j += 16)
            {
                var e = VectorExp.Exp(Vector512.Load(row + j) - vm);
                Vector512.Store(e, row + j);
                vs += e;
            }
            sum = Vector512.Sum(vs);
        }
        for (; j < live; j++)
        {
            float e = MathF.Exp(row[j] - max);
            row[j] = e;
            sum += e;
        }
        TensorPrimitives.Multiply(new ReadOnlySpan<float>(row, live), 1f / sum, new Span<float>(row, live));
        new Span<float>(row + live, total - live).Clear();
        return max + MathF.Log(sum);
    }

    /// <summary>
    /// One row of the attention backward pass, in place: p[j] = exp(s[j] − logSumExp) for j &lt; live (0 after),
    /// then dS[j] = p[j] · (dP[j] − d) over the whole row (0 where p is).
    /// </summary>
    private static void SoftmaxBackwardRow(float* p, float* dp, int live, int total, float logSumExp, float d)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vl = Vector512.Create(logSumExp);
            var vd = Vector512.Create(d);
            for (; j + 16 <= live; j += 16)
            {
                var e = VectorExp.Exp(Vector512.Load(p + j) - vl);
                Vector512.Store(e, p + j);
                Vector512.Store(e * (Vector512.Load(dp + j) - vd), dp + j);
            }
        }
        for (; j < live; j++)
        {
            float e = MathF.Exp(p[j] - logSumExp);
            p[j] = e;
            dp[j] = e * (dp[j] - d);
        }
        new Span<float>(p + live, total - live).Clear();
        new Span<float>(dp + live, total - live).Clear();
    }

    /// <inheritdoc />
    public void AttentionBackward(Tensor dqkv, Tensor doutput, Tensor qkv, Tensor output, Tensor logSumExp, int batch, int seqLen, int channels, int heads)
    {
        CheckHeads(channels, heads, "attention backward");
        long n = (long)batch * seqLen;
        float* x = Read(qkv, n * 3 * channels, "attention qkv");
        float* o = Read(output, n * channels, "attention output");
        float* dout = Read(doutput, n * channels, "attention doutput");
        float* lse = Read(logSumExp, (long)batch * heads * seqLen, "attention logsumexp");
        float* dx = Write(dqkv, DType.F32, n * 3 * channels, "attention dqkv");
        int hs = channels / heads, c3 = 3 * channels;
        float scale = 1f / MathF.Sqrt(hs);
        // Each (sequence, head) pair owns its slice of dqkv, so pairs run in parallel without races.
        if (UsesFusedAttentionFor(hs))
        {
            ForHeadGroups(batch, heads, (long)seqLen * seqLen * hs * 2, (b, h, nb, nh) =>
            {
                float* q = x + (long)b * seqLen * c3 + h * hs, dq = dx + (long)b * seqLen * c3 + h * hs;
                FusedAttentionBackwardHead(q, q + channels, q + 2 * channels, o + (long)b * seqLen * channels + h * hs,
                    dout + (long)b * seqLen * channels + h * hs, lse + ((long)b * heads + h) * seqLen,
                    dq, dq + channels, dq + 2 * channels, seqLen, hs, channels, c3, scale, new NextHead(nb - b, nh - h, seqLen, hs, c3, channels, nb >= 0));
            });
            return;
        }
        ForRows(batch * heads, (long)seqLen * seqLen * hs * 2, bh =>
        {
            int b = bh / heads, h = bh % heads;
            float* q = x + (long)b * seqLen * c3 + h * hs, k = q + channels, v = q + 2 * channels;
            float* dq = dx + (long)b * seqLen * c3 + h * hs, dk = dq + channels, dv = dq + 2 * channels;
            float* oHead = o + (long)b * seqLen * channels + h * hs;
            float* dOHead = dout + (long)b * seqLen * channels + h * hs;
            float* lseRow = lse + ((long)b * heads + h) * seqLen;
            float* packedK = PackKeysOnce(k, c3, hs, seqLen, 0);
            float* packedV = PackKeysOnce(v, c3, hs, seqLen, 1);
            fixed (float* p = Scratch(ref t_attnScores, AttentionBlock * seqLen))
            fixed (float* dp = Scratch(ref t_attnGrads, AttentionBlock * seqLen))
            {
                for (int r0 = 0; r0 < seqLen; r0 += AttentionBlock)
                {
                    int rows = Math.Min(AttentionBlock, seqLen - r0), keys = r0 + rows;
                    // Recompute P from the saved normalizers.
                    CpuGemm.Gemm(p, q + (long)r0 * c3, k, rows, keys, hs, false, true, scale, 0f, null, c3, c3, keys, packedK);
                    // dP = dO · Vᵀ
                    CpuGemm.Gemm(dp, dOHead + (long)r0 * channels, v, rows, keys, hs, false, true, 1f, 0f, null, channels, c3, keys, packedV);
                    for (int i = 0; i < rows; i++)
                    {
                        int t = r0 + i;
                        float d = DotProduct(dOHead + (long)t * channels, oHead + (long)t * channels, hs);
                        // dS = P ⊙ (dP − D), overwriting dP; zero above the diagonal since P is.
                        SoftmaxBackwardRow(p + (long)i * keys, dp + (long)i * keys, t + 1, keys, lseRow[t], d);
                    }
                    // dQ += scale·dS·K ; dK += scale·dSᵀ·Q ; dV += Pᵀ·dO
                    CpuGemm.Gemm(dq + (long)r0 * c3, dp, k, rows, hs, keys, false, false, scale, 1f, null, keys, c3, c3);
                    CpuGemm.Gemm(dk, dp, q + (long)r0 * c3, keys, hs, rows, true, false, scale, 1f, null, keys, c3, c3);
                    CpuGemm.Gemm(dv, p, dOHead + (long)r0 * channels, keys, hs, rows, true, false, 1f, 1f, null, keys, channels, c3);
                }
            }
        });
    }

    /// <inheritdoc />
    public void KvCacheWrite(Tensor keyCache, Tensor valueCache, Tensor qkv, int batch, int seqLen, int channels, int maxSeqLen)
    {
        if (seqLen > maxSeqLen) throw new ArgumentException($"kv cache: {seqLen} tokens do not fit a cache of {maxSeqLen}");
        float* x = Read(qkv, (long)batch * seqLen * 3 * channels, "kv cache qkv");
        bool bf16 = CacheOperands(keyCache, valueCache, (long)batch * maxSeqLen * channels, "kv cache", out byte* kc, out byte* vc);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seqLen; t++)
            {
                float* src = x + ((long)b * seqLen + t) * 3 * channels;
                long dst = ((long)b * maxSeqLen + t) * channels;
                StoreCacheRow(kc, dst, src + channels, channels, bf16);
                StoreCacheRow(vc, dst, src + 2 * channels, channels, bf16);
            }
    }

    /// <summary>
    /// A key and a value cache of one type (fp32, or bf16 where decoding should read half the bytes), mapped for
    /// writing; true for bf16.
    /// </summary>
    private bool CacheOperands(Tensor keyCache, Tensor valueCache, long needed, string role, out byte* keys, out byte* values)
    {
        if (keyCache.DType != valueCache.DType)
            throw new ArgumentException($"{role}: keys '{keyCache.Name}' are {keyCache.DType} but values '{valueCache.Name}' are {valueCache.DType}");
        if (keyCache.DType == DType.BF16)
        {
            keys = (byte*)WriteBf16(keyCache, needed, role + " keys");
            values = (byte*)WriteBf16(valueCache, needed, role + " values");
            return true;
        }
        keys = (byte*)Write(keyCache, DType.F32, needed, role + " keys");
        values = (byte*)Write(valueCache, DType.F32, needed, role + " values");
        return false;
    }

    /// <summary>One position's keys or values into a cache at element <paramref name="element"/> (rounded for bf16).</summary>
    private static void StoreCacheRow(byte* cache, long element, float* source, int count, bool bf16)
    {
        if (bf16) Bf16Bits.FromFloats(source, (ushort*)cache + element, count);
        else new ReadOnlySpan<float>(source, count).CopyTo(new Span<float>((float*)cache + element, count));
    }

    /// <inheritdoc />
    public void AttentionDecode(Tensor output, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor positions, int batch, int channels, int heads, int maxSeqLen)
    {
        DecodeOperands(output, qkv, keyCache, valueCache, positions, batch, channels, heads, maxSeqLen, out float* x, out int* pos, out var kc, out var vc, out bool bf16, out float* o);
        if (bf16) DecodeEachRow<Bf16Cache>(x, pos, kc, vc, o, batch, channels, heads, maxSeqLen);
        else DecodeEachRow<F32Cache>(x, pos, kc, vc, o, batch, channels, heads, maxSeqLen);
    }

    private void DecodeEachRow<T>(float* x, int* pos, byte* kc, byte* vc, float* o, int batch, int channels, int heads, int maxSeqLen) where T : struct, ICacheElement
    {
        float scale = 1f / MathF.Sqrt(channels / heads);
        bool blocked = BlockedDecode;
        // One work item per sequence, all heads at once (DecodeRow).
        ForRows(batch, (long)(pos[0] + 1) * channels * 4, b =>
        {
            long row = (long)b * maxSeqLen * channels * T.Size;
            DecodeRow<T>(x + (long)b * 3 * channels, kc + row, vc + row, null, null, 0, pos[b] + 1, o + (long)b * channels, channels, heads, scale, blocked);
        });
    }

    /// <inheritdoc />
    /// <remarks>
    /// Decoding reads every cached key and value once per step and row, and at the RL sampler's batch that is more
    /// than the caches hold: it runs at the speed of main memory. The G rows of one prompt share its keys and values
    /// up to the prompt's end, so rows are handed out in groups that share a prefix row and a group's rows run one
    /// after the other on one thread, reading the shared prefix from the prefill cache: main memory serves it once
    /// per group, the level-2 cache the other times (kernels/Nemotron.Gym.Kernels/Cpu/PERF.md).
    /// </remarks>
    public void AttentionDecode(Tensor output, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor positions, int batch, int channels, int heads, int maxSeqLen, DecodePrefix prefix)
    {
        DecodeOperands(output, qkv, keyCache, valueCache, positions, batch, channels, heads, maxSeqLen, out float* x, out int* pos, out var kc, out var vc, out bool bf16, out float* o);
        if (prefix.Rows.Length < batch || prefix.Lengths.Length < batch)
            throw new ArgumentException($"decode prefix: {prefix.Rows.Length} rows and {prefix.Lengths.Length} lengths for a batch of {batch}");
        if (prefix.Keys.DType != keyCache.DType || prefix.Values.DType != keyCache.DType)
            throw new ArgumentException($"decode prefix: '{prefix.Keys.Name}' and '{prefix.Values.Name}' are {prefix.Keys.DType} and {prefix.Values.DType}, the row caches {keyCache.DType}");
        int prefixRows = 0;
        for (int b = 0; b < batch; b++)
        {
            if (prefix.Rows[b] < 0) throw new ArgumentOutOfRangeException(nameof(prefix), $"decode prefix: row {b} names prefix row {prefix.Rows[b]}");
            // The step's own position is never part of the prefix: its key and value were just written to the row.
            if ((uint)prefix.Lengths[b] > (uint)Math.Min(pos[b], prefix.MaxSeqLen))
                throw new ArgumentOutOfRangeException(nameof(prefix), $"decode prefix: row {b} shares {prefix.Lengths[b]} positions, but is at position {pos[b]} of a prefix cache of {prefix.MaxSeqLen}");
            prefixRows = Math.Max(prefixRows, prefix.Rows[b] + 1);
        }
        long prefixCount = (long)prefixRows * prefix.MaxSeqLen * channels;
        byte* pk, pv;
        if (bf16) { pk = (byte*)ReadBf16(prefix.Keys, prefixCount, "decode prefix keys"); pv = (byte*)ReadBf16(prefix.Values, prefixCount, "decode prefix values"); }
        else { pk = (byte*)Read(prefix.Keys, prefixCount, "decode prefix keys"); pv = (byte*)Read(prefix.Values, prefixCount, "decode prefix values"); }
        if (bf16) DecodeByPrefix<Bf16Cache>(x, pos, kc, vc, pk, pv, o, batch, channels, heads, maxSeqLen, prefix);
        else DecodeByPrefix<F32Cache>(x, pos, kc, vc, pk, pv, o, batch, channels, heads, maxSeqLen, prefix);
    }

    private void DecodeByPrefix<T>(float* x, int* pos, byte* kc, byte* vc, byte* pk, byte* pv, float* o, int batch, int channels, int heads, int maxSeqLen, DecodePrefix prefix)
        where T : struct, ICacheElement
    {
        float scale = 1f / MathF.Sqrt(channels / heads);
        // Rows in order of their prefix row; a work item is a run of rows that share one.
        var order = new int[batch];
        var keys = new int[batch];
        for (int b = 0; b < batch; b++) { order[b] = b; keys[b] = prefix.Rows[b]; }
        Array.Sort(keys, order);
        var starts = new List<int>();
        for (int i = 0; i < batch; i++)
            if (i == 0 || keys[i] != keys[i - 1]) starts.Add(i);
        starts.Add(batch);
        int pms = prefix.MaxSeqLen;
        int[] lengths = prefix.Lengths;
        bool blocked = BlockedDecode;
        ForRows(starts.Count - 1, (long)(pos[0] + 1) * channels * 4 * batch / (starts.Count - 1), g =>
        {
            // A prefix only one row uses is read from that row's own cache, which holds the same values: there is
            // nothing to share, and a row read from one place ran faster than from two.
            bool alone = starts[g + 1] - starts[g] == 1;
            for (int i = starts[g]; i < starts[g + 1]; i++)
            {
                int b = order[i];
                long row = (long)b * maxSeqLen * channels * T.Size, shared = (long)keys[i] * pms * channels * T.Size;
                DecodeRow<T>(x + (long)b * 3 * channels, kc + row, vc + row, pk + shared, pv + shared, alone ? 0 : lengths[b], pos[b] + 1, o + (long)b * channels, channels, heads, scale, blocked);
            }
        });
    }

    /// <summary>Checks and maps a decoding step's operands, and writes each row's new key and value at its position.</summary>
    private void DecodeOperands(Tensor output, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor positions, int batch, int channels, int heads, int maxSeqLen,
        out float* x, out int* pos, out byte* kc, out byte* vc, out bool bf16, out float* o)
    {
        CheckHeads(channels, heads, "attention decode");
        x = Read(qkv, (long)batch * 3 * channels, "decode qkv");
        pos = ReadInts(positions, batch, "decode positions");
        bf16 = CacheOperands(keyCache, valueCache, (long)batch * maxSeqLen * channels, "decode cache", out kc, out vc);
        o = Write(output, DType.F32, (long)batch * channels, "decode output");
        for (int b = 0; b < batch; b++)
        {
            if ((uint)pos[b] >= maxSeqLen)
                throw new ArgumentOutOfRangeException(nameof(positions), $"decode: position {pos[b]} of row {b} is outside the cache of {maxSeqLen}");
            float* src = x + (long)b * 3 * channels;
            long dst = ((long)b * maxSeqLen + pos[b]) * channels;
            StoreCacheRow(kc, dst, src + channels, channels, bf16);
            StoreCacheRow(vc, dst, src + 2 * channels, channels, bf16);
        }
    }

    /// <summary>How decoding reads one element type of cache: fp32 where it lies, bf16 widened on the way in.</summary>
    private interface ICacheElement
    {
        /// <summary>Bytes per element.</summary>
        static abstract int Size { get; }
        /// <summary>16 consecutive values at <paramref name="p"/> (AVX-512 only).</summary>
        static abstract Vector512<float> Load16(byte* p);
        /// <summary><paramref name="count"/> values at <paramref name="p"/> as floats: p itself, or widened into <paramref name="scratch"/>.</summary>
        static abstract float* AsFloats(byte* p, int count, float* scratch);
    }

    private struct F32Cache : ICacheElement
    {
        public static int Size => 4;
        public static Vector512<float> Load16(byte* p) => Vector512.Load((float*)p);
        public static float* AsFloats(byte* p, int count, float* scratch) => (float*)p;
    }

    private struct Bf16Cache : ICacheElement
    {
        public static int Size => 2;
        public static Vector512<float> Load16(byte* p) => Bf16Bits.Load16((ushort*)p);
        public static float* AsFloats(byte* p, int count, float* scratch)
        {
            Bf16Bits.ToFloats((ushort*)p, scratch, count);
            return scratch;
        }
    }

    /// <summary>
    /// Attention of one decoding row over its <paramref name="len"/> positions, all heads at once: keys and values
    /// below <paramref name="prefixLength"/> come from the shared prefix rows, the rest from the row's own cache rows.
    /// A row's cache is read front to back (key s of every head is one contiguous row), and each score is a short dot
    /// product written out with vectors instead of a library call per (key, head), which dominated at hs = 32.
    /// </summary>
    private static void DecodeRow<T>(float* q, byte* kRows, byte* vRows, byte* prefixKeys, byte* prefixValues, int prefixLength, int len, float* outRow, int channels, int heads, float scale, bool blocked)
        where T : struct, ICacheElement
    {
        int hs = channels / heads;
        if (blocked && Avx512F.IsSupported && hs % 16 == 0)
        {
            DecodeRowBlocked<T>(q, kRows, vRows, prefixKeys, prefixValues, prefixLength, len, outRow, channels, heads, scale);
            return;
        }
        float[] scratch = RowScratch(heads * len + channels);
        long rowBytes = (long)channels * T.Size;
        fixed (float* scores = scratch)
        {
            float* widened = scores + heads * len;
            // scores[h, s] = scale · q_h · k_{s,h}
            for (int s = 0; s < len; s++)
            {
                float* k = T.AsFloats((s < prefixLength ? prefixKeys : kRows) + s * rowBytes, channels, widened);
                for (int h = 0; h < heads; h++)
                    scores[h * len + s] = DotProduct(q + h * hs, k + h * hs, hs) * scale;
            }
            new Span<float>(outRow, channels).Clear();
            for (int h = 0; h < heads; h++) SoftmaxInPlace(new Span<float>(scores + h * len, len));
            // out_h = Σ_s p[h, s] · v_{s,h}
            for (int s = 0; s < len; s++)
            {
                float* v = T.AsFloats((s < prefixLength ? prefixValues : vRows) + s * rowBytes, channels, widened);
                for (int h = 0; h < heads; h++)
                    MultiplyAddInto(outRow + h * hs, v + h * hs, scores[h * len + s], hs);
            }
        }
    }

    /// <summary>
    /// <see cref="DecodeRow"/> for heads of a multiple of 16 channels with AVX-512: the scores of 16 keys at a time,
    /// whose 16 partial-sum vectors are added across lanes together (a transpose by shuffles, 30 of them for 16 sums,
    /// where one vector's sum alone takes a chain of 4 shuffles and adds), so a score costs about two shuffles instead
    /// of a dependent reduction; the next block's keys are prefetched while a block is scored, and the values are
    /// read once, key by key, into accumulators for every channel. At the RL sampler's batch the caches come from main
    /// memory, and this path reads them at about its single-thread speed (kernels/Nemotron.Gym.Kernels/Cpu/PERF.md,
    /// "Decoding attention at the memory's speed"). Sums run in another order than the per-key loop's: results differ
    /// in the last bits.
    /// </summary>
    private static void DecodeRowBlocked<T>(float* q, byte* kRows, byte* vRows, byte* prefixKeys, byte* prefixValues, int prefixLength, int len, float* outRow, int channels, int heads, float scale)
        where T : struct, ICacheElement
    {
        int hs = channels / heads, stride = RoundUp(len, 16);
        long rowBytes = (long)channels * T.Size;
        float[] scratch = RowScratch(heads * stride + channels);
        fixed (float* scores = scratch)
        {
            float* qs = scores + heads * stride; // q · scale, so the scores come out scaled
            for (int c = 0; c < channels; c += 16) Vector512.Store(Vector512.Load(q + c) * scale, qs + c);
            byte** keys = stackalloc byte*[16];
            for (int s0 = 0; s0 < len; s0 += 16)
            {
                // A block past the last key repeats it; those scores land in the row's padding.
                int n = Math.Min(16, len - s0);
                for (int j = 0; j < 16; j++)
                {
                    int s = s0 + Math.Min(j, n - 1);
                    keys[j] = (s < prefixLength ? prefixKeys : kRows) + s * rowBytes;
                }
                // The next block's keys on their way while this one is scored: its rows are contiguous, but the
                // heads below walk each at a stride.
                for (int s = s0 + 16; s < Math.Min(s0 + 32, len); s++)
                {
                    byte* next = (s < prefixLength ? prefixKeys : kRows) + s * rowBytes;
                    for (int b = 0; b < rowBytes; b += 64) Sse.Prefetch0(next + b);
                }
                for (int h = 0; h < heads; h++)
                {
                    int o = h * hs;
                    [MethodImpl(MethodImplOptions.AggressiveInlining)]
                    Vector512<float> Partial(int j)
                    {
                        byte* k = keys[j] + o * T.Size;
                        var sum = Vector512.Load(qs + o) * T.Load16(k);
                        for (int c = 16; c < hs; c += 16) sum = Vector512.FusedMultiplyAdd(Vector512.Load(qs + o + c), T.Load16(k + c * T.Size), sum);
                        return sum;
                    }
                    var dots = SumAcross16(
                        SumAcross8(SumAcross4(SumAcross2(Partial(0), Partial(1)), SumAcross2(Partial(2), Partial(3))),
                                   SumAcross4(SumAcross2(Partial(4), Partial(5)), SumAcross2(Partial(6), Partial(7)))),
                        SumAcross8(SumAcross4(SumAcross2(Partial(8), Partial(9)), SumAcross2(Partial(10), Partial(11))),
                                   SumAcross4(SumAcross2(Partial(12), Partial(13)), SumAcross2(Partial(14), Partial(15)))));
                    Vector512.Store(dots, scores + h * stride + s0);
                }
            }
            for (int h = 0; h < heads; h++) SoftmaxInPlace(new Span<float>(scores + h * stride, len));
            // out[h, c..c+16] = Σ_s p[h, s] · v[s, h, c..c+16]; even and odd keys in two accumulators. Which keys go
            // where depends only on s, so a row reads the same sums whether its prefix is shared or its own. Keys run
            // outermost so each value row is read once, front to back (a pass per 16 channels read every row 12
            // times at a stride, and ran at a fraction of the memory's speed); the accumulators live in level 1.
            int chunks = channels / 16;
            Vector512<float>* acc = stackalloc Vector512<float>[2 * chunks];
            for (int i = 0; i < 2 * chunks; i++) acc[i] = Vector512<float>.Zero;
            int* headOf = stackalloc int[chunks];
            for (int i = 0; i < chunks; i++) headOf[i] = i * 16 / hs * stride;
            for (int s = 0; s < len; s++)
            {
                byte* v = (s < prefixLength ? prefixValues : vRows) + s * rowBytes;
                if (s + 6 < len)
                {
                    byte* ahead = (s + 6 < prefixLength ? prefixValues : vRows) + (s + 6) * rowBytes;
                    for (int b = 0; b < rowBytes; b += 64) Sse.Prefetch0(ahead + b);
                }
                Vector512<float>* a = acc + (s & 1) * chunks;
                float* ps = scores + s;
                for (int i = 0; i < chunks; i++)
                    a[i] = Vector512.FusedMultiplyAdd(T.Load16(v + 16 * i * T.Size), Vector512.Create(ps[headOf[i]]), a[i]);
            }
            for (int i = 0; i < chunks; i++) Vector512.Store(acc[i] + acc[chunks + i], outRow + 16 * i);
        }
    }

    /// <summary>A row of scores turned into probabilities in place (both decode paths).</summary>
    private static void SoftmaxInPlace(Span<float> row)
    {
        float max = TensorPrimitives.Max(row);
        TensorPrimitives.Subtract(row, max, row);
        TensorPrimitives.Exp(row, row);
        TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
    }

    // Lane sums of 2, 4, 8 and 16 vectors: after all four steps lane i holds the sum of the i-th vector's lanes.
    // Unpacking pairs lanes of a and b within each 128-bit lane; the shuffles then gather those partial sums.
    private static Vector512<float> SumAcross2(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a, b) + Avx512F.UnpackHigh(a, b);
    private static Vector512<float> SumAcross4(Vector512<float> a, Vector512<float> b) => Avx512F.Shuffle(a, b, 0x44) + Avx512F.Shuffle(a, b, 0xEE);
    private static Vector512<float> SumAcross8(Vector512<float> a, Vector512<float> b) => Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);
    private static Vector512<float> SumAcross16(Vector512<float> a, Vector512<float> b) => Avx512F.Shuffle4x128(a, b, 0x88) + Avx512F.Shuffle4x128(a, b, 0xDD);

    /// <summary>Σ x[i]·y[i] over a short run (one head's slice), in vector registers.</summary>
    private static float DotProduct(float* x, float* y, int length)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && length >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= length; i += 16)
                acc = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(y + i), acc);
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            for (; i + 16 <= length; i += 16)
            {
                acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), acc0);
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(y + i + 8), acc1);
            }
            for (; i + 8 <= length; i += 8)
                acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), acc0);
            sum = Vector256.Sum(acc0 + acc1);
        }
        for (; i < length; i++) sum += x[i] * y[i];
        return sum;
    }

    /// <summary>output[i] += weight · x[i] over a short run.</summary>
    private static void MultiplyAddInto(float* output, float* x, float weight, int length)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var w = Vector512.Create(weight);
            for (; i + 16 <= length; i += 16)
                Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(x + i), w, Vector512.Load(output + i)), output + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var w = Vector256.Create(weight);
            for (; i + 8 <= length; i += 8)
                Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(x + i), w, Vector256.Load(output + i)), output + i);
        }
        for (; i < length; i++) output[i] += weight * x[i];
    }
}
