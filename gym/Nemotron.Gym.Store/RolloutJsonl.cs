using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Store;

/// <summary>
/// Rollouts as JSONL in NeMo-Gym's rollout shape, one rollout per line:
/// <c>responses_create_params.input</c> (the prompt messages), <c>response.output</c> (the episode as Responses-API
/// items: <c>reasoning</c>, assistant <c>message</c>, <c>function_call</c>, <c>function_call_output</c>) and
/// <c>reward</c>. Our own fields (ids, tokens, generated mask, sampler log-probabilities, components, reason,
/// evidence, truncation, turns, timings and the exact messages) sit under <c>nemotron_gym</c>, so an export imports
/// back exactly while a NeMo-Gym reader sees the fields it knows.
/// </summary>
public static class RolloutJsonl
{
    /// <summary>The field that holds our own data on each line.</summary>
    public const string ExtrasField = "nemotron_gym";

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes one line per rollout.</summary>
    public static async Task ExportAsync(IAsyncEnumerable<StoredRollout> rollouts, TextWriter writer, CancellationToken ct = default)
    {
        var buffer = new ArrayBufferWriter<byte>();
        await foreach (var r in rollouts.WithCancellation(ct))
        {
            buffer.ResetWrittenCount();
            using (var json = new Utf8JsonWriter(buffer, WriterOptions)) WriteLine(json, r);
            await writer.WriteLineAsync(Encoding.UTF8.GetString(buffer.WrittenSpan).AsMemory(), ct);
        }
        await writer.FlushAsync(ct);
    }

