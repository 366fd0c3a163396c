using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;
using Nemotron.Gym.Kernels.Cuda.Native;

namespace Nemotron.Gym.Kernels.Cuda;

/// <summary>A grid or block shape.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    /// <summary>A one-dimensional shape.</summary>
    public static implicit operator Dim3(int x) => new(checked((uint)x));
}

/// <summary>A loaded cubin or PTX image and the kernels it holds.</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private readonly Dictionary<string, CudaKernel> _kernels = new(StringComparer.Ordinal);

    /// <summary>Loads an image into the current context (PTX is compiled by the driver here).</summary>
    public CudaModule(CompiledModule compiled)
    {
        Name = compiled.Family;
        nint m;
        fixed (byte* p = compiled.Image)
            Driver.Check(Driver.cuModuleLoadData(&m, p), () => $"cuModuleLoadData({compiled.Family}, {compiled.Target}, {compiled.Image.Length} bytes)");
        Handle = m;
    }

    /// <summary>The kernel family ("attention").</summary>
    public string Name { get; }
    /// <summary>The CUmodule.</summary>
    public nint Handle { get; private set; }

    /// <summary>The kernel called <paramref name="name"/> (an extern "C" __global__ function).</summary>
    public CudaKernel Kernel(string name)
    {
        if (_kernels.TryGetValue(name, out var k)) return k;
        nint f;
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes) Driver.Check(Driver.cuModuleGetFunction(&f, Handle, p), $"cuModuleGetFunction({Name}.{name})");
        return _kernels[name] = new CudaKernel(name, f);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Handle == 0) return;
        Driver.cuModuleUnload(Handle);
        Handle = 0;
    }
}

/// <summary>One kernel of a module.</summary>
public sealed unsafe class CudaKernel
{
    private int _dynamicSharedLimit = 48 * 1024;

    internal CudaKernel(string name, nint handle)
    {
        Name = name;
        Handle = handle;
    }

    /// <summary>Its name in the source.</summary>
    public string Name { get; }
    /// <summary>The CUfunction.</summary>
    public nint Handle { get; }

    /// <summary>Queues the kernel on <paramref name="stream"/>. Raises the dynamic shared-memory limit first when the launch needs more than 48 KiB.</summary>
    public void Launch(CudaStream stream, Dim3 grid, Dim3 block, int sharedBytes, scoped ref KernelArgs args)
    {
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0) return;
        if (sharedBytes > _dynamicSharedLimit)
        {
            Driver.Check(Driver.cuFuncSetAttribute(Handle, Driver.FuncAttrMaxDynamicSharedSizeBytes, sharedBytes),
                $"cuFuncSetAttribute({Name}, MAX_DYNAMIC_SHARED_SIZE_BYTES, {sharedBytes})");
            _dynamicSharedLimit = sharedBytes;
        }
        int count = args.Count;
        void** pointers = stackalloc void*[Math.Max(1, count)];
        fixed (long* slots = &args.Slot0)
        {
            for (int i = 0; i < count; i++) pointers[i] = slots + i;
            int status = Driver.cuLaunchKernel(Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes, stream.Handle, pointers, null);
            if (status != Driver.Success)
            {
                var g = grid;
                var b = block;
                Driver.Check(status, () => $"cuLaunchKernel({Name}, grid ({g.X},{g.Y},{g.Z}), block ({b.X},{b.Y},{b.Z}), {sharedBytes} B shared)");
            }
        }
    }
}

/// <summary>
/// A kernel's arguments, in order, each in an 8-byte slot (cuLaunchKernel reads every parameter through a pointer
/// and copies it at the launch, so the slots may be reused right after).
/// </summary>
public ref struct KernelArgs
{
    private const int Capacity = 16;
    private Slots _slots;

    [InlineArray(Capacity)]
    private struct Slots
    {
        private long _element;
    }

    /// <summary>How many arguments were added.</summary>
    public int Count { get; private set; }

    [UnscopedRef] internal ref long Slot0 => ref _slots[0];

    [UnscopedRef]
    private ref long Next()
    {
        if (Count == Capacity) throw new InvalidOperationException($"more than {Capacity} kernel arguments");
        return ref _slots[Count++];
    }

    /// <summary>A device pointer.</summary>
    public KernelArgs Ptr(ulong p) { Next() = (long)p; return this; }
    /// <summary>A 32-bit int.</summary>
    public KernelArgs I32(int v) { Next() = (uint)v; return this; }
    /// <summary>A 64-bit int.</summary>
    public KernelArgs I64(long v) { Next() = v; return this; }
    /// <summary>A 32-bit float.</summary>
    public KernelArgs F32(float v) { Next() = BitConverter.SingleToUInt32Bits(v); return this; }
}
