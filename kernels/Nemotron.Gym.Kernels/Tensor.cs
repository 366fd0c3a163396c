namespace Nemotron.Gym.Kernels;

/// <summary>Element type of a <see cref="Tensor"/>.</summary>
public enum DType
{
    /// <summary>32-bit float. Parameters, gradients, optimizer state and activations.</summary>
    F32,
    /// <summary>32-bit signed integer. Token ids and positions.</summary>
    I32,
    /// <summary>
    /// bfloat16 (the top half of an fp32), storage only: a backend that says <see cref="IComputeBackend.SupportsBf16Caches"/>
    /// keeps a bf16 sampler's keys and values in it, so decoding reads half the bytes. Uploads round to nearest
    /// (ties to even) and downloads widen exactly.
    /// </summary>
    BF16,
}

/// <summary>Sizes of the element types.</summary>
public static class DTypeSizes
{
    /// <summary>Bytes one element of <paramref name="dtype"/> occupies.</summary>
    public static int Bytes(this DType dtype) => dtype == DType.BF16 ? 2 : 4;
}

/// <summary>
/// A flat buffer of elements that lives on a backend's device (host memory for the CPU backend,
/// GPU memory for CUDA). Shapes are not stored: every operation takes its dimensions explicitly,
/// as in llm.c, so a tensor is just "this many floats, there". A <see cref="Slice"/> is a view
/// into the same storage (the model keeps all parameters in one buffer and hands out slices).
/// </summary>
public abstract class Tensor : IDisposable
{
    /// <summary>Creates a tensor record; backends call this.</summary>
    protected Tensor(IComputeBackend backend, DType dtype, long length, string name)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, "tensor length must not be negative");
        Backend = backend;
        DType = dtype;
        Length = length;
        Name = name;
    }

    /// <summary>The backend whose device holds the storage.</summary>
    public IComputeBackend Backend { get; }
    /// <summary>Element type.</summary>
    public DType DType { get; }
    /// <summary>Number of elements.</summary>
    public long Length { get; }
    /// <summary>A name for error messages and debugging ("h3.attn.qkv.w").</summary>
    public string Name { get; }

    /// <summary>
    /// Incremented by the backend whenever an operation writes this tensor's storage (any view of it).
    /// A backend may use it to cache derived copies (for example a bf16 copy of a weight) safely.
    /// </summary>
    public abstract long Version { get; }

    /// <summary>A view of <paramref name="length"/> elements starting at <paramref name="offset"/>.</summary>
    public abstract Tensor Slice(long offset, long length, string? name = null);

    /// <summary>Releases the storage (a view releases nothing).</summary>
    public abstract void Dispose();

    /// <summary>Throws unless the tensor has this type and at least <paramref name="needed"/> elements.</summary>
    public void Require(DType dtype, long needed, string role)
    {
        if (DType != dtype)
            throw new ArgumentException($"{role}: tensor '{Name}' is {DType}, expected {dtype}");
        if (Length < needed)
            throw new ArgumentException($"{role}: tensor '{Name}' has {Length} elements, the operation needs {needed}");
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} [{DType} x {Length}] on {Backend.Name}";
}
