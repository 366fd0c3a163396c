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
    /// The component that marks a grade as no verdict at all: the grader could not judge the episode (its sandbox
    /// failed, the test run timed out or ran out of memory). The trainer leaves such a rollout out of its group
    /// instead of learning from a 0; the reason is stored with the rollout.
    /// </summary>
    public const string MaskedComponent = "masked";

    /// <summary>A grade that says the episode could not be judged (reward 0, never used as one): see <see cref="MaskedComponent"/>.</summary>
    public static Grade Masked(string reason, IReadOnlyDictionary<string, double>? components = null, IReadOnlyDictionary<string, string>? evidence = null)
    {
        var c = new Dictionary<string, double>(components ?? new Dictionary<string, double>()) { [MaskedComponent] = 1 };
        return new Grade(0, c, reason, evidence ?? new Dictionary<string, string>());
    }

    /// <summary>Whether the grader said it could not judge the episode (<see cref="MaskedComponent"/> set).</summary>
    public bool IsMasked => Components.TryGetValue(MaskedComponent, out var masked) && masked > 0;
}
