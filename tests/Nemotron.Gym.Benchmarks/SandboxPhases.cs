using System.Diagnostics;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Where a bwrap run's time goes, part by part: the scratch tmpfs (mount and unmount), the run's cgroups (create and
/// remove), the sweep of the slot's uid over /proc, and the process chain around the program (bwrap alone, then with
/// setpriv, then with dash setting the rlimits as the backend starts it, and with prlimit as it did before), each
/// against bare `python3 -c pass` in the image.
/// Part of `-- sandbox`; needs root, bubblewrap and the python image.
/// </summary>
internal static class SandboxPhases
{
    public static async Task PrintAsync(int runs, SandboxSettings settings)
    {
        var image = SandboxImage.Load(settings.ImagesDirectory, "python");
        if (image is null) { Console.WriteLine("bwrap phases: not measured (no python image)"); return; }
        const int uid = 61990; // outside the slots the backends claim (61000 + slots)
        var rows = new List<(string Name, double Median, double P99)>();
        void Add(string name, List<double> times)
        {
            times.Sort();
            rows.Add((name, times[times.Count / 2], times[Math.Min(times.Count - 1, (int)Math.Ceiling(times.Count * 0.99) - 1)]));
        }
        List<double> Time(Action body)
        {
            body();
            var times = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var clock = Stopwatch.StartNew();
                body();
                times.Add(clock.Elapsed.TotalMilliseconds);
            }
            return times;
        }

        var scratchRoot = Path.Combine(settings.ScratchDirectory, "phases");
        Directory.CreateDirectory(scratchRoot);
        var n = 0;
        Add("scratch tmpfs mount+unmount", Time(() => ScratchFolder.Create(Path.Combine(scratchRoot, $"s{n++}"), settings.Limits.FileSizeBytes, uid).Dispose()));
        var (layout, reason) = CgroupLayout.Detect();
        if (layout is not null) Add("cgroups create+remove", Time(() => layout.Create($"phases-{n++}", settings.Limits.MemoryBytes, 34).Dispose()));
        else Console.WriteLine($"cgroups: not measured ({reason})");
        Add("uid sweep over /proc", Time(() => UidSlots.KillAllOf(uid)));

        // The process chain, outermost last. Each runs `python3 -c pass` in the image, as root unless setpriv drops it.
        string[] bwrap =
        [
            "bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--ro-bind", image.RootFs, "/", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--chdir", "/", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--", "python3", "-c", "pass",
        ];
        string[] setpriv = ["setpriv", $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", .. bwrap];
        string[] chain = ["dash", "-c", "ulimit -p 1000 && ulimit -n 64 && ulimit -f 32768 && ulimit -t 11 && ulimit -S -t 10 && ulimit -c 0 && exec \"$@\"", "sh", .. setpriv];
        string[] prlimitChain = ["dash", "-c", "exec \"$@\"", "sh", "prlimit", "--nproc=1000", "--nofile=64", "--fsize=16777216", "--cpu=10:11", "--core=0", "--", .. setpriv];
        foreach (var (name, argv) in new[]
        {
            ("python3 -c pass (chroot into the image)", new[] { "chroot", image.RootFs, "python3", "-c", "pass" }),
            ("+ bwrap namespaces (as root)", bwrap),
            ("+ setpriv to the slot uid", setpriv),
            ("+ dash setting the rlimits (the chain now)", chain),
            ("  (the same with prlimit, the chain before)", prlimitChain),
        })
        {
            var times = new List<double>();
            for (var i = 0; i < runs + 1; i++)
            {
                var clock = Stopwatch.StartNew();
                var start = new ProcessStartInfo(argv[0]) { UseShellExecute = false, RedirectStandardError = true };
                foreach (var a in argv[1..]) start.ArgumentList.Add(a);
                using var process = Process.Start(start)!;
                var error = await process.StandardError.ReadToEndAsync();
                await process.WaitForExitAsync();
                if (process.ExitCode != 0) { Console.WriteLine($"{name}: exit {process.ExitCode}: {error.Trim()}"); break; }
                if (i > 0) times.Add(clock.Elapsed.TotalMilliseconds);
            }
            if (times.Count == runs) Add(name, times);
        }

        Console.WriteLine();
        Console.WriteLine($"bwrap, where the time goes ({runs} runs each)");
        Console.WriteLine($"{"",-46} {"median ms",10} {"p99 ms",10}");
        foreach (var (name, median, p99) in rows) Console.WriteLine($"{name,-46} {median,10:0.0} {p99,10:0.0}");
    }
}
