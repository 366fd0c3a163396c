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
            "--set", "pretrain.train.steps=3", "--set", "sft.train.steps=3",
            "--set", "rl.train.steps=1", "--set", "rl.grpo.tasks_per_step=3", "--set", "rl.grpo.group_size=2",
            "--set", "rl.rollout.max_new_tokens=16",
            "--set", $"rl.cluster.silo_port={Ports.Free()}", "--set", $"rl.cluster.gateway_port={Ports.Free()}");
        Assert.True(code == 0, output);
        // SFT data from the environments' references, beside the arithmetic chat data.
        Assert.Matches(@"math: \d+ training and \d+ validation conversations", output);
        Assert.True(File.ReadLines(Path.Combine(run, "data", "env.sft.train.jsonl")).Count() > 1000);
        Assert.Contains("held-out exact-match accuracy of the SFT model", output);
        // The RL stage: its table names the three environments; every rollout of its one step is stored.
        Assert.Contains("held-out reward per environment", output);
        foreach (var env in new[] { "math", "reasoning", "instruction_following" }) Assert.Contains(env, output);
        Assert.True(File.Exists(Path.Combine(run, "rl", "rollouts.db")));
        Assert.True(Directory.Exists(Path.Combine(run, "rl", "final")));

        (code, output) = GymProcess.Run(_dir, "runs", "list", "--store", Path.Combine(run, "rl"));
        Assert.True(code == 0, output);
        Assert.Contains("completed", output);
        Assert.Contains("1/1", output);
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
