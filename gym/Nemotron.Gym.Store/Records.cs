using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Store;

/// <summary>
/// One rollout as stored: who produced it (run, step, task, sample), the exact token ids with the sampler's
/// log-probabilities, the conversation, the grade and timings. (RunId, Step, TaskId, SampleIndex) is its key.
/// </summary>
public sealed record StoredRollout
{
    /// <summary>The run that produced it.</summary>
    public required string RunId { get; init; }
    /// <summary>The training step it was generated for.</summary>
    public required int Step { get; init; }
    /// <summary>The task (one dataset line) it answers.</summary>
    public required string TaskId { get; init; }
    /// <summary>The environment that graded it.</summary>
    public required string Environment { get; init; }
    /// <summary>Its index within the task's group of samples.</summary>
    public required int SampleIndex { get; init; }
    /// <summary>Every token of the episode (prompt, completions, environment turns) as the policy saw it.</summary>
    public required int[] Tokens { get; init; }
    /// <summary>Per token of <see cref="Tokens"/>: 1 where the policy generated it, 0 where the prompt or environment did.</summary>
    public required byte[] Generated { get; init; }
    /// <summary>Per token of <see cref="Tokens"/>: the sampler's log-probability (0 where not generated).</summary>
    public required float[] SamplerLogProbs { get; init; }
    /// <summary>The conversation.</summary>
    public required IReadOnlyList<Message> Messages { get; init; }
    /// <summary>The environment's reward.</summary>
    public required double Reward { get; init; }
    /// <summary>The reward after truncation and length shaping: what the advantages used.</summary>
    public required double ShapedReward { get; init; }
    /// <summary>The grade's named parts.</summary>
    public required IReadOnlyDictionary<string, double> Components { get; init; }
    /// <summary>Why the grade is what it is, for people.</summary>
    public required string Reason { get; init; }
    /// <summary>What the grade was based on (extracted answer, test output, judge verdict, ...).</summary>
    public required IReadOnlyDictionary<string, string> Evidence { get; init; }
    /// <summary>Whether the episode hit a length or turn limit.</summary>
    public required bool Truncated { get; init; }
    /// <summary>Policy turns in the episode.</summary>
    public required int Turns { get; init; }
    /// <summary>Seconds spent generating.</summary>
    public required double GenerateSeconds { get; init; }
    /// <summary>Seconds spent in the environment (tools, sandbox, grading).</summary>
    public required double EnvironmentSeconds { get; init; }
    /// <summary>When it was stored (kept with its offset).</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>The GRPO advantage the trainer gave it (null: not recorded, as in stores written before it was).</summary>
    public double? Advantage { get; init; }
    /// <summary>Per token of <see cref="Tokens"/>: the trainer's log-probability under the old policy, the value the
    /// importance-sampling correction compared with the sampler's (0 where not generated; null: not recorded).</summary>
    public float[]? TrainerLogProbs { get; init; }
    /// <summary>Per token of <see cref="Tokens"/>: the importance-sampling weight applied (0 where not generated; null: not recorded).</summary>
    public float[]? ImportanceWeights { get; init; }
    /// <summary>Per token of <see cref="Tokens"/>: 1 where the correction masked the token out of the loss (null: not recorded).</summary>
    public byte[]? TokenMasked { get; init; }
    /// <summary>Whether the whole sequence was masked out of the loss (null: not recorded).</summary>
    public bool? SequenceMasked { get; init; }
    /// <summary>Why the rollout was masked or left out of training (a filtered zero-variance group, an out-of-bounds
    /// IS ratio, ...); null when it was not, or when not recorded.</summary>
    public string? MaskedReason { get; init; }

    /// <summary>Per token of <see cref="Tokens"/>: its text as the tokenizer decodes it alone, so a reader without the
    /// tokenizer (the web UI) can show it (null: not recorded; the UI then shows ids).</summary>
    public string[]? TokenTexts { get; init; }

    /// <summary>How many tokens the policy generated.</summary>
    public int GeneratedTokens => Generated.Count(g => g != 0);

    /// <summary>
    /// Refuses a NaN reward or shaped reward, naming the rollout. A NaN reward is a failed grade, not a score; SQLite
    /// cannot hold it in a REAL column (it becomes NULL) while PostgreSQL can, so every store refuses it alike and an
    /// export never writes one that an import would then refuse. Infinities are numbers and are kept.
    /// </summary>
    public void CheckRewards(string where)
    {
        if (double.IsNaN(Reward) || double.IsNaN(ShapedReward))
            throw new InvalidDataException($"{where}: rollout {RunId}/{Step}/{TaskId}/{SampleIndex}: {(double.IsNaN(Reward) ? "reward" : "shaped_reward")} is NaN; a rollout store keeps no NaN reward (a NaN reward is a failed grade)");
    }
}

/// <summary>A run as the store lists it.</summary>
public sealed record RunRecord(string RunId, string Status, int Step, int TotalSteps, string ConfigYaml, DateTimeOffset Created, DateTimeOffset Updated);

/// <summary>Which rollouts of a run to read; steps are inclusive, <paramref name="Limit"/> counts rollouts.</summary>
public sealed record RolloutQuery(string RunId, int? FromStep = null, int? ToStep = null, string? Environment = null, int? Limit = null);

/// <summary>
/// Where a run's rollouts, step metrics and run records live. Every method is safe to call from several threads,
/// and several processes may write one store at once.
/// </summary>
public interface IRolloutStore : IAsyncDisposable
{
    /// <summary>
    /// Adds rollouts in one transaction. Idempotent: a rollout whose (RunId, Step, TaskId, SampleIndex) is stored
    /// already is skipped (a retried step, a second import). Returns how many were new.
    /// </summary>
    Task<int> AddRolloutsAsync(IReadOnlyList<StoredRollout> rollouts, CancellationToken ct = default);
    /// <summary>Stores (or replaces) a step's metrics, a JSON object as text.</summary>
    Task PutStepMetricsAsync(string runId, int step, string metricsJson, CancellationToken ct = default);
    /// <summary>A run's step metrics in step order.</summary>
    IAsyncEnumerable<(int Step, string MetricsJson)> ReadStepMetricsAsync(string runId, CancellationToken ct = default);
    /// <summary>Rollouts ordered by step, task id (ordinal) and sample index.</summary>
    IAsyncEnumerable<StoredRollout> ReadRolloutsAsync(RolloutQuery query, CancellationToken ct = default);
    /// <summary>How many rollouts a run has.</summary>
    Task<long> CountRolloutsAsync(string runId, CancellationToken ct = default);
    /// <summary>Stores (or updates) a run; an update keeps the first <see cref="RunRecord.Created"/>.</summary>
    Task PutRunAsync(RunRecord run, CancellationToken ct = default);
    /// <summary>Every run, oldest first.</summary>
    Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken ct = default);
    /// <summary>Drops a run's rollouts and step metrics of steps after <paramref name="step"/>: a resumed run redoes those steps.</summary>
    Task DeleteRolloutsAfterAsync(string runId, int step, CancellationToken ct = default);
}
