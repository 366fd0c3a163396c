namespace Nemotron.Gym.Conversation;

/// <summary>
/// The verdict on an episode: a reward, its named components, a reason a person can read, and the
/// evidence behind it (extracted answer, failed check, final state). Never a bare number: a grade
/// must be auditable later.
/// </summary>
/// <param name="Reward">The scalar reward; 1 is full reward for the built-in environments.</param>
/// <param name="Components">Named parts of the reward ("format", "correct", "constraints_satisfied").</param>
/// <param name="Reason">One or two sentences: why this reward.</param>
/// <param name="Evidence">What the verifier looked at, by name ("extracted_answer": "3/4", "expected": "0.75").</param>
public sealed record Grade(double Reward, IReadOnlyDictionary<string, double> Components, string Reason, IReadOnlyDictionary<string, string> Evidence)
{
    /// <summary>A grade with no components or evidence.</summary>
    public static Grade Of(double reward, string reason) => new(reward, new Dictionary<string, double>(), reason, new Dictionary<string, string>());

    /// <summary>
    /// Set when the episode could not be judged because something other than the model's answer failed (the sandbox
    /// broke, its engine went away, a judge was unreachable). The host retries such an episode a bounded number of
    /// times; if it still cannot be judged, the trainer leaves the rollout out of the gradient with this reason
    /// (stored with it) instead of learning from <see cref="Reward"/>, which means nothing then. Null for a real verdict.
    /// </summary>
    public string? MaskReason { get; init; }

    /// <summary>True when the episode could not be judged (see <see cref="MaskReason"/>).</summary>
    public bool Masked => MaskReason is not null;

    /// <summary>
    /// A grade that is no verdict: the episode could not be judged for <paramref name="maskReason"/>. Reward 0 is a
    /// placeholder the trainer never uses; <see cref="Reason"/> says the same as the mask reason.
    /// </summary>
    public static Grade NotJudged(string maskReason, IReadOnlyDictionary<string, double>? components = null, IReadOnlyDictionary<string, string>? evidence = null) =>
        new(0, components ?? new Dictionary<string, double>(), $"not judged: {maskReason}", evidence ?? new Dictionary<string, string>()) { MaskReason = maskReason };
}
