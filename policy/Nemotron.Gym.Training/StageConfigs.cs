using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Training;

/// <summary>Keys every stage config shares.</summary>
public abstract class StageConfig : IValidatedConfig
{
    /// <summary>The run folder (checkpoints, metrics, the resolved config).</summary>
    public string Out { get; set; } = "";
    /// <summary>Seed for initialization, data order and sampling.</summary>
    public int Seed { get; set; } = 1;
    /// <summary>cpu, cuda or auto.</summary>
    public string Device { get; set; } = "auto";
    /// <summary>CPU threads (0 = all cores).</summary>
    public int Threads { get; set; }
    /// <summary>Optimization settings.</summary>
    public TrainSettings Train { get; set; } = new();

    /// <inheritdoc />
    public virtual void Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Out)) throw new ConfigException($"{Prefix(path)}out: the run folder is required");
        if (Device is not ("auto" or "cpu" or "cuda")) throw new ConfigException($"{Prefix(path)}device: expected auto, cpu or cuda, got '{Device}'");
        if (Threads < 0) throw new ConfigException($"{Prefix(path)}threads: must be >= 0, got {Threads}");
    }

    /// <summary>"path." or "" at the top level.</summary>
    protected static string Prefix(string path) => path.Length == 0 ? "" : path + ".";
}

/// <summary>`gym pretrain`: next-token prediction over packed text.</summary>
public sealed class PretrainConfig : StageConfig
{
    /// <summary>Shape of the new model.</summary>
    public ModelSettings Model { get; set; } = new();
    /// <summary>byte, cl100k_base or o200k_base.</summary>
    public string Tokenizer { get; set; } = "byte";
    /// <summary>Where the text is.</summary>
    public TextDataSettings Data { get; set; } = new();
    /// <summary>Tokens per row; 0 = the model's context.</summary>
    public int SeqLen { get; set; }

    /// <inheritdoc />
    public override void Validate(string path)
    {
        base.Validate(path);
        if (SeqLen < 0 || SeqLen > Model.Context) throw new ConfigException($"{Prefix(path)}seq_len: must be in [0, model.context = {Model.Context}], got {SeqLen}");
    }
}

/// <summary>The `data:` section of pretraining.</summary>
public sealed class TextDataSettings : IValidatedConfig
{
    /// <summary>Training files: .txt (documents separated by blank lines) or .jsonl (a "text" field, or a chat "messages" array, per line).</summary>
    public List<string> Train { get; set; } = [];
    /// <summary>Held-out files, same formats.</summary>
    public List<string> Valid { get; set; } = [];

    /// <inheritdoc />
    public void Validate(string path)
    {
        if (Train.Count == 0) throw new ConfigException($"{path}.train: at least one training file is required");
        if (Valid.Count == 0) throw new ConfigException($"{path}.valid: at least one held-out file is required");
    }
}

/// <summary>How per-token losses are combined in supervised fine-tuning.</summary>
public enum LossAggregation
{
    /// <summary>Every assistant token of the step weighs the same.</summary>
    Token,
    /// <summary>Every sample weighs the same: mean over its tokens, then over samples.</summary>
    Sample,
}

/// <summary>`gym sft`: masked next-token prediction on chat data.</summary>
public sealed class SftConfig : StageConfig
{
    /// <summary>The checkpoint to start from (a pretrained model).</summary>
    public string Init { get; set; } = "";
    /// <summary>Chat JSONL files.</summary>
    public ChatDataSettings Data { get; set; } = new();
    /// <summary>Per-token or per-sample loss.</summary>
    public LossAggregation LossAggregation { get; set; } = LossAggregation.Token;

    /// <inheritdoc />
    public override void Validate(string path)
    {
        base.Validate(path);
        if (string.IsNullOrWhiteSpace(Init)) throw new ConfigException($"{Prefix(path)}init: the checkpoint to fine-tune is required");
    }
}

/// <summary>The `data:` section of fine-tuning.</summary>
public sealed class ChatDataSettings : IValidatedConfig
{
    /// <summary>Training conversations (OpenAI-style messages JSONL).</summary>
    public List<string> Train { get; set; } = [];
    /// <summary>Held-out conversations.</summary>
    public List<string> Valid { get; set; } = [];

    /// <inheritdoc />
    public void Validate(string path)
    {
        if (Train.Count == 0) throw new ConfigException($"{path}.train: at least one training file is required");
        if (Valid.Count == 0) throw new ConfigException($"{path}.valid: at least one held-out file is required");
    }
}
