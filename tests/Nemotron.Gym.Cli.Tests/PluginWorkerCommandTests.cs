namespace Nemotron.Gym.Cli.Tests;

/// <summary>`gym env list` and `check` load plugins in worker processes: a plugin whose constructor ends its process is an error the command reports.</summary>
public sealed class PluginWorkerCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-workers-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>The hostile test plugin in plugins/ExitsOnLoad, told to call Environment.Exit(0) in its constructor.</summary>
    private string ExitingPlugin()
    {
        var build = Nemotron.Gym.TestSupport.RepoPaths.BuildOf("tests", "Nemotron.Gym.Environments.Hostile");
        var folder = Path.Combine(_dir, "plugins", "ExitsOnLoad");
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(build)) File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(folder, "plugin.json"), """{"assembly": "Nemotron.Gym.Environments.Hostile.dll"}""");
        File.WriteAllText(Path.Combine(folder, "exit-on-load"), "");
        return folder;
    }

    [Fact]
    public void ListReportsAPluginWhoseConstructorExitsAndListsTheOthers()
    {
        ExitingPlugin();
        var (code, output) = GymProcess.Run(_dir, "env", "list", "--plugins", Path.Combine(_dir, "plugins"));
        Assert.True(code == 0, output);
        Assert.Contains("ExitsOnLoad", output);
        Assert.Contains("exited with code 0", output);
        Assert.Contains("math", output);
        Assert.Contains("1 plugin error(s)", output);
    }

    [Fact]
    public void CheckOfAPluginWhoseConstructorExitsFailsWithTheReason()
    {
        var folder = ExitingPlugin();
        var (code, output) = GymProcess.Run(_dir, "env", "check", folder);
        Assert.True(code != 0, output);
        Assert.Contains("exited with code 0", output);
    }
}
