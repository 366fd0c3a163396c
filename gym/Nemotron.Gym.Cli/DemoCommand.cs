using System.CommandLine;
using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Runs.Evaluation;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Cli.Arithmetic;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Training;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// gym demo: the main job on a fresh machine. Writes the procedural data (an arithmetic corpus, and chat data
/// from the reference answers of the RL stage's environments), pretrains, fine-tunes, reports held-out
/// arithmetic exact match with sample generations, matches the RL stage's difficulty to the SFT policy
/// (<see cref="DemoCalibration"/>), then runs multi-environment GRPO over math, reasoning and instruction following on
/// an in-process Orleans silo and prints each environment's held-out reward before and after. It uses the configs
/// embedded in this tool (gym demo --print-configs shows them); every stage resumes if interrupted.
/// </summary>
internal static class DemoCommand
{
    public static void AddTo(RootCommand root)
    {
        var run = new Option<string?>("--out") { Description = "Run folder (default runs/demo, or runs/demo-seed-N with --seed N)" };
        var seed = new Option<int>("--seed") { Description = "Seed of the whole pipeline: data, initialization, data order, task sampling and generation", DefaultValueFactory = _ => 1 };
        var print = new Option<bool>("--print-configs") { Description = "Print the embedded stage configs and exit" };
        var cmd = new Command("demo", "The main job: procedural data → pretrain → SFT → multi-environment RL, held-out results of each, on CPU with the embedded configs.")
            { run, seed, StageCommands.Set, StageCommands.Device, print };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            int pipelineSeed = parse.GetValue(seed);
            string runDir = parse.GetValue(run) ?? (pipelineSeed == 1 ? "runs/demo" : $"runs/demo-seed-{pipelineSeed}");
            if (parse.GetValue(print))
            {
                foreach (var name in new[] { "demo-pretrain", "demo-sft", "demo-calibrate", "demo-rl", "demo-eval" })
                    Console.WriteLine($"# ---- {name}.yaml\n{EmbeddedConfig(name, runDir)}");
                return 0;
            }
            // --seed first, so that an explicit --set of one stage's seed still wins for that stage.
            var overrides = DemoEvaluation.SeedOverrides(pipelineSeed).Concat(parse.GetValue(StageCommands.Set) ?? []).ToList();
            // Every override is addressed to a stage; one that is not would be silently ignored.
            foreach (var o in overrides)
                if (!StagePrefixes.Any(p => o.StartsWith(p, StringComparison.Ordinal)))
                    throw new CliException($"--set {o}: the demo's keys start with the stage they change ({string.Join(", ", StagePrefixes)}), e.g. --set rl.train.steps=40");
            string? device = parse.GetValue(StageCommands.Device);
            var clock = Stopwatch.StartNew();

            var dataDir = Path.Combine(runDir, "data");
            var rl = Load<GymRunConfig>("demo-rl", runDir, overrides, "rl.", device);
            var eval = Load<EvalSettings>("demo-eval", runDir, overrides, "eval.", null);
            var calibration = Load<DemoCalibrationSettings>("demo-calibrate", runDir, overrides, "calibrate.", null);
            DemoEvaluation.CheckSeed(runDir, pipelineSeed); // after the configs: a refused command writes nothing
            if (!File.Exists(Path.Combine(dataDir, ArithmeticCorpus.Eval)))
            {
                ArithmeticCorpus.Write(dataDir, new ArithmeticCorpusSpec(), seed: pipelineSeed);
                AnsiConsole.MarkupLineInterpolated($"[blue]data[/] wrote the arithmetic corpus to {dataDir}");
            }
            if (!File.Exists(Path.Combine(dataDir, EnvSftValid)))
                await WriteEnvironmentSftData(rl, dataDir, ct);

            var pretrain = Load<PretrainConfig>("demo-pretrain", runDir, overrides, "pretrain.", device);
            using var backend = Backends.Create(pretrain.Device, pretrain.Threads);
            var pt = Stages.Pretrain(pretrain, backend, new ConsoleObserver("pretrain"), ct);
            if (pt.Interrupted) return 130;

            var sft = Load<SftConfig>("demo-sft", runDir, overrides, "sft.", device);
            var st = Stages.Sft(sft, backend, new ConsoleObserver("sft"), ct);
            if (st.Interrupted) return 130;

            var (model, tokenizer) = Checkpoint.Load(st.FinalCheckpoint, backend);
            using (model)
            {
                var items = ArithmeticCorpus.ReadEval(Path.Combine(dataDir, ArithmeticCorpus.Eval));
                var result = ExactMatchEval.Run(model, new ChatTemplate(tokenizer), items, SamplingParams.Greedy, 160, seed: pipelineSeed, ct);
                AnsiConsole.WriteLine();
                AnsiConsole.MarkupLine("[bold]Sample generations of the fine-tuned model on held-out problems:[/]");
                StageCommands.Print(result.Items.Take(6));
                AnsiConsole.WriteLine();
                AnsiConsole.MarkupLineInterpolated($"[bold green]held-out exact-match accuracy of the SFT model: {result.Accuracy:P1}[/] ({result.Correct}/{result.Total} problems never seen in training)");
            }
            AnsiConsole.WriteLine();
            backend.Dispose();  // the RL stage opens its own backend
            var calibrated = await DemoCalibration.ApplyAsync(rl, st.FinalCheckpoint, calibration, eval, runDir, device ?? rl.Device, ct);
            int rc = await GymRunCommands.RunAsync(rl, ct);
            if (rc != 0) return rc;
            AnsiConsole.WriteLine();
            await DemoEvaluation.RunAsync(rl, st.FinalCheckpoint, eval, DemoEvaluation.OutFolder(rl), device ?? rl.Device, ct);
            if (calibrated.Count > 0)
                AnsiConsole.MarkupLineInterpolated($"[grey]scored at the calibrated {string.Join(", ", calibrated.Select(c => $"{c.Environment}.{c.Setting}={c.Value}"))} (the first value at which the SFT checkpoint passed at most the target share of training tasks; demo-calibrate.yaml)[/]");
            AnsiConsole.MarkupLineInterpolated($"total time {ConsoleObserver.Format(clock.Elapsed)}; checkpoints under {runDir}");
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }

