using System.Text;
using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Model.Chat;

/// <summary>A rendered conversation: token ids, and 1 where the token is trained on (assistant output).</summary>
public sealed record RenderedChat(int[] Tokens, byte[] LossMask);

/// <summary>
/// The one chat format of Nemotron.Gym. Every turn is a role token, its text, and &lt;|end|&gt;:
/// <code>
/// &lt;|system|&gt;You are ...\n\n# Tools\n{"name":...}&lt;|end|&gt;
/// &lt;|user|&gt;What is 2+3?&lt;|end|&gt;
/// &lt;|assistant|&gt;&lt;think&gt;reasoning&lt;/think&gt;text&lt;tool_call&gt;{"name":"add","arguments":{"a":2}}&lt;/tool_call&gt;&lt;|end|&gt;
/// &lt;|tool|&gt;5&lt;|end|&gt;
/// </code>
/// The loss mask covers what the assistant produces: everything after &lt;|assistant|&gt; up to and including
/// its &lt;|end|&gt;. A generation prompt ends with &lt;|assistant|&gt;; generation stops at &lt;|end|&gt;.
/// Text is encoded without special-token parsing, so no message can forge a turn boundary.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>A template over the given tokenizer.</summary>
    public ChatTemplate(ITokenizer tokenizer) => Tokenizer = tokenizer;

    /// <summary>The tokenizer whose special ids the template emits.</summary>
    public ITokenizer Tokenizer { get; }

    private SpecialTokens S => Tokenizer.Specials;

    /// <summary>Renders a whole conversation for training.</summary>
    public RenderedChat Render(ChatTranscript conversation)
    {
        var tokens = new List<int>();
        var mask = new List<byte>();
        RenderInto(conversation, tokens, mask);
        return new RenderedChat(tokens.ToArray(), mask.ToArray());
    }

    /// <summary>Renders the conversation so far followed by &lt;|assistant|&gt;: the prompt to generate from.</summary>
    public int[] RenderGenerationPrompt(ChatTranscript conversation)
    {
        var tokens = new List<int>();
        RenderInto(conversation, tokens, new List<byte>());
        tokens.Add(S.Assistant);
        return tokens.ToArray();
    }

    /// <summary>
    /// Renders one non-assistant turn (user or tool, as an environment answers) to append to an episode
    /// after the assistant's &lt;|end|&gt;, followed by the next &lt;|assistant|&gt; opener.
    /// </summary>
    public int[] RenderTurnAndAssistantOpener(Message message)
    {
        var tokens = new List<int>();
        AppendTurn(message, tokens, new List<byte>());
        tokens.Add(S.Assistant);
        return tokens.ToArray();
    }

    private void RenderInto(ChatTranscript conversation, List<int> tokens, List<byte> mask)
    {
        var messages = conversation.Messages;
        bool hasTools = conversation.Tools is { Count: > 0 };
        int start = 0;
        if (messages.Count > 0 && messages[0].Role == Role.System)
        {
            AppendSystem(messages[0].Content, conversation.Tools, tokens, mask);
            start = 1;
        }
        else if (hasTools)
            AppendSystem("", conversation.Tools, tokens, mask);
        for (int i = start; i < messages.Count; i++)
        {
            if (messages[i].Role == Role.System)
                throw new ArgumentException($"message {i}: a system message may only come first");
            AppendTurn(messages[i], tokens, mask);
        }
    }

    private void AppendSystem(string content, IReadOnlyList<ToolDefinition>? tools, List<int> tokens, List<byte> mask)
    {
        var text = new StringBuilder(content);
        if (tools is { Count: > 0 })
        {
            if (text.Length > 0) text.Append("\n\n");
            text.Append("# Tools\nCall a tool with <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>.");
            foreach (var t in tools) text.Append('\n').Append(t.ToJson().ToJsonString(JsonText.Compact));
        }
        Add(tokens, mask, S.System, 0);
        AddText(tokens, mask, text.ToString(), 0);
        Add(tokens, mask, S.EndOfTurn, 0);
    }

    private void AppendTurn(Message m, List<int> tokens, List<byte> mask)
    {
        switch (m.Role)
        {
            case Role.User:
                Add(tokens, mask, S.User, 0);
                AddText(tokens, mask, m.Content, 0);
                Add(tokens, mask, S.EndOfTurn, 0);
                break;
            case Role.Tool:
                Add(tokens, mask, S.Tool, 0);
                AddText(tokens, mask, m.Content, 0);
                Add(tokens, mask, S.EndOfTurn, 0);
                break;
            case Role.Assistant:
                Add(tokens, mask, S.Assistant, 0);
                AppendAssistantBody(m, tokens, mask);
                break;
            case Role.System:
                throw new ArgumentException("a system message may only come first");
            default:
                throw new ArgumentException($"unknown role '{m.Role}'");
        }
    }

    /// <summary>The assistant's part, as the model should produce it, ending with &lt;|end|&gt;.</summary>
    private void AppendAssistantBody(Message m, List<int> tokens, List<byte> mask)
    {
        if (!string.IsNullOrEmpty(m.Reasoning))
        {
            Add(tokens, mask, S.ThinkStart, 1);
            AddText(tokens, mask, m.Reasoning, 1);
            Add(tokens, mask, S.ThinkEnd, 1);
        }
        AddText(tokens, mask, m.Content, 1);
        foreach (var call in m.ToolCalls ?? [])
        {
            Add(tokens, mask, S.ToolCallStart, 1);
            AddText(tokens, mask, FormatToolCall(call), 1);
            Add(tokens, mask, S.ToolCallEnd, 1);
        }
        Add(tokens, mask, S.EndOfTurn, 1);
    }

    /// <summary>The JSON text inside &lt;tool_call&gt;: {"name": ..., "arguments": {...}}.</summary>
    public static string FormatToolCall(ToolCall call) =>
        new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments.DeepClone() }.ToJsonString(JsonText.Compact);

    private static void Add(List<int> tokens, List<byte> mask, int id, byte m)
    {
        tokens.Add(id);
        mask.Add(m);
    }

    private void AddText(List<int> tokens, List<byte> mask, string text, byte m)
    {
        int before = tokens.Count;
        Tokenizer.EncodeTo(text, tokens);
        for (int i = before; i < tokens.Count; i++) mask.Add(m);
    }
}
