using System.Text;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Rewards;

namespace Nemotron.Gym.Environments.Reasoning;

/// <summary>
/// A generated puzzle: the question, the expected answer, and what the verifier needs. <paramref name="Steps"/>, when
/// set, is a worked solution that the reference answer carries as its reasoning.
/// </summary>
public sealed record Puzzle(string Question, string Answer, JsonObject Metadata, string? Steps = null);

/// <summary>A family of procedural puzzles with its own verifier. Difficulty runs from 1 (easy) to 5.</summary>
public abstract class Family
{
    /// <summary>The family's name in task metadata and settings.</summary>
    public abstract string Name { get; }
    /// <summary>A puzzle at the given difficulty.</summary>
    public abstract Puzzle Generate(Random rng, int difficulty);
    /// <summary>Grades the visible content of an answer against the puzzle's metadata. Never throws.</summary>
    public abstract Grade Verify(string content, JsonObject metadata);

    /// <summary>Every family.</summary>
    public static readonly IReadOnlyList<Family> All =
        [new ChainArithmetic(), new Countdown(), new Sorting(), new LetterCount(), new BaseConversion(), new Ordering(), new ReverseWord(), new Modular()];

    /// <summary>The answer part of a response: after "Answer:" if present, else the last non-empty line.</summary>
    protected static string AnswerText(string content)
    {
        string text = content.Length > 5000 ? content[^5000..] : content;
        int at = text.LastIndexOf("answer", StringComparison.OrdinalIgnoreCase);
        if (at >= 0)
        {
            int colon = text.IndexOfAny([':', '='], at);
            int isAt = text.IndexOf(" is ", at, StringComparison.OrdinalIgnoreCase);
            int from = colon >= 0 && (isAt < 0 || colon < isAt) ? colon + 1 : isAt >= 0 ? isAt + 4 : -1;
            if (from > 0 && from - at < 20) text = text[from..];
        }
        var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        return (lines.Count == 0 ? "" : lines[^1]).Trim().TrimEnd('.', '!').Trim().Trim('*', '`', '"', '\'').Trim();
    }

    /// <summary>A whole number from metadata, whether it was parsed from JSON or built in memory as any integer type.</summary>
    protected static long Long(JsonNode? node) =>
        long.Parse(node?.ToJsonString() ?? throw new ArgumentException("a number is missing from the metadata"), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A grade for an exact comparison.</summary>
    protected static Grade Compare(string given, string expected, bool ok, string what) =>
        new(ok ? 1 : 0, new Dictionary<string, double> { ["correct"] = ok ? 1 : 0 },
            ok ? $"{what}: {given} is right" : $"{what}: expected {expected}, got '{(given.Length > 60 ? given[..60] + "…" : given)}'",
            new Dictionary<string, string> { ["answer"] = given.Length > 200 ? given[..200] : given, ["expected"] = expected });
}

/// <summary>Evaluate a chain of operations, e.g. ((7 + 3) × 2) − 4.</summary>
public sealed class ChainArithmetic : Family
{
    /// <inheritdoc />
    public override string Name => "chain_arithmetic";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        long value = rng.Next(1, 10);
        string expr = value.ToString();
        for (int i = 0; i < difficulty; i++)
        {
            int n = rng.Next(1, 10);
            switch (rng.Next(3))
            {
                case 0: expr = $"({expr} + {n})"; value += n; break;
                case 1: expr = $"({expr} - {n})"; value -= n; break;
                default: expr = $"({expr} * {n})"; value *= n; break;
            }
        }
        if (expr.StartsWith('(')) expr = expr[1..^1];
        return new($"Compute {expr}. Answer with the number.", value.ToString(), new JsonObject { ["answer"] = value.ToString() });
    }

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        string expected = metadata["answer"]!.GetValue<string>();
        var (extracted, _) = MathAnswers.Extract(content);
        string given = extracted ?? "";
        return Compare(given, expected, extracted != null && MathAnswers.Equivalent(given, expected), "arithmetic");
    }
}

