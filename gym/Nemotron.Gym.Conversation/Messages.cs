using System.Text.Json.Nodes;

namespace Nemotron.Gym.Conversation;

/// <summary>Who speaks in a conversation turn.</summary>
public enum Role
{
    /// <summary>Instructions that frame the conversation.</summary>
    System,
    /// <summary>The person asking.</summary>
    User,
    /// <summary>The model.</summary>
    Assistant,
    /// <summary>The result of a tool call, written by the environment.</summary>
    Tool,
}

/// <summary>A function the model asked to call.</summary>
/// <param name="Id">Identifies the call so its result can refer to it.</param>
/// <param name="Name">The tool's name.</param>
/// <param name="Arguments">The arguments, a JSON object.</param>
public sealed record ToolCall(string Id, string Name, JsonObject Arguments)
{
    /// <summary>The arguments as compact JSON text (how the chat format writes them).</summary>
    public string ArgumentsJson => Arguments.ToJsonString(JsonText.Compact);

    /// <summary>Equal when id, name and the arguments' JSON text are.</summary>
    public bool Equals(ToolCall? other) => other is not null && Id == other.Id && Name == other.Name && ArgumentsJson == other.ArgumentsJson;

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Id, Name, ArgumentsJson);
}

/// <summary>One turn of a conversation, in the OpenAI message shape.</summary>
/// <param name="Role">Who speaks.</param>
/// <param name="Content">The visible text.</param>
/// <param name="Reasoning">An assistant's reasoning (shown to the model inside &lt;think&gt;), if any.</param>
/// <param name="ToolCalls">An assistant's tool calls, if any.</param>
/// <param name="ToolCallId">For a tool turn: the call it answers.</param>
/// <param name="Name">For a tool turn: the tool's name.</param>
public sealed record Message(Role Role, string Content, string? Reasoning = null, IReadOnlyList<ToolCall>? ToolCalls = null, string? ToolCallId = null, string? Name = null)
{
    /// <summary>A system turn.</summary>
    public static Message System(string content) => new(Role.System, content);
    /// <summary>A user turn.</summary>
    public static Message User(string content) => new(Role.User, content);
    /// <summary>An assistant turn.</summary>
    public static Message Assistant(string content, string? reasoning = null, IReadOnlyList<ToolCall>? toolCalls = null) =>
        new(Role.Assistant, content, reasoning, toolCalls is { Count: > 0 } ? toolCalls : null);
    /// <summary>A tool result answering <paramref name="callId"/>.</summary>
    public static Message ToolResult(string callId, string name, string content) => new(Role.Tool, content, ToolCallId: callId, Name: name);

    /// <summary>Equal field by field; tool calls by value (none and an empty list are the same).</summary>
    public bool Equals(Message? other) => other is not null && Role == other.Role && Content == other.Content && Reasoning == other.Reasoning
        && ToolCallId == other.ToolCallId && Name == other.Name && (ToolCalls ?? []).SequenceEqual(other.ToolCalls ?? []);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Role, Content, Reasoning, ToolCallId, Name, ToolCalls?.Count ?? 0);

    /// <summary>The role as the OpenAI message shape writes it ("system", "user", "assistant", "tool").</summary>
    public static string RoleName(Role role) => role switch
    {
        Role.System => "system",
        Role.User => "user",
        Role.Assistant => "assistant",
        Role.Tool => "tool",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "not a role"),
    };

    /// <summary>A role from its name; false for anything else.</summary>
    public static bool TryParseRole(string? name, out Role role)
    {
        switch (name)
        {
            case "system": role = Role.System; return true;
            case "user": role = Role.User; return true;
            case "assistant": role = Role.Assistant; return true;
            case "tool": role = Role.Tool; return true;
            default: role = default; return false;
        }
    }
}

/// <summary>A tool offered to the model: a name, what it does, and a JSON schema of its arguments.</summary>
/// <param name="Name">The name the model calls.</param>
/// <param name="Description">What the tool does, for the model.</param>
/// <param name="Parameters">JSON schema of the arguments object.</param>
public sealed record ToolDefinition(string Name, string Description, JsonObject Parameters)
{
    /// <summary>
    /// Reads a definition in the Responses API shape or the Chat Completions shape ({"type": "function", "function":
    /// {...}}). A missing name is a <see cref="FormatException"/> naming the field; missing parameters mean none.
    /// </summary>
    public static ToolDefinition FromJson(JsonObject tool)
    {
        var fn = tool["function"] as JsonObject ?? tool;
        string name = fn["name"] is JsonValue nv && nv.TryGetValue(out string? n) && n.Length > 0 ? n : throw new FormatException("name: missing");
        string description = fn["description"] is JsonValue dv && dv.TryGetValue(out string? d) ? d : "";
        var parameters = fn["parameters"] as JsonObject ?? new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
        return new ToolDefinition(name, description, (JsonObject)parameters.DeepClone());
    }

    /// <summary>The definition in the Responses API shape ({"type": "function", "name", "description", "parameters"}).</summary>
    public JsonObject ToJson() => new()
    {
        ["type"] = "function", ["name"] = Name, ["description"] = Description, ["parameters"] = Parameters.DeepClone(),
    };
}

/// <summary>
/// What the model said in one assistant turn, as the host parsed it: the raw text, its visible content,
/// its reasoning, the tool calls it made, and any format errors (a malformed tool call is reported here,
/// never thrown). Model output is untrusted: every field may hold anything.
/// </summary>
/// <param name="Text">The raw decoded turn.</param>
/// <param name="Content">The visible answer (outside reasoning and tool calls).</param>
/// <param name="Reasoning">The reasoning, if the model wrote any.</param>
/// <param name="ToolCalls">Well-formed tool calls, in order.</param>
/// <param name="FormatErrors">What could not be parsed (for example "tool call 1: not valid JSON").</param>
/// <param name="Truncated">The turn was cut off at the length limit.</param>
public sealed record AssistantTurn(string Text, string Content, string? Reasoning, IReadOnlyList<ToolCall> ToolCalls, IReadOnlyList<string> FormatErrors, bool Truncated = false)
{
    /// <summary>
    /// Parses decoded model text (special tokens written as their strings) into a turn; never throws: what cannot be
    /// parsed goes to <see cref="FormatErrors"/>. <paramref name="final"/>: the host knows this was the episode's last
    /// turn, so a turn that did not end with end-of-turn was cut off at the length limit (<see cref="Truncated"/>).
    /// </summary>
    public static AssistantTurn Parse(string text, bool final = false) => ChatFormat.ParseAssistant(text, final);

    /// <summary>A plain-text turn with nothing else in it (for tests and the author's tools).</summary>
    public static AssistantTurn FromContent(string content) => new(content, content, null, [], []);

    /// <summary>The turn as a message of the transcript.</summary>
    public Message ToMessage() => new(Role.Assistant, Content, Reasoning, ToolCalls.Count > 0 ? ToolCalls : null);
}
