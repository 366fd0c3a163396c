using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.TestSupport;
using static Nemotron.Gym.Judges.Tests.GroupJudgingTests;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>The rlhf plugin as the host loads it: the judge reaches it as a host service, and the group limit holds.</summary>
public class HostedRlhfTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(HostedEnvironment Env, TaskRecord Task)> StartAsync(IJudgeService judge, HostLimits limits)
    {
        var (envs, errors) = PluginLoader.LoadAll([RepoPaths.Plugins]);
        Assert.Empty(errors);
        var services = new HostServices(new Dictionary<Type, object> { [typeof(IJudgeService)] = judge });
        var env = await HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == "rlhf"), new Dictionary<string, string> { ["swap"] = "false" },
            limits, services: services, cancellation: Ct);
        Assert.True(env.GradesGroups);
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 3), Ct))[0];
        return (env, task);
    }

    [Fact]
    public async Task TheLoadedPluginJudgesTheGroupWithTheHostsJudge()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(c => ScriptedJudgeReply.Verdict(c.Reply1!.Length < c.Reply2!.Length ? 5 : 1, c.Reply1.Length < c.Reply2.Length ? 1 : 5, 3));
        var (env, task) = await StartAsync(new JudgePool(Settings(server.BaseUrl)), HostLimits.Default);
        var members = new[] { "short", "a much longer reply" }.Select((a, i) => new GroupMember(i, [.. task.Input, Message.Assistant(a)], Grade.Of(0, "provisional"), false)).ToList();
        var grades = await env.GradeGroupAsync(task, members, Ct);
        Assert.True(grades[0].Reward > grades[1].Reward, $"{grades[0].Reason} / {grades[1].Reason}");
        Assert.Equal(5, grades[0].Components["judge_score"]);
        Assert.Contains(server.Calls, c => c.User.Contains(task.Input[0].Content));
    }

    [Fact]
    public async Task AGroupGradingPastTheHostsLimitMasksTheGroupWithTheReason()
    {
        await using var server = await ScriptedJudgeServer.StartAsync(_ => new ScriptedJudgeReply(200, "{}", TimeSpan.FromSeconds(20)));
        var (env, task) = await StartAsync(new JudgePool(Settings(server.BaseUrl)), new HostLimits(TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500)));
        var members = new[] { "one", "two" }.Select((a, i) => new GroupMember(i, [.. task.Input, Message.Assistant(a)], Grade.Of(0, "provisional"), false)).ToList();
        var grades = await env.GradeGroupAsync(task, members, Ct);
        Assert.All(grades, g => Assert.Contains("grade group did not finish within 0.5s", g.MaskReason));
    }
}
