using Nemotron.Gym.Conversation;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Training.Tests.Grpo;

/// <summary>Rollouts an environment could not judge (Grade.Masked) stay out of their group's advantages, with the reason kept.</summary>
public sealed class MaskedGradeTests
{
    private static Rollout Make(RlTask task, int i, Grade grade) => new()
    {
        Task = task, SampleIndex = i, Tokens = [1, 2, 3], Generated = [0, 1, 1], SamplerLogProbs = [0, -1, -1], Messages = [],
        Truncated = false, Turns = 1, Grade = grade,
    };

    [Fact]
    public void Masked_rollouts_leave_the_group_and_keep_their_reason()
    {
        var task = new RlTask("t", "swe");
        var group = new RolloutGroup(task, [Make(task, 0, Grade.Of(1, "resolved")), Make(task, 1, Grade.Masked("the hidden test run timed out")),
            Make(task, 2, Grade.Of(0, "not resolved"))]);
        var unjudged = new List<RolloutGroup>();
        var judged = GrpoTrainer.SplitMasked(group, unjudged);
        Assert.NotNull(judged);
        Assert.Equal([0, 2], judged.Rollouts.Select(r => r.SampleIndex));
        var masked = Assert.Single(Assert.Single(unjudged).Rollouts);
        Assert.Equal(1, masked.SampleIndex);
        Assert.True(masked.Training!.SequenceMasked);
        Assert.Equal(0, masked.Training.Advantage);
        Assert.Contains("timed out", masked.Training.MaskedReason);
        // The advantages are those of a group of the two judged rollouts: the masked 0 pulls nothing down.
        Advantages.Prepare(judged, new GrpoSettings());
        Assert.Equal(-judged.Advantages[1], judged.Advantages[0], 9);
        Assert.True(judged.Advantages[0] > 0);
    }

    [Fact]
    public void A_group_with_fewer_than_two_judged_rollouts_is_left_out_whole()
    {
        var task = new RlTask("t", "swe");
        var group = new RolloutGroup(task, [Make(task, 0, Grade.Of(1, "resolved")), Make(task, 1, Grade.Masked("sandbox failed"))]);
        var unjudged = new List<RolloutGroup>();
        Assert.Null(GrpoTrainer.SplitMasked(group, unjudged));
        Assert.Equal(2, unjudged.Single().Rollouts.Count);
        Assert.All(unjudged.Single().Rollouts, r => Assert.True(r.Training!.SequenceMasked));
        var untouched = new RolloutGroup(task, [Make(task, 0, Grade.Of(1, "")), Make(task, 1, Grade.Of(0, ""))]);
        Assert.Same(untouched, GrpoTrainer.SplitMasked(untouched, unjudged));
    }
}
