using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.PluginWorker.Tests;

/// <summary>Plugin folders made from built plugin projects, in a temporary root that is removed afterwards.</summary>
public sealed class PluginFolders : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("worker-plugins-").FullName;

    /// <param name="private">Leave the root private to its owner (0700), as a folder under /root would be.</param>
    public PluginFolders(bool @private = false)
    {
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Root, @private ? (UnixFileMode)0b111_000_000 : (UnixFileMode)0b111_101_101);
    }

    public static string HostileBuild => RepoPaths.BuildOf("tests", "Nemotron.Gym.Environments.Hostile");
    public static string MathBuild => RepoPaths.BuildOf("environments", "Math", "Nemotron.Gym.Environments.Math");
    public static string ToolUseBuild => RepoPaths.BuildOf("environments", "ToolUse", "Nemotron.Gym.Environments.ToolUse");

    /// <summary>Copies a build into Root/<paramref name="name"/> (a plugin.json names the assembly when the folder name differs).</summary>
    public string Copy(string build, string name, string assembly, string? manifest = null)
    {
        var dest = Path.Combine(Root, name);
        foreach (var f in Directory.GetFiles(build, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dest, Path.GetRelativePath(build, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        if (manifest != null || name != assembly)
            File.WriteAllText(Path.Combine(dest, "plugin.json"), manifest ?? $$"""{"assembly": "{{assembly}}.dll"}""");
        return dest;
    }

    public string Hostile(string name = "Nemotron.Gym.Environments.Hostile", string? manifest = null) =>
        Copy(HostileBuild, name, "Nemotron.Gym.Environments.Hostile", manifest);

    public string Math(string name = "Nemotron.Gym.Environments.Math") => Copy(MathBuild, name, "Nemotron.Gym.Environments.Math");

    public string ToolUse(string name = "Nemotron.Gym.Environments.ToolUse") => Copy(ToolUseBuild, name, "Nemotron.Gym.Environments.ToolUse");

    public void Dispose()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}
