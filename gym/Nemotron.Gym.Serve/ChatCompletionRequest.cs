using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model.Chat;

namespace Nemotron.Gym.Serve;

/// <summary>A request the server refuses: the HTTP status, OpenAI's error type, and the field at fault.</summary>
public sealed class ServeRequestException(int status, string message, string? param = null, string type = "invalid_request_error")
    : Exception(message)
{
    /// <summary>HTTP status to answer with.</summary>
    public int Status { get; } = status;
    /// <summary>The request field at fault, when one is.</summary>
    public string? Param { get; } = param;
    /// <summary>OpenAI's error type (invalid_request_error, authentication_error, ...).</summary>
    public string Type { get; } = type;
}

/// <summary>
/// A POST /v1/chat/completions body, read field by field so that every refusal names its field. Fields this
/// server has no use for (user, metadata, tool_choice, ...) are accepted and ignored, as most
/// OpenAI-compatible servers do; fields that would change the output in a way it cannot honour
/// (penalties, logit_bias) are refused rather than silently dropped.
/// </summary>
public sealed record ChatCompletionRequest(
    string? Model,
    ChatTranscript Conversation,
    int Choices,
    SamplingParams Sampling,
    int? Seed,
    int? MaxTokens,
    IReadOnlyList<string> Stop,
    bool Logprobs,
    int TopLogprobs,
    bool Stream,
    bool IncludeUsage)
{
    /// <summary>Parses and checks a request body.</summary>
    public static ChatCompletionRequest Parse(JsonNode? body, ServeOptions limits, int maxBatch)
    {
        if (body is not JsonObject o) throw Bad("the request body must be a JSON object");
        string? model = OptionalString(o, "model");
        var conversation = ParseConversation(o);

        int n = OptionalInt(o, "n") ?? 1;
        if (n < 1 || n > maxBatch) throw Bad($"n must be between 1 and {maxBatch} (this server's batch), got {n}", "n");

        float temperature = OptionalFloat(o, "temperature") ?? 1f;
        if (!(temperature >= 0f && temperature <= 2f)) throw Bad($"temperature must be between 0 and 2, got {temperature}", "temperature");
        float topP = OptionalFloat(o, "top_p") ?? 1f;
        if (!(topP > 0f && topP <= 1f)) throw Bad($"top_p must be in (0, 1], got {topP}", "top_p");

        int? seed = null;
        if (o["seed"] is { } seedNode)
        {
            if (seedNode is not JsonValue sv || !sv.TryGetValue(out long s) || s < int.MinValue || s > int.MaxValue)
                throw Bad($"seed must be an integer between {int.MinValue} and {int.MaxValue}, got {seedNode.ToJsonString()}", "seed");
            seed = (int)s;
        }

        // max_completion_tokens is the newer name (the OpenAI .NET library sends it); max_tokens the older.
        string maxField = o.ContainsKey("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        int? maxTokens = OptionalInt(o, maxField);
        if (maxTokens is < 1) throw Bad($"{maxField} must be >= 1, got {maxTokens}", maxField);
        if (maxTokens > limits.MaxTokensLimit && limits.MaxTokensLimit > 0)
            throw Bad($"{maxField} is {maxTokens}; this server allows at most {limits.MaxTokensLimit}", maxField);

        var stop = new List<string>();
        switch (o["stop"])
        {
            case null: break;
            case JsonValue v when v.TryGetValue(out string? one): stop.Add(one); break;
            case JsonArray a:
                foreach (var item in a)
                    stop.Add(item is JsonValue iv && iv.TryGetValue(out string? s) ? s : throw Bad("stop must be a string or an array of strings", "stop"));
                break;
            default: throw Bad("stop must be a string or an array of strings", "stop");
        }
        if (stop.Count > 4) throw Bad($"stop holds {stop.Count} strings; at most 4 are allowed", "stop");
        if (stop.Any(string.IsNullOrEmpty)) throw Bad("stop strings must not be empty", "stop");

        bool logprobs = OptionalBool(o, "logprobs") ?? false;
        int topLogprobs = OptionalInt(o, "top_logprobs") ?? 0;
        if (topLogprobs < 0 || topLogprobs > limits.MaxTopLogprobs)
            throw Bad($"top_logprobs must be between 0 and {limits.MaxTopLogprobs}, got {topLogprobs}", "top_logprobs");
        if (topLogprobs > 0 && !logprobs) throw Bad("top_logprobs requires logprobs: true", "top_logprobs");

        bool stream = OptionalBool(o, "stream") ?? false;
        bool includeUsage = false;
        if (o["stream_options"] is JsonObject so) includeUsage = OptionalBool(so, "include_usage", "stream_options.include_usage") ?? false;
        else if (o["stream_options"] is not null) throw Bad("stream_options must be an object", "stream_options");

        foreach (var penalty in new[] { "frequency_penalty", "presence_penalty" })
            if ((OptionalFloat(o, penalty) ?? 0f) != 0f) throw Bad($"{penalty} is not supported by this server (only 0)", penalty);
        if (o["logit_bias"] is JsonObject bias && bias.Count > 0) throw Bad("logit_bias is not supported by this server", "logit_bias");

        return new ChatCompletionRequest(model, conversation, n, new SamplingParams(temperature, 0, topP), seed, maxTokens, stop,
            logprobs, topLogprobs, stream, includeUsage);
    }

    private static ChatTranscript ParseConversation(JsonObject o)
    {
        if (o["messages"] is not JsonArray messages || messages.Count == 0)
            throw Bad("messages must be a non-empty array", "messages");
        var list = new List<Message>();
        for (int i = 0; i < messages.Count; i++)
        {
            string at = $"messages[{i}]";
            if (messages[i] is not JsonObject m) throw Bad($"{at} must be an object", at);
            string roleName = OptionalString(m, "role", $"{at}.role") ?? throw Bad($"{at}.role is missing", $"{at}.role");
            if (roleName == "developer") roleName = "system"; // the newer name for the same turn
            if (!Message.TryParseRole(roleName, out var role))
                throw Bad($"{at}.role '{roleName}' is not one of system, user, assistant, tool", $"{at}.role");
            if (role == Role.System && i != 0) throw Bad($"{at}: a system message may only come first", $"{at}.role");
            string content = Content(m["content"], $"{at}.content");
            string? reasoning = OptionalString(m, "reasoning_content", $"{at}.reasoning_content");
            List<ToolCall>? calls = null;
            if (m["tool_calls"] is JsonArray callArray && role == Role.Assistant)
            {
                calls = new List<ToolCall>();
                for (int k = 0; k < callArray.Count; k++)
                {
                    string cat = $"{at}.tool_calls[{k}]";
                    if (callArray[k] is not JsonObject c || c["function"] is not JsonObject f)
                        throw Bad($"{cat} must be an object with a \"function\" object", cat);
                    string name = OptionalString(f, "name", $"{cat}.function.name") ?? throw Bad($"{cat}.function.name is missing", $"{cat}.function.name");
                    string args = OptionalString(f, "arguments", $"{cat}.function.arguments") ?? "{}";
                    JsonObject parsed;
                    try
                    {
                        parsed = JsonNode.Parse(args) as JsonObject ?? throw Bad($"{cat}.function.arguments must be a JSON object", $"{cat}.function.arguments");
                    }
                    catch (JsonException e) { throw Bad($"{cat}.function.arguments is not valid JSON ({e.Message})", $"{cat}.function.arguments"); }
                    calls.Add(new ToolCall(OptionalString(c, "id", $"{cat}.id") ?? $"call_{k}", name, parsed));
                }
            }
            else if (m["tool_calls"] is not null and not JsonArray) throw Bad($"{at}.tool_calls must be an array", $"{at}.tool_calls");
            list.Add(new Message(role, content, reasoning, calls, OptionalString(m, "tool_call_id", $"{at}.tool_call_id"), OptionalString(m, "name", $"{at}.name")));
        }

        List<ToolDefinition>? tools = null;
        if (o["tools"] is JsonArray toolArray)
        {
            tools = new List<ToolDefinition>();
            for (int k = 0; k < toolArray.Count; k++)
            {
                string at = $"tools[{k}]";
                if (toolArray[k] is not JsonObject t || t["function"] is not JsonObject f)
                    throw Bad($"{at} must be {{\"type\": \"function\", \"function\": {{...}}}}", at);
                string name = OptionalString(f, "name", $"{at}.function.name") ?? throw Bad($"{at}.function.name is missing", $"{at}.function.name");
                // The chat template shows tools as the models were trained on them (the Responses API shape).
                tools.Add(new ToolDefinition(name, OptionalString(f, "description", $"{at}.function.description") ?? "",
                    f["parameters"] is JsonObject parameters ? (JsonObject)parameters.DeepClone() : new JsonObject()));
            }
        }
        else if (o["tools"] is not null) throw Bad("tools must be an array", "tools");
        return new ChatTranscript(list, tools);
    }

    /// <summary>Message content: a string, null, or an array of {"type": "text", "text": ...} parts.</summary>
    private static string Content(JsonNode? node, string at)
    {
        switch (node)
        {
            case null: return "";
            case JsonValue v when v.TryGetValue(out string? s): return s;
            case JsonArray parts:
                var text = new System.Text.StringBuilder();
                for (int i = 0; i < parts.Count; i++)
                {
                    if (parts[i] is not JsonObject p || OptionalString(p, "type", $"{at}[{i}].type") is not { } type)
                        throw Bad($"{at}[{i}] must be an object with a \"type\"", $"{at}[{i}]");
                    if (type != "text") throw Bad($"{at}[{i}]: content parts of type '{type}' are not supported (only text)", $"{at}[{i}].type");
                    text.Append(OptionalString(p, "text", $"{at}[{i}].text") ?? "");
                }
                return text.ToString();
            default: throw Bad($"{at} must be a string or an array of text parts", at);
        }
    }

    private static ServeRequestException Bad(string message, string? param = null) => new(400, message, param);

    private static string? OptionalString(JsonObject o, string key, string? path = null)
    {
        var node = o[key];
        if (node is null) return null;
        return node is JsonValue v && v.TryGetValue(out string? s) ? s : throw Bad($"{path ?? key} must be a string", path ?? key);
    }

    private static int? OptionalInt(JsonObject o, string key)
    {
        var node = o[key];
        if (node is null) return null;
        if (node is JsonValue v && v.TryGetValue(out long l) && l is >= int.MinValue and <= int.MaxValue) return (int)l;
        if (node is JsonValue d && d.TryGetValue(out double x) && x == Math.Floor(x) && x is >= int.MinValue and <= int.MaxValue) return (int)x;
        throw Bad($"{key} must be an integer, got {node.ToJsonString()}", key);
    }

    private static float? OptionalFloat(JsonObject o, string key)
    {
        var node = o[key];
        if (node is null) return null;
        return node is JsonValue v && v.TryGetValue(out double d) ? (float)d : throw Bad($"{key} must be a number, got {node.ToJsonString()}", key);
    }

    private static bool? OptionalBool(JsonObject o, string key, string? path = null)
    {
        var node = o[key];
        if (node is null) return null;
        return node is JsonValue v && v.TryGetValue(out bool b) ? b : throw Bad($"{path ?? key} must be true or false", path ?? key);
    }
}