    private static readonly string[] StagePrefixes = ["pretrain.", "sft.", "calibrate.", "rl.", "eval."];

    private const string EnvSftTrain = "env.sft.train.jsonl", EnvSftValid = "env.sft.valid.jsonl";
    private const int EnvSftTasks = 3000, EnvSftValidTasks = 100;

    /// <summary>
    /// SFT conversations written from one environment's reference answers. Instruction following gets three times as
    /// many: its answers are prose, and the demo's pretraining corpus has little (short documents that teach copying,
    /// not writing), so with 3,000 the policy wrote no English and started RL near 0 (held-out 0.05; with 9,000, 0.28:
    /// docs/learning-notes.md, experiment 11; that was before the copying prose of experiment 14).
    /// </summary>
    public static int EnvSftTasksFor(string environment) => environment == "instruction_following" ? 3 * EnvSftTasks : EnvSftTasks;

    /// <summary>
    /// Chat data from the reference answers of the RL stage's environments (their settings, with an entry's
    /// sft_settings over them), so that SFT teaches their formats: training tasks from a seed of their own, validation
    /// tasks from another.
    /// </summary>
    private static async Task WriteEnvironmentSftData(GymRunConfig rl, string dataDir, CancellationToken ct)
    {
        var loaded = EnvCommands.Workers.LoadAll(PluginLoader.DefaultSearchPaths().Concat(rl.Plugins));
        var train = new List<string>();
        var valid = new List<string>();
        foreach (var entry in rl.Environments)
        {
            var env = await HostedEnvironment.StartAsync(EnvCommands.ByName(entry.Name, loaded), entry.SettingsForSft(), HostLimits.Default, cancellation: ct);
            var t = await ReferenceConversations.BuildAsync(env, new TaskQuery("train", EnvSftTasksFor(entry.Name), rl.Seed + 100), ct);
            var v = await ReferenceConversations.BuildAsync(env, new TaskQuery("train", EnvSftValidTasks, rl.Seed + 200), ct);
            train.AddRange(t.Conversations.Select(ChatJsonl.ToLine));
            valid.AddRange(v.Conversations.Select(ChatJsonl.ToLine));
            AnsiConsole.MarkupLineInterpolated($"[blue]data[/] {entry.Name}: {t.Conversations.Count} training and {v.Conversations.Count} validation conversations from its reference answers");
        }
        // Shuffled together with a fixed seed, so no environment sits in one block of the file.
        var rng = new Random(rl.Seed);
        await File.WriteAllLinesAsync(Path.Combine(dataDir, EnvSftTrain), train.OrderBy(_ => rng.Next()), ct);
        await File.WriteAllLinesAsync(Path.Combine(dataDir, EnvSftValid), valid, ct);
    }

    /// <summary>An embedded stage config with {run} filled in, plus the overrides addressed to it ("pretrain.train.lr=...").</summary>
    public static T Load<T>(string name, string runDir, IEnumerable<string> overrides, string prefix, string? device) where T : new()
    {
        var own = overrides.Where(o => o.StartsWith(prefix, StringComparison.Ordinal)).Select(o => o[prefix.Length..]).ToList();
        if (device != null) own.Add($"device={device}");
        return YamlConfig.Parse<T>(EmbeddedConfig(name, runDir), $"(embedded {name}.yaml)", own);
    }

    public static string EmbeddedConfig(string name, string runDir)
    {
        using var stream = typeof(DemoCommand).Assembly.GetManifestResourceStream($"Configs/{name}.yaml")
            ?? throw new CliException($"embedded config {name}.yaml is missing from this build");
        using var reader = new StreamReader(stream);
        // Quote-safe: the placeholder only appears inside double-quoted YAML strings.
        return reader.ReadToEnd().Replace("{run}", runDir.Replace("\\", "/").Replace("\"", "\\\""));
    }
}
