using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.ToolUse;

namespace Nemotron.Gym.Environments.Tests;

public class ToolUseTests
{
    private static AssistantTurn Call(string name, string args) => new("", "", null, [new ToolCall("c1", name, JsonNode.Parse(args)!.AsObject())], []);

    [Fact]
    public async Task MalformedAndFailingCallsComeBackAsErrorsAndTheEpisodeGoesOn()
    {
        var env = await EnvTestKit.Start<ToolUseEnvironment>(new() { ["difficulty"] = "1" });
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 50, 1), default)).First(t => t.Input[^1].Content.StartsWith("Use the calculator"));
        await using var ep = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
        var r1 = await ep.StepAsync(new AssistantTurn("<tool_call>{oops</tool_call>", "", null, [], ["tool call 0: not valid JSON"]), default);
        Assert.False(r1.Done);
        Assert.StartsWith("error:", r1.Reply[0].Content);
        var r2 = await ep.StepAsync(Call("teleport", "{}"), default);
        Assert.Contains("unknown tool", r2.Reply[0].Content);
        var r3 = await ep.StepAsync(Call("calculator", "{\"expr\": \"1+1\"}"), default);
        Assert.Contains("needs a string argument 'expression'", r3.Reply[0].Content);
        var r4 = await ep.StepAsync(Call("calculator", "{\"expression\": \"1/0\"}"), default);
        Assert.Contains("cannot evaluate", r4.Reply[0].Content);
        // The right call then the right answer still earns full reward; the errors are counted.
        await ep.StepAsync(task.Reference[0], default);
        var end = await ep.StepAsync(task.Reference[1], default);
        Assert.True(end.Done);
        var g = await ep.GradeAsync(default);
        Assert.Equal(1, g.Reward);
        Assert.Equal(4, g.Components["tool_errors"]);
    }

    [Fact]
    public async Task StateAndAnswerAreBothChecked()
    {
        var env = await EnvTestKit.Start<ToolUseEnvironment>(new() { ["difficulty"] = "2" });
        var tasks = await env.LoadTasksAsync(new TaskQuery("train", 200, 2), default);
        var store = tasks.First(t => t.Input[^1].Content.StartsWith("Compute") && t.Input[^1].Content.Contains("store"));
        var key = store.VerifierMetadata["final_state"]!["store"]!.AsObject().First().Key;
        // Right tools, wrong value stored: the state check fails, tools pass.
        var g = await EnvTestKit.Play(env, store, store.Reference[0], Call("kv_set", $"{{\"key\": \"{key}\", \"value\": \"-1\"}}"), AssistantTurn.FromContent("done"));
        Assert.Equal(0.5, g.Reward);
        Assert.Equal(0, g.Components["state_correct"]);
        // Numbers as arguments are accepted (models often drop the quotes).
        var value = store.VerifierMetadata["final_state"]!["store"]![key]!.GetValue<string>();
        g = await EnvTestKit.Play(env, store, store.Reference[0], Call("kv_set", $"{{\"key\": \"{key}\", \"value\": {value}}}"), AssistantTurn.FromContent("done"));
        Assert.Equal(1, g.Reward);
    }

    [Fact]
    public async Task AnEpisodeCannotRunForever()
    {
        var env = await EnvTestKit.Start<ToolUseEnvironment>();
        var task = (await env.LoadTasksAsync(new TaskQuery("train", 1, 1), default))[0];
        await using var ep = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
        int turns = 0;
        while (!(await ep.StepAsync(Call("kv_get", "{\"key\": \"nothing\"}"), default)).Done) turns++;
        Assert.Equal(ToolUseEnvironment.MaxSteps - 1, turns);
        Assert.True((await ep.GradeAsync(default)).Reward < 1);
    }

    [Fact]
    public void AKeyOrValueTooLongToStoreIsRefusedToTheModelInsteadOfCut()
    {
        var state = new ToolState();
        string longKey = new('k', ToolState.MaxLength + 1);
        var (result, error) = state.Execute(new ToolCall("c1", "kv_set", new JsonObject { ["key"] = longKey, ["value"] = "v" }));
        Assert.True(error);
        Assert.Contains($"the key is {ToolState.MaxLength + 1} characters long; at most {ToolState.MaxLength}", result);
        Assert.Empty(state.Store);
        (result, error) = state.Execute(new ToolCall("c2", "kv_set", new JsonObject { ["key"] = "k", ["value"] = new string('v', 500) }));
        Assert.True(error);
        Assert.Contains("the value is 500 characters long", result);
        (result, error) = state.Execute(new ToolCall("c3", "calendar_add", new JsonObject { ["date"] = "2026-03-14", ["title"] = new string('t', 201) }));
        Assert.True(error);
        Assert.Contains("the title is 201 characters long", result);

        // At the limit it is stored whole, and read back under the same key.
        string key = new('k', ToolState.MaxLength);
        Assert.False(state.Execute(new ToolCall("c4", "kv_set", new JsonObject { ["key"] = key, ["value"] = "x" })).Error);
        Assert.Equal(("x", false), state.Execute(new ToolCall("c5", "kv_get", new JsonObject { ["key"] = key })));
    }

    [Theory]
    [InlineData("The result is 1517.", "1517", true)]
    [InlineData("It is 1,517", "1517", true)]
    [InlineData("The value is otter.", "otter", true)]
    [InlineData("otters everywhere", "otter", false)]
    [InlineData("151", "1517", false)]
    public void AnswerMatching(string answer, string expected, bool ok) => Assert.Equal(ok, ToolUseEnvironment.AnswerMatches(answer, expected));
}
