using System.Text.Json.Nodes;

namespace Nemotron.Gym.Model.Tokenization;

/// <summary>
/// The special tokens every tokenizer of ours carries, in this order, right after its ordinary ids.
/// </summary>
public sealed class SpecialTokens
{
    /// <summary>The special token strings, in id order.</summary>
    public static readonly string[] Names =
    [
        "<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>",
        "<think>", "</think>", "<tool_call>", "</tool_call>",
    ];

    private readonly Dictionary<string, int> _byName;

    /// <summary>Assigns ids firstId, firstId+1, ... to <see cref="Names"/>.</summary>
    public SpecialTokens(int firstId)
    {
        FirstId = firstId;
        _byName = Names.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => firstId + x.i);
    }

    /// <summary>Id of the first special token.</summary>
    public int FirstId { get; }
    /// <summary>One past the last special id.</summary>
    public int EndId => FirstId + Names.Length;

    /// <summary>Document separator in pretraining, and the generic stop token.</summary>
    public int EndOfText => _byName["<|endoftext|>"];
    /// <summary>Padding (never trained on).</summary>
    public int Pad => _byName["<|pad|>"];
    /// <summary>Opens a system turn.</summary>
    public int System => _byName["<|system|>"];
    /// <summary>Opens a user turn.</summary>
    public int User => _byName["<|user|>"];
    /// <summary>Opens an assistant turn.</summary>
    public int Assistant => _byName["<|assistant|>"];
    /// <summary>Opens a tool-result turn.</summary>
    public int Tool => _byName["<|tool|>"];
    /// <summary>Ends any turn.</summary>
    public int EndOfTurn => _byName["<|end|>"];
    /// <summary>Opens the reasoning block of an assistant turn.</summary>
    public int ThinkStart => _byName["<think>"];
    /// <summary>Closes the reasoning block.</summary>
    public int ThinkEnd => _byName["</think>"];
    /// <summary>Opens a tool call (a JSON object with name and arguments).</summary>
    public int ToolCallStart => _byName["<tool_call>"];
    /// <summary>Closes a tool call.</summary>
    public int ToolCallEnd => _byName["</tool_call>"];

    /// <summary>True when the id is a special token.</summary>
    public bool IsSpecial(int id) => id >= FirstId && id < EndId;

    /// <summary>The string of a special id.</summary>
    public string NameOf(int id) => Names[id - FirstId];

    /// <summary>The id of a special token string, if it is one.</summary>
    public bool TryGetId(string name, out int id) => _byName.TryGetValue(name, out id);

    /// <summary>For tokenizer.json.</summary>
    public JsonObject ToJson() => new() { ["first_id"] = FirstId, ["names"] = new JsonArray(Names.Select(n => (JsonNode)n).ToArray()) };
}
