using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>The README's main job, wired end to end: every stage runs, with a few steps each.</summary>
public sealed class DemoCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-demo-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void EveryStageRunsAndTheRlStagePrintsHeldOutRewardPerEnvironment()
    {
        string run = Path.Combine(_dir, "demo");
        var (code, output) = GymProcess.Run(_dir, "demo", "--out", run, "--device", "cpu",
            "--set", "pretrain.train.steps=3", "--set", "sft.train.steps=3", "--set", "calibrate.count=3",
            "--set", "rl.train.steps=1", "--set", "rl.grpo.tasks_per_step=3", "--set", "rl.grpo.group_size=2",
            "--set", "rl.rollout.max_new_tokens=16",
            "--set", "eval.count=3", "--set", "eval.k=2", "--set", "eval.max_new_tokens=16",
            "--set", $"rl.cluster.silo_port={Ports.Free()}", "--set", $"rl.cluster.gateway_port={Ports.Free()}");
        Assert.True(code == 0, output);
        // SFT data from the environments' references, beside the arithmetic chat data.
        Assert.Matches(@"math: \d+ training and \d+ validation conversations", output);
        Assert.True(File.ReadLines(Path.Combine(run, "data", "env.sft.train.jsonl")).Count() > 1000);
        Assert.Contains("held-out exact-match accuracy of the SFT model", output);
        // The calibration scored the SFT checkpoint on training tasks (3 steps of SFT pass none: the easiest value) and
        // gave its choice to the RL stage, whose recorded config has it.
        Assert.Contains("calibrate math.word_max=300: the SFT policy passes 0.0 % of 3 training tasks", output);
        Assert.Equal([("math", "word_max", "300")], DemoCalibration.Read(Path.Combine(run, DemoCalibration.File)));
        Assert.Contains("word_max: 300", File.ReadAllText(Path.Combine(run, "rl", "config.yaml")));
        Assert.Contains("scored at the calibrated math.word_max=300", output);
        // The RL stage: every rollout of its one step is stored.
        Assert.True(File.Exists(Path.Combine(run, "rl", "rollouts.db")));
        Assert.True(Directory.Exists(Path.Combine(run, "rl", "final")));
        // The before/after table comes from the evaluation of both checkpoints: one row per environment, with the
        // difference and its interval, and the results and every episode on disk.
        Assert.Contains("held-out score per environment (mean greedy reward), SFT checkpoint vs RL checkpoint", output);
        var summary = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval", "summary.json")))!;
        Assert.Equal(1, (int)summary["seed"]!);
        var rows = summary["environments"]!.AsArray();
        Assert.Equal(["math", "reasoning", "instruction_following"], rows.Select(r => (string)r!["environment"]!));
        Assert.Equal("300", (string)rows[0]!["settings"]!["word_max"]!);
        Assert.All(rows, r =>
        {
            Assert.Equal(3, (int)r!["tasks"]!);
            Assert.NotNull(r["settings"]);
            Assert.Equal((double)r["rl"]! - (double)r["sft"]!, (double)r["difference"]!, 9);
            Assert.True((double)r["ci95"]![0]! <= (double)r["difference"]! && (double)r["difference"]! <= (double)r["ci95"]![1]!);
        });
        Assert.Equal(3, File.ReadLines(Path.Combine(run, "eval", "sft.jsonl")).Count());
        Assert.Equal(3, File.ReadLines(Path.Combine(run, "eval", "rl.jsonl")).Count());
        // The share of greedy answers cut at the token limit, before and after, is each evaluation's own figure.
        foreach (var (stage, key) in new[] { ("sft", "sft_truncation_rate"), ("rl", "rl_truncation_rate") })
        {
            var results = File.ReadLines(Path.Combine(run, "eval", stage + ".jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!).ToList();
            Assert.All(rows, r => Assert.Equal((double)results.Single(x => (string)x!["environment"]! == (string)r!["environment"]!)["truncation_rate"]!, (double)r![key]!, 9));
        }
        Assert.Equal("1", File.ReadAllText(Path.Combine(run, "seed.txt")).Trim());

        (code, output) = GymProcess.Run(_dir, "runs", "list", "--store", Path.Combine(run, "rl"));
        Assert.True(code == 0, output);
        Assert.Contains("completed", output);
        Assert.Contains("1/1", output);
        // The evaluations' episodes are browsable like a run's: two runs, greedy (step 0) and sampled (step 1).
        (code, output) = GymProcess.Run(_dir, "runs", "list", "--store", Path.Combine(run, "eval"));
        Assert.True(code == 0, output);
        Assert.Contains("eval-sft", output);
        Assert.Contains("eval-rl", output);

        // The run folder keeps its seed: resuming it with another is refused before anything is touched.
        (code, output) = GymProcess.Run(_dir, "demo", "--out", run, "--seed", "4");
        Assert.True(code == 2, output);
        Assert.Contains("was made with --seed 1", output);
    }

    [Fact]
    public void AnOverrideWithoutAStageIsRefusedNotIgnored()
    {
        string run = Path.Combine(_dir, "refused");
        foreach (var set in new[] { "train.steps=1", "bogus.key=1" })
        {
            var (code, output) = GymProcess.Run(_dir, "demo", "--out", run, "--set", set);
            Assert.True(code == 2, output);
            Assert.Contains($"--set {set}: the demo's keys start with the stage", output);
        }
        Assert.False(Directory.Exists(run), "nothing is written for a refused command");
    }
}