/// <summary>Reach a target with + − × ÷ using each given number at most once.</summary>
public sealed class Countdown : Family
{
    /// <inheritdoc />
    public override string Name => "countdown";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        int count = Math.Min(2 + difficulty, 6);
        while (true)
        {
            var numbers = Enumerable.Range(0, count).Select(_ => rng.Next(1, difficulty <= 2 ? 10 : 25)).ToList();
            // Build a solution from a random subset (at least two numbers), so one always exists.
            var used = numbers.OrderBy(_ => rng.Next()).Take(rng.Next(2, count + 1)).ToList();
            long value = used[0];
            var expr = used[0].ToString();
            foreach (var n in used.Skip(1))
            {
                int op = rng.Next(value % n == 0 && n > 1 ? 4 : 3);
                (expr, value) = op switch
                {
                    0 => ($"({expr} + {n})", value + n),
                    1 => ($"({expr} - {n})", value - n),
                    2 => ($"({expr} * {n})", value * n),
                    _ => ($"({expr} / {n})", value / n),
                };
            }
            if (value <= 0 || value > 1000) continue;
            string solution = expr.StartsWith('(') ? expr[1..^1] : expr;
            var list = string.Join(", ", numbers);
            return new($"Using the numbers [{list}], each at most once, and the operations + - * /, write an expression equal to {value}. Answer with the expression only.",
                solution, new JsonObject { ["numbers"] = new JsonArray(numbers.Select(n => (JsonNode)n).ToArray()), ["target"] = value, ["answer"] = solution });
        }
    }

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        var numbers = metadata["numbers"]!.AsArray().Select(n => (int)Long(n)).ToList();
        long target = Long(metadata["target"]);
        string given = AnswerText(content);
        if (given.Contains('=')) given = given[..given.IndexOf('=')].Trim();
        var evidence = new Dictionary<string, string> { ["expression"] = given.Length > 200 ? given[..200] : given, ["target"] = target.ToString(), ["numbers"] = string.Join(",", numbers) };
        if (given.Length == 0 || given.Length > 200)
            return new Grade(0, new Dictionary<string, double> { ["valid"] = 0, ["correct"] = 0 }, "no expression found", evidence);
        // Every number literal must come from the list, each used at most once.
        var remaining = numbers.ToList();
        var literal = new StringBuilder();
        foreach (char c in given + " ")
        {
            if (char.IsDigit(c)) { literal.Append(c); continue; }
            if (literal.Length > 0)
            {
                if (!int.TryParse(literal.ToString(), out int n) || !remaining.Remove(n))
                    return new Grade(0, new Dictionary<string, double> { ["valid"] = 0, ["correct"] = 0 }, $"{literal} is not an unused number of the list", evidence);
                literal.Clear();
            }
            if (!(c is '+' or '-' or '*' or '/' or '(' or ')' or ' ' or 'x' or '×' or '÷'))
                return new Grade(0, new Dictionary<string, double> { ["valid"] = 0, ["correct"] = 0 }, $"'{c}' is not allowed in the expression", evidence);
        }
        var value = MathExpression.TryEvaluate(given.Replace('x', '*'));
        evidence["value"] = value?.ToString("R") ?? "not a number";
        bool ok = value != null && Math.Abs(value.Value - target) < 1e-9;
        return new Grade(ok ? 1 : 0, new Dictionary<string, double> { ["valid"] = 1, ["correct"] = ok ? 1 : 0 },
            ok ? $"{given} = {target}" : $"{given} = {evidence["value"]}, not {target}", evidence);
    }
}

