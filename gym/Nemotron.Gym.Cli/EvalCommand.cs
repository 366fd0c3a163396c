using System.CommandLine;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Runs.Evaluation;
using Nemotron.Gym.Store;
using Nemotron.Gym.Training.Config;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// gym eval: scores a checkpoint on environments over the same Orleans episode path as training — per environment
/// pass@1 (greedy), pass@k (unbiased, from n sampled episodes), mean reward, mean length and truncation rate, with
/// 95% intervals; a JSONL result file (one line per environment); every graded episode in a rollout store.
/// </summary>
internal static class EvalCommand
{
    public static void AddTo(RootCommand root)
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "The checkpoint folder to evaluate", Required = true };
        var envs = new Option<string>("--env") { Description = "Comma-separated environments, e.g. math,reasoning,instruction_following", Required = true };
        var setting = new Option<string[]>("--setting") { Description = "An environment setting, ENV.KEY=VALUE, e.g. --setting math.difficulty=1 (repeatable)" };
        var split = new Option<string>("--split") { Description = "The split to evaluate", DefaultValueFactory = _ => "heldout" };
        var count = new Option<int>("--count") { Description = "Tasks per environment", DefaultValueFactory = _ => 200 };
        var k = new Option<int>("--k") { Description = "k of pass@k; 0 = greedy only", DefaultValueFactory = _ => 8 };
        var samples = new Option<int>("--samples") { Description = "Sampled episodes per task for pass@k (n >= k; default k)" };
        var temperature = new Option<float>("--temperature") { Description = "Temperature of the sampled episodes", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { Description = "Sampling seed; the tasks come from seed + 1000, as a training run's held-out set does", DefaultValueFactory = _ => 1 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens per assistant turn at most", DefaultValueFactory = _ => 160 };
        var output = new Option<string?>("--out", "-o") { Description = "JSONL result file: one line per environment" };
        var store = new Option<string?>("--store") { Description = "Rollout store for every graded episode: sqlite:PATH or postgres:CONNECTION (default: eval-rollouts.db beside --out, else runs/eval/)" };
        var runId = new Option<string?>("--run-id") { Description = "The evaluation's run id in the store (default: eval-<checkpoint>)" };
        var siloPort = new Option<int>("--silo-port") { Description = "Port of the in-process silo", DefaultValueFactory = _ => 11111 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "Gateway port of the in-process silo", DefaultValueFactory = _ => 30000 };
        var plugins = new Option<string[]>("--plugins") { Description = "Extra plugin folders (repeatable)" };
        var sandbox = new Option<string?>("--sandbox") { Description = "Sandbox backend for environments that run code: bwrap, docker or none (default: bwrap when this host can run it)" };
        var cmd = new Command("eval", "Score a checkpoint on environments: pass@1, pass@k, mean reward, length and truncation with 95% intervals; every episode stored.")
        {
            checkpoint, envs, setting, split, count, k, samples, temperature, seed, maxNew, output, store, runId, siloPort, gatewayPort, plugins, sandbox, StageCommands.Device,
        };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            string dir = parse.GetValue(checkpoint)!;
            var settings = new EvalSettings
            {
                Split = parse.GetValue(split)!, Count = parse.GetValue(count), K = parse.GetValue(k), Samples = parse.GetValue(samples),
                Temperature = parse.GetValue(temperature), Seed = parse.GetValue(seed), MaxNewTokens = parse.GetValue(maxNew),
            };
            try { settings.Validate(""); }
            catch (ConfigException e) { throw new CliException("--" + e.Message.Replace('_', '-')); }
            var environments = ParseEnvironments(parse.GetValue(envs)!, parse.GetValue(setting) ?? []);
            string? outPath = parse.GetValue(output);
            // The store beside the results (or under runs/eval/), and the silo's state file beside the store.
            string folder = outPath != null ? Path.GetDirectoryName(Path.GetFullPath(outPath))! : Path.GetFullPath(Path.Combine("runs", "eval"));
            string connection = parse.GetValue(store) ?? "sqlite:" + Path.Combine(folder, "eval-rollouts.db");
            if (connection.StartsWith("sqlite:", StringComparison.Ordinal)) folder = Path.GetDirectoryName(Path.GetFullPath(connection["sqlite:".Length..]))!;
            Directory.CreateDirectory(folder);
            string id = parse.GetValue(runId) ?? DefaultRunId(dir);

            var silo = new GymSiloOptions
            {
                SiloPort = parse.GetValue(siloPort), GatewayPort = parse.GetValue(gatewayPort),
                StateStorage = "sqlite:" + Path.Combine(folder, "gym-state.db"),
            };
            silo.PluginFolders.AddRange(parse.GetValue(plugins) ?? []);
            // Code and swe answers are graded by running them, as in a run: the same sandbox pool a run's silo has.
            silo.Sandbox = SandboxCommands.SiloSandboxFromCommandLine(parse.GetValue(sandbox), null, $"eval-{silo.SiloPort}");
            var results = await WithSilo(silo, grains => Evaluate(dir, parse.GetValue(StageCommands.Device) ?? "auto", environments, settings, grains, connection, id, ct), ct);
            Print(results, settings);
            if (outPath != null)
            {
                await File.WriteAllLinesAsync(outPath, results.Select(r => JsonText.Line(r.ToJson())), ct);
                AnsiConsole.MarkupLineInterpolated($"results in {outPath}");
            }
            AnsiConsole.MarkupLineInterpolated($"every graded episode in {connection} (run {id}: step 0 greedy, step 1 sampled)");
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }

    /// <summary>"eval-sft-final" for runs/demo/sft/final: the checkpoint's folder and its parent, which say what it is.</summary>
    public static string DefaultRunId(string checkpoint)
    {
        var full = Path.GetFullPath(checkpoint).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetFileName(Path.GetDirectoryName(full) ?? "");
        return "eval-" + (parent.Length > 0 ? parent + "-" : "") + Path.GetFileName(full);
    }

    /// <summary>"math,reasoning" with settings "math.difficulty=1": each environment once, with its own settings.</summary>
    public static List<EvalEnvironment> ParseEnvironments(string names, IEnumerable<string> settings)
    {
        var list = names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();
        if (list.Count == 0) throw new CliException("--env: name at least one environment (gym env list shows them)");
        var byEnv = list.ToDictionary(n => n, _ => new Dictionary<string, string>());
        foreach (var s in settings)
        {
            int dot = s.IndexOf('.'), eq = s.IndexOf('=');
            if (dot <= 0 || eq < dot + 2) throw new CliException($"--setting {s}: expected ENV.KEY=VALUE, e.g. math.difficulty=1");
            string env = s[..dot];
            if (!byEnv.TryGetValue(env, out var d)) throw new CliException($"--setting {s}: '{env}' is not one of the environments evaluated ({string.Join(", ", list)})");
            d[s[(dot + 1)..eq]] = s[(eq + 1)..];
        }
        return [.. list.Select(n => new EvalEnvironment(n, byEnv[n]))];
    }

    /// <summary>Starts an in-process silo, runs <paramref name="body"/> against it, stops it.</summary>
    public static async Task<T> WithSilo<T>(GymSiloOptions options, Func<IGrainFactory, Task<T>> body, CancellationToken ct)
    {
        using var silo = await GymSilo.StartAsync(options, ct);
        try { return await body((IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!); }
        finally { await silo.StopAsync(CancellationToken.None); }
    }

    /// <summary>Loads the checkpoint and evaluates it; every episode into the store at <paramref name="connection"/>.</summary>
    public static async Task<IReadOnlyList<EnvironmentResult>> Evaluate(string checkpoint, string device, IReadOnlyList<EvalEnvironment> environments,
        EvalSettings settings, IGrainFactory grains, string connection, string runId, CancellationToken ct)
    {
        if (!Directory.Exists(checkpoint)) throw new CliException($"--checkpoint {checkpoint}: no such folder");
        using var backend = Backends.Create(device, 0);
        var (model, tokenizer) = Checkpoint.Load(checkpoint, backend);
        using (model)
        {
            await using var store = await RolloutStores.OpenAsync(connection, ct);
            string describe = $"checkpoint: \"{Path.GetFullPath(checkpoint)}\"\nenvironments: [{string.Join(", ", environments.Select(e => e.Name))}]\n" + YamlConfig.ToYaml(settings);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            return await PolicyEvaluation.RunAsync(model, new ChatTemplate(tokenizer), grains, environments, settings, store, runId, describe,
                r => AnsiConsole.MarkupLineInterpolated($"[blue]eval[/] {runId}: {r.Environment.Name} done ({r.Tasks.Count} tasks, {clock.Elapsed.TotalSeconds:F0}s so far)"), ct);
        }
    }

    private static void Print(IReadOnlyList<EnvironmentResult> results, EvalSettings settings)
    {
        var table = new Table().AddColumns("environment", "tasks", "not judged", "pass@1 (greedy)", "mean reward", settings.K > 0 ? $"pass@{settings.K} (T={settings.Temperature:0.##}, n={settings.SamplesPerTask})" : "pass@k", "mean length", "truncated");
        foreach (var r in results)
            // Cells are plain text: the intervals' brackets are not markup.
            table.AddRow(new[] { r.Environment.Name, r.Tasks.Count.ToString(), r.NotJudged.ToString(), $"{r.Pass1:F3} {r.Pass1Interval}", $"{r.MeanReward:F3} {r.MeanRewardInterval}",
                settings.K > 0 ? $"{r.PassK:F3} {r.PassKInterval}" : "-", $"{r.MeanLength:F1}", $"{r.TruncationRate:P1}" }.Select(c => new Text(c)).ToArray());
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]intervals: 95%, Wilson for pass rates, normal over tasks for mean reward with partial credit and for pass@k[/]");
        if (results.Any(r => r.NotJudged > 0))
            AnsiConsole.MarkupLine("[yellow]not judged[/]: episodes without a verdict (a sandbox or judge failed; the stored rollouts say why) are left out of the scores, never counted as wrong");
    }
}
