using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Rewards;

namespace Nemotron.Gym.Environments.Math;

/// <summary>
/// Math with verifiable final answers. Tasks: procedural problems (see <see cref="MathProblems"/>) plus
/// the hand-written problems of data/handwritten.jsonl. The verifier extracts the final answer
/// (\boxed{}, "Answer:", the last number) and compares it with the expected one for mathematical
/// equivalence (fractions, decimals, percentages, LaTeX, sets, units).
/// </summary>
public sealed class MathEnvironment : EnvironmentBase
{
    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "math", "1.0.0",
        "Math word and arithmetic problems with exact answers; reward 1 when the final answer is equivalent to the expected one.",
        [
            new ConfigOption("difficulty", ConfigType.Integer, "2", "Size of the numbers in procedural problems: 1 (easy) to 3 (hard).", 1, 3),
            new ConfigOption("families", ConfigType.Text, string.Join(",", MathProblems.Families), "Comma-separated procedural families to draw from."),
            new ConfigOption("word_max", ConfigType.Integer, "0", "Word problems' starting amounts are drawn below this (their second numbers below two thirds of it); 0 = set by the difficulty (20, 60, 300). A finer difficulty: the demo raises it when its SFT policy already solves most problems (docs/learning-notes.md, experiment 21).", 0, 999),
            new ConfigOption("word_operations", ConfigType.Text, "+,-,*", "Comma-separated operations of the word problems: + (gets more), - (gives away), * (bags of)."),
            new ConfigOption("instruction", ConfigType.Text, "Put the final answer in \\boxed{}.", "Appended to every question."),
            new ConfigOption("handwritten", ConfigType.Boolean, "true", "Include the hand-written problems of data/handwritten.jsonl."),
        ],
        ["train", "heldout"]);

    /// <inheritdoc />
    public override async ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout")) throw new ArgumentException($"math: unknown split '{query.Split}' (train, heldout)");
        bool heldOut = query.Split == "heldout";
        var families = Context.GetText("families").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var f in families)
            if (!MathProblems.Families.Contains(f)) throw new ArgumentException($"math: setting 'families': unknown family '{f}' (expected {string.Join(", ", MathProblems.Families)})");
        var wordOperations = WordOperationsSetting(Context.GetText("word_operations"));
        int difficulty = Context.GetInt("difficulty");
        int wordMax = Context.GetInt("word_max");
        if (wordMax is < 0 or (> 0 and < 20) or > 999) throw new ArgumentException($"math: setting 'word_max' is {wordMax} (expected 0, or 20 to 999)");
        string instruction = Context.GetText("instruction");

        var tasks = new List<TaskRecord>();
        if (Context.GetBool("handwritten"))
        {
            var path = Path.Combine(Context.DataDirectory, "handwritten.jsonl");
            foreach (var t in await ReadJsonlAsync(path, cancellation))
                if ((t.Extra["split"]?.GetValue<string>() ?? "train") == query.Split) tasks.Add(t);
        }
        int target = query.Count > 0 ? query.Count : 1000;
        var rng = new Random(query.Seed);
        var seen = new HashSet<string>(tasks.Select(t => t.Input[^1].Content));
        int attempts = 0, generated = 0;
        while (tasks.Count < target && attempts++ < target * 50)
        {
            var p = MathProblems.Generate(families[rng.Next(families.Length)], difficulty, rng, wordOperations, wordMax);
            if (MathProblems.IsHeldOut(p.Question) != heldOut || !seen.Add(p.Question)) continue;
            // Ids follow the generation order, so a larger count extends a smaller one with the same ids.
            tasks.Add(MathProblems.ToTask($"math-{query.Split}-{generated++:D5}", p, instruction));
        }
        return tasks.Take(target).ToList();
    }

    /// <summary>The word_operations setting as operations, in the order of <see cref="MathProblems.WordOperations"/>.</summary>
    private static char[] WordOperationsSetting(string text)
    {
        var items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var item in items)
            if (item.Length != 1 || !MathProblems.WordOperations.Contains(item[0]))
                throw new ArgumentException($"math: setting 'word_operations': unknown operation '{item}' (expected a comma-separated subset of +, -, *)");
        var ops = MathProblems.WordOperations.Where(op => items.Contains(op.ToString())).ToArray();
        if (ops.Length == 0) throw new ArgumentException("math: setting 'word_operations' is empty (expected a comma-separated subset of +, -, *)");
        return ops;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        var problems = new List<string>();
        if (task.VerifierMetadata["answer"] is not System.Text.Json.Nodes.JsonValue v || !v.TryGetValue(out string? answer) || string.IsNullOrWhiteSpace(answer))
            problems.Add("verifier_metadata.answer must be a non-empty string");
        else if (MathExpression.TryEvaluate(MathAnswers.Normalize(answer).TrimEnd('%')) == null && !answer.Contains(','))
            problems.Add($"verifier_metadata.answer '{answer}' is not a value the verifier can compare");
        if (task.Input.Count == 0 || task.Input[^1].Role != Role.User) problems.Add("the last input message must be the user's question");
        return problems;
    }

    /// <inheritdoc />
    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new MathEpisode(task));

    private sealed class MathEpisode(TaskRecord task) : SingleTurnEpisode(task)
    {
        protected override Grade Grade(AssistantTurn answer) => Verify(answer.Content, Task.VerifierMetadata["answer"]!.GetValue<string>());
    }

    /// <summary>The verifier, on its own (for tests and benchmarks).</summary>
    public static Grade Verify(string response, string expected)
    {
        var (extracted, method) = MathAnswers.Extract(response);
        var evidence = new Dictionary<string, string>
        {
            ["expected"] = expected,
            ["extracted_answer"] = extracted ?? "",
            ["extraction"] = method.ToString().ToLowerInvariant(),
        };
        if (extracted == null)
            return new Grade(0, new Dictionary<string, double> { ["correct"] = 0, ["answer_found"] = 0 }, "no final answer found in the response", evidence);
        bool ok = MathAnswers.Equivalent(extracted, expected);
        return new Grade(ok ? 1 : 0, new Dictionary<string, double> { ["correct"] = ok ? 1 : 0, ["answer_found"] = 1 },
            ok ? $"the final answer {extracted} equals {expected}" : $"the final answer {extracted} is not equivalent to {expected}", evidence);
    }
}
