namespace Nemotron.Gym.Model;

/// <summary>Where one named parameter sits in the flat parameter buffer.</summary>
/// <param name="Name">Checkpoint name, e.g. "h.2.mlp.fc.weight".</param>
/// <param name="Offset">First element in the flat buffer.</param>
/// <param name="Shape">Dimensions, row-major.</param>
/// <param name="Decay">Whether AdamW weight decay applies (matrices and embeddings yes, norm gains no).</param>
public sealed record ParameterSlot(string Name, long Offset, int[] Shape, bool Decay)
{
    /// <summary>Element count.</summary>
    public long Length => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// All parameters live in one buffer (so the optimizer, gradient norm and checkpoints each make one
/// pass). This fixes their order and offsets.
/// </summary>
public sealed class ParameterLayout
{
    /// <summary>Lays out the parameters of a model of this shape.</summary>
    public ParameterLayout(GptConfig config)
    {
        int c = config.Width;
        long offset = 0;
        var slots = new List<ParameterSlot>();
        ParameterSlot Add(string name, bool decay, params int[] shape)
        {
            var s = new ParameterSlot(name, offset, shape, decay);
            offset += s.Length;
            slots.Add(s);
            return s;
        }
        TokenTable = Add("wte", true, config.PaddedVocab, c);
        PositionTable = Add("wpe", true, config.Context, c);
        var layers = new LayerSlots[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            layers[l] = new LayerSlots(
                Add($"h.{l}.ln1.weight", false, c),
                Add($"h.{l}.attn.qkv.weight", true, 3 * c, c),
                Add($"h.{l}.attn.proj.weight", true, c, c),
                Add($"h.{l}.ln2.weight", false, c),
                Add($"h.{l}.mlp.fc.weight", true, 4 * c, c),
                Add($"h.{l}.mlp.proj.weight", true, c, 4 * c));
        }
        Layers = layers;
        FinalNorm = Add("ln_f.weight", false, c);
        Slots = slots;
        Total = offset;
    }

    /// <summary>Every parameter in buffer order.</summary>
    public IReadOnlyList<ParameterSlot> Slots { get; }
    /// <summary>Elements in the buffer.</summary>
    public long Total { get; }
    /// <summary>Token embedding, also the LM head.</summary>
    public ParameterSlot TokenTable { get; }
    /// <summary>Position embedding.</summary>
    public ParameterSlot PositionTable { get; }
    /// <summary>Per-block parameters.</summary>
    public IReadOnlyList<LayerSlots> Layers { get; }
    /// <summary>Final RMSNorm gain.</summary>
    public ParameterSlot FinalNorm { get; }
}

/// <summary>The parameters of one transformer block.</summary>
public sealed record LayerSlots(ParameterSlot Norm1, ParameterSlot Qkv, ParameterSlot AttnProj, ParameterSlot Norm2, ParameterSlot Fc, ParameterSlot FcProj);
