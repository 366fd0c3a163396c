using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Model.Tokenization;

/// <summary>
/// Turns text into token ids and back. Special tokens (roles, end of turn, &lt;think&gt;, tool calls) have
/// ids of their own that plain text can never produce: <see cref="Encode"/> treats "&lt;|end|&gt;" typed in
/// text as ordinary characters, so user or model text cannot forge a turn boundary.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of ids, special tokens included.</summary>
    int VocabSize { get; }

    /// <summary>The special tokens and their ids.</summary>
    SpecialTokens Specials { get; }

    /// <summary>Encodes plain text (no special tokens are recognized).</summary>
    List<int> Encode(string text);

    /// <summary>Appends the encoding of <paramref name="text"/> to <paramref name="ids"/>.</summary>
    void EncodeTo(string text, List<int> ids);

    /// <summary>Decodes ids to text; special tokens appear as their strings ("&lt;|end|&gt;").</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>The description saved beside a checkpoint (tokenizer.json) that <see cref="TokenizerFactory.FromJson"/> reads back.</summary>
    JsonObject ToJson();
}

/// <summary>Reads and writes tokenizer descriptions.</summary>
public static class TokenizerFactory
{
    /// <summary>Builds a tokenizer by kind: "byte" (default), "cl100k_base" or "o200k_base".</summary>
    public static ITokenizer Create(string kind) => kind switch
    {
        "byte" => new ByteTokenizer(),
        "cl100k_base" or "o200k_base" => new BpeTokenizer(kind),
        _ => throw new ArgumentException($"tokenizer: unknown kind '{kind}' (expected byte, cl100k_base or o200k_base)"),
    };

    /// <summary>Rebuilds a tokenizer from its saved description; <paramref name="source"/> names the file for errors.</summary>
    public static ITokenizer FromJson(JsonObject json, string source)
    {
        string kind = json["kind"]?.GetValue<string>() ?? throw new InvalidDataException($"{source}: tokenizer description has no 'kind'");
        var tokenizer = Create(kind);
        // The special-token table is part of the contract with the weights: refuse a mismatch.
        var saved = json["specials"]?.ToJsonString();
        var expected = tokenizer.ToJson()["specials"]?.ToJsonString();
        if (saved != expected)
            throw new InvalidDataException($"{source}: special tokens {saved} differ from this build's {expected}");
        return tokenizer;
    }

    /// <summary>Reads tokenizer.json.</summary>
    public static ITokenizer Load(string path)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
        return FromJson(node as JsonObject ?? throw new InvalidDataException($"{path}: expected a JSON object"), path);
    }
}
