using System.Text.Json;
using System.Text.Json.Nodes;

using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Model.Chat;

/// <summary>
/// Reads and writes chat data as JSONL, one conversation per line, in the OpenAI shape:
/// <c>{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "...",
/// "reasoning_content": "...", "tool_calls": [{"id": "...", "type": "function", "function": {"name": "...",
/// "arguments": "{...}"}}]}, {"role": "tool", "tool_call_id": "...", "content": "..."}], "tools": [...]}</c>.
/// Errors name the file, the line and the field.
/// </summary>
public static class ChatJsonl
{
    /// <summary>Reads every conversation of a file.</summary>
    public static List<ChatTranscript> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: chat data file not found", path);
        Conversation.StrictText.RequireUtf8(path);
        var result = new List<ChatTranscript>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            result.Add(ParseLine(line, $"{path}:{lineNo}"));
        }
        return result;
    }

    /// <summary>Parses one JSONL line; <paramref name="where"/> ("file:line") prefixes errors.</summary>
    public static ChatTranscript ParseLine(string line, string where)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(line); }
        catch (JsonException e) { throw new InvalidDataException($"{where}: not valid JSON ({e.Message})", e); }
        if (root is not JsonObject obj) throw new InvalidDataException($"{where}: expected a JSON object");
        if (obj["messages"] is not JsonArray arr) throw new InvalidDataException($"{where}: field 'messages' must be an array");
        if (arr.Count == 0) throw new InvalidDataException($"{where}: field 'messages' is empty");
        var messages = new List<Message>();
        for (int i = 0; i < arr.Count; i++) messages.Add(ParseMessage(arr[i], $"{where}: messages[{i}]"));
        List<ToolDefinition>? tools = null;
        if (obj["tools"] is JsonArray toolArr)
        {
            tools = [];
            for (int i = 0; i < toolArr.Count; i++)
            {
                if (toolArr[i] is not JsonObject t) throw new InvalidDataException($"{where}: tools[{i}]: expected an object");
                try { tools.Add(ToolDefinition.FromJson(t)); }
                catch (FormatException e) { throw new InvalidDataException($"{where}: tools[{i}].{e.Message}"); }
            }
        }
        else if (obj["tools"] is not null) throw new InvalidDataException($"{where}: field 'tools' must be an array");
        return new ChatTranscript(messages, tools);
    }

    private static Message ParseMessage(JsonNode? node, string where)
    {
        if (node is not JsonObject m) throw new InvalidDataException($"{where}: expected an object");
        string roleText = Str(m, "role", where, required: true)!;
        var role = roleText switch
        {
            "system" => Role.System,
            "user" => Role.User,
            "assistant" => Role.Assistant,
            "tool" => Role.Tool,
            _ => throw new InvalidDataException($"{where}.role: '{roleText}' is not one of system, user, assistant, tool"),
        };
        string content = Str(m, "content", where, required: false) ?? "";
        string? reasoning = Str(m, "reasoning_content", where, required: false);
        string? toolCallId = Str(m, "tool_call_id", where, required: false);
        string? name = Str(m, "name", where, required: false);
        List<ToolCall>? calls = null;
        if (m["tool_calls"] is JsonArray callArr)
        {
            if (role != Role.Assistant) throw new InvalidDataException($"{where}.tool_calls: only assistant messages carry tool calls");
            calls = [];
            for (int i = 0; i < callArr.Count; i++) calls.Add(ParseToolCall(callArr[i], $"{where}.tool_calls[{i}]", i));
        }
        else if (m["tool_calls"] is not null) throw new InvalidDataException($"{where}.tool_calls: must be an array");
        if (role == Role.Assistant && content.Length == 0 && calls is not { Count: > 0 } && string.IsNullOrEmpty(reasoning))
            throw new InvalidDataException($"{where}: assistant message has no content, reasoning or tool calls");
        return new Message(role, content, reasoning, calls, toolCallId, name);
    }

    private static ToolCall ParseToolCall(JsonNode? node, string where, int index)
    {
        if (node is not JsonObject c) throw new InvalidDataException($"{where}: expected an object");
        var fn = c["function"] as JsonObject ?? throw new InvalidDataException($"{where}.function: expected an object with name and arguments");
        string name = Str(fn, "name", where + ".function", required: true)!;
        string args = fn["arguments"] switch
        {
            null => "{}",
            JsonObject o => o.ToJsonString(JsonText.Compact),
            JsonValue v when v.TryGetValue(out string? s) => s,
            _ => throw new InvalidDataException($"{where}.function.arguments: expected a JSON object or a string holding one"),
        };
        JsonObject parsed;
        try
        {
            parsed = JsonNode.Parse(string.IsNullOrWhiteSpace(args) ? "{}" : args) as JsonObject
                ?? throw new InvalidDataException($"{where}.function.arguments: must hold a JSON object");
        }
        catch (JsonException e) { throw new InvalidDataException($"{where}.function.arguments: not valid JSON ({e.Message})", e); }
        return new ToolCall(Str(c, "id", where, required: false) ?? $"call_{index}", name, parsed);
    }

    private static string? Str(JsonObject o, string field, string where, bool required)
    {
        var n = o[field];
        if (n is null)
        {
            if (required) throw new InvalidDataException($"{where}.{field}: missing");
            return null;
        }
        if (n is JsonValue v && v.TryGetValue(out string? s)) return s;
        throw new InvalidDataException($"{where}.{field}: expected a string, got {n.ToJsonString(JsonText.Compact)}");
    }

    /// <summary>One conversation as a JSONL line.</summary>
    public static string ToLine(ChatTranscript conversation)
    {
        var arr = new JsonArray();
        foreach (var m in conversation.Messages)
        {
            var o = new JsonObject { ["role"] = m.Role.ToString().ToLowerInvariant(), ["content"] = m.Content };
            if (m.Reasoning != null) o["reasoning_content"] = m.Reasoning;
            if (m.ToolCalls is { Count: > 0 })
                o["tool_calls"] = new JsonArray(m.ToolCalls.Select((c, i) => (JsonNode)new JsonObject
                {
                    ["id"] = c.Id,
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.ArgumentsJson },
                }).ToArray());
            if (m.ToolCallId != null) o["tool_call_id"] = m.ToolCallId;
            if (m.Name != null) o["name"] = m.Name;
            arr.Add(o);
        }
        var root = new JsonObject { ["messages"] = arr };
        if (conversation.Tools is { Count: > 0 })
            root["tools"] = new JsonArray(conversation.Tools.Select(t => (JsonNode)t.ToJson()).ToArray());
        return root.ToJsonString(JsonText.Compact);
    }
}
