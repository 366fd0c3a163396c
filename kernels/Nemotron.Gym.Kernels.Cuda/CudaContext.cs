using System.Text;
using Nemotron.Gym.Kernels.Cuda.Native;

namespace Nemotron.Gym.Kernels.Cuda;

/// <summary>
/// One GPU and its primary context (the one the CUDA runtime and PyTorch share). Every thread that calls into the
/// driver must make it current first (<see cref="MakeCurrent"/>); the backend does so at each operation.
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    private nint _context;

    private CudaContext(int ordinal, int device, nint context)
    {
        Ordinal = ordinal;
        Device = device;
        _context = context;
        var name = new byte[256];
        fixed (byte* p = name) Driver.Check(Driver.cuDeviceGetName(p, name.Length, device), "cuDeviceGetName");
        DeviceName = Encoding.UTF8.GetString(name, 0, Math.Max(0, Array.IndexOf(name, (byte)0)));
        Major = Attribute(Driver.AttrComputeCapabilityMajor);
        Minor = Attribute(Driver.AttrComputeCapabilityMinor);
        Multiprocessors = Attribute(Driver.AttrMultiprocessorCount);
        MaxSharedMemoryPerBlockOptin = Attribute(Driver.AttrMaxSharedMemoryPerBlockOptin);
        ClockKHz = AttributeOrZero(Driver.AttrClockRateKHz);
        MemoryClockKHz = AttributeOrZero(Driver.AttrMemoryClockRateKHz);
        MemoryBusWidthBits = AttributeOrZero(Driver.AttrGlobalMemoryBusWidth);
        nuint total;
        Driver.Check(Driver.cuDeviceTotalMem(&total, device), "cuDeviceTotalMem_v2");
        TotalMemory = (long)total;
        int version;
        Driver.Check(Driver.cuDriverGetVersion(&version), "cuDriverGetVersion");
        DriverVersion = version;
    }

    /// <summary>True when the driver loads, initializes and sees at least one GPU; otherwise <paramref name="reason"/> says why.</summary>
    public static bool IsDeviceAvailable(out string reason)
    {
        if (!Driver.TryLoad(out reason)) return false;
        int status = Driver.cuInit(0);
        if (status != Driver.Success)
        {
            reason = $"cuInit failed: {Driver.ErrorName(status)} (driver at {Driver.Library.Path})";
            return false;
        }
        int count;
        status = Driver.cuDeviceGetCount(&count);
        if (status != Driver.Success || count == 0)
        {
            reason = status != Driver.Success ? $"cuDeviceGetCount failed: {Driver.ErrorName(status)}" : "the CUDA driver sees no GPU";
            return false;
        }
        reason = "";
        return true;
    }

    /// <summary>Opens GPU <paramref name="ordinal"/>'s primary context; throws <see cref="CudaException"/> or explains.</summary>
    public static CudaContext Open(int ordinal = 0)
    {
        if (!IsDeviceAvailable(out var reason)) throw new InvalidOperationException(reason);
        int device;
        Driver.Check(Driver.cuDeviceGet(&device, ordinal), $"cuDeviceGet({ordinal})");
        nint context;
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(&context, device), $"cuDevicePrimaryCtxRetain(device {ordinal})");
        Driver.Check(Driver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        return new CudaContext(ordinal, device, context);
    }

    /// <summary>The index given to <see cref="Open"/>.</summary>
    public int Ordinal { get; }
    internal int Device { get; }
    /// <summary>"NVIDIA H100 80GB HBM3".</summary>
    public string DeviceName { get; }
    /// <summary>Compute capability, major part (9 for Hopper).</summary>
    public int Major { get; }
    /// <summary>Compute capability, minor part.</summary>
    public int Minor { get; }
    /// <summary>Streaming multiprocessors.</summary>
    public int Multiprocessors { get; }
    /// <summary>The most shared memory one block may ask for (after opting in).</summary>
    public int MaxSharedMemoryPerBlockOptin { get; }
    /// <summary>SM clock in kHz (0 when the driver no longer reports it).</summary>
    public int ClockKHz { get; }
    /// <summary>Memory clock in kHz (0 when not reported).</summary>
    public int MemoryClockKHz { get; }
    /// <summary>Memory bus width in bits (0 when not reported).</summary>
    public int MemoryBusWidthBits { get; }
    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; }
    /// <summary>The driver's CUDA version as 1000·major + 10·minor (13000 for 13.0).</summary>
    public int DriverVersion { get; }

    /// <summary>Theoretical DRAM bandwidth in bytes/s from the memory clock and bus width (double data rate); 0 when unknown.</summary>
    public double PeakMemoryBandwidth => 2.0 * MemoryClockKHz * 1000.0 * MemoryBusWidthBits / 8.0;

    private int Attribute(int attribute)
    {
        int v;
        Driver.Check(Driver.cuDeviceGetAttribute(&v, attribute, Device), $"cuDeviceGetAttribute({attribute})");
        return v;
    }

    private int AttributeOrZero(int attribute)
    {
        int v;
        return Driver.cuDeviceGetAttribute(&v, attribute, Device) == Driver.Success ? v : 0;
    }

    /// <summary>Makes this context current on the calling thread.</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_context == 0, this);
        Driver.Check(Driver.cuCtxSetCurrent(_context), "cuCtxSetCurrent");
    }

    /// <summary>Waits for all work on the device.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        Driver.Check(Driver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /// <summary>Free and total device memory in bytes.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        nuint free, total;
        Driver.Check(Driver.cuMemGetInfo(&free, &total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    /// <summary>Releases the primary context (it is destroyed when its last user releases it).</summary>
    public void Dispose()
    {
        if (_context == 0) return;
        Driver.cuDevicePrimaryCtxRelease(Device);
        _context = 0;
    }
}
