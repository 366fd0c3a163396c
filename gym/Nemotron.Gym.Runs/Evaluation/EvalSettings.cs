using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Runs.Evaluation;

/// <summary>
/// How a checkpoint is evaluated (`gym eval`, and the demo's before/after table): which split and how many tasks
/// per environment, the greedy episode per task, and n sampled episodes per task for pass@k.
/// </summary>
public sealed class EvalSettings : IValidatedConfig
{
    /// <summary>The split the tasks come from.</summary>
    public string Split { get; set; } = "heldout";
    /// <summary>Tasks per environment.</summary>
    public int Count { get; set; } = 200;
    /// <summary>k of pass@k; 0 = no sampled episodes (greedy only).</summary>
    public int K { get; set; } = 8;
    /// <summary>Sampled episodes per task for pass@k (n ≥ k); 0 = k.</summary>
    public int Samples { get; set; }
    /// <summary>Temperature of the sampled episodes (the greedy one is at 0).</summary>
    public float Temperature { get; set; } = 1f;
    /// <summary>
    /// Seed of the sampled episodes. The tasks come from seed + 1000, the rule a training run uses for its held-out
    /// set, so evaluating a run's checkpoint with the run's seed scores the tasks that run held out.
    /// </summary>
    public int Seed { get; set; } = 1;
    /// <summary>New tokens per assistant turn at most.</summary>
    public int MaxNewTokens { get; set; } = 160;
    /// <summary>Assistant turns per episode at most.</summary>
    public int MaxTurns { get; set; } = 4;
    /// <summary>Rows decoded together.</summary>
    public int MaxBatch { get; set; } = 128;
    /// <summary>Reward at or above which an episode passes (pass@1 and pass@k count passes).</summary>
    public double PassThreshold { get; set; } = 1;

    /// <summary>n, the sampled episodes per task.</summary>
    public int SamplesPerTask => K == 0 ? 0 : Samples == 0 ? K : Samples;

    /// <summary>The seed the evaluated tasks are generated from.</summary>
    public int TaskSeed => Seed + 1000;

    /// <inheritdoc />
    public void Validate(string path)
    {
        string p = path.Length == 0 ? "" : path + ".";
        if (string.IsNullOrWhiteSpace(Split)) throw new ConfigException($"{p}split: a split name is required (e.g. heldout)");
        if (Count < 1) throw new ConfigException($"{p}count: must be >= 1, got {Count}");
        if (K < 0) throw new ConfigException($"{p}k: must be >= 0 (0 = greedy only), got {K}");
        if (Samples < 0) throw new ConfigException($"{p}samples: must be >= 0, got {Samples}");
        if (K > 0 && Samples > 0 && Samples < K) throw new ConfigException($"{p}samples: pass@{K} needs at least {K} samples per task, got {Samples}");
        if (!(Temperature > 0)) throw new ConfigException($"{p}temperature: the sampled episodes need a temperature > 0, got {Temperature}");
        if (MaxNewTokens < 1) throw new ConfigException($"{p}max_new_tokens: must be >= 1, got {MaxNewTokens}");
        if (MaxTurns < 1) throw new ConfigException($"{p}max_turns: must be >= 1, got {MaxTurns}");
        if (MaxBatch < 1) throw new ConfigException($"{p}max_batch: must be >= 1, got {MaxBatch}");
    }
}
