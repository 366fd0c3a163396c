using System.Text;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Model.Tokenization;

/// <summary>
/// The default tokenizer: ids 0..255 are the bytes of the UTF-8 text, then the special tokens.
/// No vocabulary file, nothing to download, and any string round-trips.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    /// <summary>A byte tokenizer with the standard special tokens at 256..</summary>
    public ByteTokenizer() => Specials = new SpecialTokens(256);

    /// <inheritdoc />
    public int VocabSize => Specials.EndId;

    /// <inheritdoc />
    public SpecialTokens Specials { get; }

    /// <inheritdoc />
    public List<int> Encode(string text)
    {
        var ids = new List<int>(text.Length);
        EncodeTo(text, ids);
        return ids;
    }

    /// <inheritdoc />
    public void EncodeTo(string text, List<int> ids)
    {
        foreach (var b in Encoding.UTF8.GetBytes(text)) ids.Add(b);
    }

    /// <inheritdoc />
    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(ids.Length);
        var bytes = new List<byte>();
        void Flush()
        {
            if (bytes.Count == 0) return;
            sb.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
        foreach (int id in ids)
        {
            if (id is >= 0 and < 256) bytes.Add((byte)id);
            else
            {
                Flush();
                sb.Append(Specials.IsSpecial(id) ? Specials.NameOf(id) : $"<|unk:{id}|>");
            }
        }
        Flush();
        return sb.ToString();
    }

    /// <inheritdoc />
    public JsonObject ToJson() => new() { ["kind"] = "byte", ["specials"] = Specials.ToJson() };
}
