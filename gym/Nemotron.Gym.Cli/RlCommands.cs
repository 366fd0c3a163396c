using System.CommandLine;
using Nemotron.Gym.Policy.Chat;
using Nemotron.Gym.Policy.Checkpoints;
using Nemotron.Gym.Policy.Config;
using Nemotron.Gym.Policy.Data;
using Nemotron.Gym.Policy.Rl;
using Nemotron.Gym.Runs;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>gym rl: GRPO from an SFT checkpoint.</summary>
internal static class RlCommands
{
    public static void AddTo(RootCommand root)
    {
        var config = new Option<string>("--config", "-c") { Description = "YAML config file", Required = true };
        var cmd = new Command("rl", "Post-train an SFT checkpoint with synchronous GRPO and masked importance sampling; Ctrl-C pauses, the same command resumes.")
            { config, StageCommands.Set, StageCommands.Device };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var overrides = (parse.GetValue(StageCommands.Set) ?? []).ToList();
            if (parse.GetValue(StageCommands.Device) is { } d) overrides.Add($"device={d}");
            // A config with an `environments:` section is a run over environment plugins on Orleans.
            if (GymRunCommands.IsEnvironmentRun(parse.GetValue(config)!))
                return await GymRunCommands.RunAsync(YamlConfig.Load<GymRunConfig>(parse.GetValue(config), overrides), ct);
            var cfg = YamlConfig.Load<RlConfig>(parse.GetValue(config), overrides);
            var outcome = await RunLocal(cfg, new RlConsoleObserver(), ct);
            if (outcome.Interrupted) return 130;
            AnsiConsole.MarkupLineInterpolated($"[green]rl done[/]: {outcome.Steps} steps; held-out {Describe(outcome.Before)} → [bold]{Describe(outcome.After)}[/]; checkpoint {outcome.FinalCheckpoint}");
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }

    /// <summary>Runs GRPO on the local arithmetic source of a config.</summary>
    public static async Task<RlOutcome> RunLocal(RlConfig cfg, IRlObserver observer, CancellationToken ct)
    {
        using var backend = Backends.Create(cfg.Device, cfg.Threads);
        var (model, tokenizer) = Checkpoint.Load(cfg.Init, backend);
        using (model)
        {
            var reference = cfg.Grpo.KlBeta > 0 ? Checkpoint.Load(cfg.Init, backend).Model : null;
            using (reference)
            {
                var source = new ArithmeticEpisodes(cfg.Tasks.Train, cfg.Tasks.Limit);
                var evalItems = ArithmeticCorpus.ReadEval(cfg.Tasks.Eval);
                if (cfg.Tasks.EvalLimit > 0) evalItems = evalItems.Take(cfg.Tasks.EvalLimit).ToList();
                var template = new ChatTemplate(tokenizer);
                observer.OnMessage($"grpo: from {cfg.Init}; {source.Tasks.Count} training tasks, {evalItems.Count} held out; {cfg.Train.Steps} steps of {cfg.Grpo.TasksPerStep} tasks × {cfg.Grpo.GroupSize} rollouts; is_correction {YamlConfig.Snake(cfg.Grpo.IsCorrection.ToString())}");
                Directory.CreateDirectory(cfg.Out);
                File.WriteAllText(Path.Combine(cfg.Out, "config.yaml"), YamlConfig.ToYaml(cfg));
                var trainer = new GrpoTrainer(model, tokenizer, cfg.Grpo, cfg.Rollout, cfg.Train, cfg.Out, cfg.Seed, observer, reference);
                return await trainer.RunAsync(source, ArithmeticEpisodes.HeldOutAccuracy(template, evalItems, cfg.Rollout.MaxNewTokens), ct);
            }
        }
    }

    public static string Describe(IReadOnlyDictionary<string, double> scores) =>
        scores.Count == 0 ? "(none)" : string.Join(", ", scores.Select(kv => $"{kv.Key} {kv.Value:P1}"));
}

/// <summary>Prints RL progress: one line per step with reward, pass rate and the IS/mismatch figures.</summary>
internal sealed class RlConsoleObserver : IRlObserver
{
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    public void OnStep(GrpoStepMetrics m, int totalSteps)
    {
        double perStep = _clock.Elapsed.TotalSeconds / Math.Max(1, _stepsSeen++ + 1);
        var eta = TimeSpan.FromSeconds(perStep * (totalSteps - m.Step));
        var envs = m.RewardByEnvironment.Count > 1 ? " (" + string.Join(", ", m.RewardByEnvironment.Select(kv => $"{kv.Key} {kv.Value:F2}")) + ")" : "";
        AnsiConsole.MarkupLineInterpolated(
            $"[blue]grpo[/] step {m.Step,4}/{totalSteps} | reward [bold]{m.RewardMean:F3}[/]{envs} | pass {m.PassRate:P0} | dropped {m.DroppedGroupFraction:P0} | len {m.ResponseLengthMean:F0} | ent {m.Entropy:F3} | is_oob {m.IsOobFraction:P1} | mismatch {m.Mismatch:0.0e+0} | gen {m.GenerateSeconds:F1}s train {m.TrainSeconds:F1}s | ETA {ConsoleObserver.Format(eta)}");
    }

    private int _stepsSeen;

    public void OnEval(int step, IReadOnlyDictionary<string, double> scores) =>
        AnsiConsole.MarkupLineInterpolated($"[blue]grpo[/] step {step,4} | held-out [bold]{RlCommands.Describe(scores)}[/]");

    public void OnMessage(string message) => AnsiConsole.MarkupLineInterpolated($"[blue]grpo[/] {message}");
}
