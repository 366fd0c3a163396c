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

    private static ProcessStartInfo StartInfo(string workingDirectory, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Runs gym to its end (5 minutes at most): the exit code, and stdout followed by stderr.</summary>
    public static (int ExitCode, string Output) Run(string workingDirectory, params string[] args)
    {
        using var p = Process.Start(StartInfo(workingDirectory, args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException($"gym {string.Join(' ', args)} did not finish"); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Starts gym as a long-running child (a server such as `gym silo`) whose output is collected line by line.</summary>
    public static Child Start(string workingDirectory, params string[] args) => new(StartInfo(workingDirectory, args));

    /// <summary>A running gym process.</summary>
    public sealed class Child : IDisposable
    {
        private readonly Process _p;
        private readonly List<string> _lines = [];

        internal Child(ProcessStartInfo psi)
        {
            _p = Process.Start(psi)!;
            _p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_lines) _lines.Add(e.Data); };
            _p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_lines) _lines.Add(e.Data); };
            _p.BeginOutputReadLine();
            _p.BeginErrorReadLine();
        }

        /// <summary>Everything printed so far, stdout and stderr interleaved as they arrived.</summary>
        public string Output { get { lock (_lines) return string.Join("\n", _lines); } }
        public int ExitCode => _p.ExitCode;

        /// <summary>Waits until <paramref name="text"/> is printed; fails with the output when the process exits first or time runs out.</summary>
        public async Task WaitForAsync(string text, TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                if (_p.HasExited) throw new Xunit.Sdk.XunitException($"gym exited ({_p.ExitCode}) before printing '{text}':\n{Output}");
                if (DateTime.UtcNow > until) throw new TimeoutException($"no '{text}' after {timeout}:\n{Output}");
                await Task.Delay(100);
            }
        }

        public bool WaitForExit(TimeSpan timeout) => _p.WaitForExit(timeout);

        /// <summary>Ctrl-C: SIGINT through libc (no dependence on a kill binary being installed).</summary>
        public void Interrupt()
        {
            if (SendSignal(_p.Id, 2) != 0) throw new InvalidOperationException($"kill({_p.Id}, SIGINT) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static extern int SendSignal(int pid, int signal);

        public void Dispose()
        {
            if (!_p.HasExited) _p.Kill(true);
            _p.Dispose();
        }
    }
}