/// <summary>
/// Sort a list of integers: 2 + 2 × difficulty of them, or <paramref name="count"/> when given (the reasoning
/// environment's sorting_numbers setting, a step between the difficulties' 4, 6, 8, ...).
/// </summary>
public sealed class Sorting(int? count = null) : Family
{
    /// <inheritdoc />
    public override string Name => "sorting";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        int n = count ?? 2 + 2 * difficulty;
        var values = Enumerable.Range(0, n).Select(_ => rng.Next(-10 * difficulty, 20 * difficulty)).ToList();
        bool descending = difficulty > 1 && rng.Next(2) == 0;
        var sorted = descending ? values.OrderByDescending(v => v).ToList() : values.Order().ToList();
        string answer = string.Join(", ", sorted);
        return new($"Sort these numbers in {(descending ? "descending" : "ascending")} order: {string.Join(", ", values)}. Answer with the sorted list, separated by commas.",
            answer, new JsonObject { ["answer"] = answer });
    }

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        string expected = metadata["answer"]!.GetValue<string>();
        string given = AnswerText(content).Trim('[', ']');
        var parts = given.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var parsed = parts.Select(p => long.TryParse(p, out long v) ? v : (long?)null).ToList();
        bool ok = parsed.All(p => p != null) && string.Join(", ", parsed) == expected;
        return Compare(string.Join(", ", parts), expected, ok, "sorting");
    }
}

/// <summary>Count occurrences of a letter in a word.</summary>
public sealed class LetterCount : Family
{
    private static readonly string[] Words =
    [
        "strawberry", "banana", "mississippi", "committee", "bookkeeper", "assessment", "parallel", "occurrence", "necessary", "balloon",
        "address", "letter", "coffee", "success", "pepper", "millennium", "accommodate", "embarrass", "possession", "tomorrow",
    ];

    /// <inheritdoc />
    public override string Name => "letter_count";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        string word = difficulty <= 2 ? Words[rng.Next(Words.Length)]
            : new string(Enumerable.Range(0, 6 + 3 * difficulty).Select(_ => (char)('a' + rng.Next(5))).ToArray());
        char letter = word[rng.Next(word.Length)];
        int count = word.Count(c => c == letter);
        return new($"How many times does the letter '{letter}' appear in \"{word}\"? Answer with the number.", count.ToString(), new JsonObject { ["answer"] = count.ToString() });
    }

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        string expected = metadata["answer"]!.GetValue<string>();
        var (extracted, _) = MathAnswers.Extract(content);
        return Compare(extracted ?? "", expected, extracted != null && MathAnswers.Equivalent(extracted, expected), "letter count");
    }
}

/// <summary>Convert a number between bases 2, 8, 10 and 16.</summary>
public sealed class BaseConversion : Family
{
    private static readonly int[] Bases = [2, 8, 10, 16];

    /// <inheritdoc />
    public override string Name => "base_conversion";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        int value = rng.Next(2, (int)Math.Pow(16, Math.Min(difficulty, 4)) + 16);
        int from = Bases[rng.Next(4)], to;
        do to = Bases[rng.Next(4)]; while (to == from);
        string fromText = ToBase(value, from), answer = ToBase(value, to);
        return new($"Convert the base-{from} number {fromText} to base {to}. Answer with the digits only.", answer, new JsonObject { ["answer"] = answer, ["base"] = to });
    }

    private static string ToBase(int value, int b) => b == 10 ? value.ToString() : Convert.ToString(value, b).ToUpperInvariant();

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        string expected = metadata["answer"]!.GetValue<string>();
        string given = AnswerText(content).ToUpperInvariant().Replace(" ", "");
        if (given.StartsWith("0X") || given.StartsWith("0B") || given.StartsWith("0O")) given = given[2..];
        given = given.TrimStart('0');
        return Compare(given, expected, given == expected.TrimStart('0'), "base conversion");
    }
}

/// <summary>Order people by height from pairwise statements and name the tallest or shortest.</summary>
public sealed class Ordering : Family
{
    private static readonly string[] Names = ["Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Gina", "Hank"];

