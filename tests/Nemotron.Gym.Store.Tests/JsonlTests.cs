using Nemotron.Gym.Conversation;
using System.Text.Json.Nodes;
using static Nemotron.Gym.TestSupport.TestRollouts;

namespace Nemotron.Gym.Store.Tests;

public sealed class JsonlTests
{
    private static async IAsyncEnumerable<T> Async<T>(IEnumerable<T> items)
    {
        foreach (var i in items)
        {
            await Task.Yield();
            yield return i;
        }
    }

    private static async Task<string> ExportAsync(params StoredRollout[] rollouts)
    {
        var text = new StringWriter();
        await RolloutJsonl.ExportAsync(Async(rollouts), text);
        return text.ToString();
    }

    private static Task<List<StoredRollout>> ImportAsync(string text, string file = "x.jsonl") =>
        RolloutJsonl.ImportAsync(new StringReader(text), file).ToListAsync().AsTask();

    [Fact]
    public async Task ExportThenImportGivesTheSameRollouts()
    {
        StoredRollout[] rollouts =
        [
            Make("r", 1, "math/a", 0),
            Make("r", 2, "tool_use/b", 3, reward: 0.25) with { SamplerLogProbs = [0, float.NegativeInfinity, float.NaN, -1e-45f, 1.17549435E-38f], ShapedReward = double.NegativeInfinity },
            Make("r", 2, "x", 0) with { Tokens = [], Generated = [], SamplerLogProbs = [], Messages = [], Components = new Dictionary<string, double>(), Evidence = new Dictionary<string, string>() },
        ];
        string text = await ExportAsync(rollouts);
        Assert.Equal(3, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        var back = await ImportAsync(text);
        Assert.Equal(rollouts.Length, back.Count);
        for (int i = 0; i < rollouts.Length; i++) AssertSame(rollouts[i], back[i]);
    }

    [Fact]
    public async Task ANaNRewardIsRefusedByLineAndFieldAndInfinitiesAreKept()
    {
        var line = JsonNode.Parse((await ExportAsync(Make("r", 1, "math/a", 0))).TrimEnd())!.AsObject();
        line["reward"] = "NaN";
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ImportAsync("\n" + line.ToJsonString(), "in.jsonl"));
        Assert.StartsWith("in.jsonl:2: field 'reward': NaN", e.Message);

        line["reward"] = 1;
        line["nemotron_gym"]!["shaped_reward"] = "NaN";
        e = await Assert.ThrowsAsync<InvalidDataException>(() => ImportAsync(line.ToJsonString(), "in.jsonl"));
        Assert.StartsWith("in.jsonl:1: field 'nemotron_gym.shaped_reward': NaN", e.Message);

        line["reward"] = "-Infinity";
        line["nemotron_gym"]!["shaped_reward"] = "Infinity";
        var r = Assert.Single(await ImportAsync(line.ToJsonString()));
        Assert.Equal((double.NegativeInfinity, double.PositiveInfinity), (r.Reward, r.ShapedReward));
    }

