using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Grading throughput of the math and instruction-following verifiers, loaded as plugins the way the gym loads
/// them (gym's plugins/ folder). Each grade opens an episode, steps one response and grades it; half the
/// responses are the task's reference, half a wrong answer. Prints grades/s on one thread, through the host
/// (call timeouts, Task.Run), and on every core, with grades/s per core and latency percentiles.
/// </summary>
public sealed class GradingBenchmark : IBenchmark
{
    public string Name => "grading";
    public string Description => "grades/s per core of the math and instruction-following verifiers [--tasks N]";

    public async Task<int> RunAsync(string[] args)
    {
        int tasks = args.Length >= 2 && args[0] == "--tasks" ? int.Parse(args[1]) : 20000;
        string plugins = Nemotron.Gym.TestSupport.RepoPaths.Plugins;
        var (envs, errors) = PluginLoader.LoadAll([plugins]);
        foreach (var e in errors) Console.Error.WriteLine($"{e.Source}: {e.Error}");
        Console.WriteLine($"plugins: {plugins}; {Environment.ProcessorCount} cores; {tasks} tasks per environment, half reference answers, half wrong");
        Console.WriteLine($"{"environment",-22} {"1 thread direct",16} {"1 thread hosted",16} {"all cores hosted",17} {"per core",10} {"p50 ms",8} {"p99 ms",8}");
        foreach (var name in new[] { "math", "instruction_following" })
        {
            var plugin = envs.Single(e => e.Descriptor.Name == name);
            var host = await HostedEnvironment.StartAsync(plugin, null, HostLimits.Default);
            var records = await host.LoadTasksAsync(new TaskQuery("train", tasks, 7));
            var work = records.Select((t, i) => (Task: t, Response: i % 2 == 0 ? t.Reference[0] : Wrong(name, i))).ToArray();

            // Direct: the environment object itself, no host wrapper (the verifier's own cost).
            var direct = plugin.Create();
            await direct.InitializeAsync(new EnvironmentContext(plugin.Descriptor.Options.ToDictionary(o => o.Name, o => o.Default), plugin.DataDirectory, new NoServices(), new NoLog()), default);
            await Direct(direct, work.Take(200)); // warm-up
            var sw = Stopwatch.StartNew();
            double rewardSum = await Direct(direct, work);
            double directRate = work.Length / sw.Elapsed.TotalSeconds;

            await Hosted(host, work.Take(200), 1);
            sw.Restart();
            await Hosted(host, work, 1);
            double hostedRate = work.Length / sw.Elapsed.TotalSeconds;

            int cores = Environment.ProcessorCount;
            sw.Restart();
            var latencies = await Hosted(host, work, cores);
            double allRate = work.Length / sw.Elapsed.TotalSeconds;
            latencies.Sort();
            Console.WriteLine($"{name,-22} {directRate,12:0} g/s {hostedRate,12:0} g/s {allRate,13:0} g/s {allRate / cores,10:0} {Pct(latencies, 0.5),8:0.000} {Pct(latencies, 0.99),8:0.000}   (mean reward {rewardSum / work.Length:0.00})");
        }
        return 0;
    }

    private static double Pct(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];

    private static AssistantTurn Wrong(string env, int i) => env == "math"
        ? AssistantTurn.FromContent($"Let me think. The result is \\boxed{{{i * 37 % 1000 - 500}}}")
        : AssistantTurn.FromContent($"Sure. Here is a short answer number {i}.");

    private static async Task<double> Direct(IEnvironment env, IEnumerable<(TaskRecord Task, AssistantTurn Response)> work)
    {
        double sum = 0;
        foreach (var (task, response) in work)
        {
            await using var ep = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
            await ep.StepAsync(response, default);
            sum += (await ep.GradeAsync(default)).Reward;
        }
        return sum;
    }

    private static async Task<List<double>> Hosted(HostedEnvironment host, IEnumerable<(TaskRecord Task, AssistantTurn Response)> work, int parallel)
    {
        var latencies = new List<double>();
        await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (w, ct) =>
        {
            long start = Stopwatch.GetTimestamp();
            await using var ep = await host.OpenAsync(w.Task, new EpisodeContext(1, 0), ct);
            await ep.StepAsync(w.Response, ct);
            await ep.GradeAsync(ct);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            lock (latencies) latencies.Add(ms);
        });
        return latencies;
    }

    private sealed class NoServices : IEnvironmentServices { public T? Get<T>() where T : class => null; }
    private sealed class NoLog : IEnvironmentLog { public void Write(string message) { } }
}
