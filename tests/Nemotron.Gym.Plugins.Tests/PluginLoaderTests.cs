using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.Plugins.Tests;

public sealed class PluginLoaderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("plugins-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    /// <summary>The Math plugin's build output, copied to a plugin folder named after its assembly.</summary>
    internal static string MathPluginBuild() => Nemotron.Gym.TestSupport.RepoPaths.BuildOf("environments", "Math", "Nemotron.Gym.Environments.Math");

    private string CopyMath(string name)
    {
        var dest = Path.Combine(_root, name);
        foreach (var f in Directory.GetFiles(MathPluginBuild(), "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dest, Path.GetRelativePath(MathPluginBuild(), f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        if (name != "Nemotron.Gym.Environments.Math")
            File.WriteAllText(Path.Combine(dest, "plugin.json"), """{"assembly": "Nemotron.Gym.Environments.Math.dll"}""");
        return dest;
    }

    [Fact]
    public void BrokenPluginsAreReportedByNameAndTheOthersStillLoad()
    {
        CopyMath("Nemotron.Gym.Environments.Math");
        var junk = Directory.CreateDirectory(Path.Combine(_root, "Junk")).FullName;
        File.WriteAllText(Path.Combine(junk, "Junk.dll"), "this is not an assembly");
        var noEnv = Directory.CreateDirectory(Path.Combine(_root, "NoEnvironment")).FullName;
        File.Copy(Path.Combine(MathPluginBuild(), "Nemotron.Gym.Rewards.dll"), Path.Combine(noEnv, "NoEnvironment.dll"));
        var badManifest = Directory.CreateDirectory(Path.Combine(_root, "BadManifest")).FullName;
        File.WriteAllText(Path.Combine(badManifest, "plugin.json"), """{"assembly": "Missing.dll"}""");
        CopyMath("DuplicateMath");

        var (envs, errors) = PluginLoader.LoadAll([_root]);
        var math = Assert.Single(envs);
        Assert.Equal("math", math.Descriptor.Name);
        Assert.Contains(errors, e => e.Source.EndsWith("Junk.dll") && e.Error.Contains("cannot load"));
        Assert.Contains(errors, e => e.Source.EndsWith("NoEnvironment.dll") && e.Error.Contains("no public class implements"));
        Assert.Contains(errors, e => e.Source.Contains("BadManifest") && e.Error.Contains("Missing.dll"));
        // Folders load in ordinal order, so whichever copy of math comes second is the one refused.
        Assert.Contains(errors, e => e.Source.Contains("Math") && e.Error.Contains("environment name 'math' is already taken"));
    }

    [Fact]
    public void EachPluginGetsItsOwnDependenciesButSharesTheContract()
    {
        var a = PluginLoader.LoadFolder(CopyMath("A")).Environments.Single();
        var b = PluginLoader.LoadFolder(CopyMath("B")).Environments.Single();
        Assert.NotSame(a.Type!.Assembly, b.Type!.Assembly);
        var rewardsA = a.Type!.Assembly.GetReferencedAssemblies().Single(n => n.Name == "Nemotron.Gym.Rewards");
        // Resolving the dependency through the plugin's own context must find the copy in its folder.
        var loadedA = System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(a.Type!.Assembly)!.LoadFromAssemblyName(rewardsA);
        Assert.StartsWith(Path.Combine(_root, "A"), loadedA.Location);
        // The contract is the host's, so the plugin's class is an IEnvironment here.
        Assert.IsAssignableFrom<IEnvironment>(a.Create());
    }

    [Fact]
    public async Task SettingsAreCheckedAgainstTheSchema()
    {
        var math = PluginLoader.LoadFolder(CopyMath("Nemotron.Gym.Environments.Math")).Environments.Single();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => HostedEnvironment.StartAsync(math, new Dictionary<string, string> { ["difficulty"] = "9" }, HostLimits.Default));
        Assert.Contains("environment 'math': setting 'difficulty': must be <= 3", e.Message);
        e = await Assert.ThrowsAsync<ArgumentException>(() => HostedEnvironment.StartAsync(math, new Dictionary<string, string> { ["speed"] = "1" }, HostLimits.Default));
        Assert.Contains("unknown setting 'speed'", e.Message);
        var ok = await HostedEnvironment.StartAsync(math, new Dictionary<string, string> { ["difficulty"] = "1" }, HostLimits.Default);
        Assert.NotEmpty(await ok.LoadTasksAsync(new TaskQuery("train", 5, 1)));
    }
}
