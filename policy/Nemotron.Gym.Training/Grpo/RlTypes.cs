using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Training.Grpo;

/// <summary>A task the trainer can sample: which environment it belongs to and its id there.</summary>
/// <param name="Id">Unique within the run ("math/train-0042").</param>
/// <param name="Environment">Environment name, for blend weights and per-environment metrics.</param>
public sealed record RlTask(string Id, string Environment);

/// <summary>What the environment does after an assistant turn.</summary>
/// <param name="Done">True when the episode is over (grade it); otherwise <see cref="Reply"/> continues it.</param>
/// <param name="Reply">The environment's turn (tool results or feedback) when not done.</param>
public sealed record EpisodeReply(bool Done, IReadOnlyList<Message> Reply)
{
    /// <summary>The episode is over.</summary>
    public static EpisodeReply End { get; } = new(true, []);
}

/// <summary>
/// One episode of one task, driven by the trainer: the opening conversation, then an environment
/// reply to each assistant turn until it is done, then a grade. Implementations may call anything
/// (a local function, an Orleans grain); the trainer only awaits them.
/// </summary>
public interface IEpisode
{
    /// <summary>The conversation the model answers first (system/user messages and tool definitions).</summary>
    ChatTranscript Opening { get; }

    /// <summary>
    /// Takes the model's assistant turn (parsed once, by the collector) and replies or ends. Every turn comes here,
    /// also the last: <paramref name="final"/> says no reply will be used (the turn was cut off at the length limit,
    /// or the turn limit is reached), so the environment only records it.
    /// </summary>
    Task<EpisodeReply> StepAsync(AssistantTurn turn, bool final, CancellationToken cancellation);

    /// <summary>Grades the finished episode. <paramref name="truncated"/> says the last turn hit the length limit.</summary>
    Task<Grade> GradeAsync(bool truncated, CancellationToken cancellation);
}

/// <summary>The caller's side of RL: which tasks exist and how to run an episode of one. The trainer knows nothing else about environments.</summary>
public interface IEpisodeSource
{
    /// <summary>Every task the trainer may sample (the curriculum keeps a pass rate for each).</summary>
    IReadOnlyList<RlTask> Tasks { get; }

    /// <summary>Opens sample <paramref name="sampleIndex"/> of the group for <paramref name="task"/>.</summary>
    Task<IEpisode> OpenAsync(RlTask task, int sampleIndex, int seed, CancellationToken cancellation);
}

/// <summary>
/// An episode source whose environments may grade a whole group of rollouts together (a pairwise judge compares the
/// responses to one prompt with each other). The collector calls it once per group, after every member has finished
/// and been graded by its own episode; the grades it returns replace the members' own. Sources without it are graded
/// one episode at a time.
/// </summary>
public interface IGroupGradingSource
{
    /// <summary>
    /// The final grades of the group of <paramref name="task"/>, one per member in order. Must not throw for a failing
    /// grader: members it cannot grade come back not judged (<see cref="Grade.MaskReason"/>) with the reason.
    /// </summary>
    Task<IReadOnlyList<Grade>> GradeGroupAsync(RlTask task, IReadOnlyList<GroupMember> members, CancellationToken cancellation);
}

/// <summary>
/// One rollout: the whole episode as tokens, exactly as generated (never re-tokenized), with the
/// mask of the tokens the policy generated (only those are trained on) and the sampler's
/// log-probability of each.
/// </summary>
public sealed class Rollout
{
    /// <summary>The task.</summary>
    public required RlTask Task { get; init; }
    /// <summary>Index of this rollout within its group.</summary>
    public required int SampleIndex { get; init; }
    /// <summary>Prompt, generated turns and environment turns, in order.</summary>
    public required int[] Tokens { get; init; }
    /// <summary>1 where the policy generated the token.</summary>
    public required byte[] Generated { get; init; }
    /// <summary>lp_gen: the sampler's log-probability of each generated token (0 elsewhere).</summary>
    public required float[] SamplerLogProbs { get; init; }
    /// <summary>The conversation as text, turn by turn (for the store and people).</summary>
    public required IReadOnlyList<Message> Messages { get; init; }
    /// <summary>The last generation stopped at the length limit instead of ending its turn.</summary>
    public required bool Truncated { get; init; }
    /// <summary>Assistant turns taken.</summary>
    public required int Turns { get; init; }
    /// <summary>The environment's grade.</summary>
    public required Grade Grade { get; init; }
    /// <summary>Reward after shaping (truncation, length control): what advantages use.</summary>
    public double Reward { get; set; }
    /// <summary>Wall-clock seconds of the batched generation rounds this rollout took part in (generation is
    /// batched across episodes, so rollouts of one round share that round's time).</summary>
    public double GenerateSeconds { get; init; }
    /// <summary>Seconds spent grading (and stepping the environment).</summary>
    public double EnvironmentSeconds { get; init; }

    /// <summary>Tokens the policy generated.</summary>
    public int GeneratedCount => Generated.Count(g => g != 0);

    /// <summary>What the trainer did with it (null until it was trained on; see <see cref="TrainingRecord"/>).</summary>
    public TrainingRecord? Training { get; set; }
}

/// <summary>
/// What the trainer did with one rollout, for the store and the people who inspect it (docs/grpo.md): its advantage,
/// and per token of <see cref="Rollout.Tokens"/> the trainer's old-policy log-probability, the importance weight and
/// whether the correction masked the token; whether the whole sequence was left out of the loss, and why.
/// </summary>
public sealed class TrainingRecord
{
    /// <summary>The group-relative advantage.</summary>
    public required double Advantage { get; init; }
    /// <summary>lp_old per token (0 where not generated); null when the rollout was not trained on.</summary>
    public float[]? TrainerLogProbs { get; set; }
    /// <summary>The importance weight per token (0 where not generated); null when not trained on.</summary>
    public float[]? ImportanceWeights { get; set; }
    /// <summary>1 where token-level masking took the token out of the loss; null when not trained on.</summary>
    public byte[]? TokenMasked { get; set; }
    /// <summary>The whole sequence was left out of the loss (masked or filtered).</summary>
    public bool SequenceMasked { get; set; }
    /// <summary>Why it was left out, when it was.</summary>
    public string? MaskedReason { get; set; }
}

/// <summary>The G rollouts of one task, with their advantages once computed.</summary>
public sealed class RolloutGroup(RlTask task, IReadOnlyList<Rollout> rollouts)
{
    /// <summary>The task.</summary>
    public RlTask Task { get; } = task;
    /// <summary>The rollouts.</summary>
    public IReadOnlyList<Rollout> Rollouts { get; } = rollouts;
    /// <summary>One advantage per rollout (set by <see cref="Advantages.Compute"/>).</summary>
    public double[] Advantages { get; set; } = new double[rollouts.Count];
    /// <summary>True when every reward is equal: the group carries no learning signal.</summary>
    public bool ZeroVariance => Rollouts.All(r => r.Reward == Rollouts[0].Reward);
}
