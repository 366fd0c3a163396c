using System.Text;
using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Model.Sampling;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Serve;

/// <summary>
/// One choice of a completion as it grows: its tokens and their log-probabilities, and what of it has
/// been streamed. The text is split by the chat format (<see cref="AssistantTurn.Parse"/>): reasoning
/// inside &lt;think&gt; becomes reasoning_content, &lt;tool_call&gt; JSON becomes OpenAI tool calls, the rest
/// is content. Streaming sends what the parse of the text so far adds to what was already sent.
/// </summary>
internal sealed class ChoiceOutput(int index, ITokenizer tokenizer, IReadOnlySet<int> stopTokens, IReadOnlyList<string> stopStrings, string callIdPrefix)
{
    private readonly List<int> _tokens = new();
    private readonly JsonArray _logprobs = new();
    private int _logprobsSent;
    private string _reasoningSent = "", _contentSent = "";
    private int _callsSent;

    public int Index => index;
    public int TokenCount => _tokens.Count;
    public FinishReason? Finish { get; private set; }
    public string? StopText { get; private set; }

    public void Add(ChoiceToken t, bool withLogprobs)
    {
        _tokens.Add(t.Token);
        if (!withLogprobs) return;
        var entry = TokenEntry(t.Token, t.LogProb);
        entry["top_logprobs"] = new JsonArray((t.Top ?? []).Select(a => (JsonNode)TokenEntry(a.Token, a.LogProb)).ToArray());
        _logprobs.Add(entry);
    }

    public void Finished(ChoiceFinished f)
    {
        Finish = f.Finish;
        StopText = f.StopText;
    }

    private JsonObject TokenEntry(int token, float logProb)
    {
        string text = tokenizer.Decode([token]);
        // A byte token can be part of a multi-byte character: its bytes say exactly what it is.
        byte[] bytes = tokenizer is ByteTokenizer && token < 256 ? [(byte)token] : Encoding.UTF8.GetBytes(text);
        return new JsonObject
        {
            ["token"] = text, ["logprob"] = logProb,
            ["bytes"] = new JsonArray(bytes.Select(b => (JsonNode)(int)b).ToArray()),
        };
    }

    /// <summary>
    /// The text to parse: cut at a stop string that ended the choice; while it runs, held back where it
    /// ends inside a multi-byte character or with the start of a stop string, which may still be cut.
    /// </summary>
    private string VisibleText(bool final)
    {
        // A stop token is always the last one and no part of the message (<|endoftext|> would show as text).
        var tokens = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_tokens);
        if (tokens.Length > 0 && stopTokens.Contains(tokens[^1])) tokens = tokens[..^1];
        string text = tokenizer.Decode(tokens);
        if (StopText != null && text.IndexOf(StopText, StringComparison.Ordinal) is int at and >= 0) return text[..at];
        if (final) return text;
        int keep = text.Length;
        // The token that completes a stop string can arrive a moment before the finish that names it.
        foreach (var stop in stopStrings)
            if (text.IndexOf(stop, StringComparison.Ordinal) is int found and >= 0) keep = Math.Min(keep, found);
        while (keep > 0 && text[keep - 1] == '\uFFFD') keep--;
        foreach (var stop in stopStrings)
            for (int len = Math.Min(stop.Length - 1, keep); len > 0; len--)
                if (string.CompareOrdinal(text, keep - len, stop, 0, len) == 0) { keep -= len; break; }
        return text[..keep];
    }

    /// <summary>The whole message, for a non-streamed response.</summary>
    public JsonObject Message()
    {
        var parsed = AssistantTurn.Parse(VisibleText(final: true));
        var message = new JsonObject { ["role"] = "assistant", ["content"] = parsed.Content };
        if (parsed.Reasoning != null) message["reasoning_content"] = parsed.Reasoning;
        if (parsed.ToolCalls.Count > 0)
            message["tool_calls"] = new JsonArray(parsed.ToolCalls.Select((c, i) => (JsonNode)ToolCallJson(c, i, withIndex: false)).ToArray());
        return message;
    }

    /// <summary>OpenAI's finish_reason: tool_calls when the turn ended by calling tools.</summary>
    public string FinishReasonText() => Finish switch
    {
        FinishReason.Stop => StopText == null && AssistantTurn.Parse(VisibleText(final: true)).ToolCalls.Count > 0 ? "tool_calls" : "stop",
        FinishReason.Length or FinishReason.Context => "length",
        _ => throw new InvalidOperationException("the choice has not finished"),
    };

    public JsonObject? Logprobs(bool requested) => requested ? new JsonObject { ["content"] = _logprobs.DeepClone() } : null;

    /// <summary>What the text so far adds to what was streamed (null when nothing), with the logprobs of the new tokens.</summary>
    public JsonObject? NextDelta(bool final, bool withLogprobs)
    {
        var parsed = AssistantTurn.Parse(VisibleText(final));
        var delta = new JsonObject();
        if (parsed.Reasoning is { } reasoning && reasoning.Length > _reasoningSent.Length && reasoning.StartsWith(_reasoningSent, StringComparison.Ordinal))
        {
            delta["reasoning_content"] = reasoning[_reasoningSent.Length..];
            _reasoningSent = reasoning;
        }
        if (parsed.Content.Length > _contentSent.Length && parsed.Content.StartsWith(_contentSent, StringComparison.Ordinal))
        {
            delta["content"] = parsed.Content[_contentSent.Length..];
            _contentSent = parsed.Content;
        }
        if (parsed.ToolCalls.Count > _callsSent)
        {
            delta["tool_calls"] = new JsonArray(parsed.ToolCalls.Skip(_callsSent).Select((c, i) => (JsonNode)ToolCallJson(c, _callsSent + i, withIndex: true)).ToArray());
            _callsSent = parsed.ToolCalls.Count;
        }
        JsonObject? logprobs = null;
        if (withLogprobs && _logprobs.Count > _logprobsSent)
        {
            logprobs = new JsonObject { ["content"] = new JsonArray(_logprobs.Skip(_logprobsSent).Select(n => n!.DeepClone()).ToArray()) };
            _logprobsSent = _logprobs.Count;
        }
        if (delta.Count == 0 && logprobs == null) return null;
        var choice = new JsonObject { ["index"] = index, ["delta"] = delta, ["logprobs"] = logprobs, ["finish_reason"] = null };
        return choice;
    }

    private JsonObject ToolCallJson(ToolCall call, int i, bool withIndex)
    {
        var o = new JsonObject();
        if (withIndex) o["index"] = i;
        o["id"] = $"{callIdPrefix}_{index}_{i}";
        o["type"] = "function";
        o["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.ArgumentsJson };
        return o;
    }
}
