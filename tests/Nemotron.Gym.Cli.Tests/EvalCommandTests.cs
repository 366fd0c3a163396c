using System.Text.Json.Nodes;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>`gym eval` as a user runs it: the real tool over a checkpoint on disk, results file and store written.</summary>
public sealed class EvalCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-eval-cli-").FullName;
    private readonly string _checkpoint;

    public EvalCommandTests()
    {
        _checkpoint = Path.Combine(_dir, "tiny", "final");
        using var backend = new CpuBackend(1);
        using var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 192));
        model.InitializeWeights(1);
        Checkpoint.Save(_checkpoint, model, new ByteTokenizer());
    }

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void WritesOneResultLinePerEnvironmentAndStoresEveryEpisode()
    {
        string results = Path.Combine(_dir, "out", "results.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(results)!);
        var (code, output) = GymProcess.Run(_dir, "eval", "--checkpoint", _checkpoint, "--env", "math,instruction_following",
            "--setting", "math.difficulty=1", "--setting", "instruction_following.constraints=2", "--count", "3", "--k", "2", "--samples", "3",
            "--max-new-tokens", "8", "--device", "cpu", "--out", results,
            "--silo-port", Ports.Free().ToString(), "--gateway-port", Ports.Free().ToString());
        Assert.True(code == 0, output);
        var lines = File.ReadAllLines(results).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["math", "instruction_following"], lines.Select(l => (string)l["environment"]!));
        Assert.Equal("1", (string)lines[0]["settings"]!["difficulty"]!);
        Assert.Equal("2", (string)lines[1]["settings"]!["constraints"]!);
        foreach (var l in lines)
        {
            Assert.Equal(3, (int)l["tasks"]!);
            Assert.Equal(3, (int)l["samples_per_task"]!);
            foreach (var key in new[] { "pass@1", "pass@2", "mean_reward", "mean_length", "truncation_rate" })
                Assert.InRange((double)l[key]!, 0, key == "mean_length" ? 8 : 1);
            var ci = l["pass@1_ci95"]!.AsArray();
            Assert.True((double)ci[0]! <= (double)l["pass@1"]! && (double)l["pass@1"]! <= (double)ci[1]!);
        }
        // Eight new tokens at most: an untrained model rarely ends its turn that soon, and a cut-off turn shows up.
        Assert.True(lines.Any(l => (double)l["truncation_rate"]! > 0), output);

        // Every episode in the store beside the results: 3 greedy + 3×3 sampled per environment.
        (code, output) = GymProcess.Run(_dir, "runs", "list", "--store", Path.Combine(_dir, "out", "eval-rollouts.db"));
        Assert.True(code == 0, output);
        Assert.Contains("eval-tiny-final", output);
        Assert.Contains("24", output);
    }

    [Fact]
    public void BadArgumentsAreReportedByName()
    {
        var (code, output) = GymProcess.Run(_dir, "eval", "--checkpoint", _checkpoint, "--env", "math", "--setting", "reasoning.difficulty=1");
        Assert.Equal(2, code);
        Assert.Contains("--setting reasoning.difficulty=1: 'reasoning' is not one of the environments evaluated (math)", output);
        (code, output) = GymProcess.Run(_dir, "eval", "--checkpoint", _checkpoint, "--env", "math", "--k", "4", "--samples", "2");
        Assert.Equal(2, code);
        Assert.Contains("--samples: pass@4 needs at least 4 samples per task, got 2", output);
        (code, output) = GymProcess.Run(_dir, "eval", "--checkpoint", Path.Combine(_dir, "nowhere"), "--env", "math");
        Assert.Equal(2, code);
        Assert.Contains("no such folder", output);
    }
}
