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
}
