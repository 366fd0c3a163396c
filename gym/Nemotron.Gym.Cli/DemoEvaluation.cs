using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Runs.Evaluation;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// The demo's before/after table, from the same evaluation `gym eval` runs: the SFT checkpoint and the RL checkpoint on
/// the same held-out tasks of each environment the RL stage trained on, with the difference per environment and its
/// paired 95% interval. Also the demo's seed: one number that sets every stage's seed.
/// </summary>
internal static class DemoEvaluation
{
    /// <summary>The overrides that give every stage the pipeline's seed.</summary>
    public static IEnumerable<string> SeedOverrides(int seed) =>
        ["pretrain.seed=" + seed, "sft.seed=" + seed, "rl.seed=" + seed, "eval.seed=" + seed];

    private const string SeedFile = "seed.txt";

    /// <summary>A run folder keeps the seed it was made with; resuming it with another would mix two pipelines.</summary>
    public static void CheckSeed(string runDir, int seed)
    {
        string path = Path.Combine(runDir, SeedFile);
        if (File.Exists(path))
        {
            string had = File.ReadAllText(path).Trim();
            if (had != seed.ToString()) throw new CliException($"{runDir} was made with --seed {had}; resume it with --seed {had}, or give --out a new folder for --seed {seed}");
            return;
        }
        if (Directory.Exists(Path.Combine(runDir, "data")) && seed != 1)
            throw new CliException($"{runDir} holds a demo made before seeds were recorded (seed 1); give --out a new folder for --seed {seed}");
        Directory.CreateDirectory(runDir);
        File.WriteAllText(path, seed + "\n");
    }

    /// <summary>
    /// Where an RL stage's evaluation goes: "eval" beside its folder "rl" (runs/demo/eval), "eval-NAME" beside any other
    /// (rl.out=runs/demo/rl-none gives runs/demo/eval-rl-none), so that several RL variants from one SFT checkpoint
    /// keep their tables apart.
    /// </summary>
    public static string OutFolder(Nemotron.Gym.Runs.GymRunConfig rl)
    {
        string full = Path.GetFullPath(rl.Out).TrimEnd(Path.DirectorySeparatorChar);
        string name = Path.GetFileName(full);
        return Path.Combine(Path.GetDirectoryName(full)!, name == "rl" ? "eval" : "eval-" + name);
    }

