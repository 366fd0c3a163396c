using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Nemotron.Gym.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    [ThreadStatic] private static float[]? t_rowScratch;

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
        ForRows(batch * heads, (long)seqLen * seqLen * hs, bh =>
        {
            int b = bh / heads, h = bh % heads;
            float* q = x + (long)b * seqLen * c3 + h * hs, k = q + channels, v = q + 2 * channels;
            float* outHead = o + (long)b * seqLen * channels + h * hs;
            float* lseRow = lse + ((long)b * heads + h) * seqLen;
            fixed (float* s = Scratch(ref t_attnScores, AttentionBlock * seqLen))
            {
                for (int r0 = 0; r0 < seqLen; r0 += AttentionBlock)
                {
                    int rows = Math.Min(AttentionBlock, seqLen - r0), keys = r0 + rows;
                    // S = scale · Q[r0..] · K[0..keys)ᵀ, then a masked softmax per row, in place.
                    CpuGemm.Gemm(s, q + (long)r0 * c3, k, rows, keys, hs, false, true, scale, 0f, null, c3, c3, keys);
                    for (int i = 0; i < rows; i++)
                    {
                        int t = r0 + i;
                        var row = new Span<float>(s + (long)i * keys, keys);
                        var live = row[..(t + 1)];
                        float max = TensorPrimitives.Max(live);
                        TensorPrimitives.Subtract(live, max, live);
                        TensorPrimitives.Exp(live, live);
                        float sum = TensorPrimitives.Sum(live);
                        TensorPrimitives.Multiply(live, 1f / sum, live);
                        row[(t + 1)..].Clear();
                        lseRow[t] = max + MathF.Log(sum);
                    }
                    // O[r0..] = P · V[0..keys)
                    CpuGemm.Gemm(outHead + (long)r0 * channels, s, v, rows, hs, keys, false, false, 1f, 0f, null, keys, c3, channels);
                }
            }
        });
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
        ForRows(batch * heads, (long)seqLen * seqLen * hs * 2, bh =>
        {
            int b = bh / heads, h = bh % heads;
            float* q = x + (long)b * seqLen * c3 + h * hs, k = q + channels, v = q + 2 * channels;
            float* dq = dx + (long)b * seqLen * c3 + h * hs, dk = dq + channels, dv = dq + 2 * channels;
            float* oHead = o + (long)b * seqLen * channels + h * hs;
            float* dOHead = dout + (long)b * seqLen * channels + h * hs;
            float* lseRow = lse + ((long)b * heads + h) * seqLen;
            fixed (float* p = Scratch(ref t_attnScores, AttentionBlock * seqLen))
            fixed (float* dp = Scratch(ref t_attnGrads, AttentionBlock * seqLen))
            {
                for (int r0 = 0; r0 < seqLen; r0 += AttentionBlock)
                {
                    int rows = Math.Min(AttentionBlock, seqLen - r0), keys = r0 + rows;
                    // Recompute P from the saved normalizers.
                    CpuGemm.Gemm(p, q + (long)r0 * c3, k, rows, keys, hs, false, true, scale, 0f, null, c3, c3, keys);
                    // dP = dO · Vᵀ
                    CpuGemm.Gemm(dp, dOHead + (long)r0 * channels, v, rows, keys, hs, false, true, 1f, 0f, null, channels, c3, keys);
                    for (int i = 0; i < rows; i++)
                    {
                        int t = r0 + i;
                        var pr = new Span<float>(p + (long)i * keys, keys);
                        var dpr = new Span<float>(dp + (long)i * keys, keys);
                        var live = pr[..(t + 1)];
                        TensorPrimitives.Subtract(live, lseRow[t], live);
                        TensorPrimitives.Exp(live, live);
                        pr[(t + 1)..].Clear();
                        float d = TensorPrimitives.Dot(new ReadOnlySpan<float>(dOHead + (long)t * channels, hs), new ReadOnlySpan<float>(oHead + (long)t * channels, hs));
                        // dS = P ⊙ (dP − D), overwriting dP; zero above the diagonal since P is.
                        TensorPrimitives.Subtract(dpr, d, dpr);
                        TensorPrimitives.Multiply(dpr, pr, dpr);
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
        float* kc = Write(keyCache, DType.F32, (long)batch * maxSeqLen * channels, "kv cache keys");
        float* vc = Write(valueCache, DType.F32, (long)batch * maxSeqLen * channels, "kv cache values");
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seqLen; t++)
            {
                float* src = x + ((long)b * seqLen + t) * 3 * channels;
                long dst = ((long)b * maxSeqLen + t) * channels;
                new ReadOnlySpan<float>(src + channels, channels).CopyTo(new Span<float>(kc + dst, channels));
                new ReadOnlySpan<float>(src + 2 * channels, channels).CopyTo(new Span<float>(vc + dst, channels));
            }
    }

    /// <inheritdoc />
    public void AttentionDecode(Tensor output, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor positions, int batch, int channels, int heads, int maxSeqLen)
    {
        CheckHeads(channels, heads, "attention decode");
        float* x = Read(qkv, (long)batch * 3 * channels, "decode qkv");
        int* pos = ReadInts(positions, batch, "decode positions");
        float* kc = Write(keyCache, DType.F32, (long)batch * maxSeqLen * channels, "decode key cache");
        float* vc = Write(valueCache, DType.F32, (long)batch * maxSeqLen * channels, "decode value cache");
        float* o = Write(output, DType.F32, (long)batch * channels, "decode output");
        int hs = channels / heads;
        float scale = 1f / MathF.Sqrt(hs);
        for (int b = 0; b < batch; b++)
        {
            if ((uint)pos[b] >= maxSeqLen)
                throw new ArgumentOutOfRangeException(nameof(positions), $"decode: position {pos[b]} of row {b} is outside the cache of {maxSeqLen}");
            float* src = x + (long)b * 3 * channels;
            long dst = ((long)b * maxSeqLen + pos[b]) * channels;
            new ReadOnlySpan<float>(src + channels, channels).CopyTo(new Span<float>(kc + dst, channels));
            new ReadOnlySpan<float>(src + 2 * channels, channels).CopyTo(new Span<float>(vc + dst, channels));
        }
        // One work item per sequence, all heads at once: the cache rows of a sequence are read front to back
        // (key s of every head is one contiguous row of the cache), and each score is a short dot product
        // written out with vectors instead of a library call per (key, head), which dominated at hs = 32.
        ForRows(batch, (long)(pos[0] + 1) * channels * 4, b =>
        {
            int len = pos[b] + 1;
            float[] scratch = RowScratch(heads * len);
            float* q = x + (long)b * 3 * channels;
            float* kRows = kc + (long)b * maxSeqLen * channels;
            float* vRows = vc + (long)b * maxSeqLen * channels;
            fixed (float* scores = scratch)
            {
                // scores[h, s] = scale · q_h · k_{s,h}
                for (int s = 0; s < len; s++)
                {
                    float* k = kRows + (long)s * channels;
                    for (int h = 0; h < heads; h++)
                        scores[h * len + s] = DotProduct(q + h * hs, k + h * hs, hs) * scale;
                }
                float* outRow = o + (long)b * channels;
                new Span<float>(outRow, channels).Clear();
                for (int h = 0; h < heads; h++)
                {
                    var row = new Span<float>(scores + h * len, len);
                    float max = TensorPrimitives.Max(row);
                    TensorPrimitives.Subtract(row, max, row);
                    TensorPrimitives.Exp(row, row);
                    TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
                }
                // out_h = Σ_s p[h, s] · v_{s,h}
                for (int s = 0; s < len; s++)
                {
                    float* v = vRows + (long)s * channels;
                    for (int h = 0; h < heads; h++)
                        MultiplyAddInto(outRow + h * hs, v + h * hs, scores[h * len + s], hs);
                }
            }
        });
    }

    /// <summary>Σ x[i]·y[i] over a short run (one head's slice), in vector registers.</summary>
    private static float DotProduct(float* x, float* y, int length)
    {
        int i = 0;
        float sum = 0f;
        if (Vector256.IsHardwareAccelerated && length >= 8)
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
        if (Vector256.IsHardwareAccelerated)
        {
            var w = Vector256.Create(weight);
            for (; i + 8 <= length; i += 8)
                Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(x + i), w, Vector256.Load(output + i)), output + i);
        }
        for (; i < length; i++) output[i] += weight * x[i];
    }
}
