using System.Text.Json.Nodes;
using Nemotron.Gym.Store;

namespace Nemotron.Gym.Store.Tests;

public sealed class JsonlTests
{
    private static async IAsyncEnumerable<T> Async<T>(IEnumerable<T> items) { foreach (var i in items) { await Task.Yield(); yield return i; } }

    [Fact]
    public async Task ExportThenImportGivesTheSameRollouts()
    {
        var rollouts = new[] { SqliteStoreTests.Rollout("r", 1, "math/a", 0), SqliteStoreTests.Rollout("r", 2, "tool_use/b", 3, reward: 0.25) };
        var text = new StringWriter();
        await RolloutJsonl.ExportAsync(Async(rollouts), text);
        var line = JsonNode.Parse(text.ToString().Split('\n')[0])!;
        // What a NeMo-Gym reader looks at.
        Assert.Equal("What is 2+2?", line["responses_create_params"]!["input"]![0]!["content"]!.GetValue<string>());
        Assert.Equal(1.0, line["reward"]!.GetValue<double>());
        var types = line["response"]!["output"]!.AsArray().Select(o => o!["type"]!.GetValue<string>()).ToList();
        Assert.Equal(["reasoning", "message", "function_call", "function_call_output", "message"], types);

        var back = await RolloutJsonl.ImportAsync(new StringReader(text.ToString()), "x.jsonl").ToListAsync();
        Assert.Equal(2, back.Count);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(rollouts[i].Tokens, back[i].Tokens);
            Assert.Equal(rollouts[i].SamplerLogProbs.Select(BitConverter.SingleToInt32Bits), back[i].SamplerLogProbs.Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(rollouts[i].Messages, back[i].Messages);
            Assert.Equal((rollouts[i].TaskId, rollouts[i].Step, rollouts[i].SampleIndex, rollouts[i].Reward, rollouts[i].CreatedAt), (back[i].TaskId, back[i].Step, back[i].SampleIndex, back[i].Reward, back[i].CreatedAt));
        }
    }

    [Fact]
    public async Task ABadLineNamesFileLineAndField()
    {
        var e = await Assert.ThrowsAsync<InvalidDataException>(async () => await RolloutJsonl.ImportAsync(new StringReader("{\"reward\": 1}\n\n{\"reward\": \"high\"}\n"), "rollouts.jsonl").ToListAsync());
        Assert.Equal("rollouts.jsonl:3: field 'reward': expected a number", e.Message);
        e = await Assert.ThrowsAsync<InvalidDataException>(async () => await RolloutJsonl.ImportAsync(new StringReader("{oops"), "r.jsonl").ToListAsync());
        Assert.StartsWith("r.jsonl:1: not valid JSON", e.Message);
    }

    [Fact]
    public async Task APlainNemoGymLineImportsWithDefaults()
    {
        string line = """{"responses_create_params": {"input": [{"role": "user", "content": "Hi"}]}, "response": {"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}]}, "reward": 0.5}""";
        var r = Assert.Single(await RolloutJsonl.ImportAsync(new StringReader(line), "n.jsonl").ToListAsync());
        Assert.Equal([new StoredMessage("user", "Hi"), new StoredMessage("assistant", "Hello")], r.Messages);
        Assert.Equal((0.5, "imported", "line-1", 1), (r.Reward, r.RunId, r.TaskId, r.Turns));
    }
}