    [Fact]
    public async Task ANemoGymReaderSeesPromptResponseItemsAndReward()
    {
        var line = JsonNode.Parse((await ExportAsync(Make("r", 1, "math/a", 0))).TrimEnd())!;
        var input = line["responses_create_params"]!["input"]!.AsArray();
        Assert.Equal(["system", "user"], input.Select(m => m!["role"]!.GetValue<string>()));
        Assert.Equal("What is 2+2?\nAnswer \"exactly\" — ünïcode ✓", input[1]!["content"]!.GetValue<string>());
        Assert.Equal(1.0, line["reward"]!.GetValue<double>());
        var output = line["response"]!["output"]!.AsArray();
        Assert.Equal(["reasoning", "message", "function_call", "function_call_output", "message"], output.Select(o => o!["type"]!.GetValue<string>()));
        Assert.Equal("2+2=4", output[0]!["summary"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("4", output[1]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal(("c1", "calc", """{"x":1}"""), (output[2]!["call_id"]!.GetValue<string>(), output[2]!["name"]!.GetValue<string>(), output[2]!["arguments"]!.GetValue<string>()));
        Assert.Equal(("c1", "4"), (output[3]!["call_id"]!.GetValue<string>(), output[3]!["output"]!.GetValue<string>()));
        Assert.Equal("math/a", line["nemotron_gym"]!["task_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task WithoutOurExtrasTheItemsStillGiveBackTheConversation()
    {
        var original = Make("r", 1, "math/a", 0);
        var line = JsonNode.Parse((await ExportAsync(original)).TrimEnd())!.AsObject();
        line.Remove("nemotron_gym");
        var r = Assert.Single(await ImportAsync(line.ToJsonString()));
        Assert.Equal(original.Messages, r.Messages);
        Assert.Equal(2, r.Turns);
    }

    [Fact]
    public async Task OpenAiShapedToolCallsExportAsFunctionCalls()
    {
        var r = Make("r", 1, "t", 0) with
        {
            Messages = [Message.User("go"), Message.Assistant("", null, [new ToolCall("k9", "ls", new JsonObject { ["dir"] = "/" })]), new(Role.Tool, "a b", ToolCallId: "k9")],
        };
        var output = JsonNode.Parse((await ExportAsync(r)).TrimEnd())!["response"]!["output"]!.AsArray();
        Assert.Equal(["function_call", "function_call_output"], output.Select(o => o!["type"]!.GetValue<string>()));
        Assert.Equal(("k9", "ls", """{"dir":"/"}"""), (output[0]!["call_id"]!.GetValue<string>(), output[0]!["name"]!.GetValue<string>(), output[0]!["arguments"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("""{"reward": "high"}""", "rollouts.jsonl:3: field 'reward': expected a number")]
    [InlineData("""{"response": {}}""", "rollouts.jsonl:3: field 'reward' is required")]
    [InlineData("""{"reward": 1, "nemotron_gym": {"tokens": [1, 2.5], "generated": [0, 1], "sampler_logprobs": [0, 0]}}""", "rollouts.jsonl:3: field 'nemotron_gym.tokens[1]': expected an integer")]
    [InlineData("""{"reward": 1, "nemotron_gym": {"step": "one"}}""", "rollouts.jsonl:3: field 'nemotron_gym.step': expected an integer")]
    [InlineData("""{"reward": 1, "response": {"output": [{"type": "message", "content": "hi"}]}}""", "rollouts.jsonl:3: field 'response.output[0].role' is required")]
    [InlineData("""{"reward": 1, "nemotron_gym": {"created_at": "yesterday"}}""", "rollouts.jsonl:3: field 'nemotron_gym.created_at': expected an ISO 8601 time")]
    [InlineData("[1, 2]", "rollouts.jsonl:3: expected a JSON object")]
    public async Task ABadLineNamesFileLineAndField(string badLine, string message)
    {
        string text = "{\"reward\": 1}\n\n" + badLine + "\n{\"reward\": 0}\n";
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ImportAsync(text, "rollouts.jsonl"));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public async Task TextThatIsNotJsonNamesItsLine()
    {
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ImportAsync("{\"reward\": 1}\n{oops", "r.jsonl"));
        Assert.StartsWith("r.jsonl:2: not valid JSON", e.Message);
    }

    [Fact]
    public async Task AHandWrittenNemoGymLineImportsWithSensibleDefaults()
    {
        // As NeMo-Gym's rollout collection writes them: Responses-API request and response, the verifier's fields beside the reward.
        string lines = """
            {"responses_create_params": {"input": [{"role": "system", "content": "Answer in \\boxed{}.", "type": "message"}, {"role": "user", "content": [{"type": "input_text", "text": "2+2?"}], "type": "message"}], "temperature": 1.0}, "response": {"id": "resp_1", "created_at": 1789150155.5, "incomplete_details": null, "output": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": "easy"}]}, {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": "\\boxed{4}", "annotations": []}]}]}, "reward": 1.0, "extracted_answer": "4", "is_correct": 1.0, "_ng_task_index": 7, "_ng_rollout_index": 2, "agent_ref": {"name": "math_simple_agent"}}
            {"responses_create_params": {"input": "Say hi"}, "response": {"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}], "incomplete_details": {"reason": "max_output_tokens"}}, "reward": 0}
            {"responses_create_params": {"input": "Say hi"}, "response": {"output": []}, "reward": 0.5, "id": "hi-task"}
            {"responses_create_params": {"input": "Say hi"}, "response": {"output": []}, "reward": 0.5, "id": "hi-task"}
            """;
        var all = await ImportAsync(lines, "/data/nemo_rollouts.jsonl");
        Assert.Equal(4, all.Count);

        var r = all[0];
        Assert.Equal([Message.System("Answer in \\boxed{}."), Message.User("2+2?"), Message.Assistant("\\boxed{4}", "easy")], r.Messages);
        Assert.Equal(("nemo_rollouts", 0, "7", 2, "math_simple_agent"), (r.RunId, r.Step, r.TaskId, r.SampleIndex, r.Environment));
        Assert.Equal((1.0, 1.0, 1, false, ""), (r.Reward, r.ShapedReward, r.Turns, r.Truncated, r.Reason));
        Assert.Equal(new Dictionary<string, string> { ["extracted_answer"] = "4", ["is_correct"] = "1.0" }, r.Evidence);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1789150155500), r.CreatedAt);
        Assert.Empty(r.Tokens);
        Assert.Empty(r.Components);

        Assert.Equal(("line-2", 0, "imported", true), (all[1].TaskId, all[1].SampleIndex, all[1].Environment, all[1].Truncated));
        Assert.Equal([Message.User("Say hi"), Message.Assistant("hi")], all[1].Messages);
        // Lines of one task without rollout indexes become its samples 0, 1, ... so none is dropped as a duplicate.
        Assert.Equal([("hi-task", 0), ("hi-task", 1)], all.Skip(2).Select(x => (x.TaskId, x.SampleIndex)));
    }
}
