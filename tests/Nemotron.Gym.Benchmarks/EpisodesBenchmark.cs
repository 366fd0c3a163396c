using Nemotron.Gym.Conversation;
using System.Diagnostics;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Runs;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Episode grains under load, with a scripted stand-in for the model (fixed responses, no trainer): keeps N
/// episodes in flight on one in-process silo (each worker opens an episode, sends a scripted answer, grades it,
/// and starts the next) over math and instruction-following tasks, and prints episodes/s and the p50/p99 latency
/// of the grade call. Args: [--in-flight N] [--seconds S] [--in-process] (plugins in the silo's process instead of workers) [--workers N] (worker processes per plugin) [--compare] (both modes, one after the other, and their ratio).
/// </summary>
public sealed class EpisodesBenchmark : IBenchmark
{
    public string Name => "episodes";
    public string Description => "episodes/s and grading latency with N episodes in flight on one silo [--in-flight 2000] [--seconds 20] [--in-process] [--workers N] [--compare]";

    public async Task<int> RunAsync(string[] args)
    {
        if (!args.Contains("--compare"))
        {
            await RunOnceAsync(args, args.Contains("--in-process"));
            return 0;
        }
        // Both hosting modes in one run, one after the other, and their ratio.
        double inProcessRate = await RunOnceAsync(args, inProcess: true);
        double workerRate = await RunOnceAsync(args, inProcess: false);
        Console.WriteLine($"in process {inProcessRate:N0} episodes/s, in workers {workerRate:N0} episodes/s: in-process/out-of-process {inProcessRate / workerRate:0.00}x");
        return 0;
    }

    /// <summary>One silo, one hosting mode; prints its figures and returns its episodes/s.</summary>
    private static async Task<double> RunOnceAsync(string[] args, bool inProcess)
    {
        int inFlight = Arg(args, "--in-flight", 2000), seconds = Arg(args, "--seconds", 20);
        var state = Path.Combine(Path.GetTempPath(), $"gym-bench-{Environment.ProcessId}.db");
        int workersPerPlugin = Arg(args, "--workers", new Nemotron.Gym.PluginWorker.PluginWorkerSettings().WorkersPerPlugin);
        var options = new GymSiloOptions { SiloPort = 22111, GatewayPort = 32000, StateStorage = "sqlite:" + state,
            PluginHosting = new Nemotron.Gym.PluginWorker.PluginWorkerSettings { InProcess = inProcess, WorkersPerPlugin = workersPerPlugin } };
        options.PluginFolders.Add(Nemotron.Gym.TestSupport.RepoPaths.Plugins);
        using var silo = await GymSilo.StartAsync(options);
        var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
        var sets = new[]
        {
            new TaskSetSpec("math", new Dictionary<string, string>(), "train", 2000, 1),
            new TaskSetSpec("instruction_following", new Dictionary<string, string>(), "train", 2000, 1),
        };
        var source = await GrainEpisodeSource.CreateAsync(grains, "bench", sets);
        Console.WriteLine($"{source.Tasks.Count} tasks; {inFlight} episodes in flight for {seconds} s on one silo ({Environment.ProcessorCount} cores), plugins {(inProcess ? "in process" : $"in worker processes ({workersPerPlugin} per plugin)")}");

        var latencies = new List<double>();
        long done = 0, peak = 0, live = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds + 5)); // warm-up 5 s, then measure
        var measureFrom = Stopwatch.StartNew();
        bool measuring = false;
        long doneAtStart = 0;
        var workers = Enumerable.Range(0, inFlight).Select(async w =>
        {
            var rng = new Random(w);
            while (!stop.IsCancellationRequested)
            {
                var task = source.Tasks[rng.Next(source.Tasks.Count)];
                try
                {
                    var ep = await source.OpenAsync(task, 0, w, stop.Token);
                    long now = Interlocked.Increment(ref live);
                    InterlockedMax(ref peak, now);
                    string answer = task.Environment == "math" ? $"Let me see. \\boxed{{{rng.Next(100)}}}<|end|>" : "Here is my answer, in a few words.<|end|>";
                    await ep.StepAsync(AssistantTurn.Parse(answer, true), true, stop.Token);
                    long t0 = Stopwatch.GetTimestamp();
                    await ep.GradeAsync(false, stop.Token);
                    double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    Interlocked.Decrement(ref live);
                    if (Volatile.Read(ref measuring)) lock (latencies) latencies.Add(ms);
                    Interlocked.Increment(ref done);
                }
                catch (OperationCanceledException) { break; }
            }
        }).ToList();
        await Task.Delay(TimeSpan.FromSeconds(5));
        Volatile.Write(ref measuring, true);
        doneAtStart = Interlocked.Read(ref done);
        measureFrom.Restart();
        await Task.WhenAll(workers);
        double elapsed = measureFrom.Elapsed.TotalSeconds;
        long measured = Interlocked.Read(ref done) - doneAtStart;
        latencies.Sort();
        Console.WriteLine($"episodes: {measured} in {elapsed:F1} s = {measured / elapsed:N0} episodes/s; peak in flight {peak}; replays {source.Replays}");
        Console.WriteLine($"grade call latency: p50 {Pct(latencies, 0.5):F2} ms, p99 {Pct(latencies, 0.99):F2} ms (over {latencies.Count} grades)");
        await silo.StopAsync();
        File.Delete(state);
        return measured / elapsed;
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }

    private static double Pct(List<double> sorted, double q) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];

    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }
}
