using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Training.Tests;

public class PromptGroupingTests
{
    [Fact]
    public void TheSharedLengthStopsOneTokenBeforeTheFirstGeneratedOne()
    {
        Assert.Equal(3, PromptGrouping.SharedLength([0, 0, 0, 0, 1, 1], 6));
        Assert.Equal(0, PromptGrouping.SharedLength([0, 1, 1], 3));
        // Nothing generated: all but the last input token.
        Assert.Equal(3, PromptGrouping.SharedLength([0, 0, 0, 0, 0], 5));
        // A later turn's tokens are not generated, but they come after the first generated one: not shared.
        Assert.Equal(1, PromptGrouping.SharedLength([0, 0, 1, 0, 0, 1], 6));
    }

    [Fact]
    public void APromptsRowsStayTogetherEveryRowOnceAndNoMicroBatchTooLarge()
    {
        var rng = new Random(4);
        var sequences = new List<int[]>();
        var shared = new List<int>();
        var promptOf = new List<int>();
        var prompts = Enumerable.Range(0, 6).Select(p => Enumerable.Range(0, 5 + 3 * p).Select(_ => rng.Next(50)).ToArray()).ToArray();
        // Eight rollouts per prompt, interleaved, of lengths that differ by prompt.
        for (int i = 0; i < 48; i++)
        {
            int p = i % 6;
            sequences.Add(prompts[p].Concat(Enumerable.Range(0, 2 + p * 4 + rng.Next(3)).Select(_ => rng.Next(50))).ToArray());
            shared.Add(prompts[p].Length - 1);
            promptOf.Add(p);
        }
        var groups = PromptGrouping.Group(sequences, shared, 16);
        Assert.Equal(Enumerable.Range(0, 48), groups.SelectMany(g => g).Order());
        Assert.All(groups, g => Assert.True(g.Count <= 16, $"{g.Count} rows"));
        // 16 rows fit two prompts of eight: no prompt is split, so each is computed once.
        foreach (var g in groups) Assert.Equal(0, g.Count % 8);
        Assert.Equal(6, groups.Sum(g => g.Select(i => promptOf[i]).Distinct().Count()));
        // A prompt with more rows than a micro-batch holds is split.
        var small = PromptGrouping.Group(sequences, shared, 5);
        Assert.All(small, g => Assert.True(g.Count <= 5));
        Assert.Equal(48, small.Sum(g => g.Count));
    }
}
