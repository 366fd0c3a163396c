using System.Text;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Environments.InstructionFollowing;

/// <summary>
/// Writes instruction-following prompts: a short writing request on a topic plus constraints that are
/// compatible with each other, and a reference answer built to satisfy them. A candidate whose
/// reference fails any of its own checks is thrown away, so every task's reference is verified.
/// Every task includes one distinct keyword, which makes each task's answer its own.
/// </summary>
public static class PromptGenerator
{
    private static readonly string[] Topics = ["gardens", "rivers", "libraries", "trains", "winter", "bees", "mountains", "bread", "music", "lighthouses", "forests", "markets", "bicycles", "stars", "islands", "kitchens"];
    private static readonly string[] Keywords =
    [
        "lantern", "meadow", "copper", "harbor", "velvet", "compass", "willow", "ember", "quartz", "saffron", "orchid", "glacier", "thimble", "canyon", "falcon",
        "pebble", "mosaic", "tundra", "violet", "beacon", "cobalt", "juniper", "marble", "nectar", "prairie", "ripple", "sparrow", "timber", "walnut", "zephyr",
        "amber", "basalt", "cedar", "dune", "fennel", "garnet", "hazel", "indigo", "jasmine", "kestrel", "lagoon", "maple", "nutmeg", "olive", "quill", "raven",
    ];
    private static readonly string[] Forbidden = ["very", "really", "basically", "literally", "actually", "just"];
    private static readonly string[] Endings = ["Is there anything else I can help with?", "That is all.", "Thank you for reading."];
    private static readonly string[] Starts = ["Today", "Honestly", "Imagine", "Look"];

    /// <summary>Sentences about a topic without commas or forbidden words (the writer's raw material).</summary>
    private static readonly string[] Templates =
    [
        "{0} have a quiet charm of their own.", "Many people enjoy {0} in every season.", "There is always something new to learn about {0}.",
        "I like to think about {0} on calm mornings.", "Stories about {0} travel far and wide.", "Every town has its own way with {0}.",
        "Children often ask questions about {0}.", "Writers have praised {0} for centuries.", "A visit to see {0} can change a long day.",
        "Small details make {0} memorable.",
    ];

    /// <summary>
    /// Three-word sentences for answers that must fit a byte budget (max_answer_chars): with them four sentences,
    /// four bullets or fifteen words fit in under a hundred bytes. No verb agrees with the topic, so "bread" and
    /// "bees" read equally well.
    /// </summary>
    private static readonly string[] ShortTemplates =
    [
        "I love {0}.", "Think of {0}.", "Poems praise {0}.", "Kids like {0}.", "We discuss {0}.", "I recall {0}.",
        "Consider {0}.", "Picture {0}.", "Friends enjoy {0}.", "Artists paint {0}.",
    ];

    /// <summary>A task's question, constraints and verified reference.</summary>
    public sealed record Generated(string Prompt, IReadOnlyList<Constraint> Constraints, string Reference, string Topic);