    /// <inheritdoc />
    public override string Name => "ordering";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        int n = Math.Min(2 + difficulty, Names.Length);
        var people = Names.OrderBy(_ => rng.Next()).Take(n).ToList(); // tallest first
        var facts = Enumerable.Range(0, n - 1).Select(i => $"{people[i]} is taller than {people[i + 1]}.").OrderBy(_ => rng.Next()).ToList();
        bool tallest = rng.Next(2) == 0;
        string answer = tallest ? people[0] : people[^1];
        // The worked solution restates the facts as one chain, tallest first ("Carol>Bob>Alice."), then reads off the
        // end asked for. The demo's small policy does not learn even this, as it cannot copy names from the prompt
        // (docs/learning-notes.md, experiment 12).
        string steps = $"{string.Join(">", people)}. The {(tallest ? "tallest" : "shortest")} is {answer}.";
        return new($"{string.Join(" ", facts)} Who is the {(tallest ? "tallest" : "shortest")}? Answer with the name.", answer, new JsonObject { ["answer"] = answer }, steps);
    }

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        string expected = metadata["answer"]!.GetValue<string>();
        string given = AnswerText(content);
        // The answer must be the expected name and no other candidate name.
        bool mentions = given.Contains(expected, StringComparison.OrdinalIgnoreCase);
        bool others = Names.Where(n => n != expected).Any(n => given.Contains(n, StringComparison.OrdinalIgnoreCase));
        return Compare(given, expected, mentions && !others, "ordering");
    }
}

/// <summary>Reverse the letters of a word.</summary>
public sealed class ReverseWord : Family
{
    private static readonly string[] Words = ["planet", "garden", "window", "silver", "bridge", "orange", "winter", "candle", "rocket", "forest", "pencil", "castle"];

    /// <inheritdoc />
    public override string Name => "reverse_word";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        string word = difficulty <= 1 ? Words[rng.Next(Words.Length)] : string.Concat(Enumerable.Range(0, difficulty).Select(_ => Words[rng.Next(Words.Length)]));
        string answer = new(word.Reverse().ToArray());
        return new($"Write the letters of \"{word}\" in reverse order. Answer with the reversed word only.", answer, new JsonObject { ["answer"] = answer });
    }

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        string expected = metadata["answer"]!.GetValue<string>();
        string given = AnswerText(content).Trim('"').ToLowerInvariant();
        return Compare(given, expected, given == expected, "reverse");
    }
}

/// <summary>Remainders: a mod m.</summary>
public sealed class Modular : Family
{
    /// <inheritdoc />
    public override string Name => "modular";

    /// <inheritdoc />
    public override Puzzle Generate(Random rng, int difficulty)
    {
        int m = rng.Next(2, 3 + 4 * difficulty), a = rng.Next(m, (int)Math.Pow(10, Math.Min(difficulty + 1, 6)));
        return new($"What is the remainder when {a} is divided by {m}? Answer with the number.", (a % m).ToString(), new JsonObject { ["answer"] = (a % m).ToString() },
            ShortDivisionSteps(a, m));
    }

    /// <summary>
    /// Short division, digits from the left, each step the largest multiple of m that fits and what is left carried
    /// into the next digit: "47 mod 3. 4: 3*1=3, r1. 17: 3*5=15, r2. So 2." For a one-digit m only its times table is
    /// needed (docs/learning-notes.md, experiment 12).
    /// </summary>
    public static string ShortDivisionSteps(int a, int m)
    {
        var sb = new StringBuilder($"{a} mod {m}. ");
        int r = 0;
        foreach (char d in a.ToString())
        {
            int current = r * 10 + (d - '0');
            int q = current / m;
            r = current - q * m;
            sb.Append($"{current}: {m}*{q}={q * m}, r{r}. ");
        }
        return sb.Append($"So {r}.").ToString();
    }

    /// <inheritdoc />
    public override Grade Verify(string content, JsonObject metadata)
    {
        string expected = metadata["answer"]!.GetValue<string>();
        var (extracted, _) = MathAnswers.Extract(content);
        return Compare(extracted ?? "", expected, extracted != null && MathAnswers.Equivalent(extracted, expected), "remainder");
    }
}
