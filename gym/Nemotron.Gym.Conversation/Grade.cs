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
}
