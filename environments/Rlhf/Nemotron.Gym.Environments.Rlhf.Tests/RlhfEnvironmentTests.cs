using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.Tests;

namespace Nemotron.Gym.Environments.Rlhf.Tests;

public class RlhfEnvironmentTests
{
    [Fact]
    public void ThereAreAtLeast200DistinctPromptsInEveryCategory()
    {
        var all = RlhfPrompts.All;
        Assert.True(all.Count >= 200, $"{all.Count} prompts");
        Assert.Equal(all.Count, all.Select(p => p.Text).Distinct().Count());
        foreach (var c in RlhfPrompts.Categories) Assert.True(all.Count(p => p.Category == c) >= 30, $"{c}: {all.Count(p => p.Category == c)}");
        // The principle is optional: some prompts have one, some do not.
        Assert.Contains(all, p => p.Principle == null);
        Assert.Contains(all, p => p.Principle != null);
    }

    [Fact]
    public async Task TrainAndHeldOutAreDisjointCoverEveryPromptAndAreDeterministic()
    {
        var env = await EnvTestKit.Start<RlhfEnvironment>();
        var train = await env.LoadTasksAsync(new TaskQuery("train", 0, 1), default);
        var heldout = await env.LoadTasksAsync(new TaskQuery("heldout", 0, 1), default);
        Assert.Empty(train.Select(t => t.Id).Intersect(heldout.Select(t => t.Id)));
        Assert.Equal(RlhfPrompts.All.Count, train.Count + heldout.Count);
        foreach (var c in RlhfPrompts.Categories) Assert.Contains(heldout, t => t.VerifierMetadata["category"]!.GetValue<string>() == c);
        var a = await env.LoadTasksAsync(new TaskQuery("train", 20, 7), default);
        var b = await env.LoadTasksAsync(new TaskQuery("train", 20, 7), default);
        Assert.Equal(a.Select(t => t.Id), b.Select(t => t.Id));
        Assert.All(train, t => Assert.Empty(env.ValidateTask(t)));
    }

    [Fact]
    public async Task CategoriesAndPrinciplesFollowTheSettings()
    {
        var env = await EnvTestKit.Start<RlhfEnvironment>(new() { ["categories"] = "refuse", ["principles"] = "false" });
        var tasks = await env.LoadTasksAsync(new TaskQuery("train", 0, 1), default);
        Assert.All(tasks, t => Assert.StartsWith("rlhf-refuse-", t.Id));
        Assert.All(tasks, t => Assert.Null(t.VerifierMetadata["principle"]));
        await Assert.ThrowsAsync<ArgumentException>(async () => await EnvTestKit.Start<RlhfEnvironment>(new() { ["categories"] = "poetry" }));
        await Assert.ThrowsAsync<ArgumentException>(async () => await EnvTestKit.Start<RlhfEnvironment>(new() { ["rubric_weights"] = "kindness=1" }));
    }

    [Fact]
    public async Task AnEpisodeAloneIsProvisionalAndAGroupWithoutAJudgeIsMaskedNotScored()
    {
        var env = await EnvTestKit.Start<RlhfEnvironment>();
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 1), default))[0];
        var own = await EnvTestKit.Play(env, task, AssistantTurn.Parse("Tides come from the Moon's pull."));
        Assert.Equal(1, own.Components["provisional"]);
        var members = new[] { 0, 1 }.Select(i => new GroupMember(i, [.. task.Input, Message.Assistant($"answer {i}")], own, false)).ToList();
        var grades = await ((IGroupGradedEnvironment)env).GradeGroupAsync(task, members, default);
        Assert.All(grades, g => Assert.Contains("no judge is configured", g.MaskReason));
    }
}