    /// <summary>
    /// Reads rollouts from NeMo-Gym rollout lines. Lines we exported come back exactly; other NeMo-Gym lines get
    /// defaults: run id = the file's name without extension, step 0, task id from <c>_ng_task_index</c> or <c>id</c>
    /// (else "line-N"), sample index from <c>_ng_rollout_index</c> (else the how-many-th line of that task), environment
    /// from <c>agent_ref.name</c> (else "imported"), evidence = the line's other plain fields, truncated when
    /// <c>response.incomplete_details</c> is set, created at <c>response.created_at</c>, no tokens.
    /// A bad line throws <see cref="InvalidDataException"/> naming the file, line and field.
    /// </summary>
    public static async IAsyncEnumerable<StoredRollout> ImportAsync(TextReader reader, string fileName, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var samplesPerTask = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNo = 0;
        for (string? line = await reader.ReadLineAsync(ct); line != null; line = await reader.ReadLineAsync(ct))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var at = new Line($"{fileName}:{lineNo}");
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{at.Where}: not valid JSON ({e.Message})", e); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{at.Where}: expected a JSON object");
                yield return Read(doc.RootElement, at, lineNo, fileName, samplesPerTask);
            }
        }
    }

    // ---- export --------------------------------------------------------------------------------------------

    private static void WriteLine(Utf8JsonWriter w, StoredRollout r)
    {
        // The prompt is everything before the first assistant turn; the response is the rest.
        int split = 0;
        while (split < r.Messages.Count && r.Messages[split].Role != Role.Assistant) split++;

        w.WriteStartObject();
        w.WriteStartObject("responses_create_params");
        w.WriteStartArray("input");
        for (int i = 0; i < split; i++) WriteItems(w, r.Messages[i]);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("response");
        w.WriteStartArray("output");
        for (int i = split; i < r.Messages.Count; i++) WriteItems(w, r.Messages[i]);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WritePropertyName("reward");
        WriteNumber(w, r.Reward);

        w.WriteStartObject(ExtrasField);
        w.WriteString("run_id", r.RunId);
        w.WriteNumber("step", r.Step);
        w.WriteString("task_id", r.TaskId);
        w.WriteString("environment", r.Environment);
        w.WriteNumber("sample_index", r.SampleIndex);
        w.WritePropertyName("shaped_reward");
        WriteNumber(w, r.ShapedReward);
        w.WriteStartObject("components");
        foreach (var (k, v) in r.Components) { w.WritePropertyName(k); WriteNumber(w, v); }
        w.WriteEndObject();
        w.WriteString("reason", r.Reason);
        w.WriteStartObject("evidence");
        foreach (var (k, v) in r.Evidence) w.WriteString(k, v);
        w.WriteEndObject();
        w.WriteBoolean("truncated", r.Truncated);
        w.WriteNumber("turns", r.Turns);
        w.WritePropertyName("generate_seconds");
        WriteNumber(w, r.GenerateSeconds);
        w.WritePropertyName("environment_seconds");
        WriteNumber(w, r.EnvironmentSeconds);
        w.WriteString("created_at", r.CreatedAt.ToString("O", CultureInfo.InvariantCulture));
        // The exact messages: the items above are NeMo-Gym's view and lose details (tool-call JSON as written, empty parts).
        w.WriteStartArray("messages");
        foreach (var m in r.Messages)
        {
            w.WriteStartObject();
            w.WriteString("role", Message.RoleName(m.Role));
            w.WriteString("content", m.Content);
            if (m.Reasoning != null) w.WriteString("reasoning", m.Reasoning);
            if (m.ToolCalls is { Count: > 0 } calls) w.WriteString("tool_calls", StoredToolCalls.ToJson(calls));
            if (m.ToolCallId != null) w.WriteString("tool_call_id", m.ToolCallId);
            if (m.Name != null) w.WriteString("name", m.Name);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("tokens");
        foreach (int t in r.Tokens) w.WriteNumberValue(t);
        w.WriteEndArray();
        w.WriteStartArray("generated");
        foreach (byte g in r.Generated) w.WriteNumberValue(g);
        w.WriteEndArray();
        // Floats are written in a form that parses back to the same bits.
        w.WriteStartArray("sampler_logprobs");
        foreach (float p in r.SamplerLogProbs)
        {
            if (float.IsFinite(p)) w.WriteNumberValue(p);
            else w.WriteStringValue(NonFinite(p));
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    // One message as Responses-API items: an assistant turn may be reasoning + text + calls.
    private static void WriteItems(Utf8JsonWriter w, Message m)
    {
        switch (m.Role)
        {
            case Role.Assistant:
                var calls = m.ToolCalls ?? [];
                if (!string.IsNullOrEmpty(m.Reasoning))
                {
                    w.WriteStartObject();
                    w.WriteString("type", "reasoning");
                    w.WriteStartArray("summary");
                    w.WriteStartObject();
                    w.WriteString("type", "summary_text");
                    w.WriteString("text", m.Reasoning);
                    w.WriteEndObject();
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                if (m.Content.Length > 0 || calls.Count == 0)
                {
                    w.WriteStartObject();
                    w.WriteString("type", "message");
                    w.WriteString("role", "assistant");
                    w.WriteStartArray("content");
                    w.WriteStartObject();
                    w.WriteString("type", "output_text");
                    w.WriteString("text", m.Content);
                    w.WriteEndObject();
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                foreach (var call in calls)
                {
                    w.WriteStartObject();
                    w.WriteString("type", "function_call");
                    w.WriteString("call_id", call.Id);
                    w.WriteString("name", call.Name);
                    w.WriteString("arguments", call.ArgumentsJson);
                    w.WriteEndObject();
                }
                break;
            case Role.Tool:
                w.WriteStartObject();
                w.WriteString("type", "function_call_output");
                w.WriteString("call_id", m.ToolCallId ?? "");
                w.WriteString("output", m.Content);
                w.WriteEndObject();
                break;
            default:
                w.WriteStartObject();
                w.WriteString("type", "message");
                w.WriteString("role", Message.RoleName(m.Role));
                w.WriteString("content", m.Content);
                w.WriteEndObject();
                break;
        }
    }

    private static void WriteNumber(Utf8JsonWriter w, double value)
    {
        if (double.IsFinite(value)) w.WriteNumberValue(value);
        else w.WriteStringValue(NonFinite(value));
    }

    // JSON has no NaN or infinities: they travel as these strings and are read back by Line.Number.
    private static string NonFinite(double v) => double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";

    // ---- import --------------------------------------------------------------------------------------------

    /// <summary>
    /// A store keeps no NaN reward (<see cref="StoredRollout.CheckRewards"/>), so none is imported: the line is refused
    /// by number instead of failing inside the database or being stored as something else.
    /// </summary>
    private static double NotNaN(double value, Line at, string field) => double.IsNaN(value)
        ? throw new InvalidDataException($"{at.Where}: field '{field}': NaN is not a reward a rollout store keeps (a NaN reward is a failed grade): give a number or leave the line out")
        : value;

    private static StoredRollout Read(JsonElement o, Line at, int lineNo, string fileName, Dictionary<string, int> samplesPerTask)
    {
        double reward = NotNaN(at.Number(o, "reward", "reward") ?? throw at.Missing("reward"), at, "reward");
        var g = at.Object(o, ExtrasField, ExtrasField); // null on a plain NeMo-Gym line: every field below then has its default
        static string X(string key) => $"{ExtrasField}.{key}";
        var response = at.Object(o, "response", "response");

        var messages = at.Array(g, "messages", X("messages")) is { } ms ? ReadMessages(ms, at) : ReadItems(o, response, at);

        string taskId = at.String(g, "task_id", X("task_id"))
            ?? at.Int(o, "_ng_task_index", "_ng_task_index")?.ToString(CultureInfo.InvariantCulture)
            ?? IdText(o, at) ?? $"line-{lineNo}";
        int sample = at.Int(g, "sample_index", X("sample_index")) ?? at.Int(o, "_ng_rollout_index", "_ng_rollout_index")
            ?? NextSampleIndex(samplesPerTask, taskId);
        string environment = at.String(g, "environment", X("environment"))
            ?? at.String(at.Object(o, "agent_ref", "agent_ref"), "name", "agent_ref.name") ?? "imported";
        DateTimeOffset createdAt;
        if (at.String(g, "created_at", X("created_at")) is { } t)
            createdAt = DateTimeOffset.TryParseExact(t, "O", CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed) ? parsed : throw at.Bad(X("created_at"), "an ISO 8601 time");
        else
            createdAt = at.Number(response, "created_at", "response.created_at") is { } unix && double.IsFinite(unix)
                ? DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(unix * 1000)) : DateTimeOffset.UnixEpoch;
        bool truncated = at.Bool(g, "truncated", X("truncated"))
            ?? (response is { } r && r.TryGetProperty("incomplete_details", out var incomplete) && incomplete.ValueKind == JsonValueKind.Object);

        var components = new Dictionary<string, double>(StringComparer.Ordinal);
        if (at.Object(g, "components", X("components")) is { } comps)
            foreach (var p in comps.EnumerateObject()) components[p.Name] = at.Number(comps, p.Name, X($"components.{p.Name}")) ?? throw at.Bad(X($"components.{p.Name}"), "a number");
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal);
        if (at.Object(g, "evidence", X("evidence")) is { } ev)
            foreach (var p in ev.EnumerateObject()) evidence[p.Name] = at.String(ev, p.Name, X($"evidence.{p.Name}")) ?? throw at.Bad(X($"evidence.{p.Name}"), "a string");
        else if (g == null)
            // A NeMo-Gym verifier puts what it found (extracted answer, verdict, ...) beside the reward.
            foreach (var p in o.EnumerateObject())
                if (!KnownFields.Contains(p.Name) && !p.Name.StartsWith("_ng_", StringComparison.Ordinal) && Plain(p.Value) is { } text) evidence[p.Name] = text;

        int[] tokens = at.Array(g, "tokens", X("tokens")) is { } ta
            ? [.. ta.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : throw at.Bad(X($"tokens[{i}]"), "an integer"))]
            : [];
        byte[] generated = at.Array(g, "generated", X("generated")) is { } ga
            ? [.. ga.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.Number && e.TryGetByte(out byte v) && v <= 1 ? v : throw at.Bad(X($"generated[{i}]"), "0 or 1"))]
            : [];
        float[] logprobs = at.Array(g, "sampler_logprobs", X("sampler_logprobs")) is { } la
            ? [.. la.EnumerateArray().Select((e, i) => at.Single(e, X($"sampler_logprobs[{i}]")))]
            : [];
        if (generated.Length != tokens.Length || logprobs.Length != tokens.Length)
            throw new InvalidDataException($"{at.Where}: field '{X("tokens")}': {tokens.Length} tokens but {generated.Length} generated flags and {logprobs.Length} log-probabilities");

        return new StoredRollout
        {
            RunId = at.String(g, "run_id", X("run_id")) ?? Path.GetFileNameWithoutExtension(fileName),
            Step = at.Int(g, "step", X("step")) ?? 0,
            TaskId = taskId, Environment = environment, SampleIndex = sample,
            Tokens = tokens, Generated = generated, SamplerLogProbs = logprobs, Messages = messages,
            Reward = reward, ShapedReward = NotNaN(at.Number(g, "shaped_reward", X("shaped_reward")) ?? reward, at, X("shaped_reward")),
            Components = components, Reason = at.String(g, "reason", X("reason")) ?? "", Evidence = evidence,
            Truncated = truncated, Turns = at.Int(g, "turns", X("turns")) ?? messages.Count(m => m.Role == Role.Assistant),
            GenerateSeconds = at.Number(g, "generate_seconds", X("generate_seconds")) ?? 0,
            EnvironmentSeconds = at.Number(g, "environment_seconds", X("environment_seconds")) ?? 0,
            CreatedAt = createdAt,
        };
    }

    private static readonly HashSet<string> KnownFields = ["responses_create_params", "response", "reward", "agent_ref", "id", ExtrasField];

    // Without an explicit index, the n-th line of a task is its sample n (so the lines of a group stay distinct).
    private static int NextSampleIndex(Dictionary<string, int> counts, string taskId)
    {
        counts.TryGetValue(taskId, out int n);
        counts[taskId] = n + 1;
        return n;
    }

    private static string? IdText(JsonElement o, Line at) => o.TryGetProperty("id", out var id) ? id.ValueKind switch
    {
        JsonValueKind.String => id.GetString(),
        JsonValueKind.Number => id.GetRawText(),
        JsonValueKind.Null => null,
        _ => throw at.Bad("id", "a string or a number"),
    } : null;

    private static string? Plain(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => null,
    };

    private static List<Message> ReadMessages(JsonElement array, Line at)
    {
        var list = new List<Message>();
        int i = 0;
        foreach (var m in array.EnumerateArray())
        {
            string p = $"{ExtrasField}.messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw at.Bad(p, "an object");
            var role = at.Role(at.String(m, "role", p + ".role") ?? throw at.Missing(p + ".role"), p + ".role");
            var calls = StoredToolCalls.Parse(at.String(m, "tool_calls", p + ".tool_calls"));
            list.Add(new Message(role, at.String(m, "content", p + ".content") ?? "", at.String(m, "reasoning", p + ".reasoning"),
                calls.Count > 0 ? calls : null, at.String(m, "tool_call_id", p + ".tool_call_id"), at.String(m, "name", p + ".name")));
        }
        return list;
    }

    // A NeMo-Gym line without our extras: the conversation from the prompt items and the response items.
    private static List<Message> ReadItems(JsonElement o, JsonElement? response, Line at)
    {
        var messages = new List<Message>();
        var turn = new AssistantItems(messages);
        if (at.Object(o, "responses_create_params", "responses_create_params") is { } rcp)
        {
            if (rcp.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.String)
                messages.Add(Message.User(input.GetString()!));
            else if (at.Array(rcp, "input", "responses_create_params.input") is { } items)
                ReadItemList(items, "responses_create_params.input", turn, at);
        }
        if (response is { } r && at.Array(r, "output", "response.output") is { } output) ReadItemList(output, "response.output", turn, at);
        turn.Flush();
        return messages;
    }

    private static void ReadItemList(JsonElement items, string path, AssistantItems turn, Line at)
    {
        int i = 0;
        foreach (var item in items.EnumerateArray())
        {
            string p = $"{path}[{i++}]";
            if (item.ValueKind != JsonValueKind.Object) throw at.Bad(p, "an object");
            string type = at.String(item, "type", p + ".type") ?? "message";
            switch (type)
            {
                case "message":
                    string role = at.String(item, "role", p + ".role") ?? throw at.Missing(p + ".role");
                    string text = Text(item, p + ".content", at);
                    if (role == "assistant") turn.Text(text);
                    else turn.Other(new Message(role == "developer" ? Role.System : at.Role(role, p + ".role"), text));
                    break;
                case "reasoning":
                    var parts = new List<string>();
                    foreach (string key in new[] { "summary", "content" })
                        if (at.Array(item, key, $"{p}.{key}") is { } a)
                            foreach (var part in a.EnumerateArray())
                                if (part.ValueKind == JsonValueKind.Object && at.String(part, "text", $"{p}.{key}[].text") is { } t) parts.Add(t);
                    turn.Reasoning(string.Join("\n", parts));
                    break;
                case "function_call":
                    string arguments = at.String(item, "arguments", p + ".arguments") ?? "{}";
                    turn.Call(new ToolCall(at.String(item, "call_id", p + ".call_id") ?? "", at.String(item, "name", p + ".name") ?? throw at.Missing(p + ".name"),
                        StoredToolCalls.Arguments(JsonValue.Create(arguments))));
                    break;
                case "function_call_output":
                    string outputText = item.TryGetProperty("output", out var output) && output.ValueKind != JsonValueKind.String ? output.GetRawText()
                        : at.String(item, "output", p + ".output") ?? "";
                    turn.Other(new Message(Role.Tool, outputText, ToolCallId: at.String(item, "call_id", p + ".call_id")));
                    break;
                // Other item kinds (web search calls, images, ...) have no message of ours.
            }
        }
    }

    // Content as a string, or as parts whose texts are joined.
    private static string Text(JsonElement item, string path, Line at)
    {
        if (!item.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw at.Bad(path, "a string or a list of parts");
        var sb = new StringBuilder();
        int i = 0;
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind == JsonValueKind.Object && at.String(part, "text", $"{path}[{i}].text") is { } t) sb.Append(t);
            i++;
        }
        return sb.ToString();
    }

    // Gathers the items of one assistant turn (reasoning, text, calls) into one message, as they were exported.
    private sealed class AssistantItems(List<Message> messages)
    {
        private string? _reasoning, _text;
        private List<ToolCall>? _calls;
        private bool _open;

        public void Reasoning(string text)
        {
            if (_open && (_text != null || _calls != null)) Flush();
            _reasoning = _reasoning == null ? text : _reasoning + "\n" + text;
            _open = true;
        }

        public void Text(string text)
        {
            if (_open && (_text != null || _calls != null)) Flush();
            _text = text;
            _open = true;
        }

        public void Call(ToolCall call)
        {
            (_calls ??= []).Add(call);
            _open = true;
        }

        public void Other(Message m)
        {
            Flush();
            messages.Add(m);
        }

        public void Flush()
        {
            if (!_open) return;
            messages.Add(Message.Assistant(_text ?? "", string.IsNullOrEmpty(_reasoning) ? null : _reasoning, _calls));
            (_reasoning, _text, _calls, _open) = (null, null, null, false);
        }
    }

    // Reads fields of one line; every error names the file, line and field.
    private readonly record struct Line(string Where)
    {
        public InvalidDataException Bad(string field, string expected) => new($"{Where}: field '{field}': expected {expected}");
        public InvalidDataException Missing(string field) => new($"{Where}: field '{field}' is required");

        public Role Role(string name, string field) => Message.TryParseRole(name, out var role) ? role : throw Bad(field, "system, user, assistant or tool");

        // A missing object (no nemotron_gym on the line), a missing field and a null field all read as absent.
        private static bool Absent(JsonElement? o, string key, out JsonElement value)
        {
            value = default;
            return o is not { } obj || !obj.TryGetProperty(key, out value) || value.ValueKind == JsonValueKind.Null;
        }

        public string? String(JsonElement? o, string key, string field) =>
            Absent(o, key, out var v) ? null : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(field, "a string");

        public double? Number(JsonElement? o, string key, string field)
        {
            if (Absent(o, key, out var v)) return null;
            if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
            return v.ValueKind == JsonValueKind.String && ParseNonFinite(v.GetString()) is { } d ? d : throw Bad(field, "a number");
        }

        public float Single(JsonElement v, string field)
        {
            if (v.ValueKind == JsonValueKind.Number && v.TryGetSingle(out float f) && float.IsFinite(f)) return f;
            return v.ValueKind == JsonValueKind.String && ParseNonFinite(v.GetString()) is { } d ? (float)d : throw Bad(field, "a number");
        }

        public int? Int(JsonElement? o, string key, string field) =>
            Absent(o, key, out var v) ? null : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n : throw Bad(field, "an integer");

        public bool? Bool(JsonElement? o, string key, string field) => Absent(o, key, out var v) ? null : v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(field, "true or false"),
        };

        public JsonElement? Object(JsonElement? o, string key, string field) =>
            Absent(o, key, out var v) ? null : v.ValueKind == JsonValueKind.Object ? v : throw Bad(field, "an object");

        public JsonElement? Array(JsonElement? o, string key, string field) =>
            Absent(o, key, out var v) ? null : v.ValueKind == JsonValueKind.Array ? v : throw Bad(field, "a list");

        private static double? ParseNonFinite(string? s) => s switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            _ => null,
        };
    }
}
