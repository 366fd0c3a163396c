using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>
/// Test assemblies and silos share one images folder: when several ask for a missing image at once, one builds
/// it and the others load that build (two builds into one folder delete each other's files).
/// </summary>
public sealed class ImageBuildLockTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ngym-image-lock-").FullName;

    [Fact]
    public async Task Concurrent_ensures_build_a_missing_image_once()
    {
        var recipes = Path.Combine(root, "recipes");
        var images = Path.Combine(root, "images");
        Directory.CreateDirectory(Path.Combine(recipes, "fake"));
        // A recipe that counts its runs and fails when two overlap.
        await File.WriteAllTextAsync(Path.Combine(recipes, "fake", "build.sh"), """
            set -eu
            out=$1
            mkdir -p "$out"
            if [ -e "$out/building" ]; then echo "two builds at once" >&2; exit 3; fi
            touch "$out/building"
            echo run >> "$out/../builds.txt"
            sleep 0.5
            mkdir -p "$out/rootfs"
            printf '{"name":"fake","interpreter":"/bin/true","version":"1","size_bytes":1,"digest":"d","docker_image":"x:d"}' > "$out/manifest.json"
            rm "$out/building"
            """);
        var built = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => SandboxImage.EnsureAsync(recipes, images, "fake", default))));
        Assert.All(built, image => Assert.Equal("fake", image.Name));
        Assert.Single(await File.ReadAllLinesAsync(Path.Combine(images, "builds.txt")));

        // An explicit build still rebuilds, and waits for any other build of the same image.
        await Task.WhenAll(SandboxImage.BuildAsync(recipes, images, "fake", default), SandboxImage.BuildAsync(recipes, images, "fake", default));
        Assert.Equal(3, (await File.ReadAllLinesAsync(Path.Combine(images, "builds.txt"))).Length);
    }

    public void Dispose() => Directory.Delete(root, recursive: true);
}
