using System.Diagnostics;

namespace Nemotron.Gym.PluginWorker.Tests;

/// <summary>
/// A worker started from other files than its host's (the installation rebuilt or upgraded while a run goes on) says
/// so and stops, in both launch modes, instead of serving the host in a protocol the host does not speak.
/// </summary>
public sealed class WorkerBuildTests : IDisposable
{
    private readonly PluginFolders _folders = new();
    public void Dispose() => _folders.Dispose();

    [Theory]
    [InlineData("none")]
    [InlineData("bwrap")]
    public async Task A_worker_of_another_build_refuses_to_serve(string isolation)
    {
        if (isolation == "bwrap" && WorkerLaunch.BubblewrapUnavailable() is { } why) Assert.Skip(why);
        _folders.Math();
        var settings = new PluginWorkerSettings { Isolation = isolation };
        var start = WorkerLaunch.Build(settings, _folders.Root, network: false, cgroup: null);
        // The launch carries the host's build; pretend the host was started from other files.
        if (isolation == "none") start.Environment[WorkerLaunch.BuildVariable] = "0123456789abcdef0123456789abcdef";
        else
        {
            int at = start.ArgumentList.IndexOf(WorkerLaunch.BuildVariable);
            Assert.True(at > 0, "the bwrap launch sets the build variable");
            start.ArgumentList[at + 1] = "0123456789abcdef0123456789abcdef";
        }
        start.RedirectStandardError = start.RedirectStandardOutput = start.RedirectStandardInput = true;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(WorkerLaunch.OtherBuildExitCode, process.ExitCode);
        Assert.Contains("not the ones its host started from", await stderr);
    }

    [Fact]
    public void The_launch_carries_this_build()
    {
        var start = WorkerLaunch.Build(new PluginWorkerSettings { Isolation = "none" }, _folders.Root, network: false, cgroup: null);
        Assert.Equal(WorkerLaunch.BuildId, start.Environment[WorkerLaunch.BuildVariable]);
    }
}
