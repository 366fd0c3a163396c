using Nemotron.Gym.Rewards.Judging;

namespace Nemotron.Gym.Judges.Tests;

public class VerdictParserTests
{
    [Fact]
    public void TheLastValidObjectIsTheVerdictEvenAfterAQuotedExampleAndADraft()
    {
        string text = """
            The format is {"score_1": 1-5, ...}. A first thought: {"score_1": 2, "score_2": 4, "ranking": 5}
            On reflection reply 1 is better.
            {"score_1": 4, "score_2": 3, "ranking": 3}
            """;
        var v = VerdictParser.Pairwise(text);
        Assert.Null(v.Problem);
        Assert.Equal(new PairwiseVerdict(4, 3, 3), v.Value);
    }

    [Fact]
    public void AnInvalidLastObjectFallsBackToTheLastValidOneBeforeIt()
    {
        var v = VerdictParser.Pairwise("""{"score_1": 5, "score_2": 1, "ranking": 1} then {"score_1": 9, "score_2": 1, "ranking": 1}""");
        Assert.Equal(new PairwiseVerdict(5, 1, 1), v.Value);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("I cannot decide.", "no JSON object")]
    [InlineData("""{"score_1": 7, "score_2": 1, "ranking": 1}""", "'score_1' is 7, outside 1-5")]
    [InlineData("""{"score_1": "5", "score_2": 1, "ranking": 1}""", "'score_1' is not a number")]
    [InlineData("""{"score_1": 5, "score_2": 1}""", "'ranking' is missing")]
    [InlineData("""{"score_1": 5, "score_2": 1, "ranking": 2.5}""", "whole number")]
    [InlineData("""{"score_1": 5, "score_2": 1, "ranking": 1""", "no JSON object")]
    public void MalformedVerdictsGiveAProblemNeverAScore(string text, string problem)
    {
        var v = VerdictParser.Pairwise(text);
        Assert.Null(v.Value);
        Assert.Contains(problem, v.Problem);
    }

    [Fact]
    public void AHostileAnswerCostsBoundedWork()
    {
        string text = string.Concat(Enumerable.Repeat("{\"a\": [", 200_000));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var v = VerdictParser.Pairwise(text);
        Assert.Null(v.Value);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public void RubricVerdictsNeedEveryAttributeInRange()
    {
        var ok = VerdictParser.Rubric("""ok {"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 2}""", JudgePrompts.RubricAttributes);
        Assert.Equal(3, ok.Value!["helpfulness"]);
        var bad = VerdictParser.Rubric("""{"helpfulness": 3, "correctness": 5, "coherence": 4, "complexity": 1, "verbosity": 2}""", JudgePrompts.RubricAttributes);
        Assert.Null(bad.Value);
        Assert.Contains("'correctness' is 5, outside 0-4", bad.Problem);
    }
}
