using System.Runtime.InteropServices;

namespace Nemotron.Gym.Kernels.Cuda.Native;

/// <summary>
/// cuBLAS (libcublas), bound through function pointers: a handle, its stream, and the strided-batched mixed-precision
/// product (bf16 operands, fp32 output, fp32 accumulation) that every matrix product of the backend goes through.
/// </summary>
internal static unsafe class Cublas
{
    public const int OpN = 0, OpT = 1;
    public const int DataF32 = 0, DataBf16 = 14;    // cudaDataType_t
    public const int Compute32F = 68;               // cublasComputeType_t: fp32 accumulation
    public const int GemmDefault = -1;              // cublasGemmAlgo_t: the heuristic's choice (tensor cores for bf16)

    private static readonly object s_gate = new();
    private static bool s_loaded;
    private static string s_failure = "";

    public static NativeLibraries.Loaded Library { get; private set; }

    private static delegate* unmanaged<nint*, int> cublasCreate;
    private static delegate* unmanaged<nint, int> cublasDestroy;
    private static delegate* unmanaged<nint, nint, int> cublasSetStream;
    private static delegate* unmanaged<nint, int*, int> cublasGetVersion;
    private static delegate* unmanaged<int, byte*> cublasGetStatusName;  // null before cuBLAS 11.4
    private static delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, long, ulong, int, int, long,
        float*, ulong, int, int, long, int, int, int, int> cublasGemmStridedBatchedEx;

    /// <summary>Loads cuBLAS once; false with the places tried when it is not installed.</summary>
    public static bool TryLoad(out string failure)
    {
        lock (s_gate)
        {
            if (!s_loaded && s_failure.Length == 0)
            {
                // cuBLAS needs cuBLASLt beside it; loading it first lets the loader resolve it from a non-standard folder.
                NativeLibraries.TryLoad("cuBLASLt", NativeLibraries.CublasLtNames, out _, out _);
                if (!NativeLibraries.TryLoad("cuBLAS", NativeLibraries.CublasNames, out var l, out var why))
                    s_failure = why;
                else
                {
                    try
                    {
                        nint F(string name) => NativeLibraries.Export(l, name);
                        cublasCreate = (delegate* unmanaged<nint*, int>)F("cublasCreate_v2");
                        cublasDestroy = (delegate* unmanaged<nint, int>)F("cublasDestroy_v2");
                        cublasSetStream = (delegate* unmanaged<nint, nint, int>)F("cublasSetStream_v2");
                        cublasGetVersion = (delegate* unmanaged<nint, int*, int>)F("cublasGetVersion_v2");
                        cublasGetStatusName = (delegate* unmanaged<int, byte*>)NativeLibraries.OptionalExport(l, "cublasGetStatusName");
                        cublasGemmStridedBatchedEx = (delegate* unmanaged<nint, int, int, int, int, int, float*, ulong, int, int, long, ulong, int, int, long,
                            float*, ulong, int, int, long, int, int, int, int>)F("cublasGemmStridedBatchedEx");
                        Library = l;
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

    private static string StatusName(int status) => status switch
    {
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ when cublasGetStatusName != null => Marshal.PtrToStringUTF8((nint)cublasGetStatusName(status)) ?? $"cublasStatus {status}",
        _ => $"cublasStatus {status}",
    };

    public static void Check(int status, string call)
    {
        if (status != 0) throw new CudaException("cublas", status, StatusName(status), call);
    }

    public static nint Create(nint stream)
    {
        nint handle;
        Check(cublasCreate(&handle), "cublasCreate_v2");
        Check(cublasSetStream(handle, stream), "cublasSetStream_v2");
        return handle;
    }

    public static void Destroy(nint handle) => cublasDestroy(handle);

    public static int Version(nint handle)
    {
        int v;
        Check(cublasGetVersion(handle, &v), "cublasGetVersion_v2");
        return v;
    }

    /// <summary>
    /// Column-major C = alpha·op(A)·op(B) + beta·C over a strided batch; A and B bf16, C fp32, fp32 accumulation.
    /// </summary>
    public static void GemmBf16(nint handle, bool transA, bool transB, int m, int n, int k, float alpha,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch)
    {
        int status = cublasGemmStridedBatchedEx(handle, transA ? OpT : OpN, transB ? OpT : OpN, m, n, k, &alpha,
            a, DataBf16, lda, strideA, b, DataBf16, ldb, strideB, &beta, c, DataF32, ldc, strideC, batch, Compute32F, GemmDefault);
        if (status != 0)
            Check(status, $"cublasGemmStridedBatchedEx(m={m}, n={n}, k={k}, transA={transA}, transB={transB}, lda={lda}, ldb={ldb}, ldc={ldc}, batch={batch})");
    }
}
