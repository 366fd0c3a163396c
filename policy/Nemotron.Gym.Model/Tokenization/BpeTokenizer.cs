using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace Nemotron.Gym.Model.Tokenization;

/// <summary>
/// A byte-pair-encoding vocabulary from Microsoft.ML.Tokenizers (cl100k_base or o200k_base, shipped in
/// their data packages), for larger models. Our special tokens follow its ordinary ids.
/// </summary>
public sealed class BpeTokenizer : ITokenizer
{
    private readonly Tokenizer _bpe;
    private readonly string _encoding;
    private readonly int _ordinary;

    /// <summary>Loads the named encoding.</summary>
    public BpeTokenizer(string encoding)
    {
        _encoding = encoding;
        _bpe = TiktokenTokenizer.CreateForEncoding(encoding);
        // Ids the encoding itself uses, special ones included; ours start after the largest.
        _ordinary = encoding switch { "cl100k_base" => 100_277, "o200k_base" => 200_019, _ => throw new ArgumentException($"unknown encoding {encoding}") };
        Specials = new SpecialTokens(_ordinary);
    }

    /// <inheritdoc />
    public int VocabSize => Specials.EndId;

    /// <inheritdoc />
    public SpecialTokens Specials { get; }

    /// <inheritdoc />
    public List<int> Encode(string text) => _bpe.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true).ToList();

    /// <inheritdoc />
    public void EncodeTo(string text, List<int> ids) => ids.AddRange(Encode(text));

    /// <inheritdoc />
    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder();
        var run = new List<int>();
        void Flush()
        {
            if (run.Count == 0) return;
            sb.Append(_bpe.Decode(run));
            run.Clear();
        }
        foreach (int id in ids)
        {
            if (Specials.IsSpecial(id)) { Flush(); sb.Append(Specials.NameOf(id)); }
            else if (id >= 0 && id < _ordinary) run.Add(id);
            else { Flush(); sb.Append($"<|unk:{id}|>"); }
        }
        Flush();
        return sb.ToString();
    }

    /// <inheritdoc />
    public JsonObject ToJson() => new() { ["kind"] = _encoding, ["specials"] = Specials.ToJson() };
}
