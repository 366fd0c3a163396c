using System.Diagnostics;
using System.Runtime.InteropServices;
using Nemotron.Gym.Kernels.Cuda.Native;

namespace Nemotron.Gym.Kernels.Cuda;

/// <summary>
/// The CUDA backend: the kernels of kernels/cuda compiled by NVRTC for this GPU (cached by source hash), matrix
/// products through cuBLAS on bf16 copies of the operands with fp32 accumulation, and fp32 everywhere else
/// (activations, master weights, gradients, optimizer state). Every operation has its CPU twin in
/// <see cref="Cpu.CpuBackend"/>; the tests hold them together.
///
/// Operations are queued on one stream and return before the GPU finishes; downloads and
/// <see cref="Synchronize"/> wait. Errors found on the device (a token id outside the vocabulary, a cache position
/// outside the cache) are reported at the next of those waits, not at the call. Use it from one thread at a time.
/// </summary>
public sealed unsafe partial class CudaBackend : IComputeBackend
{
    private const int Threads = 256;

    private readonly CudaContext _context;
    private readonly CudaStream _stream;
    private readonly nint _cublas;
    private readonly Dictionary<string, CudaModule> _modules = new(StringComparer.Ordinal);
    private readonly HashSet<CudaStorage> _live = [];
    private readonly CudaDeviceBuffer _deviceError;
    private bool _disposed;

    private CudaBackend(CudaContext context, KernelCompiler compiler)
    {
        _context = context;
        Context = context;
        _stream = new CudaStream();
        _cublas = Cublas.Create(_stream.Handle);
        Target = KernelCompiler.TargetFor(context.Major, context.Minor);
        var clock = Stopwatch.StartNew();
        var compiled = KernelCompiler.Families.Select(f => compiler.Compile(f, Target)).ToArray();
        CompileTime = clock.Elapsed;
        CompiledFromCache = compiled.All(c => c.FromCache);
        foreach (var c in compiled) _modules[c.Family] = new CudaModule(c);
        _deviceError = new CudaDeviceBuffer(DeviceErrorBytes);
        Driver.Check(Driver.cuMemsetD8Async(_deviceError.Pointer, 0, DeviceErrorBytes, _stream.Handle), "cuMemsetD8Async(device error record)");
        Description = $"cuda: {context.DeviceName} (sm_{context.Major}{context.Minor}, {context.Multiprocessors} SMs, " +
                      $"{context.TotalMemory / (1024.0 * 1024 * 1024):F1} GiB), driver {context.DriverVersion / 1000}.{context.DriverVersion % 1000 / 10}, " +
                      $"NVRTC {compiler.NvrtcVersion} ({Target}{(CompiledFromCache ? ", cached" : $", compiled in {CompileTime.TotalSeconds:F1} s")}), " +
                      $"cuBLAS {Cublas.Version(_cublas)}";
    }

    /// <summary>
    /// Opens GPU <paramref name="device"/> and compiles (or loads from the cache) every kernel. Returns null, with
    /// the reason, when there is no driver, no GPU, no NVRTC or no cuBLAS, or when set-up fails.
    /// </summary>
    public static CudaBackend? TryCreate(out string reason, int device = 0, string? cacheDirectory = null)
    {
        if (!CudaContext.IsDeviceAvailable(out reason)) return null;
        if (!Nvrtc.TryLoad(out reason)) return null;
        if (!Cublas.TryLoad(out reason)) return null;
        CudaContext? context = null;
        try
        {
            context = CudaContext.Open(device);
            var backend = new CudaBackend(context, new KernelCompiler(cacheDirectory));
            reason = "";
            return backend;
        }
        catch (Exception e) when (e is CudaException or InvalidOperationException or IOException)
        {
            context?.Dispose();
            reason = e.Message;
            return null;
        }
    }

    /// <summary>Creates the backend or throws with the reason it cannot.</summary>
    public static CudaBackend Create(int device = 0, string? cacheDirectory = null) =>
        TryCreate(out var reason, device, cacheDirectory) ?? throw new InvalidOperationException($"CUDA backend unavailable: {reason}");

