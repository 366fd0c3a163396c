namespace Nemotron.Gym.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    [ThreadStatic] private static float[]? t_prefixKeys, t_prefixGrads;

    /// <inheritdoc />
    public bool SupportsSharedPrefixes => true;

    /// <inheritdoc />
    /// <remarks>
    /// The prefix block is <see cref="AttentionForward"/> on its slice. A row's keys and values are its prefix's real
    /// tokens followed by its own, copied once per (row, head) into one contiguous run, so the row is the same blocked
    /// product as a plain sequence whose first L keys every query sees (PERF.md, "Training on shared prompts").
    /// </remarks>
    public void PrefixAttentionForward(Tensor output, Tensor logSumExp, Tensor qkv, SharedPrefixLayout layout, int channels, int heads)
    {
        CheckHeads(channels, heads, "prefix attention");
        layout.Validate();
        long np = layout.PrefixTokens, n = layout.Tokens;
        float* x = Read(qkv, n * 3 * channels, "prefix attention qkv");
        Write(output, DType.F32, n * channels, "prefix attention output");
        Write(logSumExp, DType.F32, n * heads, "prefix attention logsumexp");
        if (layout.Prefixes > 0)
            AttentionForward(output.Slice(0, np * channels), logSumExp.Slice(0, np * heads), qkv.Slice(0, np * 3 * channels),
                layout.Prefixes, layout.PrefixLen, channels, heads);
        float* o = Read(output, n * channels, "prefix attention output");
        float* lse = Read(logSumExp, n * heads, "prefix attention logsumexp");
        int hs = channels / heads, c3 = 3 * channels, t = layout.RowLen;
        float scale = 1f / MathF.Sqrt(hs);
        if (UsesFusedAttentionFor(hs))
        {
            // The small-head path's register tiles over the prefix's keys followed by the row's own, with no GEMM
            // calls of K = hs (PERF.md, "Shared prompts on the small-head path").
            ForRows(layout.Rows * heads, (long)t * (t + layout.PrefixLen) * hs, rh =>
            {
                int r = rh / heads, h = rh % heads, p = layout.PrefixOfRow[r];
                float* prefix = x + (long)p * layout.PrefixLen * c3 + h * hs;
                float* q = x + (np + (long)r * t) * c3 + h * hs;
                FusedAttentionForwardHead(q, q + channels, q + 2 * channels, o + (np + (long)r * t) * channels + h * hs,
                    lse + np * heads + ((long)r * heads + h) * t, t, hs, channels, c3, scale, NextRowHead(r, h, layout.Rows, heads, t, hs, c3, channels),
                    prefix + channels, prefix + 2 * channels, layout.PrefixLengths[p]);
            });
            return;
        }
        ForRows(layout.Rows * heads, (long)t * (t + layout.PrefixLen) * hs, rh =>
        {
            int r = rh / heads, h = rh % heads, p = layout.PrefixOfRow[r], l = layout.PrefixLengths[p], keys = l + t;
            float* prefix = x + (long)p * layout.PrefixLen * c3 + h * hs;
            float* q = x + (np + (long)r * t) * c3 + h * hs;
            float* outHead = o + (np + (long)r * t) * channels + h * hs;
            float* lseRow = lse + np * heads + ((long)r * heads + h) * t;
            fixed (float* kv = Scratch(ref t_prefixKeys, 2 * keys * hs))
            fixed (float* s = Scratch(ref t_attnScores, AttentionBlock * keys))
            {
                float* k = kv, v = kv + (long)keys * hs;
                GatherKeysAndValues(k, v, prefix, q, l, t, hs, channels, c3);
                for (int r0 = 0; r0 < t; r0 += AttentionBlock)
                {
                    int rows = Math.Min(AttentionBlock, t - r0), live = l + r0 + rows;
                    CpuGemm.Gemm(s, q + (long)r0 * c3, k, rows, live, hs, false, true, scale, 0f, null, c3, hs, live);
                    for (int i = 0; i < rows; i++)
                        lseRow[r0 + i] = SoftmaxRow(s + (long)i * live, l + r0 + i + 1, live);
                    CpuGemm.Gemm(outHead + (long)r0 * channels, s, v, rows, hs, live, false, false, 1f, 0f, null, live, hs, channels);
                }
            }
        });
    }

    /// <inheritdoc />
    /// <remarks>
    /// The prefix block's own backward runs first, on its slice. Then one work item per (prefix, head) takes that
    /// prefix's rows one after the other: it owns the prefix's keys and values of that head, so the gradients the G rows
    /// send to their shared prefix add up without races, and each row's own slice of dqkv belongs to it alone.
    /// </remarks>
    public void PrefixAttentionBackward(Tensor dqkv, Tensor doutput, Tensor qkv, Tensor output, Tensor logSumExp, SharedPrefixLayout layout, int channels, int heads)
    {
        CheckHeads(channels, heads, "prefix attention backward");
        layout.Validate();
        long np = layout.PrefixTokens, n = layout.Tokens;
        float* x = Read(qkv, n * 3 * channels, "prefix attention qkv");
        float* o = Read(output, n * channels, "prefix attention output");
        float* dout = Read(doutput, n * channels, "prefix attention doutput");
        float* lse = Read(logSumExp, n * heads, "prefix attention logsumexp");
        Write(dqkv, DType.F32, n * 3 * channels, "prefix attention dqkv");
        if (layout.Prefixes > 0)
            AttentionBackward(dqkv.Slice(0, np * 3 * channels), doutput.Slice(0, np * channels), qkv.Slice(0, np * 3 * channels),
                output.Slice(0, np * channels), logSumExp.Slice(0, np * heads), layout.Prefixes, layout.PrefixLen, channels, heads);
        float* dx = Read(dqkv, n * 3 * channels, "prefix attention dqkv");
        int hs = channels / heads, c3 = 3 * channels, t = layout.RowLen;
        float scale = 1f / MathF.Sqrt(hs);
        var rowsOf = new List<int>[layout.Prefixes];
        for (int i = 0; i < rowsOf.Length; i++) rowsOf[i] = [];
        for (int r = 0; r < layout.Rows; r++) rowsOf[layout.PrefixOfRow[r]].Add(r);
        long cost = (long)layout.Rows / Math.Max(1, layout.Prefixes) * t * (t + layout.PrefixLen) * hs * 2;
        if (UsesFusedAttentionFor(hs))
        {
            ForRows(layout.Prefixes * heads, cost, ph =>
            {
                int p = ph / heads, h = ph % heads, l = layout.PrefixLengths[p];
                float* prefix = x + (long)p * layout.PrefixLen * c3 + h * hs;
                float* dPrefix = dx + (long)p * layout.PrefixLen * c3 + h * hs;
                var rows = rowsOf[p];
                for (int i = 0; i < rows.Count; i++)
                {
                    int r = rows[i];
                    long row = np + (long)r * t;
                    float* q = x + row * c3 + h * hs, dq = dx + row * c3 + h * hs;
                    // The next row of this prefix is the next head this thread computes.
                    var next = i + 1 < rows.Count ? new NextHead(rows[i + 1] - r, 0, t, hs, c3, channels, true) : default;
                    FusedAttentionBackwardHead(q, q + channels, q + 2 * channels, o + row * channels + h * hs, dout + row * channels + h * hs,
                        lse + np * heads + ((long)r * heads + h) * t, dq, dq + channels, dq + 2 * channels, t, hs, channels, c3, scale, next,
                        prefix + channels, prefix + 2 * channels, dPrefix + channels, dPrefix + 2 * channels, l, prefixInScratch: i > 0);
                }
            });
            return;
        }
        ForRows(layout.Prefixes * heads, cost, ph =>
        {
            int p = ph / heads, h = ph % heads, l = layout.PrefixLengths[p], keys = l + t;
            float* prefix = x + (long)p * layout.PrefixLen * c3 + h * hs;
            float* dPrefix = dx + (long)p * layout.PrefixLen * c3 + h * hs;
            fixed (float* kv = Scratch(ref t_prefixKeys, 2 * keys * hs))
            fixed (float* dkv = Scratch(ref t_prefixGrads, 2 * keys * hs))
            fixed (float* pr = Scratch(ref t_attnScores, AttentionBlock * keys))
            fixed (float* dp = Scratch(ref t_attnGrads, AttentionBlock * keys))
            {
                float* k = kv, v = kv + (long)keys * hs, dk = dkv, dv = dkv + (long)keys * hs;
                foreach (int r in rowsOf[p])
                {
                    long row = np + (long)r * t;
                    float* q = x + row * c3 + h * hs, dq = dx + row * c3 + h * hs;
                    float* oHead = o + row * channels + h * hs, dOHead = dout + row * channels + h * hs;
                    float* lseRow = lse + np * heads + ((long)r * heads + h) * t;
                    GatherKeysAndValues(k, v, prefix, q, l, t, hs, channels, c3);
                    new Span<float>(dkv, 2 * keys * hs).Clear();
                    for (int r0 = 0; r0 < t; r0 += AttentionBlock)
                    {
                        int rows = Math.Min(AttentionBlock, t - r0), live = l + r0 + rows;
                        CpuGemm.Gemm(pr, q + (long)r0 * c3, k, rows, live, hs, false, true, scale, 0f, null, c3, hs, live);
                        CpuGemm.Gemm(dp, dOHead + (long)r0 * channels, v, rows, live, hs, false, true, 1f, 0f, null, channels, hs, live);
                        for (int i = 0; i < rows; i++)
                        {
                            int tt = r0 + i;
                            float d = DotProduct(dOHead + (long)tt * channels, oHead + (long)tt * channels, hs);
                            SoftmaxBackwardRow(pr + (long)i * live, dp + (long)i * live, l + tt + 1, live, lseRow[tt], d);
                        }
                        // dQ += scale·dS·K ; dK += scale·dSᵀ·Q ; dV += Pᵀ·dO, over the gathered keys.
                        CpuGemm.Gemm(dq + (long)r0 * c3, dp, k, rows, hs, live, false, false, scale, 1f, null, live, hs, c3);
                        CpuGemm.Gemm(dk, dp, q + (long)r0 * c3, live, hs, rows, true, false, scale, 1f, null, live, c3, hs);
                        CpuGemm.Gemm(dv, pr, dOHead + (long)r0 * channels, live, hs, rows, true, false, 1f, 1f, null, live, channels, hs);
                    }
                    // Scatter: the first l gathered keys are the prefix's, the rest the row's own.
                    for (int s = 0; s < keys; s++)
                    {
                        float* target = s < l ? dPrefix + (long)s * c3 : dq + (long)(s - l) * c3;
                        MultiplyAddInto(target + channels, dk + (long)s * hs, 1f, hs);
                        MultiplyAddInto(target + 2 * channels, dv + (long)s * hs, 1f, hs);
                    }
                }
            }
        });
    }

    /// <summary>Where the head after (row r, head h) lies, for prefetching: the row's next head, else the next row's first.</summary>
    private static NextHead NextRowHead(int r, int h, int rows, int heads, int t, int hs, int c3, int channels) =>
        h + 1 < heads ? new NextHead(0, 1, t, hs, c3, channels, true)
        : new NextHead(1, -(heads - 1), t, hs, c3, channels, r + 1 < rows);

    /// <summary>Copies one head's keys and values: the prefix's first l positions, then the row's t, each run hs wide.</summary>
    private static void GatherKeysAndValues(float* k, float* v, float* prefix, float* row, int l, int t, int hs, int channels, int c3)
    {
        for (int s = 0; s < l + t; s++)
        {
            float* src = s < l ? prefix + (long)s * c3 : row + (long)(s - l) * c3;
            new ReadOnlySpan<float>(src + channels, hs).CopyTo(new Span<float>(k + (long)s * hs, hs));
            new ReadOnlySpan<float>(src + 2 * channels, hs).CopyTo(new Span<float>(v + (long)s * hs, hs));
        }
    }
}
