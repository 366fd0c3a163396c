using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Code-task gradings per second through the plugin host and the bwrap sandbox, with 1, 8 and 64
/// episodes graded at once; half the answers are the task's reference (every test runs), half its wrong
/// solution (binary reward stops at the first failing test). Needs root, bubblewrap and the python image.
/// Run: dotnet run -c Release --project tests/Nemotron.Gym.Benchmarks -- code-grading [--gradings N]
/// </summary>
public sealed class CodeGradingBenchmark : IBenchmark
{
    public string Name => "code-grading";
    public string Description => "code-task gradings/s in the bwrap sandbox with 1, 8 and 64 concurrent episodes [--gradings N]";

    public async Task<int> RunAsync(string[] args)
    {
        var gradings = args.Length >= 2 && args[0] == "--gradings" ? int.Parse(args[1]) : 64;
        var (envs, errors) = PluginLoader.LoadAll([Nemotron.Gym.TestSupport.RepoPaths.Plugins]);
        foreach (var e in errors) Console.Error.WriteLine($"{e.Source}: {e.Error}");
        var plugin = envs.Single(e => e.Descriptor.Name == "code");
        var (sandbox, error) = BwrapSandboxService.Create(new SandboxSettings { SiloName = "benchmark", Slots = 64 });
        if (sandbox is null) { Console.Error.WriteLine(error); return 1; }
        using (sandbox)
        {
            var services = new HostServices(new Dictionary<Type, object> { [typeof(ISandboxService)] = sandbox });
            var host = await HostedEnvironment.StartAsync(plugin, null, new HostLimits(TimeSpan.FromMinutes(10)), services: services);
            var tasks = await host.LoadTasksAsync(new TaskQuery("train", gradings, 11));
            var work = tasks.Select((t, i) => (Task: t, Answer: i % 2 == 0 ? t.Reference[0] : AssistantTurn.FromContent(t.Extra["wrong_reference"]!.GetValue<string>()))).ToArray();
            Console.WriteLine($"{gradings} gradings per level (half reference, half wrong), {Environment.ProcessorCount} cores, bwrap {sandbox.CgroupDescription}");
            Console.WriteLine($"{"in flight",10} {"gradings/s",12} {"p50 s",8} {"p99 s",8} {"mean reward",12}");
            foreach (var inFlight in new[] { 1, 8, 64 })
            {
                var latencies = new List<double>();
                double rewards = 0;
                var clock = Stopwatch.StartNew();
                await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = inFlight }, async (item, ct) =>
                {
                    var one = Stopwatch.StartNew();
                    var episode = await host.OpenAsync(item.Task, new EpisodeContext(1, 0), ct);
                    await episode.StepAsync(item.Answer, ct);
                    var grade = await episode.GradeAsync(ct);
                    await episode.DisposeAsync();
                    lock (latencies) { latencies.Add(one.Elapsed.TotalSeconds); rewards += grade.Reward; }
                });
                latencies.Sort();
                Console.WriteLine($"{inFlight,10} {work.Length / clock.Elapsed.TotalSeconds,12:0.00} {latencies[latencies.Count / 2],8:0.00} {latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))],8:0.00} {rewards / work.Length,12:0.00}");
            }
        }
        return 0;
    }
}
