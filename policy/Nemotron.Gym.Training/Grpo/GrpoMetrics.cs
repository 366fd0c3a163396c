using System.Text.Json.Nodes;

namespace Nemotron.Gym.Training.Grpo;

/// <summary>Everything docs/grpo.md asks to log per step; one JSON line each in metrics.jsonl.</summary>
public sealed record GrpoStepMetrics
{
    /// <summary>1-based step.</summary>
    public int Step { get; init; }
    /// <summary>Mean shaped reward of the step's rollouts (all groups generated, kept or dropped).</summary>
    public double RewardMean { get; init; }
    /// <summary>Mean reward per environment.</summary>
    public IReadOnlyDictionary<string, double> RewardByEnvironment { get; init; } = new Dictionary<string, double>();
    /// <summary>Fraction of rollouts at or above the pass threshold.</summary>
    public double PassRate { get; init; }
    /// <summary>Mean and std of the advantages that entered the loss.</summary>
    public double AdvantageMean { get; init; }
    /// <summary>Std of those advantages.</summary>
    public double AdvantageStd { get; init; }
    /// <summary>Mean and max of r = exp(lp − lp_old) over loss tokens.</summary>
    public double RatioMean { get; init; }
    /// <summary>Max ratio.</summary>
    public double RatioMax { get; init; }
    /// <summary>Loss tokens whose gradient the clip removed.</summary>
    public double ClipFraction { get; init; }
    /// <summary>Tokens or sequences masked/truncated by the IS rule, over those it judged.</summary>
    public double IsOobFraction { get; init; }
    /// <summary>Mean |lp_old − lp_gen| over generated tokens.</summary>
    public double Mismatch { get; init; }
    /// <summary>Mean k3 over loss tokens (0 without a reference).</summary>
    public double Kl { get; init; }
    /// <summary>Mean predictive entropy over generated tokens.</summary>
    public double Entropy { get; init; }
    /// <summary>Generated tokens per rollout: mean and max.</summary>
    public double ResponseLengthMean { get; init; }
    /// <summary>Max response length.</summary>
    public int ResponseLengthMax { get; init; }
    /// <summary>Fraction of generated groups dropped for zero variance.</summary>
    public double DroppedGroupFraction { get; init; }
    /// <summary>Generation rounds this step took.</summary>
    public int GenerationRounds { get; init; }
    /// <summary>The objective's value.</summary>
    public double Loss { get; init; }
    /// <summary>Gradient norm before clipping (last minibatch).</summary>
    public double GradNorm { get; init; }
    /// <summary>Learning rate.</summary>
    public float LearningRate { get; init; }
    /// <summary>Wall times.</summary>
    public double GenerateSeconds { get; init; }
    /// <summary>Waiting on environments (stepping and grading).</summary>
    public double GradeSeconds { get; init; }
    /// <summary>lp_old, forward/backward and optimizer.</summary>
    public double TrainSeconds { get; init; }
    /// <summary>Generated tokens per second of generation time.</summary>
    public double GenerateTokensPerSecond { get; init; }
    /// <summary>Trained (forward+backward) tokens per second of train time.</summary>
    public double TrainTokensPerSecond { get; init; }
    /// <summary>Tasks retired so far.</summary>
    public int TasksRetired { get; init; }
    /// <summary>Fraction of the step's rollouts cut off at the length limit.</summary>
    public double TruncatedFraction { get; init; }
    /// <summary>Fraction of the step's rollouts that could not be judged (infrastructure failures, masked out of the loss).</summary>
    public double NotJudgedFraction { get; init; }
    /// <summary>Comparisons whose judge answers held no readable verdict (after the re-asks) over comparisons the judge answered, in the step's judged rollouts (null: none judged by a model).</summary>
    public double? JudgeParseFailureRate { get; init; }
    /// <summary>Share of the step's wall time spent waiting on environments (stepping and grading).</summary>
    public double GradeShare => GenerateSeconds + GradeSeconds + TrainSeconds > 0 ? GradeSeconds / (GenerateSeconds + GradeSeconds + TrainSeconds) : 0;
    /// <summary>Held-out reward per environment, on the steps that ran the held-out evaluation (null on the others).</summary>
    public IReadOnlyDictionary<string, double>? HeldOutByEnvironment { get; init; }

    /// <summary>The JSONL record.</summary>
    public JsonObject ToJson()
    {
        var byEnv = new JsonObject();
        foreach (var (k, v) in RewardByEnvironment) byEnv[k] = v;
        var json = new JsonObject
        {
            ["stage"] = "grpo", ["step"] = Step, ["reward_mean"] = RewardMean, ["reward_by_env"] = byEnv, ["pass_rate"] = PassRate,
            ["advantage_mean"] = AdvantageMean, ["advantage_std"] = AdvantageStd, ["ratio_mean"] = RatioMean, ["ratio_max"] = RatioMax,
            ["clip_fraction"] = ClipFraction, ["is_oob_fraction"] = IsOobFraction, ["mismatch"] = Mismatch, ["kl"] = Kl, ["entropy"] = Entropy,
            ["response_length_mean"] = ResponseLengthMean, ["response_length_max"] = ResponseLengthMax,
            ["dropped_group_fraction"] = DroppedGroupFraction, ["generation_rounds"] = GenerationRounds, ["loss"] = Loss,
            ["grad_norm"] = GradNorm, ["lr"] = LearningRate, ["time_generate_s"] = GenerateSeconds, ["time_grade_s"] = GradeSeconds,
            ["time_train_s"] = TrainSeconds, ["generate_tokens_per_second"] = GenerateTokensPerSecond,
            ["train_tokens_per_second"] = TrainTokensPerSecond, ["tasks_retired"] = TasksRetired, ["truncated_fraction"] = TruncatedFraction,
            ["not_judged_fraction"] = NotJudgedFraction, ["grade_share"] = GradeShare,
        };
        if (JudgeParseFailureRate is { } parse) json["judge_parse_failure_rate"] = parse;
        if (HeldOutByEnvironment != null)
        {
            var heldOut = new JsonObject();
            foreach (var (k, v) in HeldOutByEnvironment) heldOut[k] = v;
            json["heldout_by_env"] = heldOut;
        }
        return json;
    }
}

/// <summary>Receives progress from the RL trainer.</summary>
public interface IRlObserver
{
    /// <summary>After each step.</summary>
    void OnStep(GrpoStepMetrics metrics, int totalSteps);
    /// <summary>After each held-out evaluation (step 0 is before training).</summary>
    void OnEval(int step, IReadOnlyDictionary<string, double> scores);
    /// <summary>Anything else.</summary>
    void OnMessage(string message);
}

/// <summary>
/// Where an RL run's results are kept (the rollout store, the run's record). The trainer awaits every call where it
/// happens: a slow store slows the step and a failing one fails the run with its error, never a blocked thread or a
/// silently lost rollout. Calls come in order: a step's rollouts, then its metrics, then (some steps) a checkpoint.
/// </summary>
public interface IRolloutSink
{
    /// <summary>Every rollout group of a step (kept or filtered out), with its advantages, after the optimizer step.</summary>
    Task AddRolloutsAsync(int step, IReadOnlyList<RolloutGroup> groups, CancellationToken cancellation);
    /// <summary>A finished step's metrics.</summary>
    Task AddStepAsync(GrpoStepMetrics metrics, CancellationToken cancellation);
    /// <summary>A resumable checkpoint was written after <paramref name="step"/>.</summary>
    Task CheckpointWrittenAsync(int step, string directory, CancellationToken cancellation);
}
