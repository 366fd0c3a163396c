using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Nemotron.Gym.PluginWorker;

// A plugin worker: serves one plugin's environments to its host over stdin/stdout until the host closes stdin.
// The channel keeps the real stdout to itself; fd 1 is pointed at stderr, so a plugin that prints (Console.WriteLine,
// a native library) writes to the host's log instead of into the channel.
// A worker started from files replaced since its host started speaks another build's protocol: it says so and stops.
if (Environment.GetEnvironmentVariable(WorkerLaunch.BuildVariable) is { Length: > 0 } hostBuild && hostBuild != WorkerLaunch.BuildId)
{
    Console.Error.WriteLine($"plugin worker: this worker's files (build {WorkerLaunch.BuildId}) are not the ones its host started from (build {hostBuild}): " +
        "the installation changed while the command ran; run the command again");
    return WorkerLaunch.OtherBuildExitCode;
}
Stream output;
if (OperatingSystem.IsLinux())
{
    int channel = Posix.dup(1);
    if (channel < 0 || Posix.dup2(2, 1) < 0)
    {
        Console.Error.WriteLine($"plugin worker: cannot set up the channel (errno {Marshal.GetLastPInvokeError()})");
        return 2;
    }
    output = new FileStream(new SafeFileHandle(channel, ownsHandle: true), FileAccess.Write, 1);
}
else output = Console.OpenStandardOutput();
Console.SetOut(Console.Error);
await WorkerServer.RunAsync(Console.OpenStandardInput(), output);
// Whatever threads the plugin left running end with the process.
Environment.Exit(0);
return 0;

internal static class Posix
{
    [DllImport("libc", SetLastError = true)]
    internal static extern int dup(int fd);

    [DllImport("libc", SetLastError = true)]
    internal static extern int dup2(int oldFd, int newFd);
}
