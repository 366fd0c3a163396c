using System.Runtime.InteropServices;
using System.Text;

namespace Nemotron.Gym.Kernels.Cuda.Native;

/// <summary>
/// NVRTC, the CUDA run-time compiler (libnvrtc), bound through function pointers. It needs no GPU and no driver,
/// so CI loads it too (Debian's libnvrtc11.2) to prove that every kernel compiles.
/// </summary>
internal static unsafe class Nvrtc
{
    private static readonly object s_gate = new();
    private static bool s_loaded;
    private static string s_failure = "";

    public static NativeLibraries.Loaded Library { get; private set; }

    private static delegate* unmanaged<int*, int*, int> nvrtcVersion;
    private static delegate* unmanaged<int, byte*> nvrtcGetErrorString;
    private static delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    private static delegate* unmanaged<nint*, int> nvrtcDestroyProgram;
    private static delegate* unmanaged<nint, int, byte**, int> nvrtcCompileProgram;
    private static delegate* unmanaged<nint, nuint*, int> nvrtcGetPTXSize;
    private static delegate* unmanaged<nint, byte*, int> nvrtcGetPTX;
    private static delegate* unmanaged<nint, nuint*, int> nvrtcGetCUBINSize;  // null before NVRTC 11.1
    private static delegate* unmanaged<nint, byte*, int> nvrtcGetCUBIN;
    private static delegate* unmanaged<nint, nuint*, int> nvrtcGetProgramLogSize;
    private static delegate* unmanaged<nint, byte*, int> nvrtcGetProgramLog;
    private static delegate* unmanaged<int*, int> nvrtcGetNumSupportedArchs;  // null before NVRTC 11.2
    private static delegate* unmanaged<int*, int> nvrtcGetSupportedArchs;

