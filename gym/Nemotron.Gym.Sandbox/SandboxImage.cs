using System.Diagnostics;
using System.Text.Json;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// A built sandbox image: the manifest that <c>sandbox-images/NAME/build.sh</c> writes beside the unpacked
/// root filesystem (bound read-only by the bwrap backend) and its tar (imported by the docker backend).
/// </summary>
/// <param name="Name">"python".</param>
/// <param name="Interpreter">Path of the interpreter inside the image.</param>
/// <param name="Version">The interpreter's version.</param>
/// <param name="SizeBytes">Size of the unpacked root filesystem.</param>
/// <param name="Digest">Digest of the image's content (the docker tag).</param>
/// <param name="DockerImage">Repository:tag the docker backend imports it as.</param>
/// <param name="Folder">The image's folder.</param>
public sealed record SandboxImage(string Name, string Interpreter, string Version, long SizeBytes, string Digest, string DockerImage, string Folder)
{
    /// <summary>The unpacked root filesystem.</summary>
    public string RootFs => Path.Combine(Folder, "rootfs");

    /// <summary>The tar of the root filesystem.</summary>
    public string Tarball => Path.Combine(Folder, "rootfs.tar");

    /// <summary>Reads <c>IMAGES/NAME/manifest.json</c>; null when the image has not been built.</summary>
    /// <exception cref="FormatException">The manifest exists but is malformed (names the file and field).</exception>
    public static SandboxImage? Load(string imagesDirectory, string name)
    {
        var folder = Path.Combine(imagesDirectory, name);
        var manifestPath = Path.Combine(folder, "manifest.json");
        if (!File.Exists(manifestPath) || !Directory.Exists(Path.Combine(folder, "rootfs"))) return null;
        using var document = JsonDocument.Parse(File.ReadAllText(manifestPath));
        string Text(string field) => document.RootElement.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()! : throw new FormatException($"{manifestPath}: field '{field}' missing or not text");
        var size = document.RootElement.TryGetProperty("size_bytes", out var s) && s.TryGetInt64(out var n)
            ? n : throw new FormatException($"{manifestPath}: field 'size_bytes' missing or not a whole number");
        return new SandboxImage(Text("name"), Text("interpreter"), Text("version"), size, Text("digest"), Text("docker_image"), folder);
    }

    /// <summary>
    /// The recipes folder (<c>sandbox-images/</c> at the repository root), searched upwards from the
    /// working directory and from the program's own folder; null when neither lies inside a checkout.
    /// </summary>
    public static string? FindRecipes()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "sandbox-images");
                if (Directory.Exists(candidate)) return candidate;
            }
        return null;
    }

    /// <summary>The image names that have a recipe (a folder with build.sh).</summary>
    public static IReadOnlyList<string> RecipeNames(string recipesDirectory) =>
        Directory.GetDirectories(recipesDirectory).Where(d => File.Exists(Path.Combine(d, "build.sh")))
            .Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// The image as built, or built now when it is missing. Safe when several processes ask at once (test
    /// assemblies run side by side, silos share a host): the first builds under the image's lock, the others wait
    /// and load what it built instead of building over it.
    /// </summary>
    public static async Task<SandboxImage> EnsureAsync(string recipesDirectory, string imagesDirectory, string name, CancellationToken cancellation)
    {
        if (Load(imagesDirectory, name) is { } built) return built;
        await using var held = await LockAsync(imagesDirectory, name, cancellation);
        return Load(imagesDirectory, name) ?? await BuildLockedAsync(recipesDirectory, imagesDirectory, name, cancellation);
    }

    /// <summary>Runs a recipe's build script into <c>IMAGES/NAME</c> and loads the result (under the image's lock).</summary>
    /// <exception cref="InvalidOperationException">The script failed (its output is in the message).</exception>
    public static async Task<SandboxImage> BuildAsync(string recipesDirectory, string imagesDirectory, string name, CancellationToken cancellation)
    {
        await using var held = await LockAsync(imagesDirectory, name, cancellation);
        return await BuildLockedAsync(recipesDirectory, imagesDirectory, name, cancellation);
    }

    /// <summary>
    /// An exclusive lock on <c>IMAGES/.NAME.lock</c> (flock, released when the process dies): two builds into one
    /// folder would delete each other's files, and a rebuild would pull the root filesystem from under running sandboxes.
    /// </summary>
    private static Task<FileStream> LockAsync(string imagesDirectory, string name, CancellationToken cancellation)
    {
        Directory.CreateDirectory(imagesDirectory);
        return HostFileLock.TakeAsync(Path.Combine(imagesDirectory, "." + name + ".lock"), TimeSpan.FromMinutes(5), cancellation);
    }

    private static async Task<SandboxImage> BuildLockedAsync(string recipesDirectory, string imagesDirectory, string name, CancellationToken cancellation)
    {
        var script = Path.Combine(recipesDirectory, name, "build.sh");
        if (!File.Exists(script)) throw new FileNotFoundException($"no recipe for image '{name}': {script} does not exist", script);
        var folder = Path.Combine(imagesDirectory, name);
        Directory.CreateDirectory(folder);
        // The sandbox uids must reach the root filesystem: every folder above it must be searchable by others.
        for (var dir = new DirectoryInfo(folder); dir is not null && dir.FullName != "/"; dir = dir.Parent)
            if (dir.FullName.StartsWith(Path.GetFullPath(imagesDirectory), StringComparison.Ordinal))
                File.SetUnixFileMode(dir.FullName, File.GetUnixFileMode(dir.FullName) | UnixFileMode.OtherExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.GroupRead);
        var start = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(folder);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellation);
        var errors = process.StandardError.ReadToEndAsync(cancellation);
        await process.WaitForExitAsync(cancellation);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{script} failed (exit {process.ExitCode}):\n{await errors}\n{await output}");
        return Load(imagesDirectory, name) ?? throw new InvalidOperationException($"{script} succeeded but left no manifest in {folder}");
    }
}
