using Nemotron.Gym.Model;
using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Training;

/// <summary>
/// The optimizer, its schedule and the bookkeeping every stage's `train:` section has (pretrain, SFT, GRPO): one set of
/// keys, one validation. Each stage sets its own defaults.
/// </summary>
public abstract class OptimizerSettings : IValidatedConfig
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; set; }
    /// <summary>Peak learning rate.</summary>
    public float Lr { get; set; }
    /// <summary>Learning rate at the end of the decay phase.</summary>
    public float MinLr { get; set; }
    /// <summary>Linear warmup steps.</summary>
    public int WarmupSteps { get; set; }
    /// <summary>Fraction of the steps spent decaying (warmup-stable-decay).</summary>
    public float DecayFraction { get; set; } = 0.2f;
    /// <summary>AdamW weight decay (matrices and embeddings only).</summary>
    public float WeightDecay { get; set; }
    /// <summary>AdamW β1.</summary>
    public float Beta1 { get; set; } = 0.9f;
    /// <summary>AdamW β2.</summary>
    public float Beta2 { get; set; }
    /// <summary>Global gradient-norm clip; 0 disables.</summary>
    public float GradClip { get; set; } = 1f;
    /// <summary>Held-out evaluation every this many steps (and at the end).</summary>
    public int EvalEvery { get; set; }
    /// <summary>Save a resumable checkpoint every this many steps; 0 = only at the end.</summary>
    public int CheckpointEvery { get; set; }

    /// <summary>The schedule these settings describe.</summary>
    public LearningRateSchedule Schedule => new(Lr, MinLr, WarmupSteps, Steps, DecayFraction);

    /// <summary>The optimizer settings.</summary>
    public AdamWSettings Optimizer => new(Beta1, Beta2, 1e-8f, WeightDecay);

    /// <summary>Throws <see cref="ConfigException"/> for a bad value.</summary>
    protected static void Check(bool ok, string path, string key, object value, string rule)
    {
        if (!ok) throw new ConfigException($"{path}.{key}: {rule}, got {value}");
    }

    /// <inheritdoc />
    public virtual void Validate(string path)
    {
        Check(Steps >= 1, path, "steps", Steps, "must be >= 1");
        Check(Lr > 0 && float.IsFinite(Lr), path, "lr", Lr, "must be > 0");
        Check(MinLr >= 0 && MinLr <= Lr, path, "min_lr", MinLr, "must be in [0, lr]");
        Check(WarmupSteps >= 0, path, "warmup_steps", WarmupSteps, "must be >= 0");
        Check(DecayFraction is >= 0 and <= 1, path, "decay_fraction", DecayFraction, "must be in [0, 1]");
        Check(WeightDecay >= 0, path, "weight_decay", WeightDecay, "must be >= 0");
        Check(Beta1 is >= 0 and < 1, path, "beta1", Beta1, "must be in [0, 1)");
        Check(Beta2 is >= 0 and < 1, path, "beta2", Beta2, "must be in [0, 1)");
        Check(GradClip >= 0, path, "grad_clip", GradClip, "must be >= 0");
        Check(EvalEvery >= 1, path, "eval_every", EvalEvery, "must be >= 1");
        Check(CheckpointEvery >= 0, path, "checkpoint_every", CheckpointEvery, "must be >= 0");
    }
}

/// <summary>The `train:` section of the pretraining and fine-tuning stages: the optimizer plus batches and early stopping.</summary>
public sealed class TrainSettings : OptimizerSettings
{
    /// <summary>Pretraining/SFT defaults.</summary>
    public TrainSettings()
    {
        Steps = 1000; Lr = 3e-3f; MinLr = 3e-4f; WarmupSteps = 50; WeightDecay = 0.1f; Beta2 = 0.95f;
        EvalEvery = 100; CheckpointEvery = 500;
    }

    /// <summary>Sequences per optimizer step.</summary>
    public int BatchSize { get; set; } = 16;
    /// <summary>Sequences per forward/backward pass (gradient accumulation when smaller); 0 = batch_size.</summary>
    public int MicroBatch { get; set; }
    /// <summary>Held-out batches per evaluation.</summary>
    public int EvalBatches { get; set; } = 8;
    /// <summary>Stop when the held-out loss has not improved for this many evaluations; 0 = never.</summary>
    public int Patience { get; set; }

    /// <summary>Effective micro-batch size.</summary>
    public int MicroBatchSize => MicroBatch > 0 ? Math.Min(MicroBatch, BatchSize) : BatchSize;

    /// <inheritdoc />
    public override void Validate(string path)
    {
        Check(BatchSize >= 1, path, "batch_size", BatchSize, "must be >= 1");
        Check(MicroBatch >= 0, path, "micro_batch", MicroBatch, "must be >= 0");
        base.Validate(path);
        Check(EvalBatches >= 1, path, "eval_batches", EvalBatches, "must be >= 1");
        Check(Patience >= 0, path, "patience", Patience, "must be >= 0");
    }
}

/// <summary>The `train:` section of an RL run: the optimizer with RL's defaults (the batch is tasks × group size).</summary>
public sealed class RlTrainSettings : OptimizerSettings
{
    /// <summary>GRPO defaults: a small learning rate, no weight decay, β2 0.999.</summary>
    public RlTrainSettings()
    {
        Steps = 100; Lr = 1e-4f; MinLr = 1e-5f; WarmupSteps = 5; WeightDecay = 0; Beta2 = 0.999f;
        EvalEvery = 25; CheckpointEvery = 25;
    }
}

/// <summary>The `model:` section: the shape of a model trained from scratch.</summary>
public sealed class ModelSettings : IValidatedConfig
{
    /// <summary>Transformer blocks.</summary>
    public int Layers { get; set; } = 4;
    /// <summary>Channels.</summary>
    public int Width { get; set; } = 256;
    /// <summary>Attention heads.</summary>
    public int Heads { get; set; } = 4;
    /// <summary>Context length.</summary>
    public int Context { get; set; } = 256;

    /// <inheritdoc />
    public void Validate(string path)
    {
        if (Layers < 1) throw new ConfigException($"{path}.layers: must be >= 1, got {Layers}");
        if (Width < 1) throw new ConfigException($"{path}.width: must be >= 1, got {Width}");
        if (Heads < 1 || Width % Heads != 0) throw new ConfigException($"{path}.heads: must divide width ({Width}), got {Heads}");
        if (Context < 8) throw new ConfigException($"{path}.context: must be >= 8, got {Context}");
    }
}
