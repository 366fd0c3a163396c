using System.CommandLine;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Training.Grpo;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// gym rl: GRPO from an SFT checkpoint over a blend of environments, on Orleans. There is one kind of RL run: a
/// single environment is a blend of one.
/// </summary>
internal static class RlCommands
{
    public static void AddTo(RootCommand root)
    {
        var config = new Option<string>("--config", "-c") { Description = "YAML config file (out, init, environments, grpo, rollout, train, cluster)", Required = true };
        var newRun = new Option<bool>("--new-run") { Description = "Discard the run already in the out folder (checkpoints, metrics, rollouts, state) and start again" };
        var cmd = new Command("rl", "Post-train an SFT checkpoint with synchronous GRPO and masked importance sampling over environments; Ctrl-C pauses, the same command resumes.")
            { config, StageCommands.Set, StageCommands.Device, newRun };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var overrides = (parse.GetValue(StageCommands.Set) ?? []).ToList();
            if (parse.GetValue(StageCommands.Device) is { } d) overrides.Add($"device={d}");
            return await GymRunCommands.RunAsync(YamlConfig.Load<GymRunConfig>(parse.GetValue(config), overrides), ct, parse.GetValue(newRun));
        }));
        root.Subcommands.Add(cmd);
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
            $"[blue]grpo[/] step {m.Step,4}/{totalSteps} | reward [bold]{m.RewardMean:F3}[/]{envs} | pass {m.PassRate:P0} | dropped {m.DroppedGroupFraction:P0} | len {m.ResponseLengthMean:F0} | ent {m.Entropy:F3} | is_oob {m.IsOobFraction:P1} | mismatch {m.Mismatch:0.0e+0} | gen {m.GenerateSeconds:F1}s grade {m.GradeSeconds:F1}s ({m.GradeShare:P0}) train {m.TrainSeconds:F1}s{(m.NotJudgedFraction > 0 ? $" | not judged {m.NotJudgedFraction:P0}" : "")} | ETA {ConsoleObserver.Format(eta)}");
    }

    private int _stepsSeen;

    public void OnEval(int step, IReadOnlyDictionary<string, double> scores) =>
        AnsiConsole.MarkupLineInterpolated($"[blue]grpo[/] step {step,4} | held-out [bold]{RlCommands.Describe(scores)}[/]");

    public void OnMessage(string message) => AnsiConsole.MarkupLineInterpolated($"[blue]grpo[/] {message}");
}
