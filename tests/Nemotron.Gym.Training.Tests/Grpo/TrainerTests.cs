using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model;
using Nemotron.Gym.Training.Grpo;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Tests;

public sealed class TrainerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("grpo-").FullName;
    private readonly ByteTokenizer _tok = new();

    public void Dispose() => Directory.Delete(_dir, true);

    private GptModel NewModel(int seed = 1)
    {
        var m = new GptModel(new CpuBackend(2), new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 48, Vocab: _tok.VocabSize));
        m.InitializeWeights(seed);
        return m;
    }

    private sealed class Quiet : IRlObserver
    {
        public List<GrpoStepMetrics> Steps { get; } = [];
        public void OnStep(GrpoStepMetrics metrics, int totalSteps) => Steps.Add(metrics);
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) { }
        public void OnMessage(string message) { }
    }

    /// <summary>Groups of random rollouts whose lp_gen is the model's own lp plus noise (so IS masks bite).</summary>
    private List<RolloutGroup> RandomGroups(GptModel model, int groups, int g, int seed, float noise, bool samePrompt = false)
    {
        var rng = new Random(seed);
        var result = new List<RolloutGroup>();
        for (int k = 0; k < groups; k++)
        {
            var task = new RlTask($"t{k}", "toy");
            var rollouts = new List<Rollout>();
            var prompt = Enumerable.Range(0, 3 + rng.Next(8)).Select(_ => rng.Next(_tok.VocabSize)).ToArray();
            for (int i = 0; i < g; i++)
            {
                int promptLen = samePrompt ? prompt.Length : 3 + rng.Next(4), genLen = 2 + rng.Next(12);
                var tokens = Enumerable.Range(0, promptLen + genLen).Select(p => samePrompt && p < promptLen ? prompt[p] : rng.Next(_tok.VocabSize)).ToArray();
                var generated = Enumerable.Range(0, tokens.Length).Select(p => (byte)(p >= promptLen ? 1 : 0)).ToArray();
                var lp = model.Forward(TokenBatch.FromSequences([tokens], 0)).LogProbs;
                var lpGen = new float[tokens.Length];
                for (int p = promptLen; p < tokens.Length; p++) lpGen[p] = lp[p - 1] + (float)(rng.NextDouble() - 0.5) * noise;
                rollouts.Add(new Rollout
                {
                    Task = task, SampleIndex = i, Tokens = tokens, Generated = generated, SamplerLogProbs = lpGen, Messages = [],
                    Truncated = rng.Next(5) == 0, Turns = 1, Grade = Grade.Of(i % 2, ""),
                });
            }
            var group = new RolloutGroup(task, rollouts);
            Advantages.Prepare(group, new GrpoSettings());
            result.Add(group);
        }
        return result;
    }

    private float[] Gradient(GrpoSettings grpo, List<RolloutGroup> groups, bool separateOldPass = false, GptModel? reference = null)
    {
        foreach (var r in groups.SelectMany(g => g.Rollouts)) r.Training = null;
        using var model = NewModel();
        using var opt = new AdamWOptimizer(model, new AdamWSettings());
        var trainer = new GrpoTrainer(model, _tok, grpo, new RolloutSettings(), new RlTrainSettings { GradClip = 0 }, _dir, 1, new Quiet(), reference)
        { ForceSeparateOldPass = separateOldPass };
        trainer.Train(groups, step: 1, lr: 0f, opt); // lr 0: the gradient stays, the weights do not move
        var g = new float[model.Layout.Total];
        model.Backend.Download(model.Gradients, g);
        return g;
    }

    private static void AssertClose(float[] a, float[] b, string what)
    {
        double scale = a.Max(x => Math.Abs(x));
        Assert.True(scale > 0, $"{what}: the gradient is zero");
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(a[i] - b[i]) <= 1e-4 * scale, $"{what}: parameter {i}: {a[i]} vs {b[i]}");
    }

    [Theory]
    [InlineData(IsCorrection.SeqMis, LossLevel.Token, TruncationPolicy.Mask)]
    [InlineData(IsCorrection.TokenMis, LossLevel.Sequence, TruncationPolicy.ZeroReward)]
    [InlineData(IsCorrection.Tis, LossLevel.Token, TruncationPolicy.Keep)]
    public void MicroBatchSplitDoesNotChangeTheGradient(IsCorrection mode, LossLevel level, TruncationPolicy truncation)
    {
        List<RolloutGroup> groups;
        using (var m = NewModel()) groups = RandomGroups(m, groups: 2, g: 4, seed: 5, noise: 0.6f);
        GrpoSettings S(int micro) => new() { IsCorrection = mode, LossLevel = level, Truncation = truncation, IsMin = 0.9f, IsMax = 1.1f, MicroBatch = micro };
        var one = Gradient(S(8), groups);
        AssertClose(one, Gradient(S(4), groups), "2 micro-batches");
        AssertClose(one, Gradient(S(2), groups), "4 micro-batches");
        // The single forward pass (lp_old = lp, normalizer rescaled once the masks are known) equals
        // computing lp_old in its own pass first.
        AssertClose(one, Gradient(S(3), groups, separateOldPass: true), "separate lp_old pass");
    }

    [Theory]
    [InlineData(IsCorrection.SeqMis, LossLevel.Token, TruncationPolicy.Mask, 8, 1)]
    [InlineData(IsCorrection.TokenMis, LossLevel.Sequence, TruncationPolicy.ZeroReward, 3, 1)]
    [InlineData(IsCorrection.Tis, LossLevel.Token, TruncationPolicy.Keep, 5, 2)]
    public void SharingPromptsDoesNotChangeTheGradientOrWhatIsRecorded(IsCorrection mode, LossLevel level, TruncationPolicy truncation, int micro, int minibatches)
    {
        List<RolloutGroup> groups;
        using (var m = NewModel()) groups = RandomGroups(m, groups: 3, g: 4, seed: 8, noise: 0.6f, samePrompt: true);
        GrpoSettings S(bool share) => new()
        {
            IsCorrection = mode, LossLevel = level, Truncation = truncation, IsMin = 0.9f, IsMax = 1.1f, MicroBatch = micro,
            Minibatches = minibatches, SharePrompts = share,
        };
        var plain = Gradient(S(false), groups);
        var plainRecords = groups.SelectMany(g => g.Rollouts).Select(r => r.Training!).ToList();
        var shared = Gradient(S(true), groups);
        var sharedRecords = groups.SelectMany(g => g.Rollouts).Select(r => r.Training!).ToList();
        AssertClose(plain, shared, "shared prompts");
        for (int i = 0; i < plainRecords.Count; i++)
        {
            Assert.Equal(plainRecords[i].TokenMasked, sharedRecords[i].TokenMasked);
            Assert.Equal(plainRecords[i].SequenceMasked, sharedRecords[i].SequenceMasked);
            for (int t = 0; t < plainRecords[i].TrainerLogProbs!.Length; t++)
                Assert.True(Math.Abs(plainRecords[i].TrainerLogProbs![t] - sharedRecords[i].TrainerLogProbs![t]) < 1e-5,
                    $"rollout {i} token {t}: lp_old {plainRecords[i].TrainerLogProbs![t]} vs {sharedRecords[i].TrainerLogProbs![t]}");
        }
        Assert.Contains(plainRecords, r => r.TrainerLogProbs!.Any(v => v != 0));
    }

    [Fact]
    public void KlToAFrozenReferencePullsTowardsIt()
    {
        List<RolloutGroup> groups;
        using (var m = NewModel()) groups = RandomGroups(m, 1, 3, seed: 2, noise: 0);
        using var reference = NewModel(seed: 9);
        var withKl = Gradient(new GrpoSettings { KlBeta = 0.5f, IsCorrection = IsCorrection.None, MicroBatch = 1 }, groups, reference: reference);
        var without = Gradient(new GrpoSettings { IsCorrection = IsCorrection.None, MicroBatch = 1 }, groups);
        Assert.True(withKl.Zip(without).Any(p => Math.Abs(p.First - p.Second) > 1e-6), "the KL term must change the gradient");
        // Against itself as reference, k3 and its gradient vanish.
        using var self = NewModel();
        AssertClose(without, Gradient(new GrpoSettings { KlBeta = 0.5f, IsCorrection = IsCorrection.None, MicroBatch = 1 }, groups, reference: self), "KL to itself");
    }

    /// <summary>A task a tiny model can learn: begin the answer with a digit (about 4% of random bytes are).</summary>
    private sealed class SayDigit : IEpisodeSource
    {
        public IReadOnlyList<RlTask> Tasks { get; } = Enumerable.Range(0, 4).Select(i => new RlTask($"q{i}", "digits")).ToList();
        public Task<IEpisode> OpenAsync(RlTask task, int sampleIndex, int seed, CancellationToken cancellation) => Task.FromResult<IEpisode>(new Ep());
        private sealed class Ep : IEpisode
        {
            private string _text = "";
            public ChatTranscript Opening { get; } = new([Message.User("digit?")]);
            public Task<EpisodeReply> StepAsync(AssistantTurn turn, bool final, CancellationToken c) { _text = turn.Text; return Task.FromResult(EpisodeReply.End); }
            public Task<Grade> GradeAsync(bool truncated, CancellationToken c) =>
                Task.FromResult(Grade.Of(_text.Length > 0 && char.IsAsciiDigit(_text[0]) ? 1 : 0, _text));
        }
    }

    [Fact]
    public async Task ATinyPolicyLearnsATaskFromRewardAlone()
    {
        using var model = NewModel(seed: 3);
        var grpo = new GrpoSettings { TasksPerStep = 4, GroupSize = 16, IsCorrection = IsCorrection.None, Curriculum = false, MaxGenBatches = 2, MicroBatch = 64, Truncation = TruncationPolicy.Keep };
        var obs = new Quiet();
        var trainer = new GrpoTrainer(model, _tok, grpo, new RolloutSettings { MaxNewTokens = 2 }, new RlTrainSettings { Steps = 40, Lr = 1e-2f, MinLr = 1e-2f, WarmupSteps = 0, EvalEvery = 1000, CheckpointEvery = 0 },
            Path.Combine(_dir, "learn"), 7, obs);
        await trainer.RunAsync(new SayDigit(), null, TestContext.Current.CancellationToken);
        double early = obs.Steps.Take(5).Average(s => s.RewardMean), late = obs.Steps.TakeLast(5).Average(s => s.RewardMean);
        Assert.True(early < 0.2 && late > 0.6, $"reward went from {early:F2} to {late:F2}");
    }
}

