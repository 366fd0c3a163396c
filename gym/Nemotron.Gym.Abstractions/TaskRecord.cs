using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Abstractions;

/// <summary>
/// One task: a JSONL line in NeMo-Gym's shape, so datasets can be exchanged:
/// <code>
/// {"id": "math-00012",
///  "responses_create_params": {"input": [{"role": "user", "content": "..."}], "tools": [{"type": "function", "name": ..., "parameters": {...}}]},
///  "verifier_metadata": {...what the verifier needs...},
///  "reference": [{"content": "...", "tool_calls": [{"name": ..., "arguments": {...}}]}]}
/// </code>
/// <c>reference</c> lists the assistant turns of a correct episode; <c>gym env check</c> replays them and
/// expects full reward. Other top-level fields are kept in <see cref="Extra"/>.
/// </summary>
public sealed class TaskRecord
{
    /// <summary>Unique within the environment.</summary>
    public required string Id { get; init; }
    /// <summary>The opening messages (responses_create_params.input).</summary>
    public required IReadOnlyList<Message> Input { get; init; }
    /// <summary>Tools offered to the model (responses_create_params.tools).</summary>
    public IReadOnlyList<ToolDefinition> Tools { get; init; } = [];
    /// <summary>What the verifier needs (expected answer, constraints, initial state...).</summary>
    public JsonObject VerifierMetadata { get; init; } = new();
    /// <summary>The assistant turns of a correct episode (one for single-turn tasks).</summary>
    public IReadOnlyList<AssistantTurn> Reference { get; init; } = [];
    /// <summary>Any other top-level fields, kept as they were.</summary>
    public JsonObject Extra { get; init; } = new();

    private static readonly JsonSerializerOptions Readable = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Parses one line; errors name <paramref name="where"/> (file:line) and the field.</summary>
    public static TaskRecord Parse(string line, string where)
    {
        JsonObject o;
        try { o = JsonNode.Parse(line) as JsonObject ?? throw new TaskFormatException($"{where}: expected a JSON object"); }
        catch (JsonException e) { throw new TaskFormatException($"{where}: not valid JSON ({e.Message})"); }
        string id = o["id"] is JsonValue idv && idv.TryGetValue(out string? s) && !string.IsNullOrWhiteSpace(s) ? s
            : o["id"] is JsonValue idn && idn.TryGetValue(out long n) ? n.ToString()
            : throw new TaskFormatException($"{where}: field 'id' is missing or not a string");
        where = $"{where} (task {id})";
        var rcp = o["responses_create_params"] as JsonObject ?? throw new TaskFormatException($"{where}: field 'responses_create_params' must be an object");
        var input = rcp["input"] switch
        {
            JsonArray arr => arr.Select((m, i) => ParseMessage(m, $"{where}: responses_create_params.input[{i}]")).ToList(),
            JsonValue v when v.TryGetValue(out string? text) => [Message.User(text)],
            _ => throw new TaskFormatException($"{where}: responses_create_params.input must be a list of messages or a string"),
        };
        if (input.Count == 0) throw new TaskFormatException($"{where}: responses_create_params.input is empty");
        var tools = new List<ToolDefinition>();
        if (rcp["tools"] is JsonArray toolArr)
            for (int i = 0; i < toolArr.Count; i++) tools.Add(ParseTool(toolArr[i], $"{where}: responses_create_params.tools[{i}]"));
        else if (rcp["tools"] is not null) throw new TaskFormatException($"{where}: responses_create_params.tools must be a list");
        var meta = o["verifier_metadata"] switch
        {
            null => new JsonObject(),
            JsonObject m => (JsonObject)m.DeepClone(),
            _ => throw new TaskFormatException($"{where}: verifier_metadata must be an object"),
        };
        var reference = new List<AssistantTurn>();
        if (o["reference"] is JsonArray refArr)
            for (int i = 0; i < refArr.Count; i++) reference.Add(ParseTurn(refArr[i], $"{where}: reference[{i}]"));
        else if (o["reference"] is not null) throw new TaskFormatException($"{where}: reference must be a list of assistant turns");
        var extra = new JsonObject();
        foreach (var (k, v) in o)
            if (k is not ("id" or "responses_create_params" or "verifier_metadata" or "reference")) extra[k] = v?.DeepClone();
        return new TaskRecord { Id = id, Input = input, Tools = tools, VerifierMetadata = meta, Reference = reference, Extra = extra };
    }