    /// <summary>Loads NVRTC once; false with the places tried when it is not installed.</summary>
    public static bool TryLoad(out string failure)
    {
        lock (s_gate)
        {
            if (!s_loaded && s_failure.Length == 0)
            {
                if (!NativeLibraries.TryLoad("NVRTC", NativeLibraries.NvrtcNames, out var l, out var why))
                    s_failure = why;
                else
                {
                    try
                    {
                        nint F(string name) => NativeLibraries.Export(l, name);
                        nvrtcVersion = (delegate* unmanaged<int*, int*, int>)F("nvrtcVersion");
                        nvrtcGetErrorString = (delegate* unmanaged<int, byte*>)F("nvrtcGetErrorString");
                        nvrtcCreateProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)F("nvrtcCreateProgram");
                        nvrtcDestroyProgram = (delegate* unmanaged<nint*, int>)F("nvrtcDestroyProgram");
                        nvrtcCompileProgram = (delegate* unmanaged<nint, int, byte**, int>)F("nvrtcCompileProgram");
                        nvrtcGetPTXSize = (delegate* unmanaged<nint, nuint*, int>)F("nvrtcGetPTXSize");
                        nvrtcGetPTX = (delegate* unmanaged<nint, byte*, int>)F("nvrtcGetPTX");
                        nvrtcGetCUBINSize = (delegate* unmanaged<nint, nuint*, int>)NativeLibraries.OptionalExport(l, "nvrtcGetCUBINSize");
                        nvrtcGetCUBIN = (delegate* unmanaged<nint, byte*, int>)NativeLibraries.OptionalExport(l, "nvrtcGetCUBIN");
                        nvrtcGetProgramLogSize = (delegate* unmanaged<nint, nuint*, int>)F("nvrtcGetProgramLogSize");
                        nvrtcGetProgramLog = (delegate* unmanaged<nint, byte*, int>)F("nvrtcGetProgramLog");
                        nvrtcGetNumSupportedArchs = (delegate* unmanaged<int*, int>)NativeLibraries.OptionalExport(l, "nvrtcGetNumSupportedArchs");
                        nvrtcGetSupportedArchs = (delegate* unmanaged<int*, int>)NativeLibraries.OptionalExport(l, "nvrtcGetSupportedArchs");
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

    private static void Check(int status, string call, string? detail = null)
    {
        if (status == 0) return;
        string name = nvrtcGetErrorString != null ? Marshal.PtrToStringUTF8((nint)nvrtcGetErrorString(status)) ?? $"nvrtcResult {status}" : $"nvrtcResult {status}";
        throw new CudaException("nvrtc", status, name, call, detail);
    }

    /// <summary>(major, minor) of the loaded NVRTC.</summary>
    public static (int Major, int Minor) Version
    {
        get
        {
            int major, minor;
            Check(nvrtcVersion(&major, &minor), "nvrtcVersion");
            return (major, minor);
        }
    }

    /// <summary>The real architectures (80 for sm_80) this NVRTC can make a cubin for; empty when it cannot say.</summary>
    public static int[] SupportedArchitectures()
    {
        if (nvrtcGetNumSupportedArchs == null || nvrtcGetSupportedArchs == null) return [];
        int count;
        Check(nvrtcGetNumSupportedArchs(&count), "nvrtcGetNumSupportedArchs");
        var archs = new int[count];
        fixed (int* p = archs) Check(nvrtcGetSupportedArchs(p), "nvrtcGetSupportedArchs");
        return archs;
    }

    /// <summary>True when this NVRTC can emit a cubin (11.1 and later).</summary>
    public static bool CanEmitCubin => nvrtcGetCUBIN != null && nvrtcGetCUBINSize != null;

    /// <summary>
    /// Compiles one translation unit. Returns the image (a cubin when <paramref name="cubin"/>, else PTX text with
    /// its terminating NUL) and the compiler's log; a compilation error throws with the log in the message.
    /// </summary>
    public static (byte[] Image, string Log) Compile(string source, string name, IReadOnlyList<(string Name, string Text)> headers,
        IReadOnlyList<string> options, bool cubin)
    {
        var pinned = new List<GCHandle>();
        byte* Utf8(string s)
        {
            var h = GCHandle.Alloc(Encoding.UTF8.GetBytes(s + "\0"), GCHandleType.Pinned);
            pinned.Add(h);
            return (byte*)h.AddrOfPinnedObject();
        }
        nint program = 0;
        try
        {
            var headerTexts = stackalloc byte*[Math.Max(1, headers.Count)];
            var headerNames = stackalloc byte*[Math.Max(1, headers.Count)];
            for (int i = 0; i < headers.Count; i++)
            {
                headerTexts[i] = Utf8(headers[i].Text);
                headerNames[i] = Utf8(headers[i].Name);
            }
            Check(nvrtcCreateProgram(&program, Utf8(source), Utf8(name), headers.Count, headerTexts, headerNames), $"nvrtcCreateProgram({name})");
            var opts = stackalloc byte*[Math.Max(1, options.Count)];
            for (int i = 0; i < options.Count; i++) opts[i] = Utf8(options[i]);
            int status = nvrtcCompileProgram(program, options.Count, opts);
            string log = ReadLog(program);
            Check(status, $"nvrtcCompileProgram({name}, {string.Join(' ', options)})", "\n" + log);

            nuint size;
            byte[] image;
            if (cubin)
            {
                Check(nvrtcGetCUBINSize(program, &size), $"nvrtcGetCUBINSize({name})");
                image = new byte[(int)size];
                fixed (byte* p = image) Check(nvrtcGetCUBIN(program, p), $"nvrtcGetCUBIN({name})");
            }
            else
            {
                Check(nvrtcGetPTXSize(program, &size), $"nvrtcGetPTXSize({name})");
                image = new byte[(int)size];
                fixed (byte* p = image) Check(nvrtcGetPTX(program, p), $"nvrtcGetPTX({name})");
            }
            return (image, log);
        }
        finally
        {
            if (program != 0) nvrtcDestroyProgram(&program);
            foreach (var h in pinned) h.Free();
        }
    }

    private static string ReadLog(nint program)
    {
        nuint size;
        if (nvrtcGetProgramLogSize(program, &size) != 0 || size <= 1) return "";
        var buffer = new byte[(int)size];
        fixed (byte* p = buffer)
            if (nvrtcGetProgramLog(program, p) != 0) return "";
        return Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1).TrimEnd();
    }
}
