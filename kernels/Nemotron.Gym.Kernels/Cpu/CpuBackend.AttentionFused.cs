using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Nemotron.Gym.Kernels.Cpu;

// Causal attention for small heads (hs ≤ 64) on AVX-512, for training (forward and backward).
//
// The generic path sends each 64-row query block through the blocked GEMM. At K = hs = 32 a product has so
// little work per element that packing its operands, the call's set-up and the tile stores cost as much as
// the arithmetic. Here every product is one 8×32 register tile C (+)= A·B: 16 zmm accumulators, two loads
// of B and eight broadcasts of A per step of the inner dimension, no packing. A's rows and columns have free
// strides, so the same tile reads Q and dO in place (rows of qkv), and dSᵀ and Pᵀ for the key gradients
// without a transpose. Only K and V are copied per head, transposed (hs × T, zero past T), so score tiles
// load 32 keys as two vectors. Heads whose width is not a multiple of 32 are first copied with zero columns
// up to the next multiple (then the same code runs over the copies).
//
// Forward, per block of 8 query rows: S = Q·Kᵀ over the 32-key tiles at or before the block's last row
// (the masked upper triangle is skipped down to 8×32), row max m, e = exp(S/√hs − m/√hs) masked to the
// causal prefix with its sum z (the scale folded into the exponent's FMA), O = e·V scaled by 1/z on the way
// out, logsumexp = m/√hs + log z. A block's scores (8 × T floats) stay in L1 from product to product.
// Backward, per block of 32 query rows (8 at a time for the scores): P = exp(S/√hs − logsumexp) (masked),
// dP = dO·Vᵀ, dS = P ⊙ (dP − rowdot(dO, O)), dQ = dS·K/√hs for the block's rows; then dK += dSᵀ·Q and
// dV += Pᵀ·dO, 32 rows deep, into per-head accumulators added to dqkv once at the end (dK times 1/√hs).
//
// Memory: a head's slices are 128-byte pieces of rows kilobytes apart, which hardware prefetchers do not
// run ahead on; a work item takes a few heads of one sequence and asks for the next head's rows while
// the current one computes, which took the stalls on qkv, output and dqkv off the critical path.
public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// Whether attention may take the fused small-head path (true by default; it is taken where AVX-512 is
    /// available and hs ≤ <see cref="FusedAttentionMaxHeadSize"/>). Tests and benchmarks turn it off to
    /// run the generic path on the same machine.
    /// </summary>
    internal bool FusedAttention { get; init; } = true;

    /// <summary>The widest head the fused path takes; wider heads have enough work per element for the GEMM.</summary>
    internal const int FusedAttentionMaxHeadSize = 64;

    private const int FusedRows = 8, FusedCols = 32;

    // Backward query blocks are 32 rows, so the key-gradient products run 32 steps deep per tile load/store
    // of their accumulators (8 steps cost as much in loads and stores as in arithmetic).
    private const int BackwardRows = 32;

    [ThreadStatic] private static float[]? t_fusedAttention;

    /// <summary>Whether a head of <paramref name="hs"/> channels takes the fused path on this machine.</summary>
    internal bool UsesFusedAttentionFor(int hs) => FusedAttention && Vector512.IsHardwareAccelerated && hs <= FusedAttentionMaxHeadSize;

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>
    /// Runs body(sequence, head, nextSequence, nextHead) for every pair, a few consecutive heads of one sequence
    /// per work item: a head's slices of qkv, output and gradients are 128-byte pieces of rows kilobytes apart,
    /// which the hardware does not fetch ahead, so while one head computes, the head this thread most likely
    /// takes next is asked for: the item's next head, or after its last head the first head of the item
    /// Threads places on (items are taken in turn); nextSequence is −1 where there is none. Items stay at
    /// least four per thread where the batch allows, for balance.
    /// </summary>
    private void ForHeadGroups(int batch, int heads, long costPerHead, Action<int, int, int, int> body)
    {
        int groupsPerSequence = Math.Clamp(4 * Threads / Math.Max(batch, 1), 1, heads), items = batch * groupsPerSequence;
        int FirstHead(int item) => item % groupsPerSequence * heads / groupsPerSequence;
        ForRows(items, costPerHead * heads / groupsPerSequence, item =>
        {
            int b = item / groupsPerSequence, h0 = FirstHead(item), h1 = FirstHead(item + 1) == 0 ? heads : FirstHead(item + 1);
            for (int h = h0; h < h1; h++)
            {
                int guess = item + Threads;
                if (h + 1 < h1) body(b, h, b, h + 1);
                else if (guess < items) body(b, h, guess / groupsPerSequence, FirstHead(guess));
                else body(b, h, -1, 0);
            }
        });
    }

    /// <summary>Where the head to prefetch lies, in floats from the current one: in qkv-shaped and in output-shaped tensors.</summary>
    private readonly struct NextHead(int sequences, int heads, int seqLen, int hs, int c3, int channels, bool exists)
    {
        public readonly bool Exists = exists;
        public readonly long InQkv = (long)sequences * seqLen * c3 + (long)heads * hs;
        public readonly long InRows = (long)sequences * seqLen * channels + (long)heads * hs;
    }

    /// <summary>Asks for the cache lines of rows [r0, r1) of a slice hs floats wide (row stride <paramref name="stride"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchRows(float* slice, int stride, int r0, int r1, int hs)
    {
        if (!Sse.IsSupported) return;
        for (int t = r0; t < r1; t++)
        {
            float* row = slice + (long)t * stride;
            for (int e = 0; e < hs; e += 16) Sse.Prefetch0(row + e);
            Sse.Prefetch0(row + hs - 1);
        }
    }

    /// <summary>
    /// One head's causal attention over <paramref name="seqLen"/> queries. With <paramref name="prefixLen"/> &gt; 0 the
    /// keys and values are first the <paramref name="prefixLen"/> rows at <paramref name="prefixK"/> and
    /// <paramref name="prefixV"/> (a shared prompt's, same row stride) and then the query rows' own, and query i sees
    /// the whole prefix and its own keys up to itself (<see cref="PrefixAttentionForward"/>).
    /// </summary>
    private static void FusedAttentionForwardHead(float* q, float* k, float* v, float* outHead, float* lseRow,
        int seqLen, int hs, int channels, int c3, float scale, NextHead next, float* prefixK = null, float* prefixV = null, int prefixLen = 0)
    {
        int tp = RoundUp(prefixLen + seqLen, FusedCols), dp = RoundUp(hs, FusedCols);
        int need = 2 * tp * dp + hs * tp + FusedRows * tp + FusedRows * dp + FusedRows;
        fixed (float* scratch = Scratch(ref t_fusedAttention, need))
        {
            float* qs = scratch, vp = qs + tp * dp, kt = vp + tp * dp, s = kt + hs * tp, ob = s + FusedRows * tp, inv = ob + FusedRows * dp;
            // Heads of a multiple of 32 are read where they lie; others are copied with zero columns up to dp.
            // A prefix's values and the rows' own are copied into one run of rows.
            float* qa = q, vb = v;
            int ldq = c3, ldv = c3;
            if (hs != dp)
            {
                CopyRowsPadded(qs, q, c3, seqLen, hs, tp, dp);
                qa = qs; ldq = dp;
            }
            if (hs != dp || prefixLen > 0)
            {
                CopyRowsPadded(vp, prefixV, v, c3, prefixLen, seqLen, hs, tp, dp);
                vb = vp; ldv = dp;
            }
            CopyTransposed(kt, prefixK, k, c3, prefixLen, seqLen, hs, tp);
            for (int r0 = 0; r0 < seqLen; r0 += FusedRows)
            {
                int keys = prefixLen + Math.Min(r0 + FusedRows, seqLen), width = RoundUp(keys, FusedCols);
                int rows = Math.Min(FusedRows, seqLen - r0);
                if (next.Exists)
                {
                    PrefetchRows(q + next.InQkv, c3, r0, r0 + rows, hs);
                    PrefetchRows(k + next.InQkv, c3, r0, r0 + rows, hs);
                    PrefetchRows(v + next.InQkv, c3, r0, r0 + rows, hs);
                    PrefetchRows(outHead + next.InRows, channels, r0, r0 + rows, hs);
                }
                // S = Q·Kᵀ, unscaled: 1/√hs is folded into the exponent below.
                for (int j0 = 0; j0 < width; j0 += FusedCols)
                    Tile8x32(s + j0, tp, qa + (long)r0 * ldq, ldq, 1, kt + j0, tp, hs, rows, false);
                for (int i = 0; i < rows; i++)
                {
                    float* row = s + (long)i * tp;
                    int live = prefixLen + r0 + i + 1;
                    float max = MaxOfPrefix(row, live) * scale;
                    float sum = ExpOfPrefix(row, live, width, scale, max);
                    lseRow[r0 + i] = max + MathF.Log(sum);
                    inv[i] = 1f / sum;
                }
                // Rows past the sequence (a last block's padding) repeat its last real row: computed, never stored.
                for (int c0 = 0; c0 < dp; c0 += FusedCols)
                    Tile8x32(ob + c0, dp, s, tp, 1, vb + c0, ldv, keys, FusedRows, false);
                for (int i = 0; i < rows; i++)
                    ScaleInto(outHead + (long)(r0 + i) * channels, ob + (long)i * dp, inv[i], hs);
            }
        }
    }

    /// <summary>
    /// The gradient of <see cref="FusedAttentionForwardHead"/>, added onto dq, dk and dv (and, with a prefix, onto
    /// <paramref name="dPrefixK"/> and <paramref name="dPrefixV"/> for the prefix's keys and values). With
    /// <paramref name="prefixInScratch"/> the previous call on this thread had the same prefix and lengths, so its copies
    /// of the prefix's keys and values are still in the scratch and are not made again (a prompt's G rows in turn).
    /// </summary>
    private static void FusedAttentionBackwardHead(float* q, float* k, float* v, float* oHead, float* dOHead, float* lseRow,
        float* dq, float* dk, float* dv, int seqLen, int hs, int channels, int c3, float scale, NextHead next,
        float* prefixK = null, float* prefixV = null, float* dPrefixK = null, float* dPrefixV = null, int prefixLen = 0, bool prefixInScratch = false)
    {
        int tp = RoundUp(prefixLen + seqLen, FusedCols), dp = RoundUp(hs, FusedCols);
        int need = 5 * tp * dp + 2 * hs * tp + 2 * BackwardRows * tp + FusedRows * dp;
        fixed (float* scratch = Scratch(ref t_fusedAttention, need))
        {
            float* qs = scratch, kp = qs + tp * dp, dop = kp + tp * dp, dkAcc = dop + tp * dp, dvAcc = dkAcc + tp * dp;
            float* kt = dvAcc + tp * dp, vt = kt + hs * tp, p = vt + hs * tp, ds = p + BackwardRows * tp, dqb = ds + BackwardRows * tp;
            float* qa = q, kb = k, da = dOHead;
            int ldq = c3, ldk = c3, ldd = channels;
            if (hs != dp)
            {
                CopyRowsPadded(qs, q, c3, seqLen, hs, tp, dp);
                CopyRowsPadded(dop, dOHead, channels, seqLen, hs, tp, dp);
                qa = qs; da = dop; ldq = ldd = dp;
            }
            if (hs != dp || prefixLen > 0)
            {
                CopyRowsPadded(kp, prefixInScratch ? null : prefixK, k, c3, prefixLen, seqLen, hs, tp, dp);
                kb = kp; ldk = dp;
            }
            CopyTransposed(kt, prefixInScratch ? null : prefixK, k, c3, prefixLen, seqLen, hs, tp);
            CopyTransposed(vt, prefixInScratch ? null : prefixV, v, c3, prefixLen, seqLen, hs, tp);
            new Span<float>(dkAcc, 2 * tp * dp).Clear();
            for (int r0 = 0; r0 < seqLen; r0 += BackwardRows)
            {
                // Every 8-row part of the block meets the same key tiles: the block's last row rounded up to 32.
                int keys = prefixLen + Math.Min(r0 + BackwardRows, seqLen), width = RoundUp(keys, FusedCols);
                for (int i0 = 0; i0 < BackwardRows; i0 += FusedRows)
                {
                    int first = r0 + i0;
                    float* pPart = p + (long)i0 * tp, dsPart = ds + (long)i0 * tp;
                    int rows = Math.Clamp(seqLen - first, 0, FusedRows);
                    if (next.Exists && rows > 0)
                    {
                        PrefetchRows(q + next.InQkv, c3, first, first + rows, hs);
                        PrefetchRows(k + next.InQkv, c3, first, first + rows, hs);
                        PrefetchRows(v + next.InQkv, c3, first, first + rows, hs);
                        PrefetchRows(oHead + next.InRows, channels, first, first + rows, hs);
                        PrefetchRows(dOHead + next.InRows, channels, first, first + rows, hs);
                        PrefetchRows(dq + next.InQkv, c3, first, first + rows, hs);
                        PrefetchRows(dk + next.InQkv, c3, first, first + rows, hs);
                        PrefetchRows(dv + next.InQkv, c3, first, first + rows, hs);
                    }
                    if (rows > 0)
                        for (int j0 = 0; j0 < width; j0 += FusedCols)
                        {
                            Tile8x32(pPart + j0, tp, qa + (long)first * ldq, ldq, 1, kt + j0, tp, hs, rows, false);
                            Tile8x32(dsPart + j0, tp, da + (long)first * ldd, ldd, 1, vt + j0, tp, hs, rows, false);
                        }
                    for (int i = 0; i < rows; i++)
                    {
                        int t = first + i;
                        float d = DotProduct(dOHead + (long)t * channels, oHead + (long)t * channels, hs);
                        SoftmaxBackwardPrefix(pPart + (long)i * tp, dsPart + (long)i * tp, prefixLen + t + 1, width, scale, lseRow[t], d);
                    }
                    // Padding rows must add nothing to dK and dV.
                    for (int i = rows; i < FusedRows; i++)
                    {
                        new Span<float>(pPart + (long)i * tp, width).Clear();
                        new Span<float>(dsPart + (long)i * tp, width).Clear();
                    }
                    if (rows == 0) continue;
                    // dQ[part] = dS·K / √hs
                    for (int c0 = 0; c0 < dp; c0 += FusedCols)
                        Tile8x32(dqb + c0, dp, dsPart, tp, 1, kb + c0, ldk, prefixLen + first + rows, FusedRows, false);
                    for (int i = 0; i < rows; i++)
                        MultiplyAddInto(dq + (long)(first + i) * c3, dqb + (long)i * dp, scale, hs);
                }
                // dK[0..keys) += dSᵀ·Q[block] (1/√hs applied at the end) ; dV[0..keys) += Pᵀ·dO[block]: A read
                // transposed (row step 1, column step tp), the block's rows as the inner dimension.
                int blockRows = Math.Min(BackwardRows, seqLen - r0);
                for (int j0 = 0; j0 < keys; j0 += FusedRows)
                    for (int c0 = 0; c0 < dp; c0 += FusedCols)
                    {
                        Tile8x32(dkAcc + (long)j0 * dp + c0, dp, ds + j0, 1, tp, qa + (long)r0 * ldq + c0, ldq, blockRows, FusedRows, true);
                        Tile8x32(dvAcc + (long)j0 * dp + c0, dp, p + j0, 1, tp, da + (long)r0 * ldd + c0, ldd, blockRows, FusedRows, true);
                    }
            }
            for (int t = 0; t < prefixLen + seqLen; t++)
            {
                long own = (long)(t - prefixLen) * c3;
                MultiplyAddInto(t < prefixLen ? dPrefixK + (long)t * c3 : dk + own, dkAcc + (long)t * dp, scale, hs);
                MultiplyAddInto(t < prefixLen ? dPrefixV + (long)t * c3 : dv + own, dvAcc + (long)t * dp, 1f, hs);
            }
        }
    }

    /// <summary>
    /// dst[t, e] = src[t·stride + e] for t &lt; rows, e &lt; width; zero elsewhere in the tp × dp block (padding
    /// columns and rows).
    /// </summary>
    private static void CopyRowsPadded(float* dst, float* src, int stride, int rows, int width, int tp, int dp)
    {
        for (int t = 0; t < rows; t++)
        {
            float* d = dst + (long)t * dp, s = src + (long)t * stride;
            int e = 0;
            for (; e + 16 <= width; e += 16) Vector512.Store(Vector512.Load(s + e), d + e);
            for (; e < width; e++) d[e] = s[e];
            for (; e < dp; e++) d[e] = 0f;
        }
        new Span<float>(dst + (long)rows * dp, (tp - rows) * dp).Clear();
    }

    /// <summary>
    /// A prefix's rows then a sequence's own (both of row stride <paramref name="stride"/>), as <see cref="CopyRowsPadded(float*, float*, int, int, int, int, int)"/>
    /// copies one run; a null <paramref name="prefix"/> leaves the first <paramref name="prefixLen"/> rows as they are.
    /// </summary>
    private static void CopyRowsPadded(float* dst, float* prefix, float* own, int stride, int prefixLen, int rows, int width, int tp, int dp)
    {
        if (prefix != null) CopyRowsPadded(dst, prefix, stride, prefixLen, width, prefixLen, dp);
        CopyRowsPadded(dst + (long)prefixLen * dp, own, stride, rows, width, tp - prefixLen, dp);
    }

    /// <summary>
    /// A prefix's rows then a sequence's own, transposed into one run of columns (see <see cref="CopyTransposed(float*, float*, int, int, int, int, int)"/>);
    /// a null <paramref name="prefix"/> leaves the first <paramref name="prefixLen"/> columns as they are.
    /// </summary>
    private static void CopyTransposed(float* dst, float* prefix, float* own, int stride, int prefixLen, int rows, int width, int tp)
    {
        if (prefixLen > 0 && prefix != null) CopyTransposed(dst, prefix, stride, prefixLen, width, tp, 0);
        CopyTransposed(dst, own, stride, rows, width, tp, prefixLen);
    }

    /// <summary>
    /// dst[e, col0 + t] = src[t·stride + e] for t &lt; rows, e &lt; width; zero for col0 + rows ≤ column &lt; tp. Sixteen
    /// rows at a time are gathered into two vectors per column, so the stores are whole vectors.
    /// </summary>
    private static void CopyTransposed(float* dst, float* src, int stride, int rows, int width, int tp, int col0 = 0)
    {
        var offsets = Vector256<int>.Indices * Vector256.Create(stride);
        int t = 0;
        if (Avx2.IsSupported)
            for (; t + 16 <= rows; t += 16)
            {
                float* s = src + (long)t * stride, s8 = s + 8L * stride;
                for (int e = 0; e < width; e++)
                {
                    float* d = dst + (long)e * tp + col0 + t;
                    Vector256.Store(Avx2.GatherVector256(s + e, offsets, 4), d);
                    Vector256.Store(Avx2.GatherVector256(s8 + e, offsets, 4), d + 8);
                }
            }
        for (; t < rows; t++)
        {
            float* s = src + (long)t * stride;
            for (int e = 0; e < width; e++) dst[(long)e * tp + col0 + t] = s[e];
        }
        for (int e = 0; e < width; e++) new Span<float>(dst + (long)e * tp + col0 + rows, tp - col0 - rows).Clear();
    }

    /// <summary>Lanes j0..j0+15 that lie below <paramref name="live"/>, as an all-ones mask per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PrefixMask(int j0, int live) =>
        Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(j0), Vector512.Create(live)).AsSingle();

    /// <summary>max of row[0..live), live ≥ 1.</summary>
    private static float MaxOfPrefix(float* row, int live)
    {
        var vmax = Vector512.Create(float.NegativeInfinity);
        int j = 0;
        for (; j + 16 <= live; j += 16) vmax = Vector512.Max(vmax, Vector512.Load(row + j));
        if (j < live)
            vmax = Vector512.Max(vmax, Vector512.ConditionalSelect(PrefixMask(j, live), Vector512.Load(row + j), Vector512.Create(float.NegativeInfinity)));
        return MaxAcross(vmax);
    }

    /// <summary>The largest lane: the vector halved twice, then the last four lanes folded pairwise (a few shuffles, not 16 extractions).</summary>
    private static float MaxAcross(Vector512<float> v)
    {
        var m256 = Vector256.Max(v.GetLower(), v.GetUpper());
        var m128 = Vector128.Max(m256.GetLower(), m256.GetUpper());
        m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(2, 3, 0, 1)));
        m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(1, 0, 3, 2)));
        return m128.ToScalar();
    }

    /// <summary>row[j] = exp(scale·row[j] − shift) for j &lt; live, 0 for live ≤ j &lt; width (a multiple of 16); returns the sum.</summary>
    private static float ExpOfPrefix(float* row, int live, int width, float scale, float shift)
    {
        var vs = Vector512.Create(-shift);
        var vscale = Vector512.Create(scale);
        var sum = Vector512<float>.Zero;
        int j = 0;
        for (; j + 16 <= live; j += 16)
        {
            var e = VectorExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + j), vscale, vs));
            Vector512.Store(e, row + j);
            sum += e;
        }
        if (j < live)
        {
            var e = VectorExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + j), vscale, vs)) & PrefixMask(j, live);
            Vector512.Store(e, row + j);
            sum += e;
            j += 16;
        }
        for (; j < width; j += 16) Vector512.Store(Vector512<float>.Zero, row + j);
        return Vector512.Sum(sum);
    }

    /// <summary>
    /// One row of the backward pass over a padded row of width <paramref name="width"/> (a multiple of 16):
    /// p[j] = exp(scale·p[j] − logSumExp) and dp[j] = p[j]·(dp[j] − d) for j &lt; live, both 0 after.
    /// </summary>
    private static void SoftmaxBackwardPrefix(float* p, float* dp, int live, int width, float scale, float logSumExp, float d)
    {
        var vl = Vector512.Create(-logSumExp);
        var vscale = Vector512.Create(scale);
        var vd = Vector512.Create(d);
        int j = 0;
        for (; j + 16 <= live; j += 16)
        {
            var e = VectorExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(p + j), vscale, vl));
            Vector512.Store(e, p + j);
            Vector512.Store(e * (Vector512.Load(dp + j) - vd), dp + j);
        }
        if (j < live)
        {
            var e = VectorExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(p + j), vscale, vl)) & PrefixMask(j, live);
            Vector512.Store(e, p + j);
            Vector512.Store(e * (Vector512.Load(dp + j) - vd), dp + j);
            j += 16;
        }
        for (; j < width; j += 16)
        {
            Vector512.Store(Vector512<float>.Zero, p + j);
            Vector512.Store(Vector512<float>.Zero, dp + j);
        }
    }

    /// <summary>dst[e] = factor · src[e] for e &lt; length.</summary>
    private static void ScaleInto(float* dst, float* src, float factor, int length)
    {
        var f = Vector512.Create(factor);
        int e = 0;
        for (; e + 16 <= length; e += 16) Vector512.Store(Vector512.Load(src + e) * f, dst + e);
        for (; e < length; e++) dst[e] = factor * src[e];
    }

    /// <summary>
    /// C[8×32] = A·B, or C += A·B when <paramref name="accumulate"/>: A is 8 × k with element (r, p) at
    /// a[r·rowStep + p·colStep], B is k × 32 with row stride ldb, C has row stride ldc. Sixteen accumulators
    /// stay in registers for the whole inner loop. Only A's first <paramref name="rows"/> rows are read (rows
    /// after them repeat the last, so a tile at the end of a sequence reads nothing past it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8x32(float* c, int ldc, float* a, int rowStep, int colStep, float* b, int ldb, int k, int rows, bool accumulate)
    {
        var c00 = Vector512<float>.Zero; var c01 = Vector512<float>.Zero;
        var c10 = Vector512<float>.Zero; var c11 = Vector512<float>.Zero;
        var c20 = Vector512<float>.Zero; var c21 = Vector512<float>.Zero;
        var c30 = Vector512<float>.Zero; var c31 = Vector512<float>.Zero;
        var c40 = Vector512<float>.Zero; var c41 = Vector512<float>.Zero;
        var c50 = Vector512<float>.Zero; var c51 = Vector512<float>.Zero;
        var c60 = Vector512<float>.Zero; var c61 = Vector512<float>.Zero;
        var c70 = Vector512<float>.Zero; var c71 = Vector512<float>.Zero;
        long last = rows - 1;
        float* a0 = a, a1 = a + Math.Min(1, last) * rowStep, a2 = a + Math.Min(2, last) * rowStep, a3 = a + Math.Min(3, last) * rowStep;
        float* a4 = a + Math.Min(4, last) * rowStep, a5 = a + Math.Min(5, last) * rowStep, a6 = a + Math.Min(6, last) * rowStep, a7 = a + Math.Min(7, last) * rowStep;
        long o = 0;
        for (int p = 0; p < k; p++, o += colStep, b += ldb)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a0[o]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[o]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[o]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[o]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[o]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[o]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[o]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[o]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        if (accumulate)
        {
            c00 += Vector512.Load(c); c01 += Vector512.Load(c + 16);
            c10 += Vector512.Load(c + ldc); c11 += Vector512.Load(c + ldc + 16);
            c20 += Vector512.Load(c + 2 * ldc); c21 += Vector512.Load(c + 2 * ldc + 16);
            c30 += Vector512.Load(c + 3 * ldc); c31 += Vector512.Load(c + 3 * ldc + 16);
            c40 += Vector512.Load(c + 4 * ldc); c41 += Vector512.Load(c + 4 * ldc + 16);
            c50 += Vector512.Load(c + 5 * ldc); c51 += Vector512.Load(c + 5 * ldc + 16);
            c60 += Vector512.Load(c + 6 * ldc); c61 += Vector512.Load(c + 6 * ldc + 16);
            c70 += Vector512.Load(c + 7 * ldc); c71 += Vector512.Load(c + 7 * ldc + 16);
        }
        Vector512.Store(c00, c); Vector512.Store(c01, c + 16);
        Vector512.Store(c10, c + ldc); Vector512.Store(c11, c + ldc + 16);
        Vector512.Store(c20, c + 2 * ldc); Vector512.Store(c21, c + 2 * ldc + 16);
        Vector512.Store(c30, c + 3 * ldc); Vector512.Store(c31, c + 3 * ldc + 16);
        Vector512.Store(c40, c + 4 * ldc); Vector512.Store(c41, c + 4 * ldc + 16);
        Vector512.Store(c50, c + 5 * ldc); Vector512.Store(c51, c + 5 * ldc + 16);
        Vector512.Store(c60, c + 6 * ldc); Vector512.Store(c61, c + 6 * ldc + 16);
        Vector512.Store(c70, c + 7 * ldc); Vector512.Store(c71, c + 7 * ldc + 16);
    }
}
