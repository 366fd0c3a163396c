using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Nemotron.Gym.Kernels.Cuda.Native;

namespace Nemotron.Gym.Kernels.Cuda;

/// <summary>A compiled kernel family: the image the driver loads and where it came from.</summary>
/// <param name="Family">The source file's name without extension ("attention").</param>
/// <param name="Target">The NVRTC architecture it was built for ("sm_90" for a cubin, "compute_80" for PTX).</param>
/// <param name="Image">A cubin, or PTX text with its terminating NUL.</param>
/// <param name="FromCache">True when read from the cache instead of compiled.</param>
/// <param name="Log">The compiler's warnings, if any (empty from the cache).</param>
/// <param name="CachePath">The cache file that holds the image.</param>
/// <param name="Elapsed">Time to compile or to read the cache.</param>
public sealed record CompiledModule(string Family, string Target, byte[] Image, bool FromCache, string Log, string CachePath, TimeSpan Elapsed)
{
    /// <summary>True for a cubin (sm_XX), false for PTX (compute_XX) that the driver compiles when it loads it.</summary>
    public bool IsCubin => Target.StartsWith("sm_", StringComparison.Ordinal);
}

/// <summary>
/// Compiles the kernel sources of kernels/cuda (embedded in this assembly) with NVRTC, for one architecture, and
/// caches each image on disk under a hash of everything that decides its bytes: NVRTC's version, the options,
/// the source and the headers. A second start therefore loads the images without compiling anything.
/// The cache folder is NEMOTRON_CUDA_CACHE, else $XDG_CACHE_HOME/nemotron-gym/cuda, else ~/.cache/nemotron-gym/cuda.
/// </summary>
public sealed class KernelCompiler
{
    private const string ResourcePrefix = "cuda/";

    /// <param name="cacheDirectory">Where images are kept; null for <see cref="DefaultCacheDirectory"/>.</param>
    public KernelCompiler(string? cacheDirectory = null)
    {
        if (!Nvrtc.TryLoad(out var failure)) throw new InvalidOperationException(failure);
        CacheDirectory = cacheDirectory ?? DefaultCacheDirectory;
        var (major, minor) = Nvrtc.Version;
        NvrtcVersion = $"{major}.{minor}";
    }

    /// <summary>True when NVRTC can be loaded here (it needs no GPU); otherwise <paramref name="reason"/> says why.</summary>
    public static bool IsNvrtcAvailable(out string reason) => Nvrtc.TryLoad(out reason);

    /// <summary>The default cache folder (see the class remarks).</summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            if (Environment.GetEnvironmentVariable("NEMOTRON_CUDA_CACHE") is { Length: > 0 } dir) return dir;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg;
            return Path.Combine(root, "nemotron-gym", "cuda");
        }
    }

    /// <summary>Where this compiler keeps its images.</summary>
    public string CacheDirectory { get; }

    /// <summary>"major.minor" of the NVRTC in use.</summary>
    public string NvrtcVersion { get; }

    /// <summary>The library file NVRTC was loaded from.</summary>
    public static string NvrtcPath => Nvrtc.Library.Path;

    /// <summary>Every kernel family: one per .cu file, sorted.</summary>
    public static IReadOnlyList<string> Families { get; } = typeof(KernelCompiler).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".cu", StringComparison.Ordinal))
        .Select(n => n[ResourcePrefix.Length..^3]).Order(StringComparer.Ordinal).ToArray();

    private static IReadOnlyList<(string Name, string Text)> Headers { get; } = typeof(KernelCompiler).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".cuh", StringComparison.Ordinal))
        .Order(StringComparer.Ordinal).Select(n => (n[ResourcePrefix.Length..], ReadResource(n))).ToArray();

    /// <summary>The CUDA C source of a family.</summary>
    public static string Source(string family) => ReadResource($"{ResourcePrefix}{family}.cu");

    private static string ReadResource(string name)
    {
        using var s = typeof(KernelCompiler).Assembly.GetManifestResourceStream(name)
            ?? throw new ArgumentException($"no embedded kernel source '{name}' (families: {string.Join(", ", Families)})");
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    }

    /// <summary>
    /// The best NVRTC target for a device of compute capability major.minor: a cubin for exactly that chip when this
    /// NVRTC knows it, else PTX for the newest virtual architecture it knows that the chip can run (the driver
    /// compiles PTX for newer chips when it loads it).
    /// </summary>
    public static string TargetFor(int major, int minor)
    {
        int arch = major * 10 + minor;
        var supported = Nvrtc.SupportedArchitectures();
        if (Nvrtc.CanEmitCubin && supported.Contains(arch)) return $"sm_{arch}";
        int best = supported.Where(a => a <= arch).DefaultIfEmpty(arch).Max();
        return $"compute_{best}";
    }

    /// <summary>The NVRTC options for a target.</summary>
    public static IReadOnlyList<string> Options(string target) => [$"--gpu-architecture={target}", "--std=c++17"];

    /// <summary>Compiles <paramref name="family"/> for <paramref name="target"/> ("sm_90" or "compute_80"), or reads it from the cache.</summary>
    public CompiledModule Compile(string family, string target) => CompileSource(family, Source(family), target);

    /// <summary>Compiles CUDA C that is not one of the embedded families (tests), with the same headers and cache.</summary>
    internal CompiledModule CompileSource(string family, string source, string target)
    {
        var clock = Stopwatch.StartNew();
        var options = Options(target);
        bool cubin = target.StartsWith("sm_", StringComparison.Ordinal);
        if (cubin && !Nvrtc.CanEmitCubin) throw new InvalidOperationException($"NVRTC {NvrtcVersion} cannot emit a cubin; ask for compute_XX instead of {target}");

        string path = Path.Combine(CacheDirectory, $"{family}-{target}-{CacheKey(family, source, options)}.{(cubin ? "cubin" : "ptx")}");
        if (File.Exists(path))
        {
            try
            {
                var cached = File.ReadAllBytes(path);
                if (cached.Length > 0) return new CompiledModule(family, target, cached, true, "", path, clock.Elapsed);
            }
            catch (IOException) { }  // unreadable: compile again and overwrite
        }

        var (image, log) = Nvrtc.Compile(source, family + ".cu", Headers, options, cubin);
        try
        {
            Directory.CreateDirectory(CacheDirectory);
            // Write then rename, so a concurrent reader never sees half a file.
            string temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
            File.WriteAllBytes(temp, image);
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only cache costs a compile per start, nothing more.
        }
        return new CompiledModule(family, target, image, false, log, path, clock.Elapsed);
    }

    private string CacheKey(string family, string source, IReadOnlyList<string> options)
    {
        var text = new StringBuilder();
        text.Append("nvrtc ").Append(NvrtcVersion).Append('\0').Append(family).Append('\0');
        foreach (var o in options) text.Append(o).Append('\0');
        text.Append(source).Append('\0');
        foreach (var (name, body) in Headers) text.Append(name).Append('\0').Append(body).Append('\0');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..20];
    }
}
