using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>Group grades are checked where they leave the plugin host, as episode grades are: a non-finite or null one masks its member.</summary>
public class GroupGradeCheckTests
{
    /// <summary>A group grader that returns, per member, the grade its answer names.</summary>
    private sealed class BadGroupGrader : EnvironmentBase, IGroupGradedEnvironment
    {
        public override EnvironmentDescriptor Descriptor { get; } = new("bad-group", "1.0.0", "Returns broken group grades (tests only).", [], ["train"]);
        public override IReadOnlyList<string> ValidateTask(TaskRecord task) => [];
        public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
            throw new NotSupportedException("only group grading is exercised");

        public ValueTask<IReadOnlyList<Grade>> GradeGroupAsync(TaskRecord task, IReadOnlyList<GroupMember> members, CancellationToken cancellation) =>
            ValueTask.FromResult<IReadOnlyList<Grade>>(members.Select(m => m.Conversation[^1].Content switch
            {
                "nan" => Grade.Of(double.NaN, "nan"),
                "inf" => new Grade(0.5, new Dictionary<string, double> { ["judge_score"] = double.PositiveInfinity }, "inf", new Dictionary<string, string>()),
                "null" => null!,
                _ => Grade.Of(0.75, "fine"),
            }).ToList());
    }

    [Fact]
    public async Task NonFiniteOrNullGroupGradesMaskTheirMembersAndLeaveTheOthers()
    {
        var plugin = new PluginEnvironment(new BadGroupGrader().Descriptor, Path.GetTempPath(), "in-test", null) { Factory = () => new BadGroupGrader() };
        var env = await HostedEnvironment.StartAsync(plugin, null, HostLimits.Default, cancellation: TestContext.Current.CancellationToken);
        var task = new TaskRecord { Id = "t1", Input = [Message.User("q")] };
        var members = new[] { "fine", "nan", "inf", "null" }.Select((a, i) => new GroupMember(i, [Message.User("q"), Message.Assistant(a)], Grade.Of(0, "provisional"), false)).ToList();
        var grades = await env.GradeGroupAsync(task, members, TestContext.Current.CancellationToken);
        Assert.Equal(0.75, grades[0].Reward);
        Assert.False(grades[0].Masked);
        Assert.Contains("member 1 the reward NaN", grades[1].MaskReason);
        Assert.Contains("member 2 the component judge_score = ", grades[2].MaskReason);
        Assert.Contains("not a finite number", grades[2].MaskReason);
        Assert.Contains("member 3 no grade (null)", grades[3].MaskReason);
        Assert.All(grades.Skip(1), g => Assert.Equal(0, g.Reward));
    }
}
