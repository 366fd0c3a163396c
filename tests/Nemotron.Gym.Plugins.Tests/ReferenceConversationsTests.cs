using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;

namespace Nemotron.Gym.Plugins.Tests;

public sealed class ReferenceConversationsTests
{
    private static async Task<HostedEnvironment> StartAsync(string name, Dictionary<string, string>? settings = null)
    {
        var (envs, errors) = PluginLoader.LoadAll([Nemotron.Gym.TestSupport.RepoPaths.Plugins]);
        Assert.Empty(errors);
        return await HostedEnvironment.StartAsync(envs.Single(e => e.Descriptor.Name == name), settings, HostLimits.Default);
    }

    [Fact]
    public async Task MultiTurnReferencesCarryTheEnvironmentsRealToolResults()
    {
        var env = await StartAsync("tool_use", new() { ["difficulty"] = "1" });
        var result = await ReferenceConversations.BuildAsync(env, new TaskQuery("train", 20, 1));
        Assert.Equal((0, 0, 0), (result.WithoutReference, result.NotFullReward, result.Failed));
        Assert.Equal(20, result.Conversations.Count);
        var withTools = result.Conversations.Where(c => c.Messages.Any(m => m.Role == Role.Tool)).ToList();
        Assert.NotEmpty(withTools);
        foreach (var c in withTools)
        {
            Assert.NotNull(c.Tools);
            Assert.Contains(c.Messages.TakeWhile(m => m.Role != Role.Assistant), m => m.Role == Role.User);  // the opening
            Assert.Equal(Role.Assistant, c.Messages[^1].Role);  // nothing after the final answer
            // Every tool result follows an assistant turn that called a tool.
            for (int i = 1; i < c.Messages.Count; i++)
                if (c.Messages[i].Role == Role.Tool)
                    Assert.Contains(c.Messages[i - 1].Role, new[] { Role.Assistant, Role.Tool });
        }
    }

    [Fact]
    public async Task AReferenceTheEnvironmentDoesNotFullyRewardIsLeftOut()
    {
        var env = await StartAsync("math", new() { ["difficulty"] = "1" });
        var tasks = (await env.LoadTasksAsync(new TaskQuery("train", 4, 1))).ToList();
        tasks[1] = new TaskRecord
        {
            Id = tasks[1].Id, Input = tasks[1].Input, VerifierMetadata = tasks[1].VerifierMetadata,
            Reference = [AssistantTurn.FromContent("I am not sure, maybe \\boxed{-98765}.")],
        };
        tasks[2] = new TaskRecord { Id = tasks[2].Id, Input = tasks[2].Input, VerifierMetadata = tasks[2].VerifierMetadata };
        var result = await ReferenceConversations.BuildAsync(env, tasks, seed: 1);
        Assert.Equal((2, 1, 1, 0), (result.Conversations.Count, result.WithoutReference, result.NotFullReward, result.Failed));
        Assert.DoesNotContain(result.Conversations, c => c.Messages[^1].Content.Contains("-98765"));
    }
}
