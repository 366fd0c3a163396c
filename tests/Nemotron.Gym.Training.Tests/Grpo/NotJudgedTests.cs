using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Training.Tests;

/// <summary>
/// Rollouts whose grade is no verdict (the sandbox or a judge failed) are masked out of the step with their reason:
/// they take no part in the group's baseline, the metrics or the loss, and the step goes on with the rest.
/// </summary>
public sealed class NotJudgedTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("grpo-notjudged-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private const string Failure = "the sandbox failed: the docker engine is gone";

    /// <summary>
    /// Task "some": sample 0 not judged, samples 1..3 graded 1, 0, 1. Task "most": samples 0..2 not judged, sample 3 graded 1.
    /// </summary>
    private sealed class PartlyBroken : IEpisodeSource
    {
        public IReadOnlyList<RlTask> Tasks { get; } = [new("some", "code"), new("most", "code")];
        public Task<IEpisode> OpenAsync(RlTask task, int sampleIndex, int seed, CancellationToken cancellation) =>
            Task.FromResult<IEpisode>(new Ep(task.Id == "some" ? sampleIndex == 0 : sampleIndex < 3, sampleIndex));
        private sealed class Ep(bool broken, int i) : IEpisode
        {
            public ChatTranscript Opening { get; } = new([Message.User("write code")]);
            public Task<EpisodeReply> StepAsync(AssistantTurn turn, bool final, CancellationToken c) => Task.FromResult(EpisodeReply.End);
            public Task<Grade> GradeAsync(bool truncated, CancellationToken c) =>
                Task.FromResult(broken ? Grade.NotJudged(Failure) : Grade.Of(i % 2, $"sample {i}"));
        }
    }

    private sealed class Sink : IRolloutSink
    {
        public List<RolloutGroup> Groups { get; } = [];
        public Task AddRolloutsAsync(int step, IReadOnlyList<RolloutGroup> groups, CancellationToken cancellation) { Groups.AddRange(groups); return Task.CompletedTask; }
        public Task AddStepAsync(GrpoStepMetrics metrics, CancellationToken cancellation) => Task.CompletedTask;
        public Task CheckpointWrittenAsync(int step, string directory, CancellationToken cancellation) => Task.CompletedTask;
    }

    private sealed class Steps : IRlObserver
    {
        public List<GrpoStepMetrics> Seen { get; } = [];
        public void OnStep(GrpoStepMetrics metrics, int totalSteps) => Seen.Add(metrics);
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) { }
        public void OnMessage(string message) { }
    }

    [Fact]
    public async Task Not_judged_rollouts_are_masked_with_their_reason_and_the_step_goes_on_with_the_rest()
    {
        var tok = new ByteTokenizer();
        using var model = new GptModel(new CpuBackend(2), new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 48, Vocab: tok.VocabSize));
        model.InitializeWeights(4);
        var grpo = new GrpoSettings { TasksPerStep = 2, GroupSize = 4, DynamicFiltering = false, Curriculum = false, MicroBatch = 8, IsCorrection = IsCorrection.None, Truncation = TruncationPolicy.Keep };
        var sink = new Sink();
        var observer = new Steps();
        var trainer = new GrpoTrainer(model, tok, grpo, new RolloutSettings { MaxNewTokens = 4 }, new RlTrainSettings { Steps = 2, CheckpointEvery = 0 },
            _dir, 5, observer, sink: sink);
        var outcome = await trainer.RunAsync(new PartlyBroken(), null, TestContext.Current.CancellationToken);

        Assert.Equal(2, outcome.Steps);
        Assert.Equal(2, observer.Seen.Count);
        foreach (var m in observer.Seen)
        {
            Assert.Equal(4.0 / 8, m.NotJudgedFraction);
            // Rewards are over the judged rollouts only: 1, 0, 1 of "some" and 1 of "most".
            Assert.Equal(3.0 / 4, m.RewardMean, 12);
            Assert.Equal(3.0 / 4, m.PassRate, 12);
            Assert.True(m.Loss != 0, "the judged group was trained on");
        }

        foreach (var group in sink.Groups)
        {
            var records = group.Rollouts.Select(r => r.Training!).ToList();
            for (int i = 0; i < group.Rollouts.Count; i++)
            {
                var r = group.Rollouts[i];
                if (r.Grade.Masked)
                {
                    Assert.True(records[i].SequenceMasked);
                    Assert.Equal($"not judged: {Failure}", records[i].MaskedReason);
                    Assert.Equal(0, records[i].Advantage);
                    Assert.Null(records[i].TrainerLogProbs); // never reached the loss
                }
            }
            if (group.Task.Id == "some")
            {
                // The baseline is that of the three judged rewards (1, 0, 1), as if the broken sample had never been drawn.
                var expected = Advantages.Compute([1.0, 0.0, 1.0], grpo);
                Assert.Equal(expected, records.Skip(1).Select(t => t.Advantage));
                Assert.All(records.Skip(1), t => Assert.NotNull(t.TrainerLogProbs));
            }
            else
            {
                // One judged rollout has nothing to be compared with: the group is left out, and says why.
                var lone = records[3];
                Assert.True(lone.SequenceMasked);
                Assert.Equal("only 1 of 4 rollouts of the group could be judged: filtered out of the step", lone.MaskedReason);
            }
        }
        Assert.Equal(4, sink.Groups.Count);
    }

    [Fact]
    public void Grade_NotJudged_is_no_verdict_and_a_plain_grade_is_one()
    {
        var broken = Grade.NotJudged(Failure);
        Assert.True(broken.Masked);
        Assert.Equal(Failure, broken.MaskReason);
        Assert.Contains(Failure, broken.Reason);
        Assert.False(Grade.Of(0, "wrong answer").Masked);
    }
}