    /// <summary>The ids of the constraints a prompt can add to its keyword, in the order the generator knows them.</summary>
    public static IReadOnlyList<string> Kinds { get; } = Candidates(new Random(0), Topics[0], null).Select(c => c.Id).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// A prompt with <paramref name="count"/> constraints (the keyword constraint included), the others drawn from
    /// <paramref name="kinds"/> (null: every kind). With <paramref name="maxChars"/> above 0 every task can be answered
    /// in that many bytes: word minimums are drawn from what fits, the reference is written in short sentences, and a
    /// draw whose reference is still longer is drawn again (docs/learning-notes.md, finding 4: answers cut at the
    /// generation limit score 0, so a task whose answer cannot fit only teaches the policy to be cut). With
    /// <paramref name="minWordsMax"/> above 0 no word minimum is drawn above it (0: up to 40, or what the budget holds).
    /// With <paramref name="structureCount"/> above 0 every bullet list, sentence count and paragraph count asks for
    /// exactly that many (0: drawn).
    /// </summary>
    public static Generated Generate(Random rng, int count, int index, IReadOnlySet<string>? kinds = null, int maxChars = 0, int minWordsMax = 0, int structureCount = 0)
    {
        for (int attempt = 0; ; attempt++)
        {
            if (attempt > 200)
                throw new InvalidOperationException($"could not write a reference for {count} compatible constraints from {(kinds == null ? "every kind" : string.Join(", ", kinds))}"
                    + (maxChars > 0 ? $" within max_answer_chars = {maxChars}" : ""));
            string topic = Topics[rng.Next(Topics.Length)];
            string keyword = Keywords[index % Keywords.Length];
            var chosen = new List<Constraint> { new IncludeKeywords([keyword]) };
            foreach (var c in Candidates(rng, topic, kinds, maxChars, minWordsMax, structureCount))
            {
                if (chosen.Count >= count) break;
                if (chosen.Any(x => x.Id == c.Id || x.Conflicts.Contains(c.Id) || c.Conflicts.Contains(x.Id))) continue;
                chosen.Add(c);
            }
            if (chosen.Count < count) continue; // the kinds drawn conflicted: draw again
            string reference = Write(rng, topic, chosen, shortSentences: maxChars > 0);
            if (maxChars > 0 && Encoding.UTF8.GetByteCount(reference) > maxChars) continue;
            if (InstructionFollowingEnvironment.Verify(reference, chosen, topic).Reward == 1)
            {
                var prompt = $"Write a short piece about {topic}. " + string.Join(" ", chosen.OrderBy(_ => rng.Next()).Select(c => c.Instruction));
                return new Generated(prompt, chosen, reference, topic);
            }
        }
    }

    private static IEnumerable<Constraint> Candidates(Random rng, string topic, IReadOnlySet<string>? kinds, int maxChars = 0, int minWordsMax = 0, int structureCount = 0)
    {
        // A fixed count still takes its draw, so that every other constraint draws the same numbers as without it.
        int Count(int drawn) => structureCount > 0 ? structureCount : drawn;
        // Word minimums are multiples of five: from 15 (10 under a byte budget) up to 40 or what the budget holds, and
        // never above minWordsMax when it is set (nor below it, when it is under the usual lowest draw).
        int lowest = maxChars > 0 ? 2 : 3, highest = maxChars > 0 ? MaxMinWords(maxChars) / 5 : 8;
        if (minWordsMax > 0) { highest = Math.Min(highest, minWordsMax / 5); lowest = Math.Min(lowest, highest); }
        var all = new List<Constraint>
        {
            new ForbiddenWords([Forbidden[rng.Next(Forbidden.Length)]]),
            new MinWords(rng.Next(lowest, highest + 1) * 5),
            new MaxWords(rng.Next(6, 13) * 5),
            new NumSentences(Count(rng.Next(1, 5))),
            new BulletList(Count(rng.Next(2, 5))),
            new JsonFormat(),
            new Lowercase(),
            new Uppercase(),
            new EndWith(Endings[rng.Next(Endings.Length)]),
            new StartWith(Starts[rng.Next(Starts.Length)]),
            new NoCommas(),
            new Title(),
            new NumParagraphs(Count(rng.Next(2, 4))),
            new KeywordFrequency(topic, rng.Next(2, 4)),
        };
        // Filtered before the shuffle, so that every kind allowed draws the same numbers as before.
        return all.Where(c => kinds == null || kinds.Contains(c.Id)).OrderBy(_ => rng.Next());
    }

    // A short answer spends about six bytes a word (the keyword sentence, then three-word sentences): the largest
    // multiple of five words a budget holds, at least 10.
    private static int MaxMinWords(int maxChars) => Math.Max(10, maxChars / 6 / 5 * 5);

