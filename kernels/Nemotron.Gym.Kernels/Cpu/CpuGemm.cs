using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;

namespace Nemotron.Gym.Kernels.Cpu;

/// <summary>
/// Single-precision matrix product, C = alpha·op(A)·op(B) + beta·C, row-major.
///
/// The blocked scheme of Goto and BLIS, shaped for the small K (192–768) of the models trained here:
/// op(B) is packed whole, once per call (or once per weight version, see <see cref="PackedBLength"/>),
/// into panels of NR columns per KC block of rows; a register-blocked micro-kernel keeps an MR × NR tile
/// of C in vector registers for a whole KC block, so each loaded element feeds MR (or NR) fused
/// multiply-adds. A is read where it lies when it is stored row-major (the micro-kernel broadcasts from
/// MR row pointers; nothing to pack, which at K = 768 and N = 192 used to cost as much as a third of the
/// product) and packed into MR-row panels only when stored transposed. alpha is applied as a tile is
/// added into C. With AVX-512 the tile is 8 × 32 (16 zmm accumulators), otherwise 6 × 16 (12 ymm).
/// Threads share the row blocks, and also the column panels when there are too few rows (decoding);
/// each work item runs every KC block itself, so one product costs one fork/join (two when B is packed).
/// </summary>
internal static unsafe class CpuGemm
{
    private const int KC = 256;
    private const int MC = 96;

    private static readonly bool Wide = Vector512.IsHardwareAccelerated;
    private static readonly int MR = Wide ? 8 : 6;
    private static readonly int NR = Wide ? 32 : 16;

    [ThreadStatic] private static float* t_packA;
    [ThreadStatic] private static float* t_tile;
    [ThreadStatic] private static float* t_packB;
    [ThreadStatic] private static long t_packBLength;

    private static float* PackABuffer()
    {
        if (t_packA == null) t_packA = (float*)NativeMemory.AlignedAlloc((nuint)(MC * KC * sizeof(float) + 256), 64);
        return t_packA;
    }

    private static float* TileBuffer()
    {
        if (t_tile == null) t_tile = (float*)NativeMemory.AlignedAlloc((nuint)(8 * 32 * sizeof(float)), 64);
        return t_tile;
    }

    /// <summary>This thread's buffer for a packed B, grown as needed and kept (no allocation per product).</summary>
    private static float* PackBBuffer(long length)
    {
        if (t_packBLength < length)
        {
            if (t_packB != null) NativeMemory.AlignedFree(t_packB);
            t_packBLength = Math.Max(length, 2 * t_packBLength);
            t_packB = (float*)NativeMemory.AlignedAlloc((nuint)(t_packBLength * sizeof(float)), 64);
        }
        return t_packB;
    }

    [ThreadStatic] private static float* t_operand0, t_operand1;
    [ThreadStatic] private static long t_operand0Length, t_operand1Length;

    /// <summary>
    /// One of this thread's two kept, 64-byte aligned buffers for operands packed ahead by a caller (attention
    /// packs a head's keys once and reuses them for every query block); grown as needed.
    /// </summary>
    public static float* OperandBuffer(int slot, long length)
    {
        ref float* buffer = ref slot == 0 ? ref t_operand0 : ref t_operand1;
        ref long capacity = ref slot == 0 ? ref t_operand0Length : ref t_operand1Length;
        if (capacity < length)
        {
            if (buffer != null) NativeMemory.AlignedFree(buffer);
            capacity = Math.Max(length, 2 * capacity);
            buffer = (float*)NativeMemory.AlignedAlloc((nuint)(capacity * sizeof(float)), 64);
        }
        return buffer;
    }

    /// <summary>
    /// True when op(B) of k × n packs into a single K block, so its packed form for the first n' ≤ n columns
    /// is a prefix of the packed form for all n (attention packs its keys once and uses growing prefixes).
    /// </summary>
    public static bool PacksAsOneBlock(int k) => k <= KC;

    private static int PanelsB(int n) => (n + NR - 1) / NR;

    /// <summary>Floats a packed op(B) of k × n occupies (see <see cref="PackB"/>).</summary>
    public static long PackedBLength(int n, int k) => (long)PanelsB(n) * NR * k;

