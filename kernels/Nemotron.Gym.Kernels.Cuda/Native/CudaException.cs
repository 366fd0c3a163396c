namespace Nemotron.Gym.Kernels.Cuda.Native;

/// <summary>
/// A failed call into the CUDA driver, NVRTC or cuBLAS: carries the library's error name (CUDA_ERROR_OUT_OF_MEMORY,
/// NVRTC_ERROR_COMPILATION, CUBLAS_STATUS_NOT_SUPPORTED) and the call that returned it, with its context.
/// </summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception; <paramref name="call"/> names the API function and what it was doing.</summary>
    public CudaException(string library, int code, string errorName, string call, string? detail = null)
        : base($"{call} failed: {errorName} ({code}){(string.IsNullOrEmpty(detail) ? "" : ": " + detail)}")
    {
        Library = library;
        Code = code;
        ErrorName = errorName;
        Call = call;
    }

    /// <summary>"driver", "nvrtc" or "cublas".</summary>
    public string Library { get; }
    /// <summary>The numeric status the call returned.</summary>
    public int Code { get; }
    /// <summary>The status's symbolic name.</summary>
    public string ErrorName { get; }
    /// <summary>The call that failed, as "cuMemAlloc_v2(4096 bytes)".</summary>
    public string Call { get; }
}
