using System.Text.Json.Nodes;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Tests;

/// <summary>
/// What a kill or a bad disk leaves in a run folder, and how the next run copes: a damaged newest checkpoint, the
/// temporary folder of an interrupted checkpoint write, and metrics lines of steps that are about to be redone.
/// </summary>
public sealed class RunFolderRecoveryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("run-recovery-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed class Observer(Action<StepReport>? onStep = null) : ITrainingObserver
    {
        public List<string> Messages { get; } = [];
        public void OnStep(StepReport report) => onStep?.Invoke(report);
        public void OnEval(EvalReport report) { }
        public void OnMessage(string message) => Messages.Add(message);
    }

    private PretrainConfig Config(int steps)
    {
        var data = Path.Combine(_dir, "data");
        Directory.CreateDirectory(data);
        var rng = new Random(2);
        File.WriteAllLines(Path.Combine(data, "train.txt"), Enumerable.Range(0, 200).Select(_ => $"{rng.Next(100)} + {rng.Next(100)} is a sum."));
        File.WriteAllLines(Path.Combine(data, "valid.txt"), Enumerable.Range(0, 20).Select(_ => $"{rng.Next(100)} + {rng.Next(100)} is a sum."));
        return new PretrainConfig
        {
            Out = Path.Combine(_dir, "run"),
            Model = new ModelSettings { Layers = 1, Width = 16, Heads = 2, Context = 16 },
            Data = new TextDataSettings { Train = [Path.Combine(data, "train.txt")], Valid = [Path.Combine(data, "valid.txt")] },
            Train = new TrainSettings { BatchSize = 2, MicroBatch = 2, Steps = steps, WarmupSteps = 1, EvalEvery = 100, EvalBatches = 1, CheckpointEvery = 3 },
        };
    }

    [Fact]
    public void ADamagedNewestCheckpointFallsBackToThePreviousOneAndOrphansAndRedoneMetricsAreCleared()
    {
        var cfg = Config(9);
        using var cts = new CancellationTokenSource();
        var first = Stages.Pretrain(cfg, new CpuBackend(1), new Observer(r => { if (r.Step == 7) cts.Cancel(); }), cts.Token);
        Assert.True(first.Interrupted);
        var folder = new RunFolder(cfg.Out);
        Assert.Equal(7, folder.ResumeStep());

        // The newest checkpoint's weights are damaged on disk.
        var weights = Path.Combine(folder.CheckpointOf(7), Checkpoint.ModelFile);
        var bytes = File.ReadAllBytes(weights);
        bytes[^5] ^= 0x55;
        File.WriteAllBytes(weights, bytes);
        // A kill during the write of step 8's checkpoint, after step 8's metrics line and in the middle of the next.
        var orphan = Path.Combine(folder.Checkpoints, ".step-000008.tmp-4242-0123456789abcdef");
        Directory.CreateDirectory(orphan);
        File.WriteAllText(Path.Combine(orphan, Checkpoint.ModelFile), "half");
        File.AppendAllText(folder.Metrics, "{\"stage\":\"pretrain\",\"step\":8,\"loss\":1}\n{\"stage\":\"pretr");

        Assert.Equal(6, folder.ResumeStep());
        var observer = new Observer();
        var second = Stages.Pretrain(cfg, new CpuBackend(1), observer, TestContext.Current.CancellationToken);

        Assert.False(second.Interrupted);
        Assert.Equal(9, second.Steps);
        Assert.Contains(observer.Messages, m => m.Contains("skipping damaged checkpoint") && m.Contains("step-000007") && m.Contains("checksum"));
        Assert.Contains(observer.Messages, m => m.Contains("resumed") && m.Contains("step 6"));
        Assert.Contains(observer.Messages, m => m.Contains("interrupted checkpoint write"));
        Assert.False(Directory.Exists(orphan));
        var steps = File.ReadLines(folder.Metrics).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<int>()).ToList();
        Assert.Equal(Enumerable.Range(1, 9), steps);
    }

    [Fact]
    public void AllCheckpointsDamagedMeansAFreshStartWithAFreshMetricsFile()
    {
        var cfg = Config(4);
        using var cts = new CancellationTokenSource();
        Stages.Pretrain(cfg, new CpuBackend(1), new Observer(r => { if (r.Step == 2) cts.Cancel(); }), cts.Token);
        var folder = new RunFolder(cfg.Out);
        File.Delete(Path.Combine(folder.CheckpointOf(2), Checkpoint.StateFile));

        var observer = new Observer();
        var outcome = Stages.Pretrain(cfg, new CpuBackend(1), observer, TestContext.Current.CancellationToken);
        Assert.Equal(4, outcome.Steps);
        Assert.Contains(observer.Messages, m => m.Contains("skipping damaged checkpoint"));
        Assert.DoesNotContain(observer.Messages, m => m.Contains("resumed"));
        var steps = File.ReadLines(folder.Metrics).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<int>()).ToList();
        Assert.Equal(Enumerable.Range(1, 4), steps);
    }

    [Fact]
    public void MetricsAreCutToTheResumedStepKeepingEvaluationsUpToIt()
    {
        var folder = new RunFolder(Path.Combine(_dir, "m"));
        Directory.CreateDirectory(folder.Directory);
        File.WriteAllLines(folder.Metrics,
        [
            """{"stage":"grpo_eval","step":0}""", """{"stage":"grpo","step":1}""", """{"stage":"grpo","step":2}""",
            """{"stage":"grpo_eval","step":2}""", """{"stage":"grpo","step":3}""", "not json",
        ]);
        folder.TruncateMetricsAfter(2);
        Assert.Equal(["""{"stage":"grpo_eval","step":0}""", """{"stage":"grpo","step":1}""", """{"stage":"grpo","step":2}""", """{"stage":"grpo_eval","step":2}"""],
            File.ReadAllLines(folder.Metrics));
        folder.TruncateMetricsAfter(-1);
        Assert.Empty(File.ReadAllLines(folder.Metrics));
    }
}
