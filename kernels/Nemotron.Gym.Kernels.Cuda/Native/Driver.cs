using System.Runtime.InteropServices;

namespace Nemotron.Gym.Kernels.Cuda.Native;

/// <summary>
/// The CUDA driver API (libcuda.so.1), bound at run time through function pointers so that the assembly loads on
/// machines without a driver. Only the calls the backend uses are bound; handles are nint, device pointers ulong.
/// Every call goes through <see cref="Check(int, string)"/>, which turns a status into a <see cref="CudaException"/> that names it.
/// </summary>
internal static unsafe class Driver
{
    public const int Success = 0;
    public const int ErrorNotReady = 600;

    // CUdevice_attribute values (cuda.h).
    public const int AttrClockRateKHz = 13;
    public const int AttrMultiprocessorCount = 16;
    public const int AttrMemoryClockRateKHz = 36;
    public const int AttrGlobalMemoryBusWidth = 37;
    public const int AttrComputeCapabilityMajor = 75;
    public const int AttrComputeCapabilityMinor = 76;
    public const int AttrMaxSharedMemoryPerBlockOptin = 97;

    // CUfunction_attribute.
    public const int FuncAttrMaxDynamicSharedSizeBytes = 8;

    private static readonly object s_gate = new();
    private static bool s_loaded;
    private static string s_failure = "";

    public static NativeLibraries.Loaded Library { get; private set; }

    public static delegate* unmanaged<uint, int> cuInit;
    public static delegate* unmanaged<int*, int> cuDriverGetVersion;
    public static delegate* unmanaged<int*, int> cuDeviceGetCount;
    public static delegate* unmanaged<int*, int, int> cuDeviceGet;
    public static delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public static delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public static delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem;
    public static delegate* unmanaged<nint*, int, int> cuDevicePrimaryCtxRetain;
    public static delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease;
    public static delegate* unmanaged<nint, int> cuCtxSetCurrent;
    public static delegate* unmanaged<int> cuCtxSynchronize;
    public static delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo;
    public static delegate* unmanaged<ulong*, nuint, int> cuMemAlloc;
    public static delegate* unmanaged<ulong, int> cuMemFree;
    public static delegate* unmanaged<ulong, void*, nuint, nint, int> cuMemcpyHtoDAsync;
    public static delegate* unmanaged<void*, ulong, nuint, nint, int> cuMemcpyDtoHAsync;
    public static delegate* unmanaged<ulong, ulong, nuint, nint, int> cuMemcpyDtoDAsync;
    public static delegate* unmanaged<ulong, uint, nuint, nint, int> cuMemsetD32Async;
    public static delegate* unmanaged<ulong, byte, nuint, nint, int> cuMemsetD8Async;
    public static delegate* unmanaged<nint*, void*, int> cuModuleLoadData;
    public static delegate* unmanaged<nint, int> cuModuleUnload;
    public static delegate* unmanaged<nint*, nint, byte*, int> cuModuleGetFunction;
    public static delegate* unmanaged<nint, int, int, int> cuFuncSetAttribute;
    public static delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> cuLaunchKernel;
    public static delegate* unmanaged<nint*, uint, int> cuStreamCreate;
    public static delegate* unmanaged<nint, int> cuStreamDestroy;
    public static delegate* unmanaged<nint, int> cuStreamSynchronize;
    public static delegate* unmanaged<nint*, uint, int> cuEventCreate;
    public static delegate* unmanaged<nint, int> cuEventDestroy;
    public static delegate* unmanaged<nint, nint, int> cuEventRecord;
    public static delegate* unmanaged<nint, int> cuEventSynchronize;
    public static delegate* unmanaged<float*, nint, nint, int> cuEventElapsedTime;
    public static delegate* unmanaged<int, byte**, int> cuGetErrorName;
    public static delegate* unmanaged<int, byte**, int> cuGetErrorString;

    /// <summary>Loads libcuda and binds every function, once; false with the reason when it cannot.</summary>
    public static bool TryLoad(out string failure)
    {
        lock (s_gate)
        {
            if (!s_loaded && s_failure.Length == 0)
            {
                if (!NativeLibraries.TryLoad("CUDA driver (libcuda)", NativeLibraries.DriverNames, out var lib, out var why))
                    s_failure = why;
                else
                {
                    try
                    {
                        Bind(lib);
                        Library = lib;
                        s_loaded = true;
                    }
                    catch (EntryPointNotFoundException e)
                    {
                        s_failure = e.Message;
                    }
                }
            }
            failure = s_failure;
            return s_loaded;
        }
    }