public sealed class SamplerPrecisionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("grpo-prec-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Bf16RoundsToNearestEven()
    {
        Assert.Equal(1f, Bf16.Round(1f));
        Assert.Equal(1f, Bf16.Round(1.001f));                       // 1 + 2^-10 is below half an ulp (2^-8)
        Assert.Equal(1.0078125f, Bf16.Round(1.0078125f));           // 1 + 2^-7 is representable
        Assert.Equal(1f, Bf16.Round(BitConverter.UInt32BitsToSingle(0x3F808000))); // a tie rounds to even
        Assert.True(float.IsNaN(Bf16.Round(float.NaN)));
    }

    [Theory]
    [InlineData(SamplerPrecision.Fp32)]
    [InlineData(SamplerPrecision.Bf16)]
    public async Task ABf16SamplerMakesARealMismatchThatTheTrainerMeasures(SamplerPrecision precision)
    {
        var tok = new ByteTokenizer();
        using var model = new GptModel(new CpuBackend(2), new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 48, Vocab: tok.VocabSize));
        model.InitializeWeights(5);
        var p = model.DownloadParameters();
        for (int i = 0; i < p.Length; i++) if (p[i] != 1f) p[i] *= 30f; // large weights: rounding shows
        model.UploadParameters(p);
        var steps = new List<GrpoStepMetrics>();
        var obs = new Recorder(steps);
        var trainer = new GrpoTrainer(model, tok, new GrpoSettings { TasksPerStep = 2, GroupSize = 4, DynamicFiltering = false, MicroBatch = 8 },
            new RolloutSettings { MaxNewTokens = 6, SamplerPrecision = precision }, new RlTrainSettings { Steps = 2, CheckpointEvery = 0 }, Path.Combine(_dir, precision.ToString()), 3, obs);
        await trainer.RunAsync(new AnyText(), null, TestContext.Current.CancellationToken);
        if (precision == SamplerPrecision.Fp32) Assert.All(steps, s => Assert.True(s.Mismatch < 1e-5, $"fp32 mismatch {s.Mismatch}"));
        else Assert.All(steps, s => Assert.True(s.Mismatch > 1e-3, $"bf16 mismatch {s.Mismatch}"));
    }

    private sealed class Recorder(List<GrpoStepMetrics> steps) : IRlObserver
    {
        public void OnStep(GrpoStepMetrics metrics, int totalSteps) => steps.Add(metrics);
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) { }
        public void OnMessage(string message) { }
    }

    private sealed class AnyText : IEpisodeSource
    {
        public IReadOnlyList<RlTask> Tasks { get; } = [new("a", "x"), new("b", "x")];
        public Task<IEpisode> OpenAsync(RlTask task, int sampleIndex, int seed, CancellationToken cancellation) => Task.FromResult<IEpisode>(new Ep(sampleIndex));
        private sealed class Ep(int i) : IEpisode
        {
            public ChatTranscript Opening { get; } = new([Message.User("say something")]);
            public Task<EpisodeReply> StepAsync(AssistantTurn turn, bool final, CancellationToken c) => Task.FromResult(EpisodeReply.End);
            public Task<Grade> GradeAsync(bool truncated, CancellationToken c) => Task.FromResult(Grade.Of(i % 2, ""));
        }
    }
}