    /// <summary>
    /// Packs op(B) (k × n) whole: for each block of KC rows starting at pc, the panels of NR columns, each
    /// [kc][NR] and zero-padded past n; the block starts at pc × (panels · NR). <paramref name="dst"/> must be
    /// 64-byte aligned and hold <see cref="PackedBLength"/> floats.
    /// </summary>
    public static void PackB(float* dst, float* b, int ldb, bool transB, int k, int n, CpuWorkerPool? parallel) =>
        PackBBlocks(dst, b, ldb, transB, k, n, 0, k, parallel);

    /// <summary>Packs the KC blocks of op(B) between rows pcFrom (a multiple of KC) and pcTo, the first at dst.</summary>
    private static void PackBBlocks(float* dst, float* b, int ldb, bool transB, int k, int n, int pcFrom, int pcTo, CpuWorkerPool? parallel)
    {
        int panels = PanelsB(n), blocks = (pcTo - pcFrom + KC - 1) / KC, nr = NR;
        void Item(int item)
        {
            int block = item / panels, panel = item % panels;
            int pc = pcFrom + block * KC, kc = Math.Min(KC, k - pc), j0 = panel * nr, cols = Math.Min(nr, n - j0);
            float* d = dst + (long)(pc - pcFrom) * panels * nr + (long)panel * kc * nr;
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(pc + p) * ldb + j0;
                    float* row = d + p * nr;
                    if (cols == nr) Unsafe.CopyBlockUnaligned(row, src, (uint)(nr * sizeof(float)));
                    else
                    {
                        for (int j = 0; j < cols; j++) row[j] = src[j];
                        for (int j = cols; j < nr; j++) row[j] = 0f;
                    }
                }
            }
            else
            {
                // B stored n × k: column j of op(B) is row j of B, contiguous in p.
                for (int j = 0; j < nr; j++)
                {
                    if (j < cols)
                    {
                        float* src = b + (long)(j0 + j) * ldb + pc;
                        for (int p = 0; p < kc; p++) d[p * nr + j] = src[p];
                    }
                    else
                        for (int p = 0; p < kc; p++) d[p * nr + j] = 0f;
                }
            }
        }
        int items = panels * blocks;
        // Row-major B packs by row copies: below a few hundred thousand elements waking a second thread costs
        // more than it saves. Transposed B packs element by element, worth sharing from far smaller sizes.
        long worthSharing = transB ? 32 * 1024 : 256 * 1024;
        if (parallel != null && parallel.Threads > 1 && items >= 4 && (long)(pcTo - pcFrom) * n >= worthSharing)
            parallel.For(items, Item);
        else
            for (int i = 0; i < items; i++) Item(i);
    }

    /// <summary>
    /// The product on <paramref name="parallel"/>'s threads. Leading dimensions (elements between rows as
    /// stored) default to the packed sizes; larger ones address sub-matrices, e.g. one head's columns of qkv.
    /// <paramref name="packedB"/>, when given, is op(B) already laid out by <see cref="PackB"/> (b is then unused).
    /// <paramref name="allowTransposed"/> false keeps a wide Aᵀ·B from <see cref="GemmTransposed"/> (tests compare the two).
    /// </summary>
    public static void Gemm(float* c, float* a, float* b, int m, int n, int k, bool transA, bool transB,
        float alpha, float beta, CpuWorkerPool? parallel, int lda = 0, int ldb = 0, int ldc = 0, float* packedB = null, bool allowTransposed = true)
    {
        if (m <= 0 || n <= 0) return;
        if (lda <= 0) lda = transA ? m : k;
        if (ldb <= 0) ldb = transB ? k : n;
        if (ldc <= 0) ldc = n;
        if (k <= 0 || alpha == 0f)
        {
            ScaleC(c, m, n, ldc, beta);
            return;
        }
        if (allowTransposed && transA && !transB && packedB == null && n >= 2 * m && k >= KC)
        {
            GemmTransposed(c, a, b, m, n, k, alpha, beta, parallel, lda, ldb, ldc);
            return;
        }
        // With beta = 0 the first KC block stores its tiles instead of adding them to C, so C is neither
        // cleared first nor read back (at the demo's shapes C is megabytes: a pass over memory saved twice).
        if (beta != 0f) ScaleC(c, m, n, ldc, beta);
        bool overwriteFirst = beta == 0f;

        int threads = parallel?.Threads ?? 1;
        int panelsB = PanelsB(n), blocksM = (m + MC - 1) / MC;
        if (packedB == null && k >= SplitKFrom && (long)m * n <= SplitKLargestC)
        {
            GemmSplitK(c, a, b, m, n, k, transA, transB, alpha, overwriteFirst, parallel, lda, ldb, ldc);
            return;
        }
        // The rows shared evenly between the row blocks, each a multiple of MR: the RL sampler's 97–128 live rows
        // made a block of 96 and one of 1–32, so one thread did three times the other's work. Which rows go
        // together changes no sum. Every block has rows: m > (blocksM − 1)·MC ≥ (blocksM − 1)·mcEven.
        int mcEven = Math.Min(MC, ((m + blocksM - 1) / blocksM + MR - 1) / MR * MR);
        // Enough row blocks: one work item per block. Too few (decoding): also split the column panels,
        // so every core has work.
        int splitsN = blocksM >= threads ? 1 : Math.Min(panelsB, (threads + blocksM - 1) / blocksM * 2);
        int items = blocksM * splitsN;
        void Run(float* blocks, int pcFrom, int pcTo)
        {
            void Work(int item)
            {
                int ib = item / splitsN, js = item % splitsN;
                int ic = ib * mcEven, mc = Math.Min(mcEven, m - ic);
                int p0 = panelsB * js / splitsN, p1 = panelsB * (js + 1) / splitsN;
                if (p0 == p1) return;
                for (int pc = pcFrom; pc < pcTo; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    Macro(c, ldc, a, lda, transA, blocks + (long)(pc - pcFrom) * panelsB * NR, ic, mc, pc, kc, n, p0, p1, alpha, overwriteFirst && pc == 0);
                }
            }
            if (items == 1 || threads == 1)
                for (int i = 0; i < items; i++) Work(i);
            else
                parallel!.For(items, Work);
        }
        if (packedB != null)
            Run(packedB, 0, k);
        else if (PackedBLength(n, k) <= WholeBFloats)
        {
            // Small enough to stay in L2 packed whole: one pack, one pass over the work items.
            packedB = PackBBuffer(PackedBLength(n, k));
            PackB(packedB, b, ldb, transB, k, n, parallel);
            Run(packedB, 0, k);
        }
        else
        {
            // A long K (weight gradients: K = tokens): pack and use one KC block at a time, so the block is
            // still in cache when every row block reads it.
            float* block = PackBBuffer((long)KC * panelsB * NR);
            for (int pc = 0; pc < k; pc += KC)
            {
                PackBBlocks(block, b, ldb, transB, k, n, pc, Math.Min(k, pc + KC), parallel);
                Run(block, pc, Math.Min(k, pc + KC));
            }
        }
    }

    /// <summary>A thread's kept, 64-byte aligned buffer of at least <paramref name="length"/> floats, reallocated only to grow.</summary>
    private static float* KeptBuffer(ref float* buffer, ref long capacity, long length)
    {
        if (capacity < length)
        {
            if (buffer != null) NativeMemory.AlignedFree(buffer);
            capacity = length;
            buffer = (float*)NativeMemory.AlignedAlloc((nuint)(length * sizeof(float)), 64);
        }
        return buffer;
    }

    [ThreadStatic] private static float* t_transposedC;
    [ThreadStatic] private static long t_transposedCLength;

    /// <summary>
    /// Aᵀ·B with few rows and many columns (the MLP down projection's weight gradient, dyᵀ·h: 192 × 768 over the step's
    /// tokens) computed as its transpose, Cᵀ = Bᵀ·A, whose 768 rows make row blocks for every thread and whose packed B
    /// (A's 192 columns) stays in level 2, where packing the 768 columns of h per K block went to memory and ran at
    /// 39–45% of the peak. Cᵀ is kept in this thread's buffer: filled with (beta·C)ᵀ, the product added to it, then
    /// written back. Every element gets the same products added in the same order as the direct product (a fused
    /// multiply-add is the same whichever factor comes first, and the split of K depends only on K and C's size), so
    /// the result is bit-identical to it (<c>TransposedWeightGradientIsBitIdentical</c>).
    /// </summary>
    private static void GemmTransposed(float* c, float* a, float* b, int m, int n, int k, float alpha, float beta, CpuWorkerPool? parallel, int lda, int ldb, int ldc)
    {
        float* ct = KeptBuffer(ref t_transposedC, ref t_transposedCLength, (long)m * n);
        if (beta != 0f)
        {
            ScaleC(c, m, n, ldc, beta);
            Transpose(c, ldc, ct, m, m, n);
        }
        // op(A') = Bᵀ: B is stored k × n, row stride ldb; B' = A, stored k × m, row stride lda.
        Gemm(ct, b, a, n, m, k, transA: true, transB: false, alpha, beta == 0f ? 0f : 1f, parallel, lda: ldb, ldb: lda, ldc: m);
        Transpose(ct, m, c, ldc, n, m);
    }

    /// <summary>dst[j, i] = src[i, j] for src of rows × cols (row strides given), in 32 × 32 tiles that stay in level 1.</summary>
    private static void Transpose(float* src, int lds, float* dst, int ldd, int rows, int cols)
    {
        const int T = 32;
        for (int i0 = 0; i0 < rows; i0 += T)
            for (int j0 = 0; j0 < cols; j0 += T)
            {
                int i1 = Math.Min(rows, i0 + T), j1 = Math.Min(cols, j0 + T);
                for (int i = i0; i < i1; i++)
                {
                    float* row = src + (long)i * lds;
                    for (int j = j0; j < j1; j++) dst[(long)j * ldd + i] = row[j];
                }
            }
    }

    /// <summary>Products whose K (weight gradients: K = tokens) is at least this long split it in two (<see cref="GemmSplitK"/>).</summary>
    private const int SplitKFrom = 2048;
    /// <summary>... when C is at most this many floats (1 MB), so each half's C stays in level 2.</summary>
    private const long SplitKLargestC = 256 * 1024;

    [ThreadStatic] private static float* t_partialC;
    [ThreadStatic] private static long t_partialCLength;

    /// <summary>
    /// A product with a long K and a small C (the weight gradients: dyᵀ·x over thousands of tokens, C of 192 × 768):
    /// K is cut in two halves at a KC boundary, each half runs as its own work items (packing its own blocks of B, so
    /// no thread waits on a single-threaded pack between blocks, and C is read from level 2, not shared), and the
    /// second half's C, kept apart, is added at the end. Split by rows instead, the 192 rows of C made two work items
    /// that both waited on each block's pack of B, and ran at 28–42% of the two-thread peak. The halves are fixed by
    /// the shape, not the thread count, so one thread and many give the same sums (in another order than an unsplit
    /// product: last bits differ from it).
    /// </summary>
    private static void GemmSplitK(float* c, float* a, float* b, int m, int n, int k, bool transA, bool transB,
        float alpha, bool overwriteFirst, CpuWorkerPool? parallel, int lda, int ldb, int ldc)
    {
        const int parts = 2;
        int half = (k / KC + 1) / 2 * KC; // the first half's end, a multiple of KC
        int panelsB = PanelsB(n), blocksM = (m + MC - 1) / MC, threads = parallel?.Threads ?? 1;
        // More threads than halves: each half's row blocks are shared out too (this changes no sum's order).
        int rowGroups = Math.Clamp(threads / parts, 1, blocksM);
        float* partial = KeptBuffer(ref t_partialC, ref t_partialCLength, (long)m * n);
        void Work(int item)
        {
            int part = item / rowGroups, group = item % rowGroups;
            int kFrom = part == 0 ? 0 : half, kTo = part == 0 ? half : k;
            int ib0 = blocksM * group / rowGroups, ib1 = blocksM * (group + 1) / rowGroups;
            float* target = part == 0 ? c : partial;
            int ldt = part == 0 ? ldc : n;
            float* block = PackBBuffer((long)KC * panelsB * NR);
            for (int pc = kFrom; pc < kTo; pc += KC)
            {
                int kc = Math.Min(KC, kTo - pc);
                PackBBlocks(block, b, ldb, transB, pc + kc, n, pc, pc + kc, null);
                for (int ib = ib0; ib < ib1; ib++)
                {
                    int ic = ib * MC, mc = Math.Min(MC, m - ic);
                    Macro(target, ldt, a, lda, transA, block, ic, mc, pc, kc, n, 0, panelsB, alpha, pc == kFrom && (part == 1 || overwriteFirst));
                }
            }
        }
        int items = parts * rowGroups;
        if (threads == 1) for (int i = 0; i < items; i++) Work(i);
        else parallel!.For(items, Work);
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>(partial + (long)i * n, n), row);
        }
    }

    /// <summary>Largest packed B used whole (4 MB: beyond it, block by block, which costs C a trip to memory per K block).</summary>
    private const long WholeBFloats = 1024 * 1024;

    private static void ScaleC(float* c, int m, int n, int ldc, float beta)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>Packs op(A)[i0..i0+rows, pc..pc+kc] as one panel [kc][MR], zero-padded past rows.</summary>
    private static void PackAPanel(float* d, float* a, int lda, bool transA, int i0, int rows, int pc, int kc)
    {
        int mr = MR;
        if (!transA)
        {
            for (int r = 0; r < mr; r++)
            {
                if (r < rows)
                {
                    float* src = a + (long)(i0 + r) * lda + pc;
                    for (int p = 0; p < kc; p++) d[p * mr + r] = src[p];
                }
                else
                    for (int p = 0; p < kc; p++) d[p * mr + r] = 0f;
            }
        }
        else
        {
            // A stored k × m: row p of A holds column p of op(A), contiguous in i, so each packed row is one
            // short copy (a single 8-float vector move for a full AVX-512 panel).
            if (rows == 8 && mr == 8 && Vector256.IsHardwareAccelerated)
            {
                for (int p = 0; p < kc; p++)
                    Vector256.Store(Vector256.Load(a + (long)(pc + p) * lda + i0), d + p * 8);
                return;
            }
            for (int p = 0; p < kc; p++)
            {
                float* src = a + (long)(pc + p) * lda + i0;
                float* row = d + p * mr;
                for (int r = 0; r < rows; r++) row[r] = src[r];
                for (int r = rows; r < mr; r++) row[r] = 0f;
            }
        }
    }

    /// <summary>
    /// C[ic.., panels p0..p1) += alpha · op(A)[ic..ic+mc, pc..pc+kc] · (one KC block of packed B), or = when
    /// <paramref name="overwrite"/>.
    /// </summary>
    private static void Macro(float* c, int ldc, float* a, int lda, bool transA, float* packB, int ic, int mc, int pc, int kc, int n,
        int panelFrom, int panelTo, float alpha, bool overwrite)
    {
        int mr = MR, nr = NR;
        int panelsA = (mc + mr - 1) / mr;
        // Transposed A is packed into MR-row panels (each [kc][MR]); row-major A is read in place, except a
        // last panel with fewer than MR rows, which is packed so the micro-kernel never reads past A.
        float* packA = null;
        if (transA)
        {
            packA = PackABuffer();
            int fullPanels = mc / mr;
            if (mr == 8 && Vector256.IsHardwareAccelerated)
            {
                // Row by row: each stored row of A is read front to back once (its mc floats are contiguous),
                // and its 8-float pieces go to the panels' rows p. Panel by panel would revisit every row
                // once per panel, 3 KB apart, which left weight-gradient products waiting on memory.
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(pc + p) * lda + ic;
                    float* dst = packA + p * 8;
                    for (int ip = 0; ip < fullPanels; ip++)
                        Vector256.Store(Vector256.Load(src + ip * 8), dst + (long)ip * kc * 8);
                }
            }
            else
                for (int ip = 0; ip < fullPanels; ip++)
                    PackAPanel(packA + (long)ip * kc * mr, a, lda, true, ic + ip * mr, mr, pc, kc);
            if (fullPanels < panelsA)
                PackAPanel(packA + (long)fullPanels * kc * mr, a, lda, true, ic + fullPanels * mr, mc - fullPanels * mr, pc, kc);
        }
        else if (mc % mr != 0)
        {
            packA = PackABuffer();
            int ip = panelsA - 1;
            PackAPanel(packA + (long)ip * kc * mr, a, lda, false, ic + ip * mr, mc - ip * mr, pc, kc);
        }
        float* tile = TileBuffer();
        for (int jp = panelFrom; jp < panelTo; jp++)
        {
            int j0 = jp * nr;
            int cols = Math.Min(nr, n - j0);
            float* pb = packB + (long)jp * kc * nr;
            for (int ip = 0; ip < panelsA; ip++)
            {
                int i0 = ic + ip * mr;
                int rows = Math.Min(mr, ic + mc - i0);
                float* pa;
                nint rowStride, step;
                if (transA || rows < mr)
                {
                    pa = packA + (long)ip * kc * mr;
                    rowStride = 1;
                    step = mr;
                }
                else
                {
                    pa = a + (long)i0 * lda + pc;
                    rowStride = lda;
                    step = 1;
                }
                if (rows == mr && cols == nr)
                {
                    if (Wide) Kernel8x32(kc, pa, rowStride, step, pb, c + (long)i0 * ldc + j0, ldc, alpha, overwrite);
                    else Kernel6x16(kc, pa, rowStride, step, pb, c + (long)i0 * ldc + j0, ldc, alpha, overwrite);
                }
                else
                {
                    if (Wide) Kernel8x32(kc, pa, rowStride, step, pb, tile, nr, alpha, true);
                    else Kernel6x16(kc, pa, rowStride, step, pb, tile, nr, alpha, true);
                    for (int r = 0; r < rows; r++)
                    {
                        float* dst = c + (long)(i0 + r) * ldc + j0;
                        float* src = tile + r * nr;
                        if (overwrite) for (int j = 0; j < cols; j++) dst[j] = src[j];
                        else for (int j = 0; j < cols; j++) dst[j] += src[j];
                    }
                }
            }
        }
    }

    /// <summary>
    /// C[8×32] += alpha · A-panel · B-panel with 16 zmm accumulators (= with <paramref name="overwrite"/>).
    /// Row r of the A panel is element a[r·rowStride + p·step] (packed: rowStride 1, step 8; in place:
    /// rowStride lda, step 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(int kc, float* a, nint rowStride, nint step, float* b, float* c, int ldc, float alpha, bool overwrite)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        float* a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride,
            a4 = a + 4 * rowStride, a5 = a + 5 * rowStride, a6 = a + 6 * rowStride, a7 = a + 7 * rowStride;
        nint i = 0;
        for (int p = 0; p < kc; p++, i += step)
        {
            var b0 = Vector512.LoadAligned(b);
            var b1 = Vector512.LoadAligned(b + 16);
            var av = Vector512.Create(a0[i]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a1[i]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a2[i]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a3[i]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a4[i]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a5[i]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a6[i]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a7[i]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            b += 32;
        }
        var va = Vector512.Create(alpha);
        Store2(c, c00, c01, va, overwrite); c += ldc;
        Store2(c, c10, c11, va, overwrite); c += ldc;
        Store2(c, c20, c21, va, overwrite); c += ldc;
        Store2(c, c30, c31, va, overwrite); c += ldc;
        Store2(c, c40, c41, va, overwrite); c += ldc;
        Store2(c, c50, c51, va, overwrite); c += ldc;
        Store2(c, c60, c61, va, overwrite); c += ldc;
        Store2(c, c70, c71, va, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store2(float* c, Vector512<float> x0, Vector512<float> x1, Vector512<float> alpha, bool overwrite)
    {
        if (overwrite)
        {
            Vector512.Store(x0 * alpha, c);
            Vector512.Store(x1 * alpha, c + 16);
        }
        else
        {
            Vector512.Store(Vector512.FusedMultiplyAdd(x0, alpha, Vector512.Load(c)), c);
            Vector512.Store(Vector512.FusedMultiplyAdd(x1, alpha, Vector512.Load(c + 16)), c + 16);
        }
    }

    /// <summary>C[6×16] += alpha · A-panel · B-panel with 12 ymm accumulators (AVX2 machines); A as in <see cref="Kernel8x32"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* a, nint rowStride, nint step, float* b, float* c, int ldc, float alpha, bool overwrite)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride, a4 = a + 4 * rowStride, a5 = a + 5 * rowStride;
        nint i = 0;
        for (int p = 0; p < kc; p++, i += step)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var av = Vector256.Create(a0[i]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a1[i]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a2[i]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a3[i]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a4[i]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a5[i]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            b += 16;
        }
        var va = Vector256.Create(alpha);
        Store2(c, c00, c01, va, overwrite); c += ldc;
        Store2(c, c10, c11, va, overwrite); c += ldc;
        Store2(c, c20, c21, va, overwrite); c += ldc;
        Store2(c, c30, c31, va, overwrite); c += ldc;
        Store2(c, c40, c41, va, overwrite); c += ldc;
        Store2(c, c50, c51, va, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store2(float* c, Vector256<float> x0, Vector256<float> x1, Vector256<float> alpha, bool overwrite)
    {
        if (overwrite)
        {
            Vector256.Store(x0 * alpha, c);
            Vector256.Store(x1 * alpha, c + 8);
        }
        else
        {
            Vector256.Store(Vector256.FusedMultiplyAdd(x0, alpha, Vector256.Load(c)), c);
            Vector256.Store(Vector256.FusedMultiplyAdd(x1, alpha, Vector256.Load(c + 8)), c + 8);
        }
    }
}
