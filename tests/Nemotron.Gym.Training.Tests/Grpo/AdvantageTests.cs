using Nemotron.Gym.Conversation;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Training.Tests;

public class AdvantageTests
{
    private static GrpoSettings S(bool loo = false, bool std = true) => new() { LeaveOneOutBaseline = loo, NormalizeStd = std };

    [Fact]
    public void GroupMeanAndBesselStd()
    {
        // Rewards 1,0,0,1: mean 0.5; Bessel std = sqrt((4 · 0.25)/3) = 0.57735; A = ±0.5/0.57735 = ±0.86603.
        var a = Advantages.Compute([1, 0, 0, 1], S());
        Assert.Equal(0.866025, a[0], 1e-5);
        Assert.Equal(-0.866025, a[1], 1e-5);
        Assert.Equal(0, a.Sum(), 1e-9);
    }

    [Fact]
    public void LeaveOneOutBaseline()
    {
        // Sample 0 (R=1): the others 0,0,1 have mean 1/3 and Bessel std sqrt((1/9+1/9+4/9)/2) = 0.57735,
        // so A0 = (1 − 1/3)/0.57735 = 1.15470. Sample 1 (R=0): others 1,0,1: mean 2/3, same std: A1 = −1.15470.
        var a = Advantages.Compute([1, 0, 0, 1], S(loo: true));
        Assert.Equal(1.154700, a[0], 1e-5);
        Assert.Equal(-1.154700, a[1], 1e-5);
    }

    [Fact]
    public void DrGrpoDoesNotDivideByTheStd()
    {
        var a = Advantages.Compute([1, 0, 0, 0], S(std: false));
        Assert.Equal([0.75, -0.25, -0.25, -0.25], a);
    }

    [Fact]
    public void ZeroVarianceGroupsHaveZeroAdvantages()
    {
        Assert.All(Advantages.Compute([1, 1, 1], S()), x => Assert.Equal(0, x));
        var g = new RolloutGroup(new RlTask("t", "e"), [Make(1, 5), Make(1, 7)]);
        Advantages.Prepare(g, new GrpoSettings());
        Assert.True(g.ZeroVariance);
    }

    internal static Rollout Make(double reward, int generated, bool truncated = false) => new()
    {
        Task = new RlTask("t", "e"), SampleIndex = 0,
        Tokens = new int[generated + 2], Generated = [0, 0, .. Enumerable.Repeat((byte)1, generated)], SamplerLogProbs = new float[generated + 2],
        Messages = [], Truncated = truncated, Turns = 1, Grade = Grade.Of(reward, ""),
    };

    [Fact]
    public void LengthControlFavoursShortWinnersAndKeepsTheGroupMean()
    {
        // Rewards 1,1,0,1 with lengths 10,20,30,40. Over the group c = 1 − (len − 10)/30 = 1, 2/3, 1/3, 0.
        // Winners (reward 1) are 0, 1, 3 with c 1, 2/3, 0 (mean 5/9); λ = 0.1 adds λ(c − 5/9):
        // +0.044444, +0.011111, −0.055556.
        var g = new RolloutGroup(new RlTask("t", "e"), [Make(1, 10), Make(1, 20), Make(0, 30), Make(1, 40)]);
        Advantages.ShapeRewards(g, new GrpoSettings { LengthPenalty = 0.1f });
        var r = g.Rollouts.Select(x => x.Reward).ToArray();
        Assert.Equal(1.044444, r[0], 1e-5);
        Assert.Equal(1.011111, r[1], 1e-5);
        Assert.Equal(0, r[2]);
        Assert.Equal(0.944444, r[3], 1e-5);
        Assert.Equal(0.75, r.Average(), 1e-9);
    }

    [Fact]
    public void TruncatedResponsesLoseTheirRewardUnderZeroReward()
    {
        var g = new RolloutGroup(new RlTask("t", "e"), [Make(1, 10, truncated: true), Make(1, 12)]);
        Advantages.ShapeRewards(g, new GrpoSettings { Truncation = TruncationPolicy.ZeroReward });
        Assert.Equal([0.0, 1.0], g.Rollouts.Select(x => x.Reward));
        Advantages.ShapeRewards(g, new GrpoSettings { Truncation = TruncationPolicy.Keep });
        Assert.Equal([1.0, 1.0], g.Rollouts.Select(x => x.Reward));
    }
}
