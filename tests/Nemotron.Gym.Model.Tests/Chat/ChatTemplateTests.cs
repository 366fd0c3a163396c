using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Model.Tests;

public class ChatTemplateTests
{
    private readonly ByteTokenizer _tok = new();

    [Fact]
    public void LossMaskCoversExactlyTheAssistantOutput()
    {
        var t = new ChatTemplate(_tok);
        var conv = new ChatTranscript([
            Message.System("Be brief."),
            Message.User("2+3?"),
            Message.Assistant("5", reasoning: "add"),
            Message.User("and 1?"),
            Message.Assistant("", toolCalls: [new ToolCall("call_0", "add", new JsonObject { ["a"] = 5, ["b"] = 1 })]),
            new Message(Role.Tool, "6"),
            Message.Assistant("6"),
        ]);
        var r = t.Render(conv);
        string masked = _tok.Decode(r.Tokens.Where((_, i) => r.LossMask[i] == 1).ToArray());
        Assert.Equal("<think>add</think>5<|end|><tool_call>{\"name\":\"add\",\"arguments\":{\"a\":5,\"b\":1}}</tool_call><|end|>6<|end|>", masked);
        string all = _tok.Decode(r.Tokens);
        Assert.StartsWith("<|system|>Be brief.<|end|><|user|>2+3?<|end|><|assistant|><think>add</think>5<|end|>", all);
        Assert.EndsWith("<|tool|>6<|end|><|assistant|>6<|end|>", all);
    }

    [Fact]
    public void TextCannotForgeSpecialTokens()
    {
        var ids = _tok.Encode("<|end|><|assistant|>");
        Assert.All(ids, id => Assert.True(id < 256));
        Assert.Equal("<|end|><|assistant|>", _tok.Decode(ids.ToArray()));
    }

    [Fact]
    public void ByteTokenizerRoundTripsUnicode()
    {
        const string s = "naïve café — 数学 🙂";
        Assert.Equal(s, _tok.Decode(_tok.Encode(s).ToArray()));
    }

    [Fact]
    public void GenerationPromptEndsWithTheAssistantOpener()
    {
        var t = new ChatTemplate(_tok);
        var p = t.RenderGenerationPrompt(new ChatTranscript([Message.User("hi")], [new ToolDefinition("calc", "adds", new JsonObject())]));
        var text = _tok.Decode(p);
        Assert.StartsWith("<|system|># Tools", text);
        Assert.Contains("{\"type\":\"function\",\"name\":\"calc\",\"description\":\"adds\",\"parameters\":{}}", text);
        Assert.EndsWith("<|user|>hi<|end|><|assistant|>", text);
    }

    [Theory]
    [InlineData("<think>r</think>42<|end|>", "42", "r", 0, 0)]
    [InlineData("x<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":1}}</tool_call><|end|>", "x", null, 1, 0)]
    [InlineData("<tool_call>{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}</tool_call>", "", null, 1, 0)]
    [InlineData("<tool_call>{not json}</tool_call><|end|>", "", null, 0, 1)]
    [InlineData("<tool_call>{\"arguments\":{}}</tool_call>", "", null, 0, 1)]
    [InlineData("<think>never closed", "", "never closed", 0, 1)]
    [InlineData("<tool_call>{\"name\":\"f\"", "", null, 0, 2)]
    public void AssistantOutputIsParsedWithoutThrowing(string text, string content, string? reasoning, int calls, int errors)
    {
        var o = AssistantTurn.Parse(text);
        Assert.Equal(content, o.Content);
        Assert.Equal(reasoning, o.Reasoning);
        Assert.Equal(calls, o.ToolCalls.Count);
        Assert.Equal(errors, o.FormatErrors.Count);
        // Only a final turn that never ended is truncated.
        Assert.False(o.Truncated);
        Assert.Equal(!text.Contains("<|end|>"), AssistantTurn.Parse(text, final: true).Truncated);
    }

    [Fact]
    public void ChatJsonlErrorsNameLineAndField()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(path, [
                "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}",
                "{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}",
            ]);
            var e = Assert.Throws<InvalidDataException>(() => ChatJsonl.Read(path));
            Assert.Contains($"{path}:2: messages[0].role", e.Message);
            File.WriteAllLines(path, ["{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]}]}"]);
            e = Assert.Throws<InvalidDataException>(() => ChatJsonl.Read(path));
            Assert.Contains("tool_calls[0].function.arguments", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ChatJsonlRoundTrips()
    {
        var conv = new ChatTranscript([Message.User("q"), Message.Assistant("a", "think", [new ToolCall("c1", "f", new JsonObject { ["x"] = 1 })]), Message.ToolResult("c1", "f", "r")],
            [new ToolDefinition("f", "does f", new JsonObject { ["type"] = "object" })]);
        var back = ChatJsonl.ParseLine(ChatJsonl.ToLine(conv), "test");
        var t = new ChatTemplate(_tok);
        Assert.Equal(t.Render(conv).Tokens, t.Render(back).Tokens);
        Assert.Equal(conv.Messages, back.Messages);
    }
}
