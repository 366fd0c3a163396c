using System.Diagnostics;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>
/// Runs the real `gym` tool as a child process: the build in gym/Nemotron.Gym.Cli/bin, because that is the
/// folder with the built-in environment plugins staged beside it (plugins/), as a user runs it.
/// </summary>
internal static class GymProcess
{
    private static readonly string Dll = FindGymDll();

    private static string FindGymDll()
    {
        var dll = Path.Combine(Nemotron.Gym.TestSupport.RepoPaths.GymBuild, "gym.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} is missing: build the solution first");
        return dll;
    }

    public static (int ExitCode, string Output) Run(string workingDirectory, params string[] args)
    {
        var dll = Dll;
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException($"gym {string.Join(' ', args)} did not finish"); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