public class CurriculumTests
{
    private static readonly List<RlTask> Tasks = [new("a1", "a"), new("a2", "a"), new("b1", "b")];

    [Fact]
    public void UnseenTasksSitAtTheMeanAndSolvedOnesFade()
    {
        var c = new Curriculum(Tasks, new GrpoSettings());
        Assert.Equal(0.5, c.PassRate("a1"));
        Assert.Equal(1.0, c.Weight("a1"), 1e-12);
        c.Record("a1", 8, 8);
        // Pass rate (8+1)/(8+2) = 0.9; weight exp(−0.4² / (2·0.25²)) = exp(−1.28) = 0.27804.
        Assert.Equal(0.9, c.PassRate("a1"), 1e-12);
        Assert.Equal(0.27804, c.Weight("a1"), 1e-5);
    }

    [Fact]
    public void TasksRetireAfterKAllSolvedOrAllFailedGroups()
    {
        var c = new Curriculum(Tasks, new GrpoSettings { RetireAfter = 2 });
        c.Record("a1", 4, 4);
        Assert.False(c.IsRetired("a1"));
        c.Record("a1", 4, 4);
        Assert.True(c.IsRetired("a1"));
        c.Record("a2", 0, 4); c.Record("a2", 1, 4); c.Record("a2", 0, 4);
        Assert.False(c.IsRetired("a2")); // the last two are 1/4 and 0/4: mixed
        c.Record("a2", 0, 4);
        Assert.True(c.IsRetired("a2"));
        Assert.Equal(1, c.ActiveCount);
        Assert.All(Enumerable.Range(0, 20), i => Assert.Equal("b1", Assert.Single(c.Sample(1, 1, i, 0)).Id));
    }

