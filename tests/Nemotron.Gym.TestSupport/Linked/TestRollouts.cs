using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Store;

namespace Nemotron.Gym.TestSupport;

/// <summary>Rollouts to store, and a field-by-field comparison (records compare arrays by reference).</summary>
internal static class TestRollouts
{
    /// <summary>A tool call, which a NeMo-Gym export and import rebuild exactly.</summary>
    public static ToolCall Call => new("c1", "calc", new JsonObject { ["x"] = 1 });

    public static StoredRollout Make(string run, int step, string task, int sample, double reward = 1, string? environment = null) => new()
    {
        RunId = run, Step = step, TaskId = task, Environment = environment ?? task.Split('/')[0], SampleIndex = sample,
        Tokens = [1, 2, 300, 4, 100_000], Generated = [0, 0, 1, 1, 1],
        // Awkward floats on purpose: they must come back bit for bit.
        SamplerLogProbs = [0, 0, -0.123456789f, -1e-7f, float.Epsilon * 3],
        Messages =
        [
            Message.System("Be brief."), Message.User("What is 2+2?\nAnswer \"exactly\" — ünïcode ✓"),
            Message.Assistant("4", "2+2=4", [Call]), new(Role.Tool, "4", ToolCallId: "c1"), Message.Assistant("It is 4."),
        ],
        Reward = reward, ShapedReward = reward - 0.1, Components = new Dictionary<string, double> { ["correct"] = reward, ["format"] = 0.5 },
        Reason = "matched 4", Evidence = new Dictionary<string, string> { ["extracted"] = "4", ["expected"] = "4" }, Truncated = step % 2 == 0, Turns = 2,
        GenerateSeconds = 0.5 + step, EnvironmentSeconds = 0.01, CreatedAt = new DateTimeOffset(2026, 11, 23, 1, 2, 3, 456, TimeSpan.FromHours(2)),
    };

    public static void AssertSame(StoredRollout expected, StoredRollout actual)
    {
        Assert.Equal((expected.RunId, expected.Step, expected.TaskId, expected.SampleIndex, expected.Environment),
            (actual.RunId, actual.Step, actual.TaskId, actual.SampleIndex, actual.Environment));
        Assert.Equal(expected.Tokens, actual.Tokens);
        Assert.Equal(expected.Generated, actual.Generated);
        Assert.Equal(expected.SamplerLogProbs.Select(BitConverter.SingleToInt32Bits), actual.SamplerLogProbs.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(expected.Messages, actual.Messages);
        Assert.Equal(expected.Components.OrderBy(kv => kv.Key), actual.Components.OrderBy(kv => kv.Key));
        Assert.Equal(expected.Evidence.OrderBy(kv => kv.Key), actual.Evidence.OrderBy(kv => kv.Key));
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.Reward), BitConverter.DoubleToInt64Bits(actual.Reward));
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.ShapedReward), BitConverter.DoubleToInt64Bits(actual.ShapedReward));
        Assert.Equal((expected.Reason, expected.Truncated, expected.Turns, expected.GenerateSeconds, expected.EnvironmentSeconds),
            (actual.Reason, actual.Truncated, actual.Turns, actual.GenerateSeconds, actual.EnvironmentSeconds));
        // Same instant and same offset.
        Assert.Equal((expected.CreatedAt, expected.CreatedAt.Offset), (actual.CreatedAt, actual.CreatedAt.Offset));
        // What the trainer recorded, when it did.
        Assert.Equal((expected.Advantage, expected.SequenceMasked, expected.MaskedReason), (actual.Advantage, actual.SequenceMasked, actual.MaskedReason));
        Assert.Equal(expected.TrainerLogProbs?.Select(BitConverter.SingleToInt32Bits), actual.TrainerLogProbs?.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(expected.ImportanceWeights?.Select(BitConverter.SingleToInt32Bits), actual.ImportanceWeights?.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(expected.TokenMasked, actual.TokenMasked);
        Assert.Equal(expected.TokenTexts, actual.TokenTexts);
    }
}
