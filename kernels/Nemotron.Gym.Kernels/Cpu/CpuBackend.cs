using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Nemotron.Gym.Kernels.Cpu;

/// <summary>
/// The reference backend, in C#: fp32 throughout, SIMD through System.Numerics.Tensors and
/// hand-written AVX-512/AVX2 kernels, rows spread over the machine's cores. It is the default
/// wherever no GPU is found, and every CUDA kernel is tested against it.
/// </summary>
public sealed unsafe partial class CpuBackend : IComputeBackend
{
    private readonly CpuWorkerPool _parallel;

    /// <param name="threads">Worker threads; 0 uses every core.</param>
    public CpuBackend(int threads = 0)
    {
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        _parallel = new CpuWorkerPool(Threads);
    }

    /// <summary>Worker threads used by the operations.</summary>
    public int Threads { get; }

    /// <inheritdoc />
    public string Name => "cpu";

    /// <inheritdoc />
    public string Description =>
        $"cpu: {Threads} thread{(Threads == 1 ? "" : "s")}, {(Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "scalar")}";

    /// <inheritdoc />
    public void Dispose() => _parallel.Dispose();

    // ---- helpers -------------------------------------------------------------------------------

    private CpuTensor Own(Tensor t, string role)
    {
        if (t is not CpuTensor c || !ReferenceEquals(t.Backend, this))
            throw new ArgumentException($"{role}: tensor '{t.Name}' does not belong to this CPU backend (it is on {t.Backend.Name})");
        return c;
    }

    /// <summary>This backend's tensor, checked for its type and size, marked written when it will be.</summary>
    private CpuTensor Checked(Tensor t, DType dtype, long needed, string role, bool write)
    {
        var c = Own(t, role);
        t.Require(dtype, needed, role);
        if (write) c.MarkWritten();
        return c;
    }

    private float* Write(Tensor t, DType dtype, long needed, string role) => Checked(t, dtype, needed, role, write: true).F;
    private float* Read(Tensor t, long needed, string role) => Checked(t, DType.F32, needed, role, write: false).F;
    private ushort* WriteBf16(Tensor t, long needed, string role) => Checked(t, DType.BF16, needed, role, write: true).H;
    private ushort* ReadBf16(Tensor t, long needed, string role) => Checked(t, DType.BF16, needed, role, write: false).H;
    private int* ReadInts(Tensor t, long needed, string role) => Checked(t, DType.I32, needed, role, write: false).I;

    /// <summary>Runs body(start, end) over [0, count) in one chunk per thread; inline when small.</summary>
    private void ForChunks(long count, long costPerItem, Action<long, long> body)
    {
        if (count <= 0) return;
        int chunks = (int)Math.Min(Threads, count);
        if (chunks <= 1 || count * costPerItem < 32_768)
        {
            body(0, count);
            return;
        }
        _parallel.For(chunks, i => body(count * i / chunks, count * (i + 1) / chunks));
    }

    /// <summary>Cost (in the callers' units, about one per float touched) from which a row is a work item of its own.</summary>
    private const long RowItemCost = 16_384;

    /// <summary>
    /// Runs body(i) for each row; inline when the whole job is small. Costly rows are claimed one at a time, so uneven
    /// ones balance; cheap rows (a decoding step's 64 norms of 192 channels) go as one run per thread
    /// (<see cref="ForChunks"/>): claimed one by one, the claims cost more than the rows and two threads were slower
    /// than one.
    /// </summary>
    private void ForRows(int rows, long costPerRow, Action<int> body)
    {
        if (rows <= 0) return;
        if (Threads == 1 || rows == 1 || rows * costPerRow < 32_768)
        {
            for (int i = 0; i < rows; i++) body(i);
            return;
        }
        if (costPerRow >= RowItemCost) _parallel.For(rows, body);
        else ForChunks(rows, costPerRow, (start, end) => { for (long i = start; i < end; i++) body((int)i); });
    }

    // ---- memory --------------------------------------------------------------------------------

    /// <inheritdoc />
    public Tensor Allocate(DType dtype, long length, string name) => new CpuTensor(this, dtype, length, name);

    /// <inheritdoc />
    public bool SupportsBf16Caches => true;

    /// <inheritdoc />
    public void Upload(Tensor destination, ReadOnlySpan<float> source, long offset = 0)
    {
        if (destination.DType == DType.BF16)
        {
            ushort* h = WriteBf16(destination, offset + source.Length, "upload");
            fixed (float* f = source) Bf16Bits.FromFloats(f, h + offset, source.Length);
            return;
        }
        float* d = Write(destination, DType.F32, offset + source.Length, "upload");
        source.CopyTo(new Span<float>(d + offset, source.Length));
    }

