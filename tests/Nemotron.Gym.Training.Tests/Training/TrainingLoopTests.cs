using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Tests;

public sealed class TrainingLoopTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "loop-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    private sealed class Quiet : ITrainingObserver
    {
        public List<string> Messages { get; } = [];
        public void OnStep(StepReport report) { }
        public void OnEval(EvalReport report) { }
        public void OnMessage(string message) => Messages.Add(message);
    }

    /// <summary>A small corpus with structure to learn: sums written out, documents separated by blank lines.</summary>
    private static void WriteCorpus(string directory)
    {
        Directory.CreateDirectory(directory);
        var rng = new Random(1);
        string Doc() { int a = rng.Next(100), b = rng.Next(100); return $"{a} + {b} = {a + b}. So {a} plus {b} is {a + b}.\n"; }
        File.WriteAllLines(Path.Combine(directory, "train.txt"), Enumerable.Range(0, 400).Select(_ => Doc()));
        File.WriteAllLines(Path.Combine(directory, "valid.txt"), Enumerable.Range(0, 50).Select(_ => Doc()));
    }

    private PretrainConfig Config(string name, int steps)
    {
        var data = Path.Combine(_dir, "data");
        if (!Directory.Exists(data)) WriteCorpus(data);
        return new PretrainConfig
        {
            Out = Path.Combine(_dir, name),
            Model = new ModelSettings { Layers = 1, Width = 32, Heads = 2, Context = 32 },
            Data = new TextDataSettings { Train = [Path.Combine(data, "train.txt")], Valid = [Path.Combine(data, "valid.txt")] },
            Train = new TrainSettings { BatchSize = 4, MicroBatch = 2, Steps = steps, Lr = 3e-3f, WarmupSteps = 2, EvalEvery = 3, EvalBatches = 2, CheckpointEvery = 3 },
        };
    }

    [Fact]
    public void LossFallsOnARealCorpus()
    {
        var cfg = Config("learn", 40);
        var first = double.NaN;
        var obs = new Recording();
        Stages.Pretrain(cfg, new CpuBackend(2), obs, TestContext.Current.CancellationToken);
        first = obs.Steps[0].Loss;
        Assert.True(obs.Steps[^1].Loss < first - 1.0, $"loss went from {first:F3} to {obs.Steps[^1].Loss:F3}");
    }

    [Fact]
    public void AnInterruptedRunResumesToTheSameWeightsAsAnUninterruptedOne()
    {
        using var straightBe = new CpuBackend(1);
        var straight = Stages.Pretrain(Config("straight", 7), straightBe, new Quiet(), TestContext.Current.CancellationToken);

        // Stop after 4 steps (cancellation saves a resumable checkpoint), then run again to the end.
        var cfg = Config("resumed", 7);
        using var cts = new CancellationTokenSource();
        var stopper = new Recording { OnStepAction = r => { if (r.Step == 4) cts.Cancel(); } };
        var first = Stages.Pretrain(cfg, new CpuBackend(1), stopper, cts.Token);
        Assert.True(first.Interrupted);
        Assert.Equal(4, first.Steps);
        var quiet = new Quiet();
        var second = Stages.Pretrain(cfg, new CpuBackend(1), quiet, TestContext.Current.CancellationToken);
        Assert.Contains(quiet.Messages, m => m.Contains("resumed") && m.Contains("step 4"));
        Assert.Equal(7, second.Steps);

        using var be = new CpuBackend(1);
        using var a = Nemotron.Gym.Model.Checkpoints.Checkpoint.Load(straight.FinalCheckpoint, be).Model;
        using var b = Nemotron.Gym.Model.Checkpoints.Checkpoint.Load(second.FinalCheckpoint, be).Model;
        Assert.Equal(a.DownloadParameters(), b.DownloadParameters());

        // A finished run is not trained again.
        var third = Stages.Pretrain(cfg, new CpuBackend(1), quiet, TestContext.Current.CancellationToken);
        Assert.Equal(7, third.Steps);
        Assert.Contains(quiet.Messages, m => m.Contains("already exists"));
    }

    private sealed class Recording : ITrainingObserver
    {
        public List<StepReport> Steps { get; } = [];
        public Action<StepReport>? OnStepAction { get; init; }
        public void OnStep(StepReport report) { Steps.Add(report); OnStepAction?.Invoke(report); }
        public void OnEval(EvalReport report) { }
        public void OnMessage(string message) { }
    }
}
