using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Environments.Swe;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// The swe environment on each sandbox backend: session start latency (open a session, write the task's starting
/// tree and run the first command, one at a time), then episode throughput with the scripted agent (view, str_replace per gold hunk, submit,
/// then grading in a fresh sandbox) at 1, 8 and 32 episodes in flight. Docker is measured when its engine can be
/// started here (the private dockerd of `gym sandbox docker start`). Needs root, bubblewrap and the python image.
/// Run: dotnet run -c Release --project tests/Nemotron.Gym.Benchmarks -- swe [--episodes N] [--backend bwrap|docker]
/// </summary>
public sealed class SweBenchmark : IBenchmark
{
    public string Name => "swe";
    public string Description => "swe: session start latency and scripted-agent episodes/s at 1/8/32 in flight, per backend [--episodes N] [--backend B]";

    public async Task<int> RunAsync(string[] args)
    {
        int episodes = 32;
        string? only = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
            switch (args[i])
            {
                case "--episodes": episodes = int.Parse(args[i + 1]); break;
                case "--backend": only = args[i + 1]; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        Console.WriteLine($"swe benchmark: {episodes} episodes per level, {Environment.ProcessorCount} cores");
        foreach (var backend in new[] { "bwrap", "docker" })
        {
            if (only is not null && only != backend) continue;
            var settings = new SandboxSettings { Backend = backend, SiloName = "swe-benchmark", FirstUid = 64700, Slots = 64, ScratchDirectory = "/run/nemotron-gym-sandbox-swe-benchmark" };
            await SandboxImage.EnsureAsync(Path.Combine(Nemotron.Gym.TestSupport.RepoPaths.Root, "sandbox-images"), settings.ImagesDirectory, "python", default);
            if (backend == "docker")
            {
                try { await PrivateDockerDaemon.EnsureRunningAsync(TimeSpan.FromSeconds(60), default); }
                catch (Exception e) when (e is InvalidOperationException or IOException or TimeoutException or System.ComponentModel.Win32Exception)
                {
                    Console.WriteLine($"docker: not measured, the engine could not be started ({e.Message})");
                    continue;
                }
            }
            var (sandbox, error) = await SandboxServices.CreateAsync(settings, default);
            if (sandbox is null) { Console.WriteLine($"{backend}: not measured ({error})"); continue; }
            try { await MeasureAsync(backend, sandbox, episodes); }
            finally { await SandboxServices.DisposeAsync(sandbox); }
        }
        return 0;
    }

    private static async Task MeasureAsync(string backend, ISandboxService sandbox, int episodes)
    {
        var env = await SweReport.StartAsync(sandbox);
        var tasks = (await env.LoadTasksAsync(new TaskQuery("all", episodes, 5), default)).ToList();

        // Session start: the episode opens its session at the agent's first tool call (the tree is written then); a
        // backend may set the sandbox itself up lazily, at its first command. So: open the episode, then one command.
        var starts = new List<double>();
        var firsts = new List<double>();
        foreach (var task in tasks.Take(Math.Min(16, tasks.Count)))
        {
            var clock = Stopwatch.StartNew();
            var episode = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
            starts.Add(clock.Elapsed.TotalMilliseconds);
            await episode.StepAsync(new Conversation.AssistantTurn("", "", null, [new Conversation.ToolCall("c", "bash", new System.Text.Json.Nodes.JsonObject { ["command"] = "true" })], []), default);
            firsts.Add(clock.Elapsed.TotalMilliseconds);
            await episode.DisposeAsync();
        }
        starts.Sort();
        firsts.Sort();
        Console.WriteLine($"{backend}: session start over {starts.Count}: episode opened in median {starts[starts.Count / 2]:0.0} ms (p99 {starts[^1]:0}); session open, tree written and the first command run: median {firsts[firsts.Count / 2]:0} ms (p99 {firsts[^1]:0})");

        Console.WriteLine($"{backend}: {"in flight",9} {"episodes/s",11} {"p50 s",7} {"p99 s",7} {"resolved",9} {"masked",7}");
        foreach (var inFlight in new[] { 1, 8, 32 })
        {
            var latencies = new List<double>();
            int resolved = 0, masked = 0;
            string? maskedReason = null;
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(tasks, new ParallelOptions { MaxDegreeOfParallelism = inFlight }, async (task, ct) =>
            {
                var one = Stopwatch.StartNew();
                await using var episode = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), ct);
                foreach (var turn in task.Reference)
                    if ((await episode.StepAsync(turn, ct)).Done) break;
                var grade = await episode.GradeAsync(ct);
                lock (latencies)
                {
                    latencies.Add(one.Elapsed.TotalSeconds);
                    if (grade.Reward == 1) resolved++;
                    if (grade.Masked) { masked++; maskedReason ??= grade.MaskReason; }
                }
            });
            latencies.Sort();
            Console.WriteLine($"{backend}: {inFlight,9} {tasks.Count / clock.Elapsed.TotalSeconds,11:0.00} {latencies[latencies.Count / 2],7:0.00} {latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))],7:0.00} {resolved,4}/{tasks.Count,-4} {masked,7}");
            if (maskedReason is not null) Console.WriteLine($"{backend}: first masked: {maskedReason}");
        }
    }
}
