using Nemotron.Gym.Kernels.Cuda.Native;

namespace Nemotron.Gym.Kernels.Cuda;

/// <summary>A queue of device work; operations on one stream run in order.</summary>
public sealed unsafe class CudaStream : IDisposable
{
    /// <summary>Creates a stream in the current context (blocking with respect to the legacy default stream).</summary>
    public CudaStream()
    {
        nint s;
        Driver.Check(Driver.cuStreamCreate(&s, 0), "cuStreamCreate");
        Handle = s;
    }

    /// <summary>The CUstream.</summary>
    public nint Handle { get; private set; }

    /// <summary>Waits until everything queued so far has finished.</summary>
    public void Synchronize() => Driver.Check(Driver.cuStreamSynchronize(Handle), "cuStreamSynchronize");

    /// <inheritdoc />
    public void Dispose()
    {
        if (Handle == 0) return;
        Driver.cuStreamDestroy(Handle);
        Handle = 0;
    }
}

/// <summary>A marker in a stream, for timing device work.</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    /// <summary>Creates a timing event in the current context.</summary>
    public CudaEvent()
    {
        nint e;
        Driver.Check(Driver.cuEventCreate(&e, 0), "cuEventCreate");
        Handle = e;
    }

    /// <summary>The CUevent.</summary>
    public nint Handle { get; private set; }

    /// <summary>Records the event at the current end of <paramref name="stream"/>.</summary>
    public void Record(CudaStream stream) => Driver.Check(Driver.cuEventRecord(Handle, stream.Handle), "cuEventRecord");

    /// <summary>Waits until the work before the event has finished.</summary>
    public void Synchronize() => Driver.Check(Driver.cuEventSynchronize(Handle), "cuEventSynchronize");

    /// <summary>Milliseconds of device time between two recorded events (both must have completed).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        float ms;
        Driver.Check(Driver.cuEventElapsedTime(&ms, start.Handle, end.Handle), "cuEventElapsedTime");
        return ms;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Handle == 0) return;
        Driver.cuEventDestroy(Handle);
        Handle = 0;
    }
}

/// <summary>Device memory owned by one object; freed by <see cref="Dispose"/> (in the context it was allocated in).</summary>
public sealed unsafe class CudaDeviceBuffer : IDisposable
{
    /// <summary>Allocates <paramref name="bytes"/> bytes (at least 4) in the current context; the contents are undefined.</summary>
    public CudaDeviceBuffer(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ulong p;
        long size = Math.Max(bytes, 4);
        Driver.Check(Driver.cuMemAlloc(&p, (nuint)size), () => $"cuMemAlloc_v2({size} bytes)");
        Pointer = p;
        Bytes = bytes;
    }

    /// <summary>The CUdeviceptr (256-byte aligned).</summary>
    public ulong Pointer { get; private set; }
    /// <summary>Size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>Queues a copy of host memory into the buffer at <paramref name="byteOffset"/>.</summary>
    public void CopyFromHost(ReadOnlySpan<byte> source, long byteOffset, CudaStream stream)
    {
        if (byteOffset < 0 || byteOffset + source.Length > Bytes) throw new ArgumentOutOfRangeException(nameof(byteOffset));
        if (source.IsEmpty) return;
        fixed (byte* p = source)
            Driver.Check(Driver.cuMemcpyHtoDAsync(Pointer + (ulong)byteOffset, p, (nuint)source.Length, stream.Handle), "cuMemcpyHtoDAsync_v2");
    }

    /// <summary>Copies from the buffer at <paramref name="byteOffset"/> into host memory and waits for it.</summary>
    public void CopyToHost(Span<byte> destination, long byteOffset, CudaStream stream)
    {
        if (byteOffset < 0 || byteOffset + destination.Length > Bytes) throw new ArgumentOutOfRangeException(nameof(byteOffset));
        if (destination.IsEmpty) return;
        fixed (byte* p = destination)
        {
            Driver.Check(Driver.cuMemcpyDtoHAsync(p, Pointer + (ulong)byteOffset, (nuint)destination.Length, stream.Handle), "cuMemcpyDtoHAsync_v2");
            stream.Synchronize();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Pointer == 0) return;
        Driver.cuMemFree(Pointer);
        Pointer = 0;
    }
}