    /// <summary>Evaluates both checkpoints on one silo, prints the table, writes eval/{sft,rl}.jsonl and eval/summary.json.</summary>
    public static async Task<IReadOnlyList<JsonObject>> RunAsync(GymRunConfig rl, string sftCheckpoint, EvalSettings settings, string outDir, string device, CancellationToken ct)
    {
        Directory.CreateDirectory(outDir);
        var environments = rl.Environments.Select(e => new EvalEnvironment(e.Name, e.Settings)).ToList();
        string rlCheckpoint = Path.Combine(rl.Out, "final");
        string connection = "sqlite:" + Path.Combine(Path.GetFullPath(outDir), "rollouts.db");
        var silo = GymRunCommands.SiloOptions(rl);
        AnsiConsole.MarkupLineInterpolated($"[blue]eval[/] SFT and RL checkpoints on {settings.Count} {settings.Split} tasks per environment (greedy, and pass@{settings.K} from {settings.SamplesPerTask} samples at T={settings.Temperature:0.##})");
        var (sft, after) = await EvalCommand.WithSilo(silo, async grains =>
        {
            var a = await EvalCommand.Evaluate(sftCheckpoint, device, environments, settings, grains, connection, "eval-sft", ct);
            var b = await EvalCommand.Evaluate(rlCheckpoint, device, environments, settings, grains, connection, "eval-rl", ct);
            return (a, b);
        }, ct);
        await File.WriteAllLinesAsync(Path.Combine(outDir, "sft.jsonl"), sft.Select(r => JsonText.Line(r.ToJson())), ct);
        await File.WriteAllLinesAsync(Path.Combine(outDir, "rl.jsonl"), after.Select(r => JsonText.Line(r.ToJson())), ct);

        var rows = Compare(sft, after, settings.K);
        var table = new Table().AddColumns("environment", "SFT", "RL", "difference", "95% interval", $"pass@{settings.K} SFT → RL", "cut SFT → RL", "tasks");
        foreach (var row in rows)
            table.AddRow(new[] { row["environment"]!.GetValue<string>(), $"{(double)row["sft"]!:F3}", $"{(double)row["rl"]!:F3}",
                $"{(double)row["difference"]!:+0.000;-0.000}", $"[{(double)row["ci95"]![0]!:+0.000;-0.000}, {(double)row["ci95"]![1]!:+0.000;-0.000}]",
                settings.K > 0 ? $"{(double)row["sft_pass@k"]!:F3} → {(double)row["rl_pass@k"]!:F3}" : "-",
                $"{(double)row["sft_truncation_rate"]!:P0} → {(double)row["rl_truncation_rate"]!:P0}", row["tasks"]!.ToString() }
                .Select(c => new Text(c)).ToArray());
        AnsiConsole.MarkupLine("[bold green]held-out score per environment (mean greedy reward), SFT checkpoint vs RL checkpoint[/]");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]difference: mean over the same tasks of RL − SFT, with its paired 95% interval; cut: greedy answers stopped by "
            + $"max_new_tokens ({settings.MaxNewTokens}) or the end of the context; every episode in " + Markup.Escape(connection) + " (runs eval-sft, eval-rl)[/]");
        var summary = new JsonObject { ["seed"] = rl.Seed, ["environments"] = new JsonArray([.. rows.Select(r => (JsonNode)r.DeepClone())]) };
        await File.WriteAllTextAsync(Path.Combine(outDir, "summary.json"), summary.ToJsonString(JsonText.Indented) + "\n", ct);
        return rows;
    }

    /// <summary>Per environment: both scores, the paired difference and its interval, both pass@k.</summary>
    public static List<JsonObject> Compare(IReadOnlyList<EnvironmentResult> sft, IReadOnlyList<EnvironmentResult> rl, int k)
    {
        var rows = new List<JsonObject>();
        foreach (var before in sft)
        {
            var after = rl.Single(r => r.Environment.Name == before.Environment.Name);
            var ids = before.Tasks.Select(t => t.TaskId).ToList();
            if (!ids.SequenceEqual(after.Tasks.Select(t => t.TaskId)))
                throw new InvalidOperationException($"{before.Environment.Name}: the two evaluations scored different tasks");
            // Paired over the tasks judged in both evaluations: a task without a verdict on one side says nothing of the change.
            var both = Enumerable.Range(0, ids.Count).Where(i => !before.Tasks[i].GreedyNotJudged && !after.Tasks[i].GreedyNotJudged).ToList();
            if (both.Count == 0) throw new InvalidOperationException($"{before.Environment.Name}: no task was judged in both evaluations");
            var (d, ci) = EvalStatistics.PairedDifference([.. both.Select(i => before.Tasks[i].GreedyReward)], [.. both.Select(i => after.Tasks[i].GreedyReward)]);
            var row = new JsonObject
            {
                ["environment"] = before.Environment.Name, ["tasks"] = both.Count,
                // The settings both were scored at: a calibrated demo's math differs from seed to seed (DemoCalibration).
                ["settings"] = new JsonObject([.. before.Environment.Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                    .Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))]),
                ["sft"] = before.MeanReward, ["rl"] = after.MeanReward, ["difference"] = d, ["ci95"] = new JsonArray(ci.Low, ci.High),
                ["sft_truncation_rate"] = before.TruncationRate, ["rl_truncation_rate"] = after.TruncationRate,
            };
            if (k > 0)
            {
                row["sft_pass@k"] = before.PassK;
                row["rl_pass@k"] = after.PassK;
            }
            rows.Add(row);
        }
        return rows;
    }
}
