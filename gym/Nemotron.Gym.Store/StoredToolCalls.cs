using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Store;

/// <summary>
/// Tool calls as stored text: written as a JSON array of {"Id", "Name", "Arguments": {...}}; read leniently, since
/// stores and exports written by earlier builds and other tools hold lower-case names, an "ArgumentsJson" string or
/// OpenAI's {"id", "function": {"name", "arguments"}}. Arguments that are not a JSON object are kept as
/// {"_unparsed": text} rather than dropped.
/// </summary>
public static class StoredToolCalls
{
    /// <summary>The stored text of some calls.</summary>
    public static string ToJson(IEnumerable<ToolCall> calls) => new JsonArray(calls.Select(c => (JsonNode)new JsonObject
    {
        ["Id"] = c.Id, ["Name"] = c.Name, ["Arguments"] = c.Arguments.DeepClone(),
    }).ToArray()).ToJsonString(JsonText.Compact);

    /// <summary>The calls in stored text; text that holds none gives an empty list.</summary>
    public static List<ToolCall> Parse(string? json)
    {
        var calls = new List<ToolCall>();
        if (string.IsNullOrWhiteSpace(json)) return calls;
        JsonNode? parsed;
        try { parsed = JsonNode.Parse(json); }
        catch (JsonException) { return calls; }
        if (parsed is not JsonArray array) return calls;
        foreach (var call in array.OfType<JsonObject>())
        {
            var function = Field(call, "function") as JsonObject;
            var arguments = Field(call, "arguments") ?? Field(call, "argumentsjson") ?? (function != null ? Field(function, "arguments") : null);
            calls.Add(new ToolCall(TextOf(Field(call, "id") ?? Field(call, "call_id")), TextOf(Field(call, "name") ?? (function != null ? Field(function, "name") : null)),
                Arguments(arguments)));
        }
        return calls;

        static JsonNode? Field(JsonObject o, string lowerName) =>
            o.FirstOrDefault(kv => string.Equals(kv.Key, lowerName, StringComparison.OrdinalIgnoreCase)).Value;
        static string TextOf(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s : n?.ToJsonString() ?? "";
    }

    /// <summary>Arguments from a JSON object, or from text holding one.</summary>
    public static JsonObject Arguments(JsonNode? node)
    {
        switch (node)
        {
            case null: return new JsonObject();
            case JsonObject o: return (JsonObject)o.DeepClone();
            case JsonValue v when v.TryGetValue(out string? text):
                try { if (JsonNode.Parse(text) is JsonObject parsed) return parsed; }
                catch (JsonException) { }
                return new JsonObject { ["_unparsed"] = text };
            default: return new JsonObject { ["_unparsed"] = node.ToJsonString() };
        }
    }
}
