using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Tests;

public class SftBatchTests
{
    // Two examples: the first has 2 scored (assistant) targets, the second 4.
    private static readonly RenderedChat A = new([9, 9, 1, 2], [0, 0, 1, 1]);
    private static readonly RenderedChat B = new([9, 3, 4, 5, 6], [0, 1, 1, 1, 1]);

    [Fact]
    public void TokenAggregationWeighsEveryAssistantTokenAlikeAcrossMicroBatches()
    {
        var micro = ChatExamples.MakeMicroBatches([A, B], microSize: 1, padToken: 0, LossAggregation.Token);
        Assert.Equal(2, micro.Count);
        // 6 scored tokens in the whole step: each weighs 1/6, wherever it sits.
        Assert.Equal(new float[] { 0, 1f / 6, 1f / 6 }, micro[0].Weights);
        Assert.Equal(new float[] { 1f / 6, 1f / 6, 1f / 6, 1f / 6 }, micro[1].Weights);
        Assert.Equal(1.0, micro.Sum(m => m.Weights.Sum()), 1e-6);
    }

    [Fact]
    public void SampleAggregationAveragesWithinEachSampleFirst()
    {
        var micro = ChatExamples.MakeMicroBatches([A, B], microSize: 2, padToken: 0, LossAggregation.Sample);
        var w = Assert.Single(micro).Weights;
        // Rows padded to 4 positions: sample A's 2 tokens weigh 1/(2·2), sample B's 4 tokens 1/(4·2).
        Assert.Equal(new float[] { 0, 0.25f, 0.25f, 0, 0.125f, 0.125f, 0.125f, 0.125f }, w);
    }

    [Fact]
    public void TargetsFollowTheMaskAndPaddingIsNeverScored()
    {
        var micro = ChatExamples.MakeMicroBatches([A, B], microSize: 2, padToken: 0, LossAggregation.Token);
        var batch = micro[0].Batch;
        Assert.Equal(new[] { 9, 9, 1, 0, 9, 3, 4, 5 }, batch.Tokens);
        Assert.Equal(new[] { -1, 1, 2, -1, 3, 4, 5, 6 }, batch.Targets);
    }

    private static List<RenderedChat> MixedLengths(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<RenderedChat>();
        for (int i = 0; i < count; i++)
        {
            // Mostly short conversations and a few long ones, as the demo's SFT data (arithmetic beside long answers).
            int len = rng.Next(10) < 8 ? rng.Next(6, 20) : rng.Next(40, 60);
            var tokens = Enumerable.Range(0, len).Select(_ => rng.Next(1, 50)).ToArray();
            var mask = Enumerable.Range(0, len).Select(t => (byte)(t >= len / 2 ? 1 : 0)).ToArray();
            list.Add(new RenderedChat(tokens, mask));
        }
        return list;
    }

    [Theory]
    [InlineData(LossAggregation.Token)]
    [InlineData(LossAggregation.Sample)]
    public void LengthGroupedMicroBatchesGiveTheSameLossAndGradientWithLessPadding(LossAggregation aggregation)
    {
        var examples = MixedLengths(32, 5);
        var plain = ChatExamples.MakeMicroBatches(examples, 32, 0, aggregation);
        var grouped = ChatExamples.MakeLengthGroupedMicroBatches(examples, 32, 0, aggregation);
        Assert.True(grouped.Count > 1);
        Assert.True(grouped.Sum(m => (long)m.Batch.Count) < 0.7 * plain.Sum(m => (long)m.Batch.Count));
        Assert.All(grouped, m => Assert.True(m.Batch.Batch <= 32));
        Assert.Equal(plain.Sum(m => m.ScoredTokens), grouped.Sum(m => m.ScoredTokens));

        using var backend = new CpuBackend(2);
        using var model = new GptModel(backend, new GptConfig(2, 32, 2, 64, 50));
        model.InitializeWeights(3);
        (double Loss, float[] Gradient) Run(List<MicroBatch> micro)
        {
            model.ZeroGradients();
            double loss = 0;
            foreach (var m in micro)
            {
                var lp = model.Forward(m.Batch).LogProbs;
                for (int i = 0; i < lp.Length; i++) loss -= m.Weights[i] * (double)lp[i];
                model.Backward(m.Weights);
            }
            var gradient = new float[model.Gradients.Length];
            backend.Download(model.Gradients, gradient);
            return (loss, gradient);
        }
        var (lossPlain, gradPlain) = Run(plain);
        var (lossGrouped, gradGrouped) = Run(grouped);
        Assert.Equal(lossPlain, lossGrouped, 1e-5);
        double scale = gradPlain.Max(g => Math.Abs(g));
        for (int i = 0; i < gradPlain.Length; i++) Assert.True(Math.Abs(gradPlain[i] - gradGrouped[i]) <= 1e-4 * scale, $"gradient {i}: {gradPlain[i]} vs {gradGrouped[i]}");
    }

    [Fact]
    public void LengthGroupingKeepsEveryExampleOnceAndRespectsTheMicroBatchSize()
    {
        var examples = MixedLengths(50, 8);
        var grouped = ChatExamples.MakeLengthGroupedMicroBatches(examples, 8, 0, LossAggregation.Token);
        Assert.All(grouped, m => Assert.True(m.Batch.Batch <= 8));
        Assert.Equal(50, grouped.Sum(m => m.Batch.Batch));
        // Every example exactly once: a row is its sequence's inputs (all but the last token), then padding (0).
        var before = examples.Select(e => string.Join(",", e.Tokens[..^1])).Order().ToList();
        var after = grouped.SelectMany(m => Enumerable.Range(0, m.Batch.Batch).Select(r =>
            string.Join(",", m.Batch.Tokens.Skip(r * m.Batch.SeqLen).Take(m.Batch.SeqLen).Reverse().SkipWhile(t => t == 0).Reverse()))).Order().ToList();
        Assert.Equal(before, after);
    }
}
