using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Runs.Evaluation;
using Nemotron.Gym.Training.Config;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>One setting the demo may raise: its candidate values, easiest first.</summary>
public sealed class CalibrationKnob : IValidatedConfig
{
    /// <summary>The RL stage's environment it belongs to.</summary>
    public string Environment { get; set; } = "";
    /// <summary>The environment setting.</summary>
    public string Setting { get; set; } = "";
    /// <summary>Candidate values, easiest first; the first is what the RL stage would use without calibration.</summary>
    public List<string> Values { get; set; } = [];

    /// <inheritdoc />
    public void Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Environment)) throw new ConfigException($"{path}.environment: the environment name is required");
        if (string.IsNullOrWhiteSpace(Setting)) throw new ConfigException($"{path}.setting: the setting name is required");
        if (Values.Count == 0) throw new ConfigException($"{path}.values: at least one value is required");
    }
}

/// <summary>demo-calibrate.yaml: how the demo matches the RL stage's difficulty to its SFT policy.</summary>
public sealed class DemoCalibrationSettings : IValidatedConfig
{
    /// <summary>The highest greedy pass rate on training tasks the SFT policy may start the RL stage from.</summary>
    public double Target { get; set; } = 0.6;
    /// <summary>Training tasks scored per candidate value.</summary>
    public int Count { get; set; } = 200;
    /// <summary>The settings to calibrate, each on its own.</summary>
    public List<CalibrationKnob> Knobs { get; set; } = [];

    /// <inheritdoc />
    public void Validate(string path)
    {
        string p = path.Length == 0 ? "" : path + ".";
        if (!(Target > 0 && Target <= 1)) throw new ConfigException($"{p}target: a pass rate in (0, 1], got {Target}");
        if (Count < 1) throw new ConfigException($"{p}count: must be >= 1, got {Count}");
    }
}

/// <summary>
/// The demo's difficulty calibration, between SFT and RL: for each knob, the SFT checkpoint is scored greedily on
/// training tasks (never the held-out ones) at each candidate value, easiest first, and the first value whose pass
/// rate is at most the target is given to the RL stage, and so to the held-out evaluation of both checkpoints. A
/// fixed difficulty could not keep every seed's start inside the room RL needs: math started anywhere from 0.55 to
/// 0.82 over the seeds of docs/learning-notes.md (experiment 21). The choice is kept in {run}/calibration.json, so a
/// resumed demo trains on what it started with.
/// </summary>
public static class DemoCalibration
{
    /// <summary>The kept choice's file name, in the demo's run folder.</summary>
    public const string File = "calibration.json";

