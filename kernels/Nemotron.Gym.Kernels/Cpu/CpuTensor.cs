using System.Runtime.InteropServices;

namespace Nemotron.Gym.Kernels.Cpu;

/// <summary>Host memory owned by one root tensor and shared by its views.</summary>
internal sealed unsafe class CpuStorage : IDisposable
{
    public CpuStorage(long bytes)
    {
        // 64-byte alignment: one AVX-512 register, one cache line.
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 64), 64);
        NativeMemory.Clear(Pointer, (nuint)Math.Max(bytes, 64));
        GC.AddMemoryPressure(Math.Max(bytes, 64));
        Bytes = bytes;
    }

    public byte* Pointer { get; private set; }
    public long Bytes { get; }
    public long Version;

    public void Dispose()
    {
        if (Pointer == null) return;
        NativeMemory.AlignedFree(Pointer);
        GC.RemoveMemoryPressure(Math.Max(Bytes, 64));
        Pointer = null;
        GC.SuppressFinalize(this);
    }

    ~CpuStorage() => Dispose();
}

/// <summary>A tensor in 64-byte aligned native memory.</summary>
public sealed unsafe class CpuTensor : Tensor
{
    private readonly CpuStorage _storage;
    private readonly long _offset;
    private readonly bool _isView;

    internal CpuTensor(CpuBackend backend, DType dtype, long length, string name)
        : base(backend, dtype, length, name)
    {
        _storage = new CpuStorage(length * dtype.Bytes());
    }

    private CpuTensor(CpuTensor parent, long offset, long length, string name)
        : base(parent.Backend, parent.DType, length, name)
    {
        _storage = parent._storage;
        _offset = parent._offset + offset;
        _isView = true;
    }

    /// <inheritdoc />
    public override long Version => Interlocked.Read(ref _storage.Version);

    internal void MarkWritten() => Interlocked.Increment(ref _storage.Version);

    /// <summary>The storage this tensor (or view) lives in, and its first element there: identity for caches.</summary>
    internal CpuStorage Storage => _storage;
    internal long StorageOffset => _offset;

    /// <summary>Pointer to the first element, whatever its type (valid while the tensor lives).</summary>
    internal byte* Bytes
    {
        get
        {
            if (_storage.Pointer == null) throw new ObjectDisposedException(Name);
            return _storage.Pointer + _offset * DType.Bytes();
        }
    }

    /// <summary>Pointer to the first float (valid while the tensor lives).</summary>
    public float* F => (float*)Bytes;

    /// <summary>Pointer to the first int (valid while the tensor lives).</summary>
    public int* I => (int*)Bytes;

    /// <summary>Pointer to the first element of a <see cref="DType.BF16"/> tensor, as its raw 16 bits.</summary>
    public ushort* H => (ushort*)Bytes;

    /// <summary>The elements as a span of floats.</summary>
    public Span<float> AsFloatSpan() => new(F, checked((int)Length));

    /// <summary>The elements as a span of ints.</summary>
    public Span<int> AsIntSpan() => new(I, checked((int)Length));

    /// <inheritdoc />
    public override Tensor Slice(long offset, long length, string? name = null)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"slice [{offset}, {offset + length}) is outside tensor '{Name}' of {Length} elements");
        return new CpuTensor(this, offset, length, name ?? $"{Name}[{offset}..{offset + length})");
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        if (!_isView) _storage.Dispose();
    }
}
