using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Environments.Reasoning;

/// <summary>
/// Procedural reasoning puzzles in eight families (see <see cref="Family.All"/>), each with a difficulty
/// knob, infinitely many from a seed. A puzzle's split is decided by a hash of its text (one in ten is
/// held out), so train and held-out never share a puzzle.
/// </summary>
public sealed class ReasoningEnvironment : EnvironmentBase
{
    /// <inheritdoc />
    public override EnvironmentDescriptor Descriptor { get; } = new(
        "reasoning", "1.0.0",
        "Procedural puzzles (arithmetic chains, countdown, sorting, letter counting, base conversion, ordering, reversal, remainders) with exact verifiers.",
        [
            new ConfigOption("difficulty", ConfigType.Integer, "2", "1 (easy) to 5 (hard): more steps, larger numbers, longer lists.", 1, 5),
            new ConfigOption("families", ConfigType.Text, string.Join(",", Family.All.Select(f => f.Name)), "Comma-separated families to draw from."),
            new ConfigOption("sorting_numbers", ConfigType.Integer, "0", "Numbers in a sorting puzzle: 2 to 12, or 0 for 2 + 2 × difficulty.", 0, 12),
        ],
        ["train", "heldout"]);

    private IReadOnlyList<Family> _families = Family.All;

    /// <inheritdoc />
    public override async ValueTask InitializeAsync(EnvironmentContext context, CancellationToken cancellation)
    {
        await base.InitializeAsync(context, cancellation);
        var names = context.GetText("families").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        _families = names.Select(n => Family.All.FirstOrDefault(f => f.Name == n)
            ?? throw new ArgumentException($"reasoning: setting 'families': unknown family '{n}' (expected {string.Join(", ", Family.All.Select(f => f.Name))})")).ToList();
        int sortingNumbers = context.GetInt("sorting_numbers");
        if (sortingNumbers == 1) throw new ArgumentException("reasoning: setting 'sorting_numbers' is 1 (expected 2 to 12, or 0 for 2 + 2 × difficulty)");
        if (sortingNumbers > 0) _families = _families.Select(f => f is Sorting ? new Sorting(sortingNumbers) : f).ToList();
    }

    /// <inheritdoc />
    public override ValueTask<IReadOnlyList<TaskRecord>> LoadTasksAsync(TaskQuery query, CancellationToken cancellation)
    {
        if (query.Split is not ("train" or "heldout")) throw new ArgumentException($"reasoning: unknown split '{query.Split}' (train, heldout)");
        bool heldOut = query.Split == "heldout";
        int difficulty = Context.GetInt("difficulty");
        int target = query.Count > 0 ? query.Count : 1000;
        var rng = new Random(query.Seed);
        var tasks = new List<TaskRecord>();
        var seen = new HashSet<string>();
        int attempts = 0, index = 0, misses = 0;
        var exhausted = new bool[_families.Count];
        while (tasks.Count < target && attempts++ < target * 200)
        {
            var family = _families[index % _families.Count];
            var p = family.Generate(rng, difficulty);
            if (IsHeldOut(p.Question) != heldOut || !seen.Add(p.Question))
            {
                // A family that has run out of new questions at this difficulty is left out from then on; otherwise
                // it would cost every round its misses again, and the set would stop short of the count.
                if (++misses == MissesBeforeSkipping)
                {
                    exhausted[index % _families.Count] = true;
                    if (exhausted.All(e => e)) break;
                    do index++; while (exhausted[index % _families.Count]);
                    misses = 0;
                }
                continue;
            }
            misses = 0;
            do index++; while (exhausted[index % _families.Count]);
            var meta = (JsonObject)p.Metadata.DeepClone();
            meta["family"] = family.Name;
            meta["difficulty"] = difficulty;
            tasks.Add(new TaskRecord
            {
                Id = $"reasoning-{query.Split}-{tasks.Count:D5}",
                Input = [Message.User(p.Question)],
                VerifierMetadata = meta,
                Reference = [p.Steps is { } steps ? new AssistantTurn(p.Answer, p.Answer, steps, [], []) : AssistantTurn.FromContent(p.Answer)],
            });
        }
        return ValueTask.FromResult<IReadOnlyList<TaskRecord>>(tasks);
    }

    private const int MissesBeforeSkipping = 200;

    private static bool IsHeldOut(string text)
    {
        uint h = 2166136261;
        foreach (char ch in text) h = (h ^ ch) * 16777619;
        return h % 10 == 0;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ValidateTask(TaskRecord task)
    {
        string? name = task.VerifierMetadata["family"]?.GetValue<string>();
        if (name == null) return ["verifier_metadata.family is missing"];
        if (Family.All.All(f => f.Name != name)) return [$"verifier_metadata.family '{name}' is not a known family"];
        if (task.VerifierMetadata["answer"] is null) return ["verifier_metadata.answer is missing"];
        return [];
    }

    /// <inheritdoc />
    public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation)
    {
        var family = Family.All.First(f => f.Name == task.VerifierMetadata["family"]!.GetValue<string>());
        return ValueTask.FromResult<IEpisode>(new Episode(task, family));
    }

    private sealed class Episode(TaskRecord task, Family family) : SingleTurnEpisode(task)
    {
        protected override Grade Grade(AssistantTurn answer)
        {
            var g = family.Verify(answer.Content, Task.VerifierMetadata);
            var evidence = new Dictionary<string, string>(g.Evidence) { ["family"] = family.Name };
            return g with { Evidence = evidence };
        }
    }
}