    [Fact]
    public void SamplingIsRepeatableAndFollowsTheBlend()
    {
        var many = Enumerable.Range(0, 50).Select(i => new RlTask($"a{i}", "a")).Concat(Enumerable.Range(0, 50).Select(i => new RlTask($"b{i}", "b"))).ToList();
        var c = new Curriculum(many, new GrpoSettings(), new Dictionary<string, double> { ["a"] = 3, ["b"] = 1 });
        var first = c.Sample(40, seed: 4, step: 1, round: 0).Select(t => t.Id).ToList();
        Assert.Equal(first, c.Sample(40, seed: 4, step: 1, round: 0).Select(t => t.Id));
        Assert.NotEqual(first, c.Sample(40, seed: 4, step: 2, round: 0).Select(t => t.Id));
        Assert.Equal(40, first.Distinct().Count());
        int fromA = first.Count(id => id.StartsWith('a'));
        Assert.InRange(fromA, 24, 36); // about three quarters
    }

    [Fact]
    public void StateRoundTrips()
    {
        var c = new Curriculum(Tasks, new GrpoSettings { RetireAfter = 1 });
        c.Record("a1", 3, 4);
        c.Record("b1", 4, 4);
        var d = new Curriculum(Tasks, new GrpoSettings { RetireAfter = 1 });
        d.Load(c.ToJson());
        Assert.Equal(c.PassRate("a1"), d.PassRate("a1"));
        Assert.True(d.IsRetired("b1"));
    }
}
