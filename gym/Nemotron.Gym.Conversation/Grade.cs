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
    /// Set when the episode could not be graded at all (the judge was unreachable, its verdict unreadable, ...): why.
    /// Such a grade says nothing about the response, so the trainer leaves the rollout out of its group's baseline and
    /// out of the loss (and the store keeps the reason) instead of reading <see cref="Reward"/> as a score of 0.
    /// </summary>
    public string? MaskedReason { get; init; }

    /// <summary>A grade that is no verdict: the rollout is masked with <paramref name="reason"/>.</summary>
    public static Grade Masked(string reason, IReadOnlyDictionary<string, string>? evidence = null) =>
        new(0, new Dictionary<string, double> { ["masked"] = 1 }, reason, evidence ?? new Dictionary<string, string>()) { MaskedReason = reason };
}
