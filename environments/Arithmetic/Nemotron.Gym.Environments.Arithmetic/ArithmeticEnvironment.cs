using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Arithmetic;

/// <summary>
/// Multi-digit addition and subtraction asked in words and digits: the problems of the demo's pretraining and SFT
/// corpus (<see cref="ArithmeticProblem"/>), as an RL environment. One problem in ten (by a hash of a+b or a-b) belongs
/// to the held-out split and never to train, so the corpus and the held-out tasks never share a problem. The reward is
/// an exact match of the visible answer (after the reasoning) with the result.
/// </summary>
public sealed class ArithmeticEnvironment : EnvironmentBase
{
    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "arithmetic", "1.0.0",
        "Addition and subtraction of numbers up to max_digits digits, asked in words or digits; reward 1 when the answer is exactly the result.",
        [new ConfigOption("max_digits", ConfigType.Integer, "3", "Digits of the largest operand.", 1, 6)],
        ["train", "heldout"]);

    /// <inheritdoc />
    public override ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout")) throw new ArgumentException($"arithmetic: unknown split '{query.Split}' (train, heldout)");
        bool heldOut = query.Split == "heldout";
        int maxDigits = Context.GetInt("max_digits");
        int target = query.Count > 0 ? query.Count : 1000;
        var rng = new Random(query.Seed);
        var seen = new HashSet<string>();
        var tasks = new List<TaskRecord>();
        // Small digit counts have few distinct problems: stop when the space is exhausted rather than loop forever.
        for (int attempts = 0; tasks.Count < target && attempts < target * 50; attempts++)
        {
            var p = ArithmeticProblem.SampleFromSplit(rng, heldOut, maxDigits);
            if (!seen.Add(p.Key)) continue;
            string question = p.Question(rng);
            tasks.Add(new TaskRecord
            {
                Id = $"arithmetic-{query.Split}-{tasks.Count:D5}",
                Input = [Message.User(question)],
                VerifierMetadata = new JsonObject { ["answer"] = p.Answer.ToString(), ["a"] = p.A, ["op"] = p.Op.ToString(), ["b"] = p.B },
                Reference = [new AssistantTurn(p.Answer.ToString(), p.Answer.ToString(), p.Reasoning(), [], [])],
            });
        }
        return ValueTask.FromResult<IReadOnlyList<TaskRecord>>(tasks);
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        var problems = new List<string>();
        if (task.VerifierMetadata["answer"] is not JsonValue v || !v.TryGetValue(out string? answer) || !int.TryParse(answer, out _))
            problems.Add("verifier_metadata.answer must be an integer written as a string");
        if (task.Input.Count == 0 || task.Input[^1].Role != Role.User) problems.Add("the last input message must be the user's question");
        return problems;
    }

    /// <inheritdoc />
    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new ArithmeticEpisode(task));

    private sealed class ArithmeticEpisode(TaskRecord task) : SingleTurnEpisode(task)
    {
        protected override Grade Grade(AssistantTurn answer) => Verify(answer.Content, Task.VerifierMetadata["answer"]!.GetValue<string>());
    }

    /// <summary>The verifier on its own: the visible answer, trimmed, must be exactly the expected integer.</summary>
    public static Grade Verify(string response, string expected)
    {
        string given = response.Trim();
        bool ok = given == expected;
        var evidence = new Dictionary<string, string> { ["expected"] = expected, ["answer"] = given.Length <= 80 ? given : given[..80] + "…" };
        return new Grade(ok ? 1 : 0, new Dictionary<string, double> { ["exact_match"] = ok ? 1 : 0 },
            ok ? $"exact match: {expected}" : $"expected {expected}, got '{evidence["answer"]}'", evidence);
    }
}
