using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Conversation;

/// <summary>
/// The markers of the chat format as they appear in decoded model text, and the one parser of an assistant turn.
/// The model's tokenizer gives each marker a special token of its own (text can never produce one); decoding writes
/// them back as these strings. See docs/architecture.md, "The chat format".
/// </summary>
public static class ChatFormat
{
    /// <summary>Ends every turn.</summary>
    public const string EndOfTurn = "<|end|>";
    /// <summary>Opens the assistant's reasoning.</summary>
    public const string ThinkOpen = "<think>";
    /// <summary>Closes the assistant's reasoning.</summary>
    public const string ThinkClose = "</think>";
    /// <summary>Opens a tool call: a JSON object {"name": ..., "arguments": {...}} follows.</summary>
    public const string ToolCallOpen = "<tool_call>";
    /// <summary>Closes a tool call.</summary>
    public const string ToolCallClose = "</tool_call>";

    /// <summary>
    /// Splits decoded assistant text into reasoning (inside &lt;think&gt;), visible content and tool calls. Model
    /// output is untrusted: this never throws; whatever cannot be parsed is reported in the turn's FormatErrors.
    /// </summary>
    internal static AssistantTurn ParseAssistant(string text, bool final)
    {
        var errors = new List<string>();
        string body = text;
        bool ended = false;
        int endAt = body.IndexOf(EndOfTurn, StringComparison.Ordinal);
        if (endAt >= 0)
        {
            ended = true;
            if (body.Length > endAt + EndOfTurn.Length && !string.IsNullOrWhiteSpace(body[(endAt + EndOfTurn.Length)..]))
                errors.Add("text after <|end|> was ignored");
            body = body[..endAt];
        }

        string? reasoning = null;
        string trimmed = body.TrimStart();
        if (trimmed.StartsWith(ThinkOpen, StringComparison.Ordinal))
        {
            int close = trimmed.IndexOf(ThinkClose, StringComparison.Ordinal);
            if (close < 0)
            {
                errors.Add("<think> is never closed");
                reasoning = trimmed[ThinkOpen.Length..];
                body = "";
            }
            else
            {
                reasoning = trimmed[ThinkOpen.Length..close];
                body = trimmed[(close + ThinkClose.Length)..];
            }
        }
        else if (body.Contains(ThinkClose, StringComparison.Ordinal))
            errors.Add("</think> without an opening <think>");

        var calls = new List<ToolCall>();
        var content = new StringBuilder();
        int pos = 0, index = 0;
        while (pos < body.Length)
        {
            int open = body.IndexOf(ToolCallOpen, pos, StringComparison.Ordinal);
            if (open < 0)
            {
                content.Append(body, pos, body.Length - pos);
                break;
            }
            content.Append(body, pos, open - pos);
            int close = body.IndexOf(ToolCallClose, open, StringComparison.Ordinal);
            string inner = close < 0 ? body[(open + ToolCallOpen.Length)..] : body[(open + ToolCallOpen.Length)..close];
            if (close < 0) errors.Add($"tool call {index}: <tool_call> is never closed");
            var call = ParseCall(inner, index, errors);
            if (call != null) calls.Add(call);
            index++;
            pos = close < 0 ? body.Length : close + ToolCallClose.Length;
        }
        return new AssistantTurn(text, content.ToString().Trim(), reasoning?.Trim(), calls, errors, final && !ended);
    }

    private static ToolCall? ParseCall(string inner, int index, List<string> errors)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(inner); }
        catch (JsonException e)
        {
            errors.Add($"tool call {index}: not valid JSON ({e.Message})");
            return null;
        }
        if (node is not JsonObject o)
        {
            errors.Add($"tool call {index}: expected a JSON object with \"name\" and \"arguments\"");
            return null;
        }
        if (o["name"] is not JsonValue nv || !nv.TryGetValue(out string? name) || string.IsNullOrWhiteSpace(name))
        {
            errors.Add($"tool call {index}: \"name\" is missing or not a string");
            return null;
        }
        JsonObject args;
        switch (o["arguments"])
        {
            case null: args = new JsonObject(); break;
            case JsonObject a: args = (JsonObject)a.DeepClone(); break;
            case JsonValue av when av.TryGetValue(out string? s):
                // Some models emit arguments as a JSON string; accept it when it holds an object.
                try
                {
                    if (JsonNode.Parse(s) is JsonObject parsed) { args = parsed; break; }
                    errors.Add($"tool call {index} ({name}): \"arguments\" must be an object");
                    return null;
                }
                catch (JsonException)
                {
                    errors.Add($"tool call {index} ({name}): \"arguments\" is a string that is not a JSON object");
                    return null;
                }
            default:
                errors.Add($"tool call {index} ({name}): \"arguments\" must be an object");
                return null;
        }
        return new ToolCall($"call_{index}", name, args);
    }
}
