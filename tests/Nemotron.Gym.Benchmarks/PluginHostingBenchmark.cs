using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.PluginWorker;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// What running plugins out of process costs: math grades/s (open, one step, grade) through <see cref="HostedEnvironment"/>
/// with the plugin in this process and with it in worker processes (under bubblewrap where it can run), at the same
/// number of calls in flight. Half the answers are the reference, half wrong. Prints grades/s, grades per CPU-second of
/// the host and its workers together (per core), and the ratio of the two modes. Args: [--tasks N] [--in-flight N] [--workers N] [--isolation auto|bwrap|none] [--cpus N].
/// </summary>
public sealed class PluginHostingBenchmark : IBenchmark
{
    public string Name => "plugin-hosting";
    public string Description => "math grades/s per core, plugins in process vs in worker processes [--tasks 20000] [--in-flight 64] [--workers 2] [--isolation auto|bwrap|none] [--cpus 1]";

    public async Task<int> RunAsync(string[] args)
    {
        int tasks = Arg(args, "--tasks", 20000), inFlight = Arg(args, "--in-flight", 64), workersPerPlugin = Arg(args, "--workers", 2);
        int isolationAt = Array.IndexOf(args, "--isolation");
        string isolation = isolationAt >= 0 && isolationAt + 1 < args.Length ? args[isolationAt + 1] : "auto";
        double cpus = Arg(args, "--cpus", 1); // each worker's CPU quota (0: none), as PluginWorkerSettings.Cpus
        string plugins = Nemotron.Gym.TestSupport.RepoPaths.Plugins;
        int cores = Environment.ProcessorCount;
        Console.WriteLine($"math, {tasks} episodes per mode, {inFlight} in flight, {cores} cores; out of process: {workersPerPlugin} worker(s)");
        (double Rate, double PerCore)? inProcessRate = null;
        foreach (bool inProcess in new[] { true, false })
        {
            await using var workers = new PluginWorkers(new PluginWorkerSettings { InProcess = inProcess, WorkersPerPlugin = workersPerPlugin, Isolation = isolation, Cpus = cpus });
            var (envs, errors) = workers.LoadAll([plugins]);
            foreach (var e in errors) Console.Error.WriteLine($"{e.Source}: {e.Error}");
            var host = await HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == "math"), null, HostLimits.Default);
            var records = await host.LoadTasksAsync(new TaskQuery("train", tasks, 7));
            var work = records.Select((t, i) => (Task: t, Response: i % 2 == 0 ? t.Reference[0] : AssistantTurn.FromContent($"The result is \\boxed{{{i * 37 % 1000 - 500}}}"))).ToArray();
            // Warm-up, one episode per task: every worker started and every task sent to the workers once (a training run
            // grades each task many times: a group of samples per step, over many steps), so the timed part measures
            // the cost of an episode, not of a task's first trip.
            await Run(host, work, inFlight);
            // GYM_BENCH_MARK_PHASES=1: a line as each timed phase starts, for attaching a profiler (perf record -p) to that phase alone.
            if (Environment.GetEnvironmentVariable("GYM_BENCH_MARK_PHASES") == "1") Console.WriteLine($"timing {(inProcess ? "in" : "out")} (pid {Environment.ProcessId})");
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            double workerCpu0 = WorkerCpuSeconds();
            long allocated0 = GC.GetTotalAllocatedBytes(precise: true);
            var clock = Stopwatch.StartNew();
            double rewards = await Run(host, work, inFlight);
            double rate = work.Length / clock.Elapsed.TotalSeconds;
            double hostCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            double workerCpu = WorkerCpuSeconds() - workerCpu0;
            double allocatedPerEpisode = (GC.GetTotalAllocatedBytes(precise: true) - allocated0) / (double)work.Length;
            // Per core = grades per CPU-second of every process involved (the host and its workers): it does not depend
            // on how much of the machine other programs take, unlike grades/s.
            double perCore = work.Length / (hostCpu + workerCpu);
            string mode = inProcess ? "in process" : $"out of process{(workers.Bubblewrapped ? " (bwrap)" : "")}";
            string ratio = inProcessRate is { } r ? $"; in-process/out-of-process: {r.Rate / rate:0.00}x grades/s, {r.PerCore / perCore:0.00}x per core" : "";
            Console.WriteLine($"{mode,-26} {rate,9:0} grades/s  {perCore,8:0} grades per CPU-second  (host {hostCpu:0.00} s, workers {workerCpu:0.00} s of CPU; host {1e6 * hostCpu / work.Length:0.0} + workers {1e6 * workerCpu / work.Length:0.0} µs and host {allocatedPerEpisode:0} bytes allocated per episode)  mean reward {rewards / work.Length:0.00}{ratio}");
            inProcessRate ??= (rate, perCore);
        }
        return 0;
    }

    private static async Task<double> Run(HostedEnvironment host, IEnumerable<(TaskRecord Task, AssistantTurn Response)> work, int inFlight)
    {
        double sum = 0;
        await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = inFlight }, async (w, ct) =>
        {
            await using var episode = await host.OpenAsync(w.Task, new EpisodeContext(1, 0), ct);
            await episode.StepAsync(w.Response, ct);
            var grade = await episode.GradeAsync(ct);
            lock (host) sum += grade.Reward;
        });
        return sum;
    }

    /// <summary>
    /// CPU seconds used so far by the plugin worker processes started by this process (from /proc: descendants of this
    /// process whose command line names the worker; other programs' workers on a shared machine are not counted).
    /// </summary>
    private static double WorkerCpuSeconds()
    {
        var parent = new Dictionary<int, int>();
        var cpu = new Dictionary<int, double>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parent[pid] = int.Parse(fields[1]);
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains("Nemotron.Gym.PluginWorker.dll", StringComparison.Ordinal))
                    cpu[pid] = (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0; // utime, stime in clock ticks
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        }
        int self = Environment.ProcessId;
        double total = 0;
        foreach (var (pid, seconds) in cpu)
        {
            for (int p = pid, hops = 0; parent.TryGetValue(p, out int up) && hops < 64; p = up, hops++)
                if (up == self) { total += seconds; break; }
        }
        return total;
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }
}
