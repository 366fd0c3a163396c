namespace Nemotron.Gym.TestSupport;

/// <summary>
/// Where things are in this repository for tests and benchmarks: the root, the build configuration of the
/// running assembly, and the gym tool's build with its staged plugins/ (the built-in environments).
/// </summary>
public static class RepoPaths
{
    /// <summary>The repository root (the folder holding Nemotron.Gym.sln), found above the running assembly, else above the current folder.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>Release or Debug: the configuration the running assembly was built with.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";

    /// <summary>The output folder of a project under the root, in the same configuration.</summary>
    public static string BuildOf(params string[] projectFolder) =>
        Path.Combine([Root, .. projectFolder, "bin", Configuration, "net10.0"]);

    /// <summary>The gym tool's build folder.</summary>
    public static string GymBuild => BuildOf("gym", "Nemotron.Gym.Cli");

    /// <summary>The built-in environment plugins, staged beside the gym tool.</summary>
    public static string Plugins
    {
        get
        {
            var folder = Path.Combine(GymBuild, "plugins");
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder} is missing: build gym/Nemotron.Gym.Cli first");
            return folder;
        }
    }

    private static string FindRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Nemotron.Gym.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no Nemotron.Gym.sln above {AppContext.BaseDirectory} or {Environment.CurrentDirectory}");
    }
}
