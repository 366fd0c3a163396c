using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Tests;

public class LengthGroupingTests
{
    [Fact]
    public void EveryIndexOnceSortedAndWithinTheRowLimit()
    {
        var rng = new Random(4);
        var lengths = Enumerable.Range(0, 100).Select(_ => rng.Next(1, 190)).ToList();
        var groups = LengthGrouping.Group(lengths, 16);
        Assert.All(groups, g => Assert.InRange(g.Count, 1, 16));
        Assert.Equal(Enumerable.Range(0, 100), groups.SelectMany(g => g).Order());
        var flat = groups.SelectMany(g => g).Select(i => lengths[i]).ToList();
        Assert.Equal(flat.Order(), flat);
    }

    [Fact]
    public void EqualLengthsStayInOneMicroBatchAndMixedOnesAreCutWhereItPays()
    {
        Assert.Single(LengthGrouping.Group(Enumerable.Repeat(50, 32).ToList(), 32));
        // 28 short rows and 4 long ones: padding all to 180 costs 32·180 = 5,760 positions; cut, 28·12 + 4·180 + one charge.
        var mixed = Enumerable.Repeat(12, 28).Concat(Enumerable.Repeat(180, 4)).ToList();
        var groups = LengthGrouping.Group(mixed, 32);
        Assert.Equal(2, groups.Count);
        Assert.Equal(28, groups[0].Count);
        // Cutting off a few slightly shorter rows is not worth a micro-batch's fixed cost.
        Assert.Single(LengthGrouping.Group(Enumerable.Repeat(40, 30).Concat([44, 45]).ToList(), 32));
    }

    [Fact]
    public void ARowLimitBelowOneIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => LengthGrouping.Group([1, 2], 0));
}
