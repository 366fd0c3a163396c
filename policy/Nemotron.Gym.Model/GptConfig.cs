using System.Text.Json.Nodes;

namespace Nemotron.Gym.Model;

/// <summary>
/// Shape of a GPT-style decoder: pre-norm blocks (RMSNorm → causal attention → residual, RMSNorm → GELU MLP
/// of width 4C → residual), learned token and position embeddings, a final RMSNorm and an LM head tied to
/// the token table. No biases.
/// </summary>
/// <param name="Layers">Transformer blocks.</param>
/// <param name="Width">Channels C.</param>
/// <param name="Heads">Attention heads; must divide <paramref name="Width"/>.</param>
/// <param name="Context">Longest sequence (positions 0..Context-1).</param>
/// <param name="Vocab">Token ids the tokenizer produces.</param>
public sealed record GptConfig(int Layers = 4, int Width = 256, int Heads = 4, int Context = 256, int Vocab = 267)
{
    /// <summary>RMSNorm epsilon.</summary>
    public const float NormEps = 1e-5f;

    /// <summary>Vocabulary rounded up to a multiple of 32: rows of the LM head that no token uses, for aligned matrix products.</summary>
    public int PaddedVocab => (Vocab + 31) / 32 * 32;

    /// <summary>Channels per head.</summary>
    public int HeadSize => Width / Heads;

    /// <summary>Throws naming the field that is out of range.</summary>
    public GptConfig Validate()
    {
        if (Layers < 1) throw new ArgumentException($"model.layers must be >= 1, got {Layers}");
        if (Width < 1) throw new ArgumentException($"model.width must be >= 1, got {Width}");
        if (Heads < 1 || Width % Heads != 0) throw new ArgumentException($"model.heads ({Heads}) must divide model.width ({Width})");
        if (Context < 2) throw new ArgumentException($"model.context must be >= 2, got {Context}");
        if (Vocab < 2) throw new ArgumentException($"model.vocab must be >= 2, got {Vocab}");
        // All parameters live in one flat float buffer (and so do their gradients and moments), indexed by int.
        if (ParameterEstimate > int.MaxValue)
            throw new ArgumentException($"model.layers {Layers} × model.width {Width} (context {Context}, vocabulary {Vocab}) is {ParameterEstimate:0.###e0} parameters; at most {int.MaxValue:N0} fit: use fewer layers or a smaller width");
        return this;
    }

    /// <summary>The parameter count in floating point: never overflows, so a shape can be judged before it is built.</summary>
    public double ParameterEstimate => (double)PaddedVocab * Width + (double)Context * Width + Layers * (12.0 * Width * Width + 2.0 * Width) + Width;

    /// <summary>
    /// Bytes a training step needs, roughly: weights, gradients and the two AdamW moments (16 bytes a parameter), plus
    /// the activations kept for the backward pass of <paramref name="tokens"/> tokens of <paramref name="seqLen"/>-token
    /// sequences (about 20·C floats per token per layer, the attention weights, and the logits).
    /// </summary>
    public double TrainingBytesEstimate(long tokens, int seqLen) =>
        16.0 * ParameterEstimate + 4.0 * tokens * (Layers * (20.0 * Width + (double)Heads * seqLen) + 2.0 * PaddedVocab);

    /// <summary>Parameters in the model.</summary>
    public long ParameterCount => (long)PaddedVocab * Width + (long)Context * Width + Layers * (12L * Width * Width + 2L * Width) + Width;

    /// <summary>Floating-point operations of one training token (forward + backward), the usual 6·N plus attention.</summary>
    public double TrainingFlopsPerToken(int seqLen) =>
        6.0 * (ParameterCount - (long)Context * Width) + 6.0 * Layers * Width * seqLen;

    /// <summary>For config.json.</summary>
    public JsonObject ToJson() => new()
    {
        ["architecture"] = "nemotron-gym-gpt",
        ["layers"] = Layers, ["width"] = Width, ["heads"] = Heads, ["context"] = Context, ["vocab"] = Vocab,
    };

    /// <summary>Reads config.json; <paramref name="source"/> names the file in errors.</summary>
    public static GptConfig FromJson(JsonObject o, string source)
    {
        int Get(string key) => o[key] is JsonValue v && v.TryGetValue(out int i) ? i
            : throw new InvalidDataException($"{source}: '{key}' is missing or not an integer");
        if (o["architecture"]?.GetValue<string>() is { } arch && arch != "nemotron-gym-gpt")
            throw new InvalidDataException($"{source}: architecture '{arch}' is not nemotron-gym-gpt");
        try
        {
            return new GptConfig(Get("layers"), Get("width"), Get("heads"), Get("context"), Get("vocab")).Validate();
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
    }
}
