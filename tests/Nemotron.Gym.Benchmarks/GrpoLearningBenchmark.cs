using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Proof that multi-environment GRPO learns, across seeds: for each seed, the main job (`gym demo --seed S`: data,
/// pretrain, SFT, GRPO over the demo's environments, then `gym eval` of the SFT and RL checkpoints on the same
/// held-out tasks), run as a user runs it, with the embedded configs. The RL stage runs twice from the same SFT
/// checkpoint: with sequence-level masked importance sampling (the demo's default) and with none; the sampler holds a
/// bf16 copy of the weights, so the two really differ. Prints, per seed, each environment's SFT score, the RL scores
/// and their differences with paired 95% intervals, and at the end whether every environment gained at least 10
/// points on every seed.
/// Args: [--seeds 84,85,86] [--out runs/bench-learning] [--modes seq_mis,none] [--set KEY=VALUE ...] (passed to gym demo).
/// </summary>
public sealed class GrpoLearningBenchmark : IBenchmark
{
    public string Name => "grpo-learning";
    public string Description => "gym demo --seed S for several seeds: held-out SFT vs RL per environment with 95% intervals, seq_mis vs none";

    public Task<int> RunAsync(string[] args)
    {
        var seeds = new List<int> { 84, 85, 86 };
        var modes = new List<string> { "seq_mis", "none" };
        string root = "runs/bench-learning";
        var extra = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--seeds": seeds = [.. Next().Split(',').Select(int.Parse)]; break;
                case "--modes": modes = [.. Next().Split(',')]; break;
                case "--out": root = Next(); break;
                case "--set": extra.Add("--set"); extra.Add(Next()); break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return Task.FromResult(2);
            }
        }
        string gym = Path.Combine(Nemotron.Gym.TestSupport.RepoPaths.GymBuild, "gym.dll");
        if (!File.Exists(gym)) throw new FileNotFoundException($"{gym} is missing: build gym/Nemotron.Gym.Cli first");

        // seed → mode → environment → (sft, rl, difference, low, high); and wall times.
        var tables = new Dictionary<int, Dictionary<string, List<JsonObject>>>();
        var times = new Dictionary<(int, string), TimeSpan>();
        foreach (int seed in seeds)
        {
            string run = Path.GetFullPath(Path.Combine(root, $"seed-{seed}"));
            tables[seed] = new();
            foreach (var mode in modes)
            {
                // The first mode is the demo as a user runs it (rl/, eval/); the others are RL variants beside it,
                // from the same SFT checkpoint (the demo resumes its finished pretrain and SFT stages).
                string rlName = mode == modes[0] ? "rl" : $"rl-{mode}";
                var demoArgs = new List<string> { "demo", "--seed", seed.ToString(), "--out", run, "--device", "cpu",
                    "--set", $"rl.out={Path.Combine(run, rlName)}", "--set", $"rl.grpo.is_correction={mode}" };
                demoArgs.AddRange(extra);
                var clock = Stopwatch.StartNew();
                int code = RunGym(gym, demoArgs, Path.Combine(run + $".{rlName}.log"));
                times[(seed, mode)] = clock.Elapsed;
                if (code != 0) { Console.Error.WriteLine($"seed {seed}, {mode}: gym demo exited with {code} (log {run}.{rlName}.log)"); return Task.FromResult(1); }
                string summary = Path.Combine(run, rlName == "rl" ? "eval" : "eval-" + rlName, "summary.json");
                tables[seed][mode] = [.. JsonNode.Parse(File.ReadAllText(summary))!["environments"]!.AsArray().Select(n => n!.AsObject())];
                Console.WriteLine($"seed {seed}, is_correction={mode}: {clock.Elapsed.TotalMinutes:F1} min (the first mode includes data, pretrain and SFT)");
            }
        }

        Console.WriteLine();
        foreach (int seed in seeds)
        {
            Console.WriteLine($"seed {seed} — held-out mean greedy reward, SFT vs RL (difference [95% interval])");
            Console.WriteLine($"  {"environment",-22} {"SFT",6}  " + string.Join("  ", modes.Select(m => $"{"RL " + m,-34}")));
            foreach (var row in tables[seed][modes[0]])
            {
                string env = (string)row["environment"]!;
                var cells = modes.Select(m =>
                {
                    var r = tables[seed][m].Single(x => (string)x["environment"]! == env);
                    return $"{(double)r["rl"]!,6:F3} {(double)r["difference"]!,7:+0.000;-0.000} [{(double)r["ci95"]![0]!:+0.000;-0.000}, {(double)r["ci95"]![1]!:+0.000;-0.000}]";
                });
                Console.WriteLine($"  {env,-22} {(double)row["sft"]!,6:F3}  " + string.Join("  ", cells.Select(c => $"{c,-34}")));
            }
            Console.WriteLine($"  wall time: {string.Join(", ", modes.Select(m => $"{m} {times[(seed, m)].TotalMinutes:F1} min"))}");
            Console.WriteLine();
        }
        foreach (var mode in modes)
        {
            var envs = tables[seeds[0]][mode].Select(r => (string)r["environment"]!).ToList();
            var verdict = envs.Select(env =>
            {
                var diffs = seeds.Select(s => (double)tables[s][mode].Single(r => (string)r["environment"]! == env)["difference"]!).ToList();
                var starts = seeds.Select(s => (double)tables[s][mode].Single(r => (string)r["environment"]! == env)["sft"]!).ToList();
                bool ok = diffs.All(d => d >= 0.10) && starts.All(v => v is >= 0.10 and <= 0.70);
                return $"{env}: min gain {100 * diffs.Min():+0.0;-0.0} pts, SFT {starts.Min():F2}–{starts.Max():F2} {(ok ? "meets the bar" : "below the bar")}";
            });
            Console.WriteLine($"is_correction={mode}: " + string.Join("; ", verdict));
        }
        return Task.FromResult(0);
    }

    private static int RunGym(string gym, IReadOnlyList<string> args, string log)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(gym);
        foreach (var a in args) psi.ArgumentList.Add(a);
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        using var writer = new StreamWriter(log) { AutoFlush = true };
        using var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (writer) writer.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (writer) writer.WriteLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        p.WaitForExit();
        return p.ExitCode;
    }
}
