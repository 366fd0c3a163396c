using System.Runtime.InteropServices;

namespace Nemotron.Gym.Kernels.Cuda.Native;

/// <summary>
/// Finds the CUDA libraries: the driver (libcuda.so.1, installed with the NVIDIA driver), NVRTC, cuBLAS and
/// cuBLASLt (from a CUDA toolkit, a Python wheel such as PyTorch's, or Debian's packages). Each is tried by
/// soname through the system loader first, then in the usual install folders; a library that is not found
/// yields an error listing every place tried. NEMOTRON_CUDA_LIB_DIRS (colon-separated) adds folders to search
/// first.
/// </summary>
internal static class NativeLibraries
{
    public static readonly string[] DriverNames = ["libcuda.so.1", "libcuda.so"];
    public static readonly string[] NvrtcNames = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"];
    public static readonly string[] CublasNames = ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"];
    public static readonly string[] CublasLtNames = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"];

    /// <summary>A loaded library: its handle and where it came from.</summary>
    public readonly record struct Loaded(nint Handle, string Path);

    /// <summary>Loads the first of <paramref name="sonames"/> that can be found, or explains where it looked.</summary>
    public static bool TryLoad(string what, string[] sonames, out Loaded loaded, out string failure)
    {
        var tried = new List<string>();
        foreach (var name in sonames)
        {
            if (NativeLibrary.TryLoad(name, out var h))
            {
                loaded = new Loaded(h, name);
                failure = "";
                return true;
            }
            tried.Add(name);
        }
        foreach (var dir in SearchDirectories())
            foreach (var name in sonames)
            {
                var path = System.IO.Path.Combine(dir, name);
                if (!File.Exists(path)) continue;
                if (what == "NVRTC") PreloadNvrtcBuiltins(dir);
                if (NativeLibrary.TryLoad(path, out var h))
                {
                    loaded = new Loaded(h, path);
                    failure = "";
                    return true;
                }
                tried.Add(path + " (exists but failed to load)");
            }
        loaded = default;
        failure = $"{what} not found: tried {string.Join(", ", sonames)} through the system loader and in " +
                  $"{string.Join(", ", SearchDirectories().DefaultIfEmpty("(no CUDA folders exist here)"))}" +
                  (tried.Any(t => t.Contains("exists")) ? $"; {string.Join("; ", tried.Where(t => t.Contains("exists")))}" : "") +
                  ". Set NEMOTRON_CUDA_LIB_DIRS to the folder that holds it.";
        return false;
    }

    /// <summary>NVRTC opens its builtins library by soname; loading it from the same folder first lets that succeed.</summary>
    private static void PreloadNvrtcBuiltins(string dir)
    {
        try
        {
            foreach (var f in Directory.EnumerateFiles(dir, "libnvrtc-builtins.so*").OrderByDescending(f => f.Length))
                NativeLibrary.TryLoad(f, out _);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>Folders that exist and may hold CUDA libraries, most specific first.</summary>
    public static IEnumerable<string> SearchDirectories()
    {
        var dirs = new List<string>();
        var extra = Environment.GetEnvironmentVariable("NEMOTRON_CUDA_LIB_DIRS");
        if (!string.IsNullOrWhiteSpace(extra)) dirs.AddRange(extra.Split(':', StringSplitOptions.RemoveEmptyEntries));
        foreach (var v in new[] { "CUDA_HOME", "CUDA_PATH" })
            if (Environment.GetEnvironmentVariable(v) is { Length: > 0 } root)
            {
                dirs.Add(System.IO.Path.Combine(root, "lib64"));
                dirs.Add(System.IO.Path.Combine(root, "lib"));
            }
        dirs.AddRange([
            "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib",
            "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib",
        ]);
        dirs.AddRange(Glob("/usr/local", "cuda-*", "lib64"));
        // Python wheels (PyTorch's nvidia-* packages): site-packages/nvidia/<package>/lib and nvidia/cu13/lib.
        foreach (var root in new[] { "/opt", "/usr/local/lib", "/usr/lib", Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + "/.local/lib" })
            foreach (var site in SitePackages(root))
            {
                var nvidia = System.IO.Path.Combine(site, "nvidia");
                dirs.AddRange(Glob(nvidia, "*", "lib"));
            }
        return dirs.Where(Directory.Exists).Distinct();
    }

    private static IEnumerable<string> SitePackages(string root)
    {
        var found = new List<string>();
        try
        {
            if (!Directory.Exists(root)) return found;
            // root/python3.X/{site,dist}-packages and root/*/.venv/lib/python3.X/site-packages (one level of venvs).
            foreach (var py in SafeDirs(root, "python3*"))
                found.AddRange(SafeDirs(py, "*-packages"));
            foreach (var sub in SafeDirs(root, "*"))
                foreach (var venvLib in new[] { System.IO.Path.Combine(sub, ".venv", "lib"), System.IO.Path.Combine(sub, "lib") })
                    foreach (var py in SafeDirs(venvLib, "python3*"))
                        found.AddRange(SafeDirs(py, "*-packages"));
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return found;
    }

    private static IEnumerable<string> Glob(string root, string pattern, string child) =>
        SafeDirs(root, pattern).Select(d => System.IO.Path.Combine(d, child));

    private static IEnumerable<string> SafeDirs(string root, string pattern)
    {
        try
        {
            return Directory.Exists(root) ? Directory.GetDirectories(root, pattern) : [];
        }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    /// <summary>The address of <paramref name="symbol"/> in a loaded library, or an error naming both.</summary>
    public static nint Export(Loaded library, string symbol)
    {
        if (NativeLibrary.TryGetExport(library.Handle, symbol, out var p)) return p;
        throw new EntryPointNotFoundException($"{library.Path} has no symbol {symbol} (a library older than this code expects?)");
    }

    /// <summary>The address of <paramref name="symbol"/>, or zero when the library lacks it.</summary>
    public static nint OptionalExport(Loaded library, string symbol) =>
        NativeLibrary.TryGetExport(library.Handle, symbol, out var p) ? p : 0;
}