    /// <summary>
    /// Builds a response meant to satisfy every constraint (the generator verifies it); with
    /// <paramref name="shortSentences"/> from three-word sentences.
    /// </summary>
    public static string Write(Random rng, string topic, IReadOnlyList<Constraint> constraints, bool shortSentences = false)
    {
        T? Get<T>() where T : Constraint => constraints.OfType<T>().FirstOrDefault();
        string Cap(string s) => char.ToUpperInvariant(s[0]) + s[1..];
        var keywordSentences = constraints.OfType<IncludeKeywords>().SelectMany(k => k.Keywords).Select(k => $"The {k} stays in my mind.").ToList();
        int minWords = Get<MinWords>()?.N ?? 0;
        int sentencesWanted = Get<NumSentences>()?.N ?? 0;
        int frequency = Get<KeywordFrequency>()?.N ?? 0;

        var sentences = new List<string>(keywordSentences);
        var pool = (shortSentences ? ShortTemplates : Templates).OrderBy(_ => rng.Next()).Select(t => Cap(string.Format(t, topic))).ToList();
        int p = 0;
        // Every template names the topic once: enough of them satisfy keyword_frequency too.
        while (sentences.Count < Math.Max(2, frequency + keywordSentences.Count) || sentences.Sum(s => Constraint.Words(s).Count) < minWords)
        {
            sentences.Add(pool[p++ % pool.Count]);
            if (sentences.Count > 60) break;
        }
        if (sentencesWanted > 0)
        {
            // Merge the keyword into the first sentences if needed and cut to exactly N.
            var body = sentences.Skip(keywordSentences.Count).Take(Math.Max(0, sentencesWanted - keywordSentences.Count)).ToList();
            sentences = keywordSentences.Concat(body).ToList();
            if (sentences.Count > sentencesWanted)
                sentences = [string.Join(" and ", sentences.Select(s => s.TrimEnd('.'))) + "."];
            while (sentences.Count < sentencesWanted) sentences.Add(pool[p++ % pool.Count]);
        }
        if (Get<MaxWords>() is { } max)
            while (sentences.Count > keywordSentences.Count && sentences.Sum(s => Constraint.Words(s).Count) > max.N - 8) sentences.RemoveAt(sentences.Count - 1);

        string text;
        if (Get<JsonFormat>() != null)
        {
            var o = new JsonObject { ["topic"] = topic, ["text"] = string.Join(" ", sentences) };
            text = o.ToJsonString();
        }
        else if (Get<BulletList>() is { } bullets)
        {
            var lines = Enumerable.Range(0, bullets.N).Select(i => "* " + (i < sentences.Count ? sentences[i] : pool[p++ % pool.Count])).ToList();
            // Whatever did not fit in the bullets goes into the first one.
            if (sentences.Count > bullets.N) lines[0] = "* " + string.Join(" ", sentences.Take(sentences.Count - bullets.N + 1));
            text = string.Join("\n", lines);
        }
        else if (Get<NumParagraphs>() is { } paragraphs)
        {
            var parts = Enumerable.Range(0, paragraphs.N).Select(_ => new StringBuilder()).ToList();
            for (int i = 0; i < Math.Max(sentences.Count, paragraphs.N); i++)
                parts[i % paragraphs.N].Append(i < sentences.Count ? sentences[i] : pool[p++ % pool.Count]).Append(' ');
            text = string.Join("\n\n", parts.Select(b => b.ToString().Trim()));
        }
        else text = string.Join(" ", sentences);

        if (Get<StartWith>() is { } start) text = $"{start.Word} {char.ToLowerInvariant(text[0])}{text[1..]}";
        if (Get<Title>() != null) text = $"<<{Cap(topic)}>>\n{text}";
        if (Get<EndWith>() is { } end) text = $"{text}\n{end.Phrase}";
        if (Get<Lowercase>() != null) text = text.ToLowerInvariant();
        if (Get<Uppercase>() != null) text = text.ToUpperInvariant();
        return text;
    }
}
