using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.InstructionFollowing;

/// <summary>
/// IFEval-style instruction following: a writing request with several verifiable constraints (length in
/// words or sentences, required and forbidden words, JSON output, bullets, case, start and end phrases,
/// commas, title, paragraphs, keyword frequency). Reward = the fraction of constraints satisfied, or with
/// reward_mode binary 1 only when all are (IFEval's strict prompt-level accuracy); the components name each
/// constraint and add an all-satisfied flag.
/// </summary>
public sealed class InstructionFollowingEnvironment : EnvironmentBase
{
    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "instruction_following", "1.0.0",
        "Writing requests with several verifiable constraints; reward is the fraction satisfied (or 1 only when all are), with an all-satisfied flag.",
        [
            new ConfigOption("constraints", ConfigType.Integer, "3", "Constraints per prompt (the required keyword included).", 1, 6),
            new ConfigOption("reward_mode", ConfigType.Choice, "fraction", "fraction: the share of constraints satisfied; binary: 1 when all are, else 0 (strict prompt-level accuracy).", Choices: ["fraction", "binary"]),
            new ConfigOption("kinds", ConfigType.Text, string.Join(",", PromptGenerator.Kinds), "Comma-separated constraint kinds a prompt adds to its keyword."),
            new ConfigOption("max_answer_chars", ConfigType.Integer, "0", "Every task can be answered in this many bytes (set it below the rollout's max_new_tokens): word minimums drawn from what fits, references in short sentences. 0: no budget.", 0, 100000),
            new ConfigOption("min_words_max", ConfigType.Integer, "0", "No word minimum is drawn above this (multiples of five from 15, or 10 under max_answer_chars). 0: up to 40, or what max_answer_chars holds.", 0, 1000),
            new ConfigOption("structure_count", ConfigType.Integer, "0", "Bullet lists, sentence counts and paragraph counts ask for exactly this many. 0: drawn (2-4 bullets, 1-4 sentences, 2-3 paragraphs).", 0, 10),
        ],
        ["train", "heldout"]);

    private IReadOnlySet<string>? _kinds;

    /// <inheritdoc />
    public override async ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        await base.InitializeAsync(context, cancellation);
        var names = context.GetText("kinds").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var n in names)
            if (!PromptGenerator.Kinds.Contains(n))
                throw new ArgumentException($"instruction_following: setting 'kinds': unknown constraint kind '{n}' (expected {string.Join(", ", PromptGenerator.Kinds)})");
        var kinds = names.ToHashSet();
        int perPrompt = context.GetInt("constraints");
        if (kinds.Count < perPrompt - 1)
            throw new ArgumentException($"instruction_following: setting 'kinds' names {kinds.Count} kinds, but 'constraints' asks for {perPrompt} per prompt (the keyword and {perPrompt - 1} more)");
        int minWordsMax = context.GetInt("min_words_max");
        if (minWordsMax is > 0 and < 10) throw new ArgumentException($"instruction_following: setting 'min_words_max' is {minWordsMax} (expected 0, or 10 to 1000: the lowest word minimum is 10)");
        // Every kind: null, so the generator draws exactly as it always has.
        _kinds = kinds.Count == PromptGenerator.Kinds.Count ? null : kinds;
    }

    /// <inheritdoc />
    public override ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout")) throw new ArgumentException($"instruction_following: unknown split '{query.Split}' (train, heldout)");
        int perPrompt = Context.GetInt("constraints");
        int maxChars = Context.GetInt("max_answer_chars");
        int minWordsMax = Context.GetInt("min_words_max");
        int structureCount = Context.GetInt("structure_count");
        int target = query.Count > 0 ? query.Count : 1000;
        bool heldOut = query.Split == "heldout";
        var rng = new Random(query.Seed * 2 + (heldOut ? 1 : 0));
        var tasks = new List<TaskRecord>();
        // The split is decided by a hash of the prompt's text, so no seed can generate a held-out prompt for training
        // (separate seed streams alone did not: with one constraint there are only topics × keywords prompts, and
        // most held-out prompts reappeared among the training ones). Held-out prompts are also distinct, so a score
        // counts each once; with few constraints the held-out space is small and the set may stop short of the count.
        var seen = new HashSet<string>();
        for (int i = 0, attempts = 0; tasks.Count < target && attempts < target * 50; attempts++, i++)
        {
            var g = PromptGenerator.Generate(rng, perPrompt, i + (heldOut ? 23 : 0), _kinds, maxChars, minWordsMax, structureCount);
            if (IsHeldOut(g.Prompt) != heldOut || (heldOut && !seen.Add(g.Prompt))) continue;
            tasks.Add(new TaskRecord
            {
                Id = $"if-{query.Split}-{tasks.Count:D5}",
                Input = [Message.User(g.Prompt)],
                VerifierMetadata = new JsonObject { ["topic"] = g.Topic, ["constraints"] = new JsonArray(g.Constraints.Select(c => (JsonNode)c.ToJson()).ToArray()) },
                Reference = [AssistantTurn.FromContent(g.Reference)],
            });
        }
        return ValueTask.FromResult<IReadOnlyList<TaskRecord>>(tasks);
    }

    /// <summary>
    /// Whether the answer names the topic ("rivers"), in the plural or the singular ("river", "library" for
    /// "libraries"), as a whole word, in any case.
    /// </summary>
    public static bool MentionsTopic(string response, string topic)
    {
        var forms = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { topic };
        if (topic.EndsWith("ies", StringComparison.OrdinalIgnoreCase)) forms.Add(topic[..^3] + "y");
        if (topic.EndsWith("es", StringComparison.OrdinalIgnoreCase)) forms.Add(topic[..^2]);
        if (topic.EndsWith('s')) forms.Add(topic[..^1]);
        return Constraint.Words(response).Any(forms.Contains);
    }

    // One prompt in ten is held out (FNV-1a over the text).
    private static bool IsHeldOut(string prompt)
    {
        uint h = 2166136261;
        foreach (char ch in prompt) h = (h ^ ch) * 16777619;
        return h % 10 == 0;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        if (task.VerifierMetadata["constraints"] is not JsonArray arr || arr.Count == 0) return ["verifier_metadata.constraints must be a non-empty list"];
        var problems = new List<string>();
        var parsed = new List<Constraint>();
        for (int i = 0; i < arr.Count; i++)
        {
            try { parsed.Add(Constraint.FromJson(arr[i] as JsonObject ?? throw new ArgumentException("not an object"))); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException) { problems.Add($"verifier_metadata.constraints[{i}]: {e.Message}"); }
        }
        if (parsed.Count > 0 && parsed.All(c => !c.Positive)) problems.Add("only negative constraints: an empty answer would satisfy them all");
        foreach (var a in parsed)
            foreach (var b in parsed)
                if (a != b && a.Conflicts.Contains(b.Id)) problems.Add($"constraints {a.Id} and {b.Id} cannot both be satisfied");
        return problems;
    }

    /// <inheritdoc />
    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
        ValueTask.FromResult<IEpisode>(new Episode(task, Context.GetText("reward_mode") == "binary"));

    private sealed class Episode(TaskRecord task, bool binary) : SingleTurnEpisode(task)
    {
        protected override Grade Grade(AssistantTurn answer) =>
            Verify(answer.Content, Task.VerifierMetadata["constraints"]!.AsArray().Select(c => Constraint.FromJson(c!.AsObject())).ToList(),
                Task.VerifierMetadata["topic"] is JsonValue t && t.TryGetValue(out string? topic) ? topic : null, binary);
    }

    /// <summary>
    /// The verifier on its own: fraction of constraints satisfied (with <paramref name="binary"/>, 1 when all are and
    /// 0 otherwise; the components are the same either way). With the request's <paramref name="topic"/>, a
    /// constraint that only forbids (<see cref="Constraint.Positive"/> false: no commas, at most N words, lowercase, a
    /// forbidden word) counts only when the answer writes about the topic. Without that gate a policy learned to answer
    /// "1" to every request (no commas, few words, no capitals) and gained 11 points of reward without writing anything
    /// (docs/learning-notes.md).
    /// </summary>
    public static Grade Verify(string response, IReadOnlyList<Constraint> constraints, string? topic = null, bool binary = false)
    {
        var components = new Dictionary<string, double>();
        var evidence = new Dictionary<string, string>();
        int passed = 0;
        bool onTopic = topic == null || constraints.All(c => c.Positive) || MentionsTopic(response, topic);
        foreach (var c in constraints)
        {
            var (ok, detail) = string.IsNullOrWhiteSpace(response) ? (false, "empty answer")
                : !c.Positive && !onTopic ? (false, $"kept only by writing nothing about {topic}")
                : c.Check(response);
            components[c.Id] = ok ? 1 : 0;
            evidence[c.Id] = detail;
            if (ok) passed++;
        }
        bool all = passed == constraints.Count;
        components["all_satisfied"] = all ? 1 : 0;
        double reward = constraints.Count == 0 ? 0 : binary ? (all ? 1 : 0) : (double)passed / constraints.Count;
        var failed = constraints.Where(c => components[c.Id] == 0).Select(c => $"{c.Id} ({evidence[c.Id]})").ToList();
        return new Grade(reward, components, all ? $"all {constraints.Count} constraints satisfied" : $"{passed} of {constraints.Count} satisfied; failed: {string.Join(", ", failed)}", evidence);
    }
}