    /// <summary>True when a CUDA driver and at least one GPU are present (NVRTC and cuBLAS are checked by <see cref="TryCreate"/>).</summary>
    public static bool IsAvailable => CudaContext.IsDeviceAvailable(out _);

    /// <summary>The GPU and its context.</summary>
    public CudaContext Context { get; }

    /// <summary>The stream every operation is queued on.</summary>
    public CudaStream Stream => _stream;

    /// <summary>The NVRTC target the kernels were built for ("sm_90").</summary>
    public string Target { get; }

    /// <summary>How long compiling (or loading from the cache) took at start-up.</summary>
    public TimeSpan CompileTime { get; }

    /// <summary>True when every kernel image came from the cache.</summary>
    public bool CompiledFromCache { get; }

    /// <inheritdoc />
    public string Name => "cuda";

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            _context.MakeCurrent();
            _stream.Synchronize();
        }
        catch (CudaException) { }  // a broken context still releases what it can
        foreach (var s in _live) s.Dispose();
        _live.Clear();
        foreach (var b in _scratch.Values) b.Dispose();
        _scratch.Clear();
        _deviceError.Dispose();
        foreach (var m in _modules.Values) m.Dispose();
        Cublas.Destroy(_cublas);
        _stream.Dispose();
        _context.Dispose();
    }

    /// <summary>Every (family, kernel) this backend launches; a CI test checks that each is defined in its source.</summary>
    internal static readonly (string Family, string Kernel)[] LaunchedKernels =
    [
        ("adamw", "adamw"),
        ("convert", "f32_to_bf16_kernel"),
        ("elementwise", "add_f32"), ("elementwise", "scale_f32"), ("elementwise", "scale_matrices"), ("elementwise", "sum_squares_partial"),
        ("elementwise", "sum_partials"), ("elementwise", "gelu_forward"), ("elementwise", "gelu_backward"),
        ("embedding", "embedding_forward"), ("embedding", "embedding_backward"),
        ("norm", "rmsnorm_forward"), ("norm", "rmsnorm_backward_input"), ("norm", "rmsnorm_backward_weight_partial"), ("norm", "column_sum_add"),
        ("attention", "attention_forward_hs16"), ("attention", "attention_forward_hs32"), ("attention", "attention_forward_hs64"), ("attention", "attention_forward_hs128"),
        ("attention", "attention_backward_hs16"), ("attention", "attention_backward_hs32"), ("attention", "attention_backward_hs64"), ("attention", "attention_backward_hs128"),
        ("attention", "attention_forward_simt"), ("attention", "attention_backward_simt"), ("attention", "attention_backward_dot"),
        ("attention", "kv_cache_write"), ("attention", "kv_cache_append"), ("attention", "attention_decode_merge"),
        ("attention", "attention_decode_nj1"), ("attention", "attention_decode_nj2"), ("attention", "attention_decode_nj4"), ("attention", "attention_decode_nj8"),
        ("softmax_xent", "softmax_xent_forward"), ("softmax_xent", "softmax_xent_backward"),
        ("sampling", "sample_tokens"),
    ];

    // ---- helpers -------------------------------------------------------------------------------

    /// <summary>Makes the context current on this thread (the caller may have moved threads since the last call).</summary>
    private void Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _context.MakeCurrent();
    }

    internal void Release(CudaStorage storage)
    {
        if (_disposed || !_live.Remove(storage)) return;
        _context.MakeCurrent();
        storage.Dispose();
    }

    private CudaTensor Own(Tensor t, string role)
    {
        if (t is not CudaTensor c || !ReferenceEquals(t.Backend, this))
            throw new ArgumentException($"{role}: tensor '{t.Name}' does not belong to this CUDA backend (it is on {t.Backend.Name})");
        return c;
    }

    private ulong Write(Tensor t, DType dtype, long needed, string role)
    {
        var c = Own(t, role);
        t.Require(dtype, needed, role);
        c.MarkWritten();
        return c.Pointer;
    }

    private ulong Read(Tensor t, long needed, string role)
    {
        var c = Own(t, role);
        t.Require(DType.F32, needed, role);
        return c.Pointer;
    }

    private ulong ReadInts(Tensor t, long needed, string role)
    {
        var c = Own(t, role);
        t.Require(DType.I32, needed, role);
        return c.Pointer;
    }

    private CudaKernel Kernel(string family, string name) => _modules[family].Kernel(name);

    private void Launch(string family, string name, Dim3 grid, Dim3 block, int sharedBytes, KernelArgs args) =>
        Kernel(family, name).Launch(_stream, grid, block, sharedBytes, ref args);

    /// <summary>Blocks for a grid-stride loop over n items: enough to fill the GPU, no more than the work needs.</summary>
    private int GridFor(long n, int perThread = 1)
    {
        long needed = (n + (long)Threads * perThread - 1) / ((long)Threads * perThread);
        return (int)Math.Clamp(needed, 1, (long)_context.Multiprocessors * 16);
    }

    private static int Ceil(long a, long b) => checked((int)((a + b - 1) / b));

    private readonly Dictionary<string, CudaDeviceBuffer> _scratch = new(StringComparer.Ordinal);

    /// <summary>A named device work buffer of at least <paramref name="bytes"/>, grown (after the stream drains) when too small.</summary>
    private ulong Scratch(string name, long bytes)
    {
        if (_scratch.TryGetValue(name, out var b) && b.Bytes >= bytes) return b.Pointer;
        if (b != null)
        {
            _stream.Synchronize();  // queued kernels may still use the old buffer
            b.Dispose();
        }
        b = new CudaDeviceBuffer(Math.Max(bytes, 256));
        _scratch[name] = b;
        return b.Pointer;
    }

    // ---- device-side errors --------------------------------------------------------------------

    // struct DeviceError { int code; int row; i64 value; i64 limit; } in common.cuh.
    private const int DeviceErrorBytes = 24;

    [StructLayout(LayoutKind.Sequential)]
    private struct DeviceError
    {
        public int Code;
        public int Row;
        public long Value;
        public long Limit;
    }

    /// <summary>Waits for the stream, then throws what a kernel reported since the last check (and clears it).</summary>
    private void SynchronizeAndCheck()
    {
        _stream.Synchronize();
        DeviceError e;
        _deviceError.CopyToHost(new Span<byte>(&e, DeviceErrorBytes), 0, _stream);
        if (e.Code == 0) return;
        Driver.Check(Driver.cuMemsetD8Async(_deviceError.Pointer, 0, DeviceErrorBytes, _stream.Handle), "cuMemsetD8Async(device error record)");
        string message = e.Code switch
        {
            1 => $"embedding: token id {e.Value} at row {e.Row} is outside the vocabulary of {e.Limit}",
            2 => $"embedding: position {e.Value} at row {e.Row} is outside the context of {e.Limit}",
            3 => $"cross-entropy: target {e.Value} at row {e.Row} is outside the vocabulary of {e.Limit}",
            4 => $"decode: position {e.Value} of row {e.Row} is outside the cache of {e.Limit}",
            _ => $"a kernel reported error {e.Code} (row {e.Row}, value {e.Value}, limit {e.Limit})",
        };
        throw new ArgumentOutOfRangeException(null, $"{message} (found on the GPU; reported at the next synchronization)");
    }

    // ---- memory --------------------------------------------------------------------------------

    /// <inheritdoc />
    public Tensor Allocate(DType dtype, long length, string name)
    {
        Enter();
        var t = new CudaTensor(this, dtype, length, name);
        _live.Add(t.Storage);
        if (length > 0)
            Driver.Check(Driver.cuMemsetD32Async(t.Storage.Buffer.Pointer, 0, (nuint)length, _stream.Handle), () => $"cuMemsetD32Async({name}, {length})");
        return t;
    }

    /// <inheritdoc />
    public void Upload(Tensor destination, ReadOnlySpan<float> source, long offset = 0)
    {
        Enter();
        var c = Own(destination, "upload");
        destination.Require(DType.F32, offset + source.Length, "upload");
        c.MarkWritten();
        c.Storage.Buffer.CopyFromHost(MemoryMarshal.AsBytes(source), (c.Offset + offset) * 4, _stream);
    }

    /// <inheritdoc />
    public void Upload(Tensor destination, ReadOnlySpan<int> source, long offset = 0)
    {
        Enter();
        var c = Own(destination, "upload");
        destination.Require(DType.I32, offset + source.Length, "upload");
        c.MarkWritten();
        c.Storage.Buffer.CopyFromHost(MemoryMarshal.AsBytes(source), (c.Offset + offset) * 4, _stream);
    }

    /// <inheritdoc />
    public void Download(Tensor source, Span<float> destination, long offset = 0)
    {
        Enter();
        var c = Own(source, "download");
        source.Require(DType.F32, offset + destination.Length, "download");
        SynchronizeAndCheck();
        c.Storage.Buffer.CopyToHost(MemoryMarshal.AsBytes(destination), (c.Offset + offset) * 4, _stream);
    }

    /// <inheritdoc />
    public void Download(Tensor source, Span<int> destination, long offset = 0)
    {
        Enter();
        var c = Own(source, "download");
        source.Require(DType.I32, offset + destination.Length, "download");
        SynchronizeAndCheck();
        c.Storage.Buffer.CopyToHost(MemoryMarshal.AsBytes(destination), (c.Offset + offset) * 4, _stream);
    }

    /// <inheritdoc />
    public void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count)
    {
        Enter();
        if (destination.DType != source.DType)
            throw new ArgumentException($"copy: '{source.Name}' is {source.DType} but '{destination.Name}' is {destination.DType}");
        var d = Own(destination, "copy");
        var s = Own(source, "copy");
        destination.Require(destination.DType, destinationOffset + count, "copy destination");
        source.Require(source.DType, sourceOffset + count, "copy source");
        d.MarkWritten();
        if (count == 0) return;
        Driver.Check(Driver.cuMemcpyDtoDAsync(d.Pointer + (ulong)(destinationOffset * 4), s.Pointer + (ulong)(sourceOffset * 4), (nuint)(count * 4), _stream.Handle),
            () => $"cuMemcpyDtoDAsync_v2({source.Name} -> {destination.Name}, {count} elements)");
    }

    /// <inheritdoc />
    public void Fill(Tensor tensor, float value)
    {
        Enter();
        ulong p = Write(tensor, DType.F32, tensor.Length, "fill");
        if (tensor.Length == 0) return;
        Driver.Check(Driver.cuMemsetD32Async(p, BitConverter.SingleToUInt32Bits(value), (nuint)tensor.Length, _stream.Handle), () => $"cuMemsetD32Async({tensor.Name})");
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        Enter();
        SynchronizeAndCheck();
    }

    // ---- elementwise ---------------------------------------------------------------------------

    /// <inheritdoc />
    public void Add(Tensor output, Tensor a, Tensor b, long n)
    {
        Enter();
        ulong pa = Read(a, n, "add a"), pb = Read(b, n, "add b");
        ulong po = Write(output, DType.F32, n, "add output");
        if (n == 0) return;
        Launch("elementwise", "add_f32", GridFor(n, 4), Threads, 0, new KernelArgs().Ptr(po).Ptr(pa).Ptr(pb).I64(n));
    }

    /// <inheritdoc />
    public void Scale(Tensor tensor, float scale, long n)
    {
        Enter();
        ulong p = Write(tensor, DType.F32, n, "scale");
        if (n == 0) return;
        Launch("elementwise", "scale_f32", GridFor(n, 4), Threads, 0, new KernelArgs().Ptr(p).F32(scale).I64(n));
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor tensor, long n)
    {
        Enter();
        ulong p = Read(tensor, n, "sum of squares");
        if (n == 0) return 0;
        int blocks = Math.Min(GridFor(n), 1024);
        ulong partials = Scratch("sumsq.partials", 1024 * 8), total = Scratch("sumsq.total", 8);
        Launch("elementwise", "sum_squares_partial", blocks, Threads, 0, new KernelArgs().Ptr(p).I64(n).Ptr(partials));
        Launch("elementwise", "sum_partials", 1, Threads, 0, new KernelArgs().Ptr(partials).I32(blocks).Ptr(total));
        SynchronizeAndCheck();
        double result;
        _scratch["sumsq.total"].CopyToHost(new Span<byte>(&result, 8), 0, _stream);
        return result;
    }

    /// <inheritdoc />
    public void GeluForward(Tensor output, Tensor input, long n)
    {
        Enter();
        ulong x = Read(input, n, "gelu input");
        ulong y = Write(output, DType.F32, n, "gelu output");
        if (n == 0) return;
        Launch("elementwise", "gelu_forward", GridFor(n, 4), Threads, 0, new KernelArgs().Ptr(y).Ptr(x).I64(n).Ptr(Bf16Alongside(output, n)));
    }

    /// <inheritdoc />
    public void GeluBackward(Tensor dinput, Tensor doutput, Tensor input, long n)
    {
        Enter();
        ulong x = Read(input, n, "gelu input");
        ulong dy = Read(doutput, n, "gelu doutput");
        ulong dx = Write(dinput, DType.F32, n, "gelu dinput");
        if (n == 0) return;
        Launch("elementwise", "gelu_backward", GridFor(n, 4), Threads, 0, new KernelArgs().Ptr(dx).Ptr(dy).Ptr(x).I64(n).Ptr(Bf16Alongside(dinput, n)));
    }

    // ---- matrix products -----------------------------------------------------------------------

    /// <summary>
    /// The bf16 copy of <paramref name="count"/> elements of <paramref name="t"/>, made now unless an earlier copy is
    /// still current (its storage unwritten since). Weights are thus converted once per optimizer step.
    /// </summary>
    private ulong Bf16(CudaTensor t, long count)
    {
        var storage = t.Storage;
        storage.Mirrors ??= [];
        var key = (t.Offset, count);
        if (!storage.Mirrors.TryGetValue(key, out var mirror))
            storage.Mirrors[key] = mirror = new Bf16Mirror(new CudaDeviceBuffer(count * 2));
        long version = t.Version;
        if (mirror.Version != version)
        {
            Launch("convert", "f32_to_bf16_kernel", GridFor(count, 4), Threads, 0, new KernelArgs().Ptr(mirror.Buffer.Pointer).Ptr(t.Pointer).I64(count));
            mirror.Version = version;
        }
        return mirror.Buffer.Pointer;
    }

    /// <summary>
    /// The bf16 copy of the first <paramref name="count"/> elements of <paramref name="t"/>, for the kernel that writes
    /// t to fill in the same pass, stamped current. Call it after t is marked written. The outputs that feed matrix
    /// products (norms, GELU, attention, their gradients) thus skip a separate conversion that would read them again.
    /// </summary>
    private ulong Bf16Alongside(Tensor t, long count)
    {
        var c = (CudaTensor)t;
        var storage = c.Storage;
        storage.Mirrors ??= [];
        var key = (c.Offset, count);
        if (!storage.Mirrors.TryGetValue(key, out var mirror))
            storage.Mirrors[key] = mirror = new Bf16Mirror(new CudaDeviceBuffer(count * 2));
        mirror.Version = c.Version;
        return mirror.Buffer.Pointer;
    }

    /// <inheritdoc />
    /// <remarks>Operands are rounded to bf16; products accumulate in fp32 (cuBLAS, tensor cores).</remarks>
    public void MatMul(Tensor c, Tensor a, Tensor b, int m, int n, int k, bool transposeA, bool transposeB,
        float alpha = 1f, float beta = 0f, int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0)
    {
        Enter();
        if (m < 0 || n < 0 || k < 0 || batch < 1)
            throw new ArgumentException($"matmul: bad dimensions m={m} n={n} k={k} batch={batch}");
        long sizeA = (long)m * k, sizeB = (long)k * n, sizeC = (long)m * n;
        if (batch > 1 && (strideA < sizeA && strideA != 0 || strideB < sizeB && strideB != 0 || strideC < sizeC))
            throw new ArgumentException($"matmul: strides ({strideA}, {strideB}, {strideC}) overlap matrices of {sizeA}, {sizeB}, {sizeC} elements");
        long countA = strideA * (batch - 1) + sizeA, countB = strideB * (batch - 1) + sizeB;
        var ta = Own(a, "matmul A");
        var tb = Own(b, "matmul B");
        a.Require(DType.F32, countA, "matmul A");
        b.Require(DType.F32, countB, "matmul B");
        var tc = Own(c, "matmul C");
        c.Require(DType.F32, strideC * (batch - 1) + sizeC, "matmul C");
        ulong pc = tc.Pointer;
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            tc.MarkWritten();
            // op(A)·op(B) is zero: C = beta·C.
            Launch("elementwise", "scale_matrices", GridFor(sizeC), Threads, 0, new KernelArgs().Ptr(pc).I64(sizeC).I64(strideC).I32(batch).F32(beta));
            return;
        }
        ulong a16 = Bf16(ta, countA), b16 = Bf16(tb, countB);
        tc.MarkWritten();  // after the copies are stamped: C may share a storage with A or B
        // Row-major C (m×n) = op(A)·op(B) is column-major Cᵀ (n×m) = op(B)ᵀ·op(A)ᵀ: cuBLAS gets B first. Row-major B
        // stored k×n reads as column-major n×k (ld n), stored n×k (transposed) as k×n to transpose (ld k); A likewise.
        Cublas.GemmBf16(_cublas, transposeB, transposeA, n, m, k, alpha,
            b16, transposeB ? k : n, strideB,
            a16, transposeA ? m : k, strideA,
            beta, pc, n, strideC, batch);
    }

    // ---- embedding and normalization -------------------------------------------------------------

    /// <inheritdoc />
    public void EmbeddingForward(Tensor output, Tensor tokens, Tensor positions, Tensor tokenTable, Tensor positionTable, int n, int channels)
    {
        Enter();
        ulong tok = ReadInts(tokens, n, "embedding tokens"), pos = ReadInts(positions, n, "embedding positions");
        ulong wte = Read(tokenTable, 0, "embedding token table"), wpe = Read(positionTable, 0, "embedding position table");
        ulong o = Write(output, DType.F32, (long)n * channels, "embedding output");
        if (n == 0) return;
        Launch("embedding", "embedding_forward", Ceil(n, Threads / 32), Threads, 0, new KernelArgs().Ptr(o).Ptr(tok).Ptr(pos).Ptr(wte).Ptr(wpe)
            .I32(n).I32(channels).I64(tokenTable.Length / channels).I64(positionTable.Length / channels).Ptr(_deviceError.Pointer));
    }

    /// <inheritdoc />
    /// <remarks>Rows that share a token add with fp32 atomics, so the last bits may differ from run to run.</remarks>
    public void EmbeddingBackward(Tensor dTokenTable, Tensor dPositionTable, Tensor doutput, Tensor tokens, Tensor positions, int n, int channels)
    {
        Enter();
        ulong tok = ReadInts(tokens, n, "embedding tokens"), pos = ReadInts(positions, n, "embedding positions");
        ulong dout = Read(doutput, (long)n * channels, "embedding doutput");
        ulong dwte = Write(dTokenTable, DType.F32, 0, "embedding token table gradient");
        ulong dwpe = Write(dPositionTable, DType.F32, 0, "embedding position table gradient");
        if (n == 0) return;
        Launch("embedding", "embedding_backward", Ceil(n, Threads / 32), Threads, 0, new KernelArgs().Ptr(dwte).Ptr(dwpe).Ptr(dout).Ptr(tok).Ptr(pos)
            .I32(n).I32(channels).I64(dTokenTable.Length / channels).I64(dPositionTable.Length / channels).Ptr(_deviceError.Pointer));
    }

    /// <inheritdoc />
    public void RmsNormForward(Tensor output, Tensor rstd, Tensor input, Tensor weight, int n, int channels, float eps)
    {
        Enter();
        ulong x = Read(input, (long)n * channels, "rmsnorm input"), w = Read(weight, channels, "rmsnorm weight");
        ulong y = Write(output, DType.F32, (long)n * channels, "rmsnorm output"), r = Write(rstd, DType.F32, n, "rmsnorm rstd");
        if (n == 0) return;
        Launch("norm", "rmsnorm_forward", Ceil(n, Threads / 32), Threads, 0,
            new KernelArgs().Ptr(y).Ptr(r).Ptr(x).Ptr(w).I32(n).I32(channels).F32(eps).Ptr(Bf16Alongside(output, (long)n * channels)));
    }

    /// <inheritdoc />
    public void RmsNormBackward(Tensor dinput, Tensor dweight, Tensor doutput, Tensor input, Tensor weight, Tensor rstd, int n, int channels)
    {
        Enter();
        ulong x = Read(input, (long)n * channels, "rmsnorm input"), w = Read(weight, channels, "rmsnorm weight");
        ulong dy = Read(doutput, (long)n * channels, "rmsnorm doutput"), r = Read(rstd, n, "rmsnorm rstd");
        ulong dx = Write(dinput, DType.F32, (long)n * channels, "rmsnorm dinput"), dw = Write(dweight, DType.F32, channels, "rmsnorm dweight");
        if (n == 0 || channels == 0) return;
        Launch("norm", "rmsnorm_backward_input", Ceil(n, Threads / 32), Threads, 0,
            new KernelArgs().Ptr(dx).Ptr(dy).Ptr(x).Ptr(w).Ptr(r).I32(n).I32(channels).Ptr(Bf16Alongside(dinput, (long)n * channels)));
        // The weight gradient: per-chunk column sums, then one ordered sum of the chunks (deterministic).
        int rowsPerChunk = Math.Max(64, Ceil(n, 65535));
        int chunks = Ceil(n, rowsPerChunk);
        ulong partials = Scratch("rmsnorm.partials", (long)chunks * channels * 4);
        Launch("norm", "rmsnorm_backward_weight_partial", new Dim3((uint)Ceil(channels, Threads), (uint)chunks), Threads, 0,
            new KernelArgs().Ptr(partials).Ptr(dy).Ptr(x).Ptr(r).I32(n).I32(channels).I32(rowsPerChunk));
        Launch("norm", "column_sum_add", Ceil(channels, Threads), Threads, 0, new KernelArgs().Ptr(dw).Ptr(partials).I32(chunks).I32(channels));
    }

    // ---- optimizer -----------------------------------------------------------------------------

    /// <inheritdoc />
    public void AdamW(Tensor parameters, Tensor gradients, Tensor m, Tensor v, long n, AdamWStep step)
    {
        Enter();
        if (step.Step < 1) throw new ArgumentException($"adamw: step counts from 1, got {step.Step}");
        ulong p = Write(parameters, DType.F32, n, "adamw parameters");
        ulong g = Read(gradients, n, "adamw gradients");
        ulong pm = Write(m, DType.F32, n, "adamw m");
        ulong pv = Write(v, DType.F32, n, "adamw v");
        if (n == 0) return;
        // Bias corrections exactly as the CPU twin computes them.
        float c1 = 1f / (1f - MathF.Pow(step.Beta1, step.Step));
        float c2 = 1f / (1f - MathF.Pow(step.Beta2, step.Step));
        Launch("adamw", "adamw", GridFor(n, 4), Threads, 0, new KernelArgs().Ptr(p).Ptr(g).Ptr(pm).Ptr(pv).I64(n)
            .F32(step.Beta1).F32(step.Beta2).F32(c1).F32(c2).F32(step.LearningRate).F32(step.Epsilon).F32(step.WeightDecay).Ptr(0));
    }
}
