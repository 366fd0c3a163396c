using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Policy.Chat;
using PolicyToolCall = Nemotron.Gym.Policy.Chat.ToolCall;
using PluginToolCall = Nemotron.Gym.Abstractions.ToolCall;

namespace Nemotron.Gym.Plugins;

/// <summary>
/// Between the model's chat format (policy: text with special tokens) and the plugin contract
/// (structured messages): parses what the model wrote into an <see cref="AssistantTurn"/>, and turns an
/// environment's opening and replies into chat messages the template renders.
/// </summary>
public static class ChatBridge
{
    /// <summary>An assistant turn from decoded model text; never throws (errors go to FormatErrors).</summary>
    public static AssistantTurn ParseAssistant(string text, bool truncated = false) => FromOutput(text, AssistantOutput.Parse(text), truncated);

    /// <summary>
    /// An assistant turn from decoded model text when the host knows whether it was the episode's last turn: a
    /// <paramref name="final"/> turn that did not end with end-of-turn was cut off at the length limit.
    /// </summary>
    public static AssistantTurn ParseTurn(string text, bool final)
    {
        var output = AssistantOutput.Parse(text);
        return FromOutput(text, output, final && !output.EndedTurn);
    }

    private static AssistantTurn FromOutput(string text, AssistantOutput output, bool truncated)
    {
        var calls = new List<PluginToolCall>();
        var errors = output.Errors.ToList();
        foreach (var c in output.ToolCalls)
        {
            try { calls.Add(new PluginToolCall(c.Id ?? $"call_{calls.Count}", c.Name, JsonNode.Parse(c.ArgumentsJson) as JsonObject ?? new JsonObject())); }
            catch (JsonException e) { errors.Add($"tool call '{c.Name}': arguments are not valid JSON ({e.Message})"); }
        }
        return new AssistantTurn(text, output.Content, output.Reasoning, calls, errors, truncated);
    }

    /// <summary>An environment message as a chat message.</summary>
    public static ChatMessage ToChat(Message m) => m.Role switch
    {
        Role.System => ChatMessage.System(m.Content),
        Role.User => ChatMessage.User(m.Content),
        Role.Tool => ChatMessage.ToolResult(m.Content, m.ToolCallId, m.Name),
        _ => ChatMessage.Assistant(m.Content, m.Reasoning, m.ToolCalls?.Select(c => new PolicyToolCall(c.Name, c.Arguments.ToJsonString(), c.Id)).ToList()),
    };

    /// <summary>An episode's opening as a conversation (messages and tool definitions).</summary>
    public static Conversation Opening(IReadOnlyList<Message> opening, IReadOnlyList<ToolDefinition> tools) =>
        new(opening.Select(ToChat).ToList(), tools.Count > 0 ? tools.Select(t => t.ToJson().ToJsonString(Nemotron.Gym.Policy.JsonText.Compact)).ToList() : null);
}