    /// <inheritdoc />
    public void Upload(Tensor destination, ReadOnlySpan<int> source, long offset = 0)
    {
        var c = Own(destination, "upload");
        destination.Require(DType.I32, offset + source.Length, "upload");
        c.MarkWritten();
        source.CopyTo(new Span<int>(c.I + offset, source.Length));
    }

    /// <inheritdoc />
    public void Download(Tensor source, Span<float> destination, long offset = 0)
    {
        if (source.DType == DType.BF16)
        {
            ushort* h = ReadBf16(source, offset + destination.Length, "download");
            fixed (float* f = destination) Bf16Bits.ToFloats(h + offset, f, destination.Length);
            return;
        }
        float* s = Read(source, offset + destination.Length, "download");
        new ReadOnlySpan<float>(s + offset, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public void Download(Tensor source, Span<int> destination, long offset = 0)
    {
        int* s = ReadInts(source, offset + destination.Length, "download");
        new ReadOnlySpan<int>(s + offset, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count)
    {
        if (destination.DType != source.DType)
            throw new ArgumentException($"copy: '{source.Name}' is {source.DType} but '{destination.Name}' is {destination.DType}");
        var d = Own(destination, "copy");
        var s = Own(source, "copy");
        destination.Require(destination.DType, destinationOffset + count, "copy destination");
        source.Require(source.DType, sourceOffset + count, "copy source");
        d.MarkWritten();
        int size = source.DType.Bytes();
        Buffer.MemoryCopy(s.Bytes + sourceOffset * size, d.Bytes + destinationOffset * size, count * size, count * size);
    }

    /// <inheritdoc />
    public void Fill(Tensor tensor, float value)
    {
        float* p = Write(tensor, DType.F32, tensor.Length, "fill");
        ForChunks(tensor.Length, 1, (s, e) => new Span<float>(p + s, (int)(e - s)).Fill(value));
    }

    /// <inheritdoc />
    public void Synchronize() { }

    // ---- elementwise ---------------------------------------------------------------------------

    /// <inheritdoc />
    public void Add(Tensor output, Tensor a, Tensor b, long n)
    {
        float* pa = Read(a, n, "add a"), pb = Read(b, n, "add b");
        float* po = Write(output, DType.F32, n, "add output");
        ForChunks(n, 1, (s, e) => TensorPrimitives.Add(
            new ReadOnlySpan<float>(pa + s, (int)(e - s)), new ReadOnlySpan<float>(pb + s, (int)(e - s)), new Span<float>(po + s, (int)(e - s))));
    }

    /// <inheritdoc />
    public void Scale(Tensor tensor, float scale, long n)
    {
        float* p = Write(tensor, DType.F32, n, "scale");
        ForChunks(n, 1, (s, e) => TensorPrimitives.Multiply(new ReadOnlySpan<float>(p + s, (int)(e - s)), scale, new Span<float>(p + s, (int)(e - s))));
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor tensor, long n)
    {
        float* p = Read(tensor, n, "sum of squares");
        const int block = 4096;
        long blocks = (n + block - 1) / block;
        var partial = new double[blocks];
        ForChunks(blocks, block, (s, e) =>
        {
            for (long i = s; i < e; i++)
            {
                long start = i * block;
                int len = (int)Math.Min(block, n - start);
                partial[i] = TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(p + start, len));
            }
        });
        double total = 0;
        foreach (var x in partial) total += x;
        return total;
    }

    private const float GeluScale = 0.7978845608028654f; // sqrt(2/pi)
    private const float GeluCube = 0.044715f;

    // GELU with the tanh approximation, one pass over the data with the logistic form of tanh:
    // 0.5·(1 + tanh(u)) = σ(2u), so gelu(x) = x·σ(2u) and gelu'(x) = σ + 2·x·σ·(1 − σ)·c·(1 + 3k·x²),
    // u = c·(x + k·x³). For very negative x, exp(−2u) is huge (or +∞ in the scalar tail) and σ ≈ 0, the right limit.

    /// <inheritdoc />
    public void GeluForward(Tensor output, Tensor input, long n)
    {
        float* x = Read(input, n, "gelu input");
        float* y = Write(output, DType.F32, n, "gelu output");
        ForChunks(n, 8, (s, e) => GeluRange(y, null, x, s, e));
    }

    /// <inheritdoc />
    public void GeluBackward(Tensor dinput, Tensor doutput, Tensor input, long n)
    {
        float* x = Read(input, n, "gelu input");
        float* dy = Read(doutput, n, "gelu doutput");
        float* dx = Write(dinput, DType.F32, n, "gelu dinput");
        ForChunks(n, 12, (s, e) => GeluRange(dx, dy, x, s, e));
    }

    /// <summary>Without dy: y[i] = gelu(x[i]). With dy: y[i] += gelu'(x[i])·dy[i].</summary>
    private static void GeluRange(float* y, float* dy, float* x, long start, long end)
    {
        long i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            var c = Vector512.Create(2f * GeluScale);
            var ck = Vector512.Create(2f * GeluScale * GeluCube);
            var k3 = Vector512.Create(3f * GeluCube);
            var one = Vector512<float>.One;
            for (; i + 16 <= end; i += 16)
            {
                var xv = Vector512.Load(x + i);
                var x2 = xv * xv;
                var twoU = xv * Vector512.FusedMultiplyAdd(ck, x2, c);
                var sig = one / (one + VectorExp.Exp(-twoU));
                if (dy == null) Vector512.Store(xv * sig, y + i);
                else
                {
                    var grad = Vector512.FusedMultiplyAdd(c * xv * sig * (one - sig), Vector512.FusedMultiplyAdd(k3, x2, one), sig);
                    Vector512.Store(Vector512.FusedMultiplyAdd(grad, Vector512.Load(dy + i), Vector512.Load(y + i)), y + i);
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var c = Vector256.Create(2f * GeluScale);
            var ck = Vector256.Create(2f * GeluScale * GeluCube);
            var k3 = Vector256.Create(3f * GeluCube);
            var one = Vector256<float>.One;
            for (; i + 8 <= end; i += 8)
            {
                var xv = Vector256.Load(x + i);
                var x2 = xv * xv;
                var twoU = xv * Vector256.FusedMultiplyAdd(ck, x2, c);
                var sig = one / (one + Vector256.Exp(-twoU));
                if (dy == null) Vector256.Store(xv * sig, y + i);
                else
                {
                    var grad = Vector256.FusedMultiplyAdd(c * xv * sig * (one - sig), Vector256.FusedMultiplyAdd(k3, x2, one), sig);
                    Vector256.Store(Vector256.FusedMultiplyAdd(grad, Vector256.Load(dy + i), Vector256.Load(y + i)), y + i);
                }
            }
        }
        for (; i < end; i++)
        {
            float xs = x[i], x2 = xs * xs;
            float sig = 1f / (1f + MathF.Exp(-2f * GeluScale * xs * (1f + GeluCube * x2)));
            if (dy == null) y[i] = xs * sig;
            else y[i] += (sig + 2f * GeluScale * xs * sig * (1f - sig) * (1f + 3f * GeluCube * x2)) * dy[i];
        }
    }

    // ---- matrix products -----------------------------------------------------------------------

    /// <inheritdoc />
    public void MatMul(Tensor c, Tensor a, Tensor b, int m, int n, int k, bool transposeA, bool transposeB,
        float alpha = 1f, float beta = 0f, int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0)
    {
        if (m < 0 || n < 0 || k < 0 || batch < 1)
            throw new ArgumentException($"matmul: bad dimensions m={m} n={n} k={k} batch={batch}");
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        if (batch > 1 && (strideA < sizeA && strideA != 0 || strideB < sizeB && strideB != 0 || strideC < sizeC))
            throw new ArgumentException($"matmul: strides ({strideA}, {strideB}, {strideC}) overlap matrices of {sizeA}, {sizeB}, {sizeC} elements");
        float* pa = Read(a, strideA * (batch - 1) + sizeA, "matmul A");
        float* pb = Read(b, strideB * (batch - 1) + sizeB, "matmul B");
        float* pc = Write(c, DType.F32, strideC * (batch - 1) + sizeC, "matmul C");
        float[]? packedCopy = null;
        float* packedB = batch == 1 ? PackedWeight((CpuTensor)b, pb, k, n, transposeB, out packedCopy) : null;
        for (int i = 0; i < batch; i++)
            CpuGemm.Gemm(pc + i * strideC, pa + i * strideA, pb + i * strideB, m, n, k, transposeA, transposeB, alpha, beta, _parallel, packedB: packedB);
        GC.KeepAlive(packedCopy); // the pointer above is into this pinned array
    }

    // ---- embedding and normalization -------------------------------------------------------------

    /// <inheritdoc />
    public void EmbeddingForward(Tensor output, Tensor tokens, Tensor positions, Tensor tokenTable, Tensor positionTable, int n, int channels)
    {
        int* tok = ReadInts(tokens, n, "embedding tokens");
        int* pos = ReadInts(positions, n, "embedding positions");
        float* wte = Read(tokenTable, 0, "embedding token table");
        float* wpe = Read(positionTable, 0, "embedding position table");
        float* o = Write(output, DType.F32, (long)n * channels, "embedding output");
        long vocab = tokenTable.Length / channels, ctx = positionTable.Length / channels;
        for (int i = 0; i < n; i++)
        {
            if ((uint)tok[i] >= vocab) throw new ArgumentOutOfRangeException(nameof(tokens), $"embedding: token id {tok[i]} at row {i} is outside the vocabulary of {vocab}");
            if ((uint)pos[i] >= ctx) throw new ArgumentOutOfRangeException(nameof(positions), $"embedding: position {pos[i]} at row {i} is outside the context of {ctx}");
        }
        ForRows(n, channels, i => TensorPrimitives.Add(
            new ReadOnlySpan<float>(wte + (long)tok[i] * channels, channels),
            new ReadOnlySpan<float>(wpe + (long)pos[i] * channels, channels),
            new Span<float>(o + (long)i * channels, channels)));
    }

    /// <inheritdoc />
    public void EmbeddingBackward(Tensor dTokenTable, Tensor dPositionTable, Tensor doutput, Tensor tokens, Tensor positions, int n, int channels)
    {
        int* tok = ReadInts(tokens, n, "embedding tokens");
        int* pos = ReadInts(positions, n, "embedding positions");
        float* dout = Read(doutput, (long)n * channels, "embedding doutput");
        float* dwte = Write(dTokenTable, DType.F32, 0, "embedding token table gradient");
        float* dwpe = Write(dPositionTable, DType.F32, 0, "embedding position table gradient");
        // Rows scatter into shared table rows, so split the work by channel range instead of by row:
        // each thread owns a slice of columns and no two threads touch the same float.
        ForChunks(channels, n, (c0, c1) =>
        {
            int w = (int)(c1 - c0);
            for (int i = 0; i < n; i++)
            {
                var g = new ReadOnlySpan<float>(dout + (long)i * channels + c0, w);
                var t = new Span<float>(dwte + (long)tok[i] * channels + c0, w);
                TensorPrimitives.Add(t, g, t);
                var p = new Span<float>(dwpe + (long)pos[i] * channels + c0, w);
                TensorPrimitives.Add(p, g, p);
            }
        });
    }

    /// <inheritdoc />
    public void RmsNormForward(Tensor output, Tensor rstd, Tensor input, Tensor weight, int n, int channels, float eps)
    {
        float* x = Read(input, (long)n * channels, "rmsnorm input");
        float* w = Read(weight, channels, "rmsnorm weight");
        float* y = Write(output, DType.F32, (long)n * channels, "rmsnorm output");
        float* r = Write(rstd, DType.F32, n, "rmsnorm rstd");
        if (NormRowsInRegisters(channels))
        {
            ForRows(n, channels * 3, i =>
            {
                float* xi = x + (long)i * channels, yi = y + (long)i * channels;
                var ss = Vector512<float>.Zero;
                for (int j = 0; j < channels; j += 16) { var v = Vector512.Load(xi + j); ss = Vector512.FusedMultiplyAdd(v, v, ss); }
                float rs = 1f / MathF.Sqrt(Vector512.Sum(ss) / channels + eps);
                r[i] = rs;
                var rv = Vector512.Create(rs);
                for (int j = 0; j < channels; j += 16) Vector512.Store(Vector512.Load(xi + j) * Vector512.Load(w + j) * rv, yi + j);
            });
            return;
        }
        ForRows(n, channels * 3, i =>
        {
            var ws = new ReadOnlySpan<float>(w, channels);
            var xs = new ReadOnlySpan<float>(x + (long)i * channels, channels);
            float ms = TensorPrimitives.SumOfSquares(xs) / channels;
            float rs = 1f / MathF.Sqrt(ms + eps);
            r[i] = rs;
            var ys = new Span<float>(y + (long)i * channels, channels);
            TensorPrimitives.Multiply(xs, ws, ys);
            TensorPrimitives.Multiply(ys, rs, ys);
        });
    }

    /// <inheritdoc />
    public void RmsNormBackward(Tensor dinput, Tensor dweight, Tensor doutput, Tensor input, Tensor weight, Tensor rstd, int n, int channels)
    {
        float* x = Read(input, (long)n * channels, "rmsnorm input");
        float* w = Read(weight, channels, "rmsnorm weight");
        float* dy = Read(doutput, (long)n * channels, "rmsnorm doutput");
        float* r = Read(rstd, n, "rmsnorm rstd");
        float* dx = Write(dinput, DType.F32, (long)n * channels, "rmsnorm dinput");
        float* dw = Write(dweight, DType.F32, channels, "rmsnorm dweight");
        // y_j = x_j·r·w_j with r = (mean x² + eps)^-1/2:
        // dx_j = r·w_j·dy_j − x_j·r³/C · Σ_k dy_k·w_k·x_k ;  dw_j = Σ_rows dy_j·x_j·r
        int chunks = Math.Max(1, Math.Min(Threads, n));
        var partials = new float[chunks][];
        bool inRegisters = NormRowsInRegisters(channels);
        ForChunks(chunks, (long)n * channels / chunks * 4, (c0, c1) =>
        {
            for (long chunk = c0; chunk < c1; chunk++)
            {
                var dwLocal = new float[channels];
                partials[chunk] = dwLocal;
                int i0 = (int)((long)n * chunk / chunks), i1 = (int)((long)n * (chunk + 1) / chunks);
                if (inRegisters)
                {
                    fixed (float* dwl = dwLocal)
                        for (int i = i0; i < i1; i++)
                            RmsNormBackwardRow(x + (long)i * channels, dy + (long)i * channels, w, r[i], dx + (long)i * channels, dwl, channels);
                    continue;
                }
                var buffer = new float[channels];
                for (int i = i0; i < i1; i++)
                {
                    var xs = new ReadOnlySpan<float>(x + (long)i * channels, channels);
                    var dys = new ReadOnlySpan<float>(dy + (long)i * channels, channels);
                    var ws = new ReadOnlySpan<float>(w, channels);
                    float ri = r[i];
                    // buffer = dy ⊙ w
                    TensorPrimitives.Multiply(dys, ws, buffer);
                    float dot = TensorPrimitives.Dot(buffer, xs);
                    float coef = -dot * ri * ri * ri / channels;
                    var dxs = new Span<float>(dx + (long)i * channels, channels);
                    // dx += r·buffer + coef·x
                    TensorPrimitives.MultiplyAdd(buffer, ri, dxs, dxs);
                    TensorPrimitives.MultiplyAdd(xs, coef, dxs, dxs);
                    // dw += r·(dy ⊙ x)
                    TensorPrimitives.Multiply(dys, xs, buffer);
                    TensorPrimitives.MultiplyAdd(buffer, ri, dwLocal, dwLocal);
                }
            }
        });
        var dws = new Span<float>(dw, channels);
        foreach (var p in partials) TensorPrimitives.Add(dws, p, dws);
    }

    /// <summary>
    /// Whether the RMSNorm rows take two passes with their sums in registers: the library calls' set-up per row
    /// outweighs the arithmetic of 192 channels (kernels/Nemotron.Gym.Kernels/Cpu/PERF.md, "RMSNorm rows in registers").
    /// </summary>
    private static bool NormRowsInRegisters(int channels) => Vector512.IsHardwareAccelerated && channels % 16 == 0;

    /// <summary>
    /// One row of <see cref="RmsNormBackward"/> in two passes over its channels (a multiple of 16) with the sums in
    /// registers: the five library calls per row it replaces cost more in set-up than in arithmetic at 192 channels.
    /// </summary>
    private static void RmsNormBackwardRow(float* x, float* dy, float* w, float r, float* dx, float* dwLocal, int channels)
    {
        var dot = Vector512<float>.Zero;
        for (int j = 0; j < channels; j += 16)
            dot = Vector512.FusedMultiplyAdd(Vector512.Load(dy + j) * Vector512.Load(w + j), Vector512.Load(x + j), dot);
        var rv = Vector512.Create(r);
        var coef = Vector512.Create(-Vector512.Sum(dot) * r * r * r / channels);
        for (int j = 0; j < channels; j += 16)
        {
            var xv = Vector512.Load(x + j);
            var dyv = Vector512.Load(dy + j);
            // dx += r·(dy ⊙ w) + coef·x ;  dw += r·(dy ⊙ x)
            var dxv = Vector512.FusedMultiplyAdd(dyv * Vector512.Load(w + j), rv, Vector512.Load(dx + j));
            Vector512.Store(Vector512.FusedMultiplyAdd(xv, coef, dxv), dx + j);
            Vector512.Store(Vector512.FusedMultiplyAdd(dyv * xv, rv, Vector512.Load(dwLocal + j)), dwLocal + j);
        }
    }
}
