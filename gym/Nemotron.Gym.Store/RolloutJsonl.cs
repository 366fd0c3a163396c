using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Store;

/// <summary>
/// Rollouts as JSONL in NeMo-Gym's rollout shape: per line `responses_create_params.input` (the prompt messages),
/// `response.output` (the episode as Responses-API items: reasoning, assistant messages, function calls and their
/// outputs) and `reward`. Our own fields (tokens, sampler log-probabilities, components, evidence, ...) sit under
/// `nemotron_gym`, so an export imports back exactly while NeMo-Gym readers see the fields they know.
/// </summary>
public static class RolloutJsonl
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    /// <summary>Writes one line per rollout.</summary>
    public static async Task ExportAsync(IAsyncEnumerable<StoredRollout> rollouts, TextWriter writer, CancellationToken ct = default)
    {
        await foreach (var r in rollouts.WithCancellation(ct))
            await writer.WriteLineAsync(ToJson(r).ToJsonString(Compact));
        await writer.FlushAsync(ct);
    }

    /// <summary>One rollout as a NeMo-Gym rollout line.</summary>
    public static JsonObject ToJson(StoredRollout r)
    {
        // The prompt is everything before the first assistant turn; the response is the rest.
        int firstAssistant = r.Messages.ToList().FindIndex(m => m.Role == "assistant");
        var prompt = firstAssistant < 0 ? r.Messages : r.Messages.Take(firstAssistant).ToList();
        var rest = firstAssistant < 0 ? [] : r.Messages.Skip(firstAssistant).ToList();
        var output = new JsonArray();
        foreach (var m in rest)
        {
            if (m.Role == "assistant")
            {
                if (!string.IsNullOrEmpty(m.Reasoning))
                    output.Add(new JsonObject { ["type"] = "reasoning", ["summary"] = new JsonArray(new JsonObject { ["type"] = "summary_text", ["text"] = m.Reasoning }) });
                if (m.Content.Length > 0 || string.IsNullOrEmpty(m.ToolCallsJson))
                    output.Add(new JsonObject { ["type"] = "message", ["role"] = "assistant", ["content"] = new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = m.Content }) });
                if (!string.IsNullOrEmpty(m.ToolCallsJson) && JsonNode.Parse(m.ToolCallsJson) is JsonArray calls)
                    foreach (var c in calls.OfType<JsonObject>())
                        output.Add(new JsonObject { ["type"] = "function_call", ["name"] = c["Name"]?.DeepClone(), ["arguments"] = c["ArgumentsJson"]?.DeepClone(), ["call_id"] = c["Id"]?.DeepClone() });
            }
            else if (m.Role == "tool")
                output.Add(new JsonObject { ["type"] = "function_call_output", ["call_id"] = m.ToolCallId, ["output"] = m.Content });
            else
                output.Add(new JsonObject { ["type"] = "message", ["role"] = m.Role, ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = m.Content }) });
        }
        return new JsonObject
        {
            ["responses_create_params"] = new JsonObject { ["input"] = new JsonArray(prompt.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()) },
            ["response"] = new JsonObject { ["output"] = output },
            ["reward"] = r.Reward,
            ["nemotron_gym"] = new JsonObject
            {
                ["run_id"] = r.RunId, ["step"] = r.Step, ["task_id"] = r.TaskId, ["environment"] = r.Environment, ["sample_index"] = r.SampleIndex,
                ["shaped_reward"] = r.ShapedReward, ["components"] = new JsonObject(r.Components.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["reason"] = r.Reason, ["evidence"] = new JsonObject(r.Evidence.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["truncated"] = r.Truncated, ["turns"] = r.Turns, ["generate_seconds"] = r.GenerateSeconds, ["environment_seconds"] = r.EnvironmentSeconds,
                ["created_at"] = r.CreatedAt.ToString("O"),
                ["messages"] = new JsonArray(r.Messages.Select(m => (JsonNode)new JsonObject
                {
                    ["role"] = m.Role, ["content"] = m.Content, ["reasoning"] = m.Reasoning, ["tool_calls"] = m.ToolCallsJson, ["tool_call_id"] = m.ToolCallId,
                }).ToArray()),
                ["tokens"] = new JsonArray(r.Tokens.Select(t => (JsonNode)t).ToArray()),
                ["generated"] = new JsonArray(r.Generated.Select(g => (JsonNode)(int)g).ToArray()),
                // System.Text.Json writes floats in their shortest round-trip form, so they import back bit for bit.
                ["sampler_logprobs"] = new JsonArray(r.SamplerLogProbs.Select(p => (JsonNode)p).ToArray()),
            },
        };
    }

    /// <summary>Reads rollouts; a bad line is an error naming the file, line and field.</summary>
    public static async IAsyncEnumerable<StoredRollout> ImportAsync(TextReader reader, string fileName, [EnumeratorCancellation] CancellationToken ct = default)
    {
        int lineNo = 0;
        for (string? line = await reader.ReadLineAsync(ct); line != null; line = await reader.ReadLineAsync(ct))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{fileName}:{lineNo}";
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new InvalidDataException($"{where}: expected a JSON object"); }
            catch (JsonException e) { throw new InvalidDataException($"{where}: not valid JSON ({e.Message})"); }
            yield return FromJson(o, where, lineNo);
        }
    }

    private static StoredRollout FromJson(JsonObject o, string where, int lineNo)
    {
        double reward = Num(o, "reward", where) ?? throw new InvalidDataException($"{where}: field 'reward' is required");
        var g = o["nemotron_gym"] as JsonObject;
        List<StoredMessage> messages;
        if (g?["messages"] is JsonArray ms)
            messages = ms.Select((m, i) => new StoredMessage(Str(m, "role", $"{where}: field 'nemotron_gym.messages[{i}]'") ?? "", Str(m, "content", where) ?? "",
                Str(m, "reasoning", where), Str(m, "tool_calls", where), Str(m, "tool_call_id", where))).ToList();
        else messages = FromResponses(o, where);
        string env = Str(g, "environment", where) ?? "imported";
        return new StoredRollout
        {
            RunId = Str(g, "run_id", where) ?? "imported", Step = (int)(Num(g, "step", where) ?? 0), TaskId = Str(g, "task_id", where) ?? $"line-{lineNo}",
            Environment = env, SampleIndex = (int)(Num(g, "sample_index", where) ?? 0), Reward = reward, ShapedReward = Num(g, "shaped_reward", where) ?? reward,
            Components = g?["components"] is JsonObject c ? c.ToDictionary(kv => kv.Key, kv => Num(c, kv.Key, where) ?? 0) : new Dictionary<string, double>(),
            Reason = Str(g, "reason", where) ?? "", Evidence = g?["evidence"] is JsonObject ev ? ev.ToDictionary(kv => kv.Key, kv => Str(ev, kv.Key, where) ?? "") : new Dictionary<string, string>(),
            Truncated = g?["truncated"] is JsonValue tv && tv.TryGetValue(out bool tb) && tb, Turns = (int)(Num(g, "turns", where) ?? messages.Count(m => m.Role == "assistant")),
            GenerateSeconds = Num(g, "generate_seconds", where) ?? 0, EnvironmentSeconds = Num(g, "environment_seconds", where) ?? 0,
            CreatedAt = Str(g, "created_at", where) is { } t ? DateTimeOffset.Parse(t, System.Globalization.CultureInfo.InvariantCulture) : DateTimeOffset.UnixEpoch,
            Messages = messages,
            Tokens = Ints(g, "tokens", where).ToArray(), Generated = Ints(g, "generated", where).Select(x => (byte)x).ToArray(),
            SamplerLogProbs = g?["sampler_logprobs"] is JsonArray lp ? lp.Select((x, i) => Num(x, null, $"{where}: field 'nemotron_gym.sampler_logprobs[{i}]'") is { } d ? (float)d : 0f).ToArray() : [],
        };
    }

    // A NeMo-Gym line without our extras: rebuild the conversation from the prompt and the response items.
    private static List<StoredMessage> FromResponses(JsonObject o, string where)
    {
        var list = new List<StoredMessage>();
        if (o["responses_create_params"]?["input"] is JsonArray input)
            foreach (var m in input) list.Add(new StoredMessage(Str(m, "role", where) ?? "user", Text(m?["content"])));
        else if (o["responses_create_params"] != null) throw new InvalidDataException($"{where}: field 'responses_create_params.input': expected a list of messages");
        if (o["response"]?["output"] is JsonArray output)
            foreach (var item in output)
                switch (Str(item, "type", where))
                {
                    case "message": list.Add(new StoredMessage(Str(item, "role", where) ?? "assistant", Text(item?["content"]))); break;
                    case "function_call":
                        list.Add(new StoredMessage("assistant", "", null, new JsonArray(new JsonObject { ["Name"] = Str(item, "name", where), ["ArgumentsJson"] = Str(item, "arguments", where), ["Id"] = Str(item, "call_id", where) }).ToJsonString()));
                        break;
                    case "function_call_output": list.Add(new StoredMessage("tool", Str(item, "output", where) ?? "", null, null, Str(item, "call_id", where))); break;
                }
        return list;
    }

    private static string Text(JsonNode? content) => content switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonArray parts => string.Concat(parts.Select(p => p?["text"]?.GetValue<string>() ?? "")),
        _ => "",
    };

    private static string? Str(JsonNode? o, string key, string where)
    {
        var n = o?[key];
        if (n == null) return null;
        return n is JsonValue v && v.TryGetValue(out string? s) ? s : throw new InvalidDataException($"{where}: field '{key}': expected a string");
    }

    private static double? Num(JsonNode? o, string? key, string where)
    {
        var n = key == null ? o : o?[key];
        if (n == null) return null;
        return n is JsonValue v && v.TryGetValue(out double d) ? d : throw new InvalidDataException($"{where}: field '{key ?? "value"}': expected a number");
    }

    private static IEnumerable<int> Ints(JsonNode? o, string key, string where) => o?[key] is JsonArray a
        ? a.Select((x, i) => x is JsonValue v && v.TryGetValue(out int n) ? n : throw new InvalidDataException($"{where}: field 'nemotron_gym.{key}[{i}]': expected an integer"))
        : [];
}