    private static Message ParseMessage(JsonNode? node, string where)
    {
        if (node is not JsonObject m) throw new TaskFormatException($"{where}: expected an object");
        string roleText = m["role"] is JsonValue rv && rv.TryGetValue(out string? r) ? r : throw new TaskFormatException($"{where}.role: missing");
        var role = roleText switch
        {
            "system" or "developer" => Role.System,
            "user" => Role.User,
            "assistant" => Role.Assistant,
            "tool" => Role.Tool,
            _ => throw new TaskFormatException($"{where}.role: '{roleText}' is not system, user, assistant or tool"),
        };
        string content = m["content"] switch
        {
            null => "",
            JsonValue cv when cv.TryGetValue(out string? c) => c,
            // The Responses API also allows a list of content parts: [{"type": "input_text", "text": ...}].
            JsonArray parts => string.Concat(parts.Select(p => p?["text"]?.GetValue<string>() ?? "")),
            _ => throw new TaskFormatException($"{where}.content: expected a string or a list of text parts"),
        };
        return new Message(role, content);
    }

    private static ToolDefinition ParseTool(JsonNode? node, string where)
    {
        if (node is not JsonObject t) throw new TaskFormatException($"{where}: expected an object");
        try { return ToolDefinition.FromJson(t); }
        catch (FormatException e) { throw new TaskFormatException($"{where}.{e.Message}"); }
    }

    private static AssistantTurn ParseTurn(JsonNode? node, string where)
    {
        if (node is JsonValue v && v.TryGetValue(out string? text)) return AssistantTurn.FromContent(text);
        if (node is not JsonObject t) throw new TaskFormatException($"{where}: expected an object or a string");
        string content = t["content"]?.GetValue<string>() ?? "";
        string? reasoning = t["reasoning_content"]?.GetValue<string>();
        var calls = new List<ToolCall>();
        if (t["tool_calls"] is JsonArray arr)
            for (int i = 0; i < arr.Count; i++)
            {
                var c = arr[i] as JsonObject ?? throw new TaskFormatException($"{where}.tool_calls[{i}]: expected an object");
                var fn = c["function"] as JsonObject ?? c;
                string name = fn["name"]?.GetValue<string>() ?? throw new TaskFormatException($"{where}.tool_calls[{i}].name: missing");
                var args = fn["arguments"] switch
                {
                    null => new JsonObject(),
                    JsonObject a => (JsonObject)a.DeepClone(),
                    JsonValue av when av.TryGetValue(out string? s) => JsonNode.Parse(s) as JsonObject ?? throw new TaskFormatException($"{where}.tool_calls[{i}].arguments: not a JSON object"),
                    _ => throw new TaskFormatException($"{where}.tool_calls[{i}].arguments: expected an object"),
                };
                calls.Add(new ToolCall(c["id"]?.GetValue<string>() ?? $"call_{i}", name, args));
            }
        return new AssistantTurn(content, content, reasoning, calls, []);
    }

    /// <summary>The task as one JSONL line.</summary>
    public string ToJsonLine()
    {
        var input = new JsonArray(Input.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role.ToString().ToLowerInvariant(), ["content"] = m.Content }).ToArray());
        var rcp = new JsonObject { ["input"] = input };
        if (Tools.Count > 0) rcp["tools"] = new JsonArray(Tools.Select(t => (JsonNode)t.ToJson()).ToArray());
        var o = new JsonObject { ["id"] = Id, ["responses_create_params"] = rcp, ["verifier_metadata"] = VerifierMetadata.DeepClone() };
        if (Reference.Count > 0)
            o["reference"] = new JsonArray(Reference.Select(r =>
            {
                var turn = new JsonObject { ["content"] = r.Content };
                if (r.Reasoning != null) turn["reasoning_content"] = r.Reasoning;
                if (r.ToolCalls.Count > 0)
                    turn["tool_calls"] = new JsonArray(r.ToolCalls.Select(c => (JsonNode)new JsonObject { ["id"] = c.Id, ["name"] = c.Name, ["arguments"] = c.Arguments.DeepClone() }).ToArray());
                return (JsonNode)turn;
            }).ToArray());
        foreach (var (k, v) in Extra) o[k] = v?.DeepClone();
        return o.ToJsonString(Readable);
    }
}

/// <summary>A task record that does not follow the format; the message names the file, line, task and field.</summary>
public sealed class TaskFormatException(string message) : Exception(message);