    private static void Bind(NativeLibraries.Loaded l)
    {
        nint F(string name) => NativeLibraries.Export(l, name);
        cuInit = (delegate* unmanaged<uint, int>)F("cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)F("cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)F("cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)F("cuDeviceGet");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)F("cuDeviceGetName");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)F("cuDeviceGetAttribute");
        cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)F("cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)F("cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)F("cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = (delegate* unmanaged<nint, int>)F("cuCtxSetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)F("cuCtxSynchronize");
        cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)F("cuMemGetInfo_v2");
        cuMemAlloc = (delegate* unmanaged<ulong*, nuint, int>)F("cuMemAlloc_v2");
        cuMemFree = (delegate* unmanaged<ulong, int>)F("cuMemFree_v2");
        cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)F("cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, nint, int>)F("cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = (delegate* unmanaged<ulong, ulong, nuint, nint, int>)F("cuMemcpyDtoDAsync_v2");
        cuMemsetD32Async = (delegate* unmanaged<ulong, uint, nuint, nint, int>)F("cuMemsetD32Async");
        cuMemsetD8Async = (delegate* unmanaged<ulong, byte, nuint, nint, int>)F("cuMemsetD8Async");
        cuModuleLoadData = (delegate* unmanaged<nint*, void*, int>)F("cuModuleLoadData");
        cuModuleUnload = (delegate* unmanaged<nint, int>)F("cuModuleUnload");
        cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)F("cuModuleGetFunction");
        cuFuncSetAttribute = (delegate* unmanaged<nint, int, int, int>)F("cuFuncSetAttribute");
        cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)F("cuLaunchKernel");
        cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)F("cuStreamCreate");
        cuStreamDestroy = (delegate* unmanaged<nint, int>)F("cuStreamDestroy_v2");
        cuStreamSynchronize = (delegate* unmanaged<nint, int>)F("cuStreamSynchronize");
        cuEventCreate = (delegate* unmanaged<nint*, uint, int>)F("cuEventCreate");
        cuEventDestroy = (delegate* unmanaged<nint, int>)F("cuEventDestroy_v2");
        cuEventRecord = (delegate* unmanaged<nint, nint, int>)F("cuEventRecord");
        cuEventSynchronize = (delegate* unmanaged<nint, int>)F("cuEventSynchronize");
        cuEventElapsedTime = (delegate* unmanaged<float*, nint, nint, int>)F("cuEventElapsedTime");
        cuGetErrorName = (delegate* unmanaged<int, byte**, int>)F("cuGetErrorName");
        cuGetErrorString = (delegate* unmanaged<int, byte**, int>)F("cuGetErrorString");
    }

    /// <summary>The symbolic name of a CUresult ("CUDA_ERROR_OUT_OF_MEMORY").</summary>
    public static string ErrorName(int status)
    {
        if (cuGetErrorName == null) return $"CUresult {status}";
        byte* p = null;
        return cuGetErrorName(status, &p) == Success && p != null ? Marshal.PtrToStringUTF8((nint)p) ?? $"CUresult {status}" : $"CUresult {status}";
    }

    private static string ErrorText(int status)
    {
        if (cuGetErrorString == null) return "";
        byte* p = null;
        return cuGetErrorString(status, &p) == Success && p != null ? Marshal.PtrToStringUTF8((nint)p) ?? "" : "";
    }

    /// <summary>Throws a <see cref="CudaException"/> naming <paramref name="call"/> unless the status is success.</summary>
    public static void Check(int status, string call)
    {
        if (status != Success) throw new CudaException("driver", status, ErrorName(status), call, ErrorText(status));
    }

    /// <summary>As <see cref="Check(int, string)"/>, with the call's description built only on failure.</summary>
    public static void Check(int status, Func<string> call)
    {
        if (status != Success) throw new CudaException("driver", status, ErrorName(status), call(), ErrorText(status));
    }
}
