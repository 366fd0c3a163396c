using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Rewards.Judging;

namespace Nemotron.Gym.Environments.Rlhf;

/// <summary>
/// RLHF with a generative reward model: open-ended prompts (explain, advise, rewrite, summarize a given text, decline an
/// unsafe request), each with an optional principle. There is no right answer to check: the reward comes from a judge
/// model that compares the responses of a group with each other (pairwise, after NeMo-Gym's genrm_compare) or rates each
/// on a rubric (pointwise), with group-relative length control. The judge is the host's <see cref="IJudgeService"/>;
/// without one every response is masked, never scored.
/// </summary>
public sealed class RlhfEnvironment : EnvironmentBase, IGroupGradedEnvironment
{
    private IJudgeService? _judge;
    private GroupJudgingSettings _settings = new();
    private bool _pairwise = true;

    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "rlhf", "1.0.0",
        "Open-ended prompts (explain, advise, rewrite, summarize, refuse) rewarded by a generative judge: pairwise comparisons within the group or a pointwise rubric, with group-relative length control.",
        [
            new ConfigOption("mode", ConfigType.Choice, "pairwise", "pairwise: the judge compares responses of the group two at a time; pointwise: it rates each on the HelpSteer rubric.", Choices: ["pairwise", "pointwise"]),
            new ConfigOption("pairing", ConfigType.Choice, "circular", "Pairwise: which pairs are compared (circular: each with the next; all_pairs: every pair).", Choices: ["circular", "all_pairs"]),
            new ConfigOption("swap", ConfigType.Boolean, "true", "Pairwise: judge each pair in both orders, cancelling a judge's preference for a position."),
            new ConfigOption("parse_retries", ConfigType.Integer, "2", "Asks after the first when the judge's answer holds no readable verdict.", 0, 10),
            new ConfigOption("on_judge_failure", ConfigType.Choice, "mask", "A comparison with no verdict: mask (a response with no verdict is left out of training) or neutral (counts as even).", Choices: ["mask", "neutral"]),
            new ConfigOption("length_penalty_answer", ConfigType.Number, "0.1", "λ for the answer: reward −= λ·(length / group mean − 1).", 0, 10),
            new ConfigOption("length_penalty_reasoning", ConfigType.Number, "0.05", "λ for the reasoning, the same way.", 0, 10),
            new ConfigOption("rubric_weights", ConfigType.Text, "helpfulness=1", "Pointwise: attribute=weight pairs (helpfulness, correctness, coherence, complexity, verbosity)."),
            new ConfigOption("principles", ConfigType.Boolean, "true", "Give the judge each prompt's principle."),
            new ConfigOption("categories", ConfigType.Text, string.Join(",", RlhfPrompts.Categories), "Comma-separated categories to draw prompts from."),
        ],
        ["train", "heldout"]);

    /// <inheritdoc />
    public override async ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        await base.InitializeAsync(context, cancellation);
        _judge = context.Services.Get<IJudgeService>();
        _pairwise = context.GetText("mode") == "pairwise";
        _settings = new GroupJudgingSettings(
            context.GetText("pairing") == "all_pairs" ? Pairing.AllPairs : Pairing.Circular,
            context.GetBool("swap"),
            context.GetInt("parse_retries"),
            context.GetText("on_judge_failure") == "neutral" ? JudgeFailurePolicy.Neutral : JudgeFailurePolicy.Mask,
            context.GetDouble("length_penalty_answer"),
            context.GetDouble("length_penalty_reasoning"),
            GroupJudgingSettings.ParseRubricWeights(context.GetText("rubric_weights")));
        foreach (var c in Categories())
            if (!RlhfPrompts.Categories.Contains(c)) throw new ArgumentException($"rlhf: setting 'categories': unknown category '{c}' (expected {string.Join(", ", RlhfPrompts.Categories)})");
        if (_judge == null) context.Log.Write("no judge service on this host: every response will be masked (configure judge.base_url)");
    }

    private string[] Categories() => Context.GetText("categories").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Whether prompt i of <see cref="RlhfPrompts.All"/> is held out (every tenth, so each category has some).</summary>
    public static bool IsHeldOut(int index) => index % 10 == 9;

    /// <inheritdoc />
    public override ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout")) throw new ArgumentException($"rlhf: unknown split '{query.Split}' (train, heldout)");
        var categories = Categories().ToHashSet();
        bool usePrinciples = Context.GetBool("principles");
        var tasks = new List<TaskRecord>();
        for (int i = 0; i < RlhfPrompts.All.Count; i++)
        {
            var p = RlhfPrompts.All[i];
            if (IsHeldOut(i) != (query.Split == "heldout") || !categories.Contains(p.Category)) continue;
            var meta = new JsonObject { ["category"] = p.Category };
            if (usePrinciples && p.Principle != null) meta["principle"] = p.Principle;
            tasks.Add(new TaskRecord { Id = $"rlhf-{p.Category}-{i:D3}", Input = [Message.User(p.Text)], VerifierMetadata = meta });
        }
        if (query.Count <= 0 || query.Count >= tasks.Count) return ValueTask.FromResult<IReadOnlyList<TaskRecord>>(tasks);
        // A seeded sample, in list order, so the same query always gives the same tasks.
        var rng = new Random(query.Seed);
        var picked = Enumerable.Range(0, tasks.Count).OrderBy(_ => rng.Next()).Take(query.Count).Order();
        return ValueTask.FromResult<IReadOnlyList<TaskRecord>>(picked.Select(i => tasks[i]).ToList());
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        var problems = new List<string>();
        if (task.VerifierMetadata["category"]?.GetValue<string>() is not { } c || !RlhfPrompts.Categories.Contains(c))
            problems.Add("verifier_metadata.category must be one of " + string.Join(", ", RlhfPrompts.Categories));
        if (task.VerifierMetadata["principle"] is { } p && p.GetValueKind() != System.Text.Json.JsonValueKind.String)
            problems.Add("verifier_metadata.principle must be text when present");
        return problems;
    }

    /// <inheritdoc />
    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new RlhfEpisode(task));

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<Grade>> GradeGroupAsync(TaskRecord task, IReadOnlyList<GroupMember> members, CancellationToken cancellation)
    {
        string? principle = task.VerifierMetadata["principle"]?.GetValue<string>();
        return await GroupJudging.GradeAsync(_judge, _pairwise, members, principle, _settings, cancellation);
    }

    /// <summary>
    /// One response. Alone it has no reward (a judge compares it with the rest of its group): its own grade is
    /// provisional, and the group's grading replaces it.
    /// </summary>
    private sealed class RlhfEpisode(TaskRecord task) : SingleTurnEpisode(task)
    {
        protected override Grade Grade(AssistantTurn answer) => new(0, new Dictionary<string, double> { ["provisional"] = 1 },
            "provisional: the judge grades this response together with the rest of its group", new Dictionary<string, string> { ["answer_tail"] = Tail(answer.Content) });
    }
}
