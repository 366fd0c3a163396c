using System.Text;
using System.Text.RegularExpressions;
using Nemotron.Gym.Kernels.Cuda;

namespace Nemotron.Gym.Kernels.Cuda.Tests;

/// <summary>
/// Compiles every kernel family through NVRTC with no GPU: CI runs these (test.sh installs Debian's libnvrtc11.2),
/// so a kernel that does not compile, or a kernel name the backend launches that no source defines, fails CI.
/// </summary>
public sealed class KernelCompileTests : IDisposable
{
    // compute_80: PTX as the driver JIT-compiles it for any sm_80+ GPU. sm_80 and sm_90 (A100, H100): cubins, which
    // also run ptxas, so register and shared-memory limits are checked as well.
    public static TheoryData<string, string> FamiliesAndTargets()
    {
        var data = new TheoryData<string, string>();
        foreach (var f in KernelCompiler.Families)
            foreach (var t in new[] { "compute_80", "sm_80", "sm_90" })
                data.Add(f, t);
        return data;
    }

    private readonly string _cache = Path.Combine(Path.GetTempPath(), "ng-cuda-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_cache)) Directory.Delete(_cache, recursive: true);
    }

    private KernelCompiler Compiler()
    {
        Assert.True(KernelCompiler.IsNvrtcAvailable(out var reason),
            $"NVRTC is needed to compile the CUDA kernels (no GPU needed); test.sh installs Debian's libnvrtc11.2. {reason}");
        return new KernelCompiler(_cache);
    }

    [Theory]
    [MemberData(nameof(FamiliesAndTargets))]
    public void Every_kernel_family_compiles(string family, string target)
    {
        var compiler = Compiler();
        // A failed compile throws CudaException whose message holds NVRTC's log.
        var module = compiler.Compile(family, target);
        Assert.False(module.FromCache);
        Assert.NotEmpty(module.Image);
        Assert.Equal(target.StartsWith("sm_", StringComparison.Ordinal), module.IsCubin);
        Assert.True(File.Exists(module.CachePath));
    }

    [Fact]
    public void Every_kernel_the_backend_launches_is_defined()
    {
        var compiler = Compiler();
        foreach (var family in CudaBackend.LaunchedKernels.Select(k => k.Family).Distinct())
        {
            var ptx = Encoding.UTF8.GetString(compiler.Compile(family, "compute_80").Image);
            var entries = Regex.Matches(ptx, @"\.entry\s+([A-Za-z_][A-Za-z0-9_]*)").Select(m => m.Groups[1].Value).ToHashSet();
            foreach (var (f, kernel) in CudaBackend.LaunchedKernels.Where(k => k.Family == family))
                Assert.True(entries.Contains(kernel), $"{f}.cu defines no kernel {kernel} (it has {string.Join(", ", entries.Order())})");
        }
    }

    [Fact]
    public void Every_source_file_is_embedded()
    {
        var dir = FindKernelSources();
        if (dir == null) Assert.Skip("kernels/cuda is not beside this build (a staged copy)");
        var onDisk = Directory.GetFiles(dir, "*.cu").Select(p => Path.GetFileNameWithoutExtension(p)).Order(StringComparer.Ordinal);
        Assert.Equal(onDisk, KernelCompiler.Families);
        foreach (var family in KernelCompiler.Families)
            Assert.Equal(File.ReadAllText(Path.Combine(dir, family + ".cu")), KernelCompiler.Source(family));
    }

    [Fact]
    public void A_second_compile_is_read_from_the_cache()
    {
        var compiler = Compiler();
        var first = compiler.Compile("convert", "compute_80");
        var second = compiler.Compile("convert", "compute_80");
        Assert.False(first.FromCache);
        Assert.True(second.FromCache);
        Assert.Equal(first.CachePath, second.CachePath);
        Assert.Equal(first.Image, second.Image);

        // A new compiler over the same folder (a second start of the program) hits too.
        Assert.True(new KernelCompiler(_cache).Compile("convert", "compute_80").FromCache);

        // Another target is another key.
        var other = compiler.Compile("convert", "compute_90");
        Assert.False(other.FromCache);
        Assert.NotEqual(first.CachePath, other.CachePath);
    }

    [Fact]
    public void A_damaged_cache_entry_is_compiled_again()
    {
        var compiler = Compiler();
        var first = compiler.Compile("convert", "compute_80");
        File.WriteAllBytes(first.CachePath, []);
        var again = compiler.Compile("convert", "compute_80");
        Assert.False(again.FromCache);
        Assert.Equal(first.Image, again.Image);
    }

    [Fact]
    public void A_compile_error_carries_the_compiler_log()
    {
        var compiler = Compiler();
        var e = Assert.Throws<Native.CudaException>(() => compiler.CompileSource("broken", "extern \"C\" __global__ void k() { undefined_name(); }", "compute_80"));
        Assert.Equal("NVRTC_ERROR_COMPILATION", e.ErrorName);
        Assert.Contains("undefined_name", e.Message);
        Assert.Contains("nvrtcCompileProgram", e.Call);
    }

    private static string? FindKernelSources()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "kernels", "cuda");
            if (File.Exists(Path.Combine(d.FullName, "Nemotron.Gym.sln")) && Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
