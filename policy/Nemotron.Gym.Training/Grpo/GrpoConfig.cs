using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Training.Grpo;

/// <summary>How the sampler/trainer mismatch is corrected (see docs/grpo.md).</summary>
public enum IsCorrection
{
    /// <summary>Weight 1.</summary>
    None,
    /// <summary>Truncated: min(w, is_max).</summary>
    Tis,
    /// <summary>Token-level mask: tokens with w outside [is_min, is_max] leave the loss.</summary>
    TokenMis,
    /// <summary>Sequence-level mask: samples whose geometric-mean w is outside [is_min, is_max] leave the loss.</summary>
    SeqMis,
}

/// <summary>How the per-token loss is reduced.</summary>
public enum LossLevel
{
    /// <summary>Σ over all tokens of the step / number of tokens.</summary>
    Token,
    /// <summary>Mean over a sample's tokens, then mean over samples.</summary>
    Sequence,
}

/// <summary>What happens to a response cut off at the length limit.</summary>
public enum TruncationPolicy
{
    /// <summary>Graded like any other.</summary>
    Keep,
    /// <summary>Its reward becomes 0.</summary>
    ZeroReward,
    /// <summary>It leaves the loss (s = 0) but still counts in its group's statistics.</summary>
    Mask,
}

/// <summary>The `grpo:` section: every option of docs/grpo.md, with its default.</summary>
public sealed class GrpoSettings : IValidatedConfig
{
    /// <summary>Tasks per step (groups after dynamic filtering).</summary>
    public int TasksPerStep { get; set; } = 16;
    /// <summary>G: rollouts per task.</summary>
    public int GroupSize { get; set; } = 8;
    /// <summary>Lower clip of the ratio: 1 − eps_low.</summary>
    public float EpsLow { get; set; } = 0.2f;
    /// <summary>Upper clip of the ratio: 1 + eps_high (clip-higher).</summary>
    public float EpsHigh { get; set; } = 0.28f;
    /// <summary>Importance-sampling correction between sampler and trainer.</summary>
    public IsCorrection IsCorrection { get; set; } = IsCorrection.SeqMis;
    /// <summary>Lower bound of the IS weight for the masked modes.</summary>
    public float IsMin { get; set; } = 0.5f;
    /// <summary>Upper bound of the IS weight (truncation level for tis).</summary>
    public float IsMax { get; set; } = 2f;
    /// <summary>KL coefficient against the frozen reference (0 = no reference model).</summary>
    public float KlBeta { get; set; }
    /// <summary>Token- or sequence-level reduction.</summary>
    public LossLevel LossLevel { get; set; } = LossLevel.Token;
    /// <summary>Baseline and std without the sample itself (Bessel-corrected).</summary>
    public bool LeaveOneOutBaseline { get; set; }
    /// <summary>Divide advantages by the group std (false = Dr. GRPO).</summary>
    public bool NormalizeStd { get; set; } = true;
    /// <summary>Drop zero-variance groups and sample fresh ones.</summary>
    public bool DynamicFiltering { get; set; } = true;
    /// <summary>Generation rounds per step at most, when filtering drops groups.</summary>
    public int MaxGenBatches { get; set; } = 3;
    /// <summary>Curriculum: sample tasks by estimated pass rate.</summary>
    public bool Curriculum { get; set; } = true;
    /// <summary>Pass rate the curriculum favours.</summary>
    public float CurriculumMu { get; set; } = 0.5f;
    /// <summary>Width of the curriculum's preference.</summary>
    public float CurriculumSigma { get; set; } = 0.25f;
    /// <summary>Retire a task solved in all (or none) of its last K groups; 0 = never.</summary>
    public int RetireAfter { get; set; }
    /// <summary>Reward at or above which a rollout counts as passed.</summary>
    public float PassThreshold { get; set; } = 1f;
    /// <summary>Group-relative length control λ.</summary>
    public float LengthPenalty { get; set; }
    /// <summary>What to do with responses cut at the length limit.</summary>
    public TruncationPolicy Truncation { get; set; } = TruncationPolicy.ZeroReward;
    /// <summary>Optimizer steps per RL step (the batch is split into this many minibatches).</summary>
    public int Minibatches { get; set; } = 1;
    /// <summary>Sequences per forward/backward pass (gradient accumulation); 0 = whole minibatch.</summary>
    public int MicroBatch { get; set; } = 32;
    /// <summary>
    /// Compute a prompt once for the rollouts of it that share a micro-batch instead of once per rollout, where the
    /// backend can (the CPU backend); the same objective and gradient up to float rounding.
    /// </summary>
    public bool SharePrompts { get; set; } = true;

    /// <inheritdoc />
    public void Validate(string path)
    {
        string P(string k) => path.Length == 0 ? k : $"{path}.{k}";
        void Check(bool ok, string key, object value, string rule)
        {
            if (!ok) throw new ConfigException($"{P(key)}: {rule}, got {value}");
        }
        Check(TasksPerStep >= 1, "tasks_per_step", TasksPerStep, "must be >= 1");
        Check(GroupSize >= 2, "group_size", GroupSize, "must be >= 2 (advantages compare rollouts of a task)");
        Check(!(LeaveOneOutBaseline && NormalizeStd && GroupSize < 3), "group_size", GroupSize, "must be >= 3 with leave_one_out_baseline and normalize_std (the std of one other sample is undefined)");
        Check(EpsLow is >= 0 and < 1, "eps_low", EpsLow, "must be in [0, 1)");
        Check(EpsHigh >= 0, "eps_high", EpsHigh, "must be >= 0");
        Check(IsMin >= 0, "is_min", IsMin, "must be >= 0");
        Check(IsMax >= IsMin && IsMax > 0, "is_max", IsMax, $"must be > 0 and >= is_min ({IsMin})");
        Check(KlBeta >= 0, "kl_beta", KlBeta, "must be >= 0");
        Check(MaxGenBatches >= 1, "max_gen_batches", MaxGenBatches, "must be >= 1");
        Check(CurriculumMu is >= 0 and <= 1, "curriculum_mu", CurriculumMu, "must be in [0, 1]");
        Check(CurriculumSigma > 0, "curriculum_sigma", CurriculumSigma, "must be > 0");
        Check(RetireAfter >= 0, "retire_after", RetireAfter, "must be >= 0");
        Check(LengthPenalty >= 0, "length_penalty", LengthPenalty, "must be >= 0");
        Check(Minibatches >= 1, "minibatches", Minibatches, "must be >= 1");
        Check(MicroBatch >= 0, "micro_batch", MicroBatch, "must be >= 0");
    }
}
