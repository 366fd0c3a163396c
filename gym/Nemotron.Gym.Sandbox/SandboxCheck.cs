using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>One line of a sandbox check: a program, the outcome it must get, what it got.</summary>
/// <param name="Name">What the program tries.</param>
/// <param name="Expected">The outcome it must get (and, in words, what else must hold).</param>
/// <param name="Got">What happened.</param>
/// <param name="Passed">Whether it held.</param>
/// <param name="WallTime">How long the run took.</param>
public sealed record SandboxCheckRow(string Name, string Expected, string Got, bool Passed, TimeSpan WallTime);

/// <summary>
/// The health probe a host runs before it takes work (does a trivial program run, and fast?) followed by
/// a short hostile subset (fork bomb, memory bomb, flood, sleeper, network, writes outside scratch,
/// host secrets). The full hostile suite lives in the tests; this is what `gym sandbox check` prints.
/// </summary>
public static class SandboxCheck
{
    private static readonly SandboxLimits CheckLimits = new(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(2), 128L << 20, 32, 8L << 20, 64, 64L << 10);

    /// <summary>Only the health probe: runs <c>print(1+1)</c> and says whether it printed 2.</summary>
    public static async Task<SandboxCheckRow> ProbeAsync(ISandboxService service, CancellationToken cancellation)
    {
        var result = await service.RunAsync(new SandboxRunRequest(new SandboxCommand(["python3", "-c", "print(1+1)"], Limits: CheckLimits)), cancellation);
        var passed = result.Succeeded && result.Stdout.Text.Trim() == "2";
        return new SandboxCheckRow("health probe: print(1+1)", "ok, prints 2", Describe(result), passed, result.WallTime);
    }

    /// <summary>The probe, then the hostile subset; one row each.</summary>
    public static async Task<IReadOnlyList<SandboxCheckRow>> RunAsync(ISandboxService service, CancellationToken cancellation)
    {
        var rows = new List<SandboxCheckRow> { await ProbeAsync(service, cancellation) };
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var secret = $"check-secret-{Guid.NewGuid():N}";
        var secretFile = Path.Combine(Path.GetTempPath(), $"nemotron-gym-check-{Environment.ProcessId}.txt");
        await File.WriteAllTextAsync(secretFile, secret, cancellation);
        File.SetUnixFileMode(secretFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        try
        {
            async Task Add(string name, string python, SandboxOutcome[] outcomes, string also, Func<SandboxResult, bool> holds)
            {
                var clock = Stopwatch.StartNew();
                var result = await service.RunAsync(new SandboxRunRequest(new SandboxCommand(["python3", "-c", python, secretFile, port.ToString()], Limits: CheckLimits)), cancellation);
                var passed = outcomes.Contains(result.Outcome) && holds(result) && !listener.Pending();
                var expected = string.Join(" or ", outcomes.Select(Name));
                rows.Add(new SandboxCheckRow(name, also.Length == 0 ? expected : $"{expected}, {also}", Describe(result), passed, clock.Elapsed));
            }
            // Under gVisor the forked interpreters' memory is counted in full, so the bomb may end on memory first: bounded either way.
            await Add("fork bomb", "import os\nwhile True:\n  try: os.fork()\n  except OSError: pass", [SandboxOutcome.Timeout, SandboxOutcome.MemoryLimit], "", _ => true);
            await Add("memory bomb", "a = []\nwhile True: a.append(b'x' * (8 << 20))", [SandboxOutcome.MemoryLimit], "", _ => true);
            await Add("endless output", "while True: print('y' * 1000)", [SandboxOutcome.OutputLimit], "stdout truncated", r => r.Stdout.Truncated);
            await Add("sleeps ignoring SIGTERM", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)", [SandboxOutcome.Timeout], "", _ => true);
            await Add("connects to a loopback server", "import socket, sys\ntry:\n  socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=1); print('connected')\nexcept OSError: print('blocked')",
                [SandboxOutcome.Ok], "blocked", r => r.Stdout.Text.Trim() == "blocked");
            await Add("writes outside scratch", "ok = []\nfor p in ('/evil', '/usr/bin/evil', '/etc/passwd'):\n  try: open(p, 'a').write('x'); ok.append(p)\n  except OSError: pass\nprint(ok)",
                [SandboxOutcome.Ok], "nothing written", r => r.Stdout.Text.Trim() == "[]");
            await Add("reads a host file and the environment", "import os, sys\ntry: print(open(sys.argv[1]).read())\nexcept OSError: print('refused')\nprint(dict(os.environ))",
                [SandboxOutcome.Ok], "secret unseen", r => !r.Stdout.Text.Contains(secret, StringComparison.Ordinal) && r.Stdout.Text.StartsWith("refused", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(secretFile);
        }
        return rows;
    }

    private static string Name(SandboxOutcome outcome) => outcome switch
    {
        SandboxOutcome.Ok => "ok",
        SandboxOutcome.Timeout => "timeout",
        SandboxOutcome.MemoryLimit => "memory_limit",
        SandboxOutcome.OutputLimit => "output_limit",
        SandboxOutcome.Killed => "killed",
        _ => "sandbox_error",
    };

    private static string Describe(SandboxResult r)
    {
        var how = r.ExitCode is { } code ? $"exit {code}" : r.Signal is { } signal ? $"signal {signal}" : "";
        var text = $"{Name(r.Outcome)} {how}".Trim();
        if (r.Outcome == SandboxOutcome.SandboxError) text += $": {r.Detail}";
        else if (r.Outcome == SandboxOutcome.Ok) text += $": {SandboxText.TrimForModel(r.Stdout.Text.Trim(), 100).ReplaceLineEndings(" ")}";
        return text;
    }
}