    /// <summary>
    /// Applies the kept choice, or calibrates and keeps it; changes <paramref name="rl"/>'s environment settings and
    /// returns what it set (nothing when no calibration applies).
    /// </summary>
    internal static async Task<List<(string Environment, string Setting, string Value)>> ApplyAsync(GymRunConfig rl, string sftCheckpoint, DemoCalibrationSettings calibration, EvalSettings eval,
        string runDir, string device, CancellationToken ct)
    {
        string path = Path.Combine(runDir, File);
        foreach (var knob in calibration.Knobs)
            if (!rl.Environments.Any(e => e.Name == knob.Environment))
                throw new CliException($"calibrate.knobs: environment '{knob.Environment}' is not one the RL stage trains on ({string.Join(", ", rl.Environments.Select(e => e.Name))})");
        if (System.IO.File.Exists(path)) return Apply(rl, Read(path));
        if (calibration.Knobs.Count == 0) return [];
        if (Directory.Exists(rl.Out) && Directory.EnumerateFileSystemEntries(rl.Out).Any())
        {
            // An RL stage started by a demo without calibration keeps its settings: resuming it with others is refused.
            AnsiConsole.MarkupLineInterpolated($"[yellow]calibrate[/] skipped: the RL stage in {rl.Out} started without it and keeps its settings");
            return [];
        }

        var settings = new EvalSettings
        {
            Split = "train", Count = calibration.Count, K = 0, Seed = eval.Seed,
            MaxNewTokens = eval.MaxNewTokens, MaxTurns = eval.MaxTurns, MaxBatch = eval.MaxBatch, PassThreshold = eval.PassThreshold,
        };
        string connection = "sqlite:" + Path.Combine(Path.GetFullPath(runDir), "calibration-rollouts.db");
        var record = new JsonArray();
        var choices = new List<(string Environment, string Setting, string Value)>();
        await EvalCommand.WithSilo(GymRunCommands.SiloOptions(rl), async grains =>
        {
            foreach (var knob in calibration.Knobs)
            {
                var entry = rl.Environments.First(e => e.Name == knob.Environment);
                var (chosen, measured) = await ChooseAsync(knob.Values, calibration.Target, async value =>
                {
                    var withValue = new Dictionary<string, string>(entry.Settings) { [knob.Setting] = value };
                    var result = (await EvalCommand.Evaluate(sftCheckpoint, device, [new EvalEnvironment(knob.Environment, withValue)], settings, grains,
                        connection, $"calibrate-{knob.Environment}-{knob.Setting}-{value}", ct)).Single();
                    AnsiConsole.MarkupLineInterpolated($"[blue]calibrate[/] {knob.Environment}.{knob.Setting}={value}: the SFT policy passes {result.Pass1:P1} of {result.Tasks.Count} training tasks");
                    return result.Pass1;
                });
                choices.Add((knob.Environment, knob.Setting, chosen));
                record.Add(new JsonObject
                {
                    ["environment"] = knob.Environment, ["setting"] = knob.Setting, ["value"] = chosen,
                    ["target"] = calibration.Target,
                    ["measured"] = new JsonArray([.. measured.Select(m => (JsonNode)new JsonObject { ["value"] = m.Value, ["pass_rate"] = m.PassRate })]),
                });
            }
            return 0;
        }, ct);
        var kept = new JsonObject { ["checkpoint"] = Path.GetFullPath(sftCheckpoint), ["split"] = "train", ["task_seed"] = settings.TaskSeed,
            ["tasks_per_value"] = calibration.Count, ["knobs"] = record };
        await System.IO.File.WriteAllTextAsync(path, kept.ToJsonString(JsonText.Indented) + "\n", ct);
        return Apply(rl, choices);
    }

    /// <summary>
    /// The first of <paramref name="values"/> (easiest first) whose pass rate is at most <paramref name="target"/>, the last
    /// when none is; values after the chosen one are not measured.
    /// </summary>
    public static async Task<(string Chosen, List<(string Value, double PassRate)> Measured)> ChooseAsync(IReadOnlyList<string> values, double target,
        Func<string, Task<double>> passRate)
    {
        if (values.Count == 0) throw new ArgumentException("no values to choose from", nameof(values));
        var measured = new List<(string, double)>();
        foreach (var value in values)
        {
            double rate = await passRate(value);
            measured.Add((value, rate));
            if (rate <= target) return (value, measured);
        }
        return (values[^1], measured);
    }

    /// <summary>(environment, setting, value) triples of a kept calibration.</summary>
    public static List<(string Environment, string Setting, string Value)> Read(string path)
    {
        try
        {
            var root = JsonNode.Parse(System.IO.File.ReadAllText(path)) as JsonObject ?? throw new FormatException("not a JSON object");
            var knobs = root["knobs"] as JsonArray ?? throw new FormatException("no 'knobs' array");
            return [.. knobs.Select((k, i) => (
                k?["environment"]?.GetValue<string>() ?? throw new FormatException($"knobs[{i}].environment is missing"),
                k["setting"]?.GetValue<string>() ?? throw new FormatException($"knobs[{i}].setting is missing"),
                k["value"]?.GetValue<string>() ?? throw new FormatException($"knobs[{i}].value is missing")))];
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            throw new CliException($"{path}: not a calibration this demo wrote ({e.Message}); delete it to calibrate again before the RL stage starts");
        }
    }

    private static List<(string Environment, string Setting, string Value)> Apply(GymRunConfig rl, List<(string Environment, string Setting, string Value)> choices)
    {
        foreach (var (environment, setting, value) in choices)
        {
            var entry = rl.Environments.FirstOrDefault(e => e.Name == environment)
                ?? throw new CliException($"{File}: environment '{environment}' is not one the RL stage trains on");
            entry.Settings[setting] = value;
            AnsiConsole.MarkupLineInterpolated($"[blue]calibrate[/] the RL stage and its evaluation use {environment}.{setting}={value}");
        }
        return choices;
    }
}
