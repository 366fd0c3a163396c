namespace Nemotron.Gym.Store;

/// <summary>One chat message of a stored rollout (tool calls as JSON).</summary>
public sealed record StoredMessage(string Role, string Content, string? Reasoning = null, string? ToolCallsJson = null, string? ToolCallId = null);

/// <summary>One rollout as stored: its tokens, the sampler's log-probabilities, the conversation, the grade, timings.</summary>
public sealed record StoredRollout
{
    public required string RunId { get; init; }
    public required int Step { get; init; }
    public required string TaskId { get; init; }
    public required string Environment { get; init; }
    public required int SampleIndex { get; init; }
    public required int[] Tokens { get; init; }
    /// <summary>1 where the policy generated the token.</summary>
    public required byte[] Generated { get; init; }
    public required float[] SamplerLogProbs { get; init; }
    public required IReadOnlyList<StoredMessage> Messages { get; init; }
    /// <summary>The environment's reward.</summary>
    public required double Reward { get; init; }
    /// <summary>After truncation and length shaping: what the advantages used.</summary>
    public required double ShapedReward { get; init; }
    public required IReadOnlyDictionary<string, double> Components { get; init; }
    public required string Reason { get; init; }
    public required IReadOnlyDictionary<string, string> Evidence { get; init; }
    public required bool Truncated { get; init; }
    public required int Turns { get; init; }
    public required double GenerateSeconds { get; init; }
    public required double EnvironmentSeconds { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Tokens the policy generated.</summary>
    public int GeneratedTokens => Generated.Count(g => g != 0);
}

/// <summary>A run as the store lists it.</summary>
public sealed record RunRecord(string RunId, string Status, int Step, int TotalSteps, string ConfigYaml, DateTimeOffset Created, DateTimeOffset Updated);

/// <summary>Which rollouts to read.</summary>
public sealed record RolloutQuery(string RunId, int? FromStep = null, int? ToStep = null, string? Environment = null, int? Limit = null);

/// <summary>Where a run's rollouts and step metrics live.</summary>
public interface IRolloutStore : IAsyncDisposable
{
    /// <summary>Adds rollouts in one transaction; one whose (run, step, task, sample) is stored already is skipped. Returns how many were new.</summary>
    Task<int> AddRolloutsAsync(IReadOnlyList<StoredRollout> rollouts, CancellationToken ct = default);
    /// <summary>Stores (or replaces) a step's metrics line.</summary>
    Task PutStepMetricsAsync(string runId, int step, string metricsJson, CancellationToken ct = default);
    /// <summary>A run's step metrics in step order.</summary>
    IAsyncEnumerable<(int Step, string MetricsJson)> ReadStepMetricsAsync(string runId, CancellationToken ct = default);
    /// <summary>Rollouts ordered by step, task and sample.</summary>
    IAsyncEnumerable<StoredRollout> ReadRolloutsAsync(RolloutQuery query, CancellationToken ct = default);
    /// <summary>How many rollouts a run has.</summary>
    Task<long> CountRolloutsAsync(string runId, CancellationToken ct = default);
    /// <summary>Stores (or updates) a run.</summary>
    Task PutRunAsync(RunRecord run, CancellationToken ct = default);
    /// <summary>Every run.</summary>
    Task<IReadOnlyList<RunRecord>> ListRunsAsync(CancellationToken ct = default);
    /// <summary>Drops the rollouts and metrics of steps after <paramref name="step"/> (a resumed run redoes them).</summary>
    Task DeleteRolloutsAfterAsync(string runId, int step, CancellationToken ct = default);
}
