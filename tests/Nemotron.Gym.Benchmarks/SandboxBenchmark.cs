using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// What a sandbox costs per run: `python3 -c pass` bare (the image's own files through chroot, no isolation; and the
/// host's python3 for reference), then through each backend (bwrap;
/// docker one-shot; docker warm exec; the same two under gVisor where runsc works), median and p99 of
/// the whole call, and the overhead over bare. bwrap is measured both ways in the same run: cold (new namespaces per
/// run) and through a warm slot (a fork and an exec in a sandbox kept between runs). Needs root, bubblewrap, the python image and the private
/// dockerd (`gym sandbox images build`, `gym sandbox docker start`); backends that cannot run say why. Then the parts
/// of a bwrap run one by one (<see cref="SandboxPhases"/>).
/// Run: dotnet run -c Release --project tests/Nemotron.Gym.Benchmarks -- sandbox [--runs N] [--bwrap-only]
/// </summary>
public sealed class SandboxBenchmark : IBenchmark
{
    public string Name => "sandbox";
    public string Description => "Per-run overhead of the bwrap (cold and warm slot) and docker sandboxes over bare python3 (median, p99)";

    public async Task<int> RunAsync(string[] args)
    {
        var at = Array.IndexOf(args, "--runs");
        var runs = at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1]) : 30;
        // --bwrap-only: the bare baselines and bwrap cold and warm, without docker and the phase table (a short run).
        var bwrapOnly = args.Contains("--bwrap-only");
        var command = new SandboxCommand(["python3", "-c", "pass"]);
        var rows = new List<(string Name, double Median, double P99, string Note)>();

        async Task<string?> Start(string file, params string[] arguments)
        {
            using var process = Process.Start(new ProcessStartInfo(file, arguments) { UseShellExecute = false })!;
            await process.WaitForExitAsync();
            return process.ExitCode == 0 ? null : $"exit {process.ExitCode}";
        }
        var settings = new SandboxSettings { SiloName = "benchmark", Slots = 4 };
        var host = await MeasureAsync(runs, () => Start("/usr/bin/python3", "-c", "pass"));
        rows.Add(("host python3 -c pass", host.Median, host.P99, host.Error ?? "the host's python3, its own site-packages"));
        // The baseline: the very files the sandboxes run (the image's root filesystem), without any isolation. It is timed
        // interleaved with bwrap cold and warm (one of each in turn, the order rotating), so that the load of a shared
        // machine drifting during the run weighs on all three alike.
        var image = SandboxImage.Load(settings.ImagesDirectory, "python");
        Func<Task<string?>> bareRun = image is null ? () => Start("/usr/bin/python3", "-c", "pass") : () => Start("/usr/sbin/chroot", image.RootFs, "python3", "-c", "pass");
        // Cold: new namespaces each run, as every run did before warm slots. Warm: a fork and an exec in a sandbox kept
        // between runs; two slots, so that one serves while the other readies itself for its next run (new cgroups, off
        // the run's path), as a host's several do.
        var (cold, coldError) = BwrapSandboxService.Create(settings with { WarmSlots = 0 });
        List<(string Name, List<double> Times)> warmParts = [];
        var (warmBwrap, warmError) = BwrapSandboxService.Create(settings with { WarmSlots = 2 });
        try
        {
            for (var i = 0; i < 200 && warmBwrap is not null && warmBwrap.WarmSlotsReady < warmBwrap.WarmSlotTarget; i++) await Task.Delay(25);
            var contestants = new List<(string Name, Func<Task<string?>> Run, string Note)>
            {
                ("bare python3 -c pass", bareRun, image is null ? "no image: the host's python3" : "chroot into the image, no isolation: the baseline"),
            };
            if (cold is not null) contestants.Add(("bwrap one-shot, cold", async () => Check(await cold.RunAsync(new SandboxRunRequest(command), default)), cold.CgroupDescription));
            else rows.Add(("bwrap one-shot, cold", double.NaN, double.NaN, coldError!));
            if (warmBwrap is not null) contestants.Add(("bwrap one-shot, warm slot", async () => Check(await warmBwrap.RunAsync(new SandboxRunRequest(command), default)), ""));
            else rows.Add(("bwrap one-shot, warm slot", double.NaN, double.NaN, warmError!));
            var measured = await MeasureInterleavedAsync(runs, contestants.Select(c => c.Run).ToList());
            if (warmBwrap?.WarmRunCosts is { Count: > 0 } costs)
                warmParts = [("before the program (limits, mounts, files, pipes, job, fork)", [.. costs.Select(c => c.BeforeMs)]),
                             ("after it (exit report to result: kill of the rest, output)", [.. costs.Select(c => c.AfterMs)])];
            for (var c = 0; c < contestants.Count; c++)
            {
                var note = contestants[c].Note;
                if (contestants[c].Name.Contains("warm") && warmBwrap is not null)
                    note = $"{warmBwrap.WarmRuns} warm, {warmBwrap.ColdRuns} cold runs" + (warmBwrap.WarmSlotProblem is { } problem ? $"; {problem}" : "");
                rows.Add((contestants[c].Name, measured[c].Median, measured[c].P99, measured[c].Error ?? note));
            }
        }
        finally
        {
            cold?.Dispose();
            warmBwrap?.Dispose();
        }
        var bare = rows.Single(r => r.Name == "bare python3 -c pass");

        foreach (var runtime in bwrapOnly ? [] : new string?[] { null, "runsc" })
        {
            var label = runtime is null ? "docker" : "docker + gVisor";
            var (docker, dockerError) = await DockerSandboxService.CreateAsync(settings with { DockerRuntime = runtime }, default);
            if (docker is null) { rows.Add((label, double.NaN, double.NaN, dockerError!)); continue; }
            await using (docker)
            {
                var oneShot = await MeasureAsync(runs, async () => Check(await docker.RunAsync(new SandboxRunRequest(command), default)));
                rows.Add(($"{label} one-shot", oneShot.Median, oneShot.P99, oneShot.Error ?? ""));
                await using var session = await docker.OpenSessionAsync(new SandboxSessionOptions(), default);
                var warm = await MeasureAsync(runs, async () => Check(await session.ExecAsync(command, default)));
                rows.Add(($"{label} warm exec", warm.Median, warm.P99, warm.Error ?? ""));
            }
        }

        Console.WriteLine($"sandbox overhead per run, {runs} runs each (after 3 warm-up runs), {Environment.ProcessorCount} cores");
        Console.WriteLine($"{"",-28} {"median ms",10} {"p99 ms",10} {"overhead ms",12}  note");
        foreach (var (name, median, p99, note) in rows)
            Console.WriteLine(double.IsNaN(median)
                ? $"{name,-28} {"-",10} {"-",10} {"-",12}  not measured: {note}"
                : $"{name,-28} {median,10:0.0} {p99,10:0.0} {median - bare.Median,12:0.0}  {note}");
        Console.WriteLine("(bare, bwrap cold and bwrap warm timed interleaved; overhead: median minus bare's median)");
        if (warmParts.Count > 0)
        {
            // The warm run's own work, as the slot timed it; the rest of its time is the program, fork to exit.
            Console.WriteLine();
            Console.WriteLine($"{"bwrap warm slot, a run's own work",-64} {"median ms",10} {"p99 ms",10}");
            foreach (var (name, times) in warmParts)
            {
                times.Sort();
                Console.WriteLine($"{name,-64} {times[times.Count / 2],10:0.00} {times[Math.Min(times.Count - 1, (int)Math.Ceiling(times.Count * 0.99) - 1)],10:0.00}");
            }
        }
        if (!bwrapOnly) await SandboxPhases.PrintAsync(runs, settings);
        return 0;
    }

    private static string? Check(SandboxResult result) =>
        result.Succeeded ? null : $"{result.Outcome}: exit {result.ExitCode} {result.Detail} {result.Stderr.Text}".Trim();

    /// <summary>
    /// Times several runs in turn (each of them once per round, the order rotating every round) after three warm-up
    /// rounds; a run that fails stops being timed and reports its first error.
    /// </summary>
    private static async Task<List<(double Median, double P99, string? Error)>> MeasureInterleavedAsync(int runs, List<Func<Task<string?>>> contestants)
    {
        var times = contestants.Select(_ => new List<double>()).ToList();
        var errors = new string?[contestants.Count];
        for (var round = 0; round < runs + 3; round++)
            for (var k = 0; k < contestants.Count; k++)
            {
                var c = (k + round) % contestants.Count;
                if (errors[c] is not null) continue;
                var clock = Stopwatch.StartNew();
                errors[c] = await contestants[c]();
                if (round >= 3) times[c].Add(clock.Elapsed.TotalMilliseconds);
            }
        return times.Select((t, c) =>
        {
            if (errors[c] is not null || t.Count == 0) return (double.NaN, double.NaN, errors[c]);
            t.Sort();
            return (t[t.Count / 2], t[Math.Min(t.Count - 1, (int)Math.Ceiling(t.Count * 0.99) - 1)], (string?)null);
        }).ToList();
    }

    /// <summary>Times <paramref name="run"/> (which returns an error or null); on the first error it stops and reports it.</summary>
    private static async Task<(double Median, double P99, string? Error)> MeasureAsync(int runs, Func<Task<string?>> run)
    {
        for (var i = 0; i < 3; i++)
            if (await run() is { } warmError) return (double.NaN, double.NaN, warmError);
        var times = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            if (await run() is { } error) return (double.NaN, double.NaN, error);
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return (times[times.Count / 2], times[Math.Min(times.Count - 1, (int)Math.Ceiling(times.Count * 0.99) - 1)], null);
    }
}
