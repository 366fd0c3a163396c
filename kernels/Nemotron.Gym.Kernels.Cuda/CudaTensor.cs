namespace Nemotron.Gym.Kernels.Cuda;

/// <summary>Device memory owned by one root tensor and shared by its views, with the bf16 copies made of it.</summary>
internal sealed class CudaStorage : IDisposable
{
    public CudaStorage(long bytes) => Buffer = new CudaDeviceBuffer(bytes);

    public CudaDeviceBuffer Buffer { get; }
    public long Version;

    /// <summary>bf16 copies of (offset, length) ranges, for matrix products; valid while their version matches.</summary>
    public Dictionary<(long Offset, long Length), Bf16Mirror>? Mirrors;

    public void Dispose()
    {
        if (Mirrors != null)
            foreach (var m in Mirrors.Values) m.Buffer.Dispose();
        Mirrors = null;
        Buffer.Dispose();
    }
}

/// <summary>A bf16 copy of part of a tensor, and the storage version it was made from.</summary>
internal sealed class Bf16Mirror(CudaDeviceBuffer buffer)
{
    public CudaDeviceBuffer Buffer { get; } = buffer;
    public long Version = -1;
}

/// <summary>A tensor in GPU memory.</summary>
public sealed class CudaTensor : Tensor
{
    private readonly bool _isView;

    internal CudaTensor(CudaBackend backend, DType dtype, long length, string name)
        : base(backend, dtype, length, name)
    {
        Storage = new CudaStorage(length * 4);
    }

    private CudaTensor(CudaTensor parent, long offset, long length, string name)
        : base(parent.Backend, parent.DType, length, name)
    {
        Storage = parent.Storage;
        Offset = parent.Offset + offset;
        _isView = true;
    }

    internal CudaStorage Storage { get; }

    /// <summary>Element offset into the storage.</summary>
    internal long Offset { get; }

    /// <summary>The device address of the first element.</summary>
    public ulong Pointer
    {
        get
        {
            ulong p = Storage.Buffer.Pointer;
            if (p == 0) throw new ObjectDisposedException(Name);
            return p + (ulong)(Offset * 4);
        }
    }

    /// <inheritdoc />
    public override long Version => Interlocked.Read(ref Storage.Version);

    internal void MarkWritten() => Interlocked.Increment(ref Storage.Version);

    /// <inheritdoc />
    public override Tensor Slice(long offset, long length, string? name = null)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"slice [{offset}, {offset + length}) is outside tensor '{Name}' of {Length} elements");
        return new CudaTensor(this, offset, length, name ?? $"{Name}[{offset}..{offset + length})");
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        if (_isView) return;
        ((CudaBackend)Backend).Release(Storage);
    }
}
