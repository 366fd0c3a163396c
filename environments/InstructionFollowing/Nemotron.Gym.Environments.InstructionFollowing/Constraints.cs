using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Nemotron.Gym.Environments.InstructionFollowing;

/// <summary>
/// One verifiable instruction (IFEval-style): its text for the prompt, a checker, and its parameters in
/// the task's metadata. <see cref="Positive"/> constraints demand something be present; the others only
/// forbid, and never appear alone (an empty answer would satisfy them).
/// </summary>
public abstract partial class Constraint
{
    /// <summary>Identifier in metadata ("include_keywords").</summary>
    public abstract string Id { get; }
    /// <summary>The instruction as the prompt states it.</summary>
    public abstract string Instruction { get; }
    /// <summary>Requires something to be present.</summary>
    public virtual bool Positive => true;
    /// <summary>Ids of constraints that cannot be asked together with this one.</summary>
    public virtual IReadOnlySet<string> Conflicts => new HashSet<string>();
    /// <summary>Whether the response satisfies it, with a short detail.</summary>
    public abstract (bool Ok, string Detail) Check(string response);
    /// <summary>Parameters for the metadata (id included).</summary>
    public abstract JsonObject ToJson();

    /// <summary>Words of a text (letters, digits, apostrophes).</summary>
    public static List<string> Words(string text) => WordRegex().Matches(text.Length > 100_000 ? text[..100_000] : text).Select(m => m.Value).ToList();

    /// <summary>Sentences: runs of text ended by . ! or ? (the last one may be unterminated).</summary>
    public static int Sentences(string text) =>
        SentenceRegex().Matches(text).Count(m => Words(m.Value).Count > 0);

    [GeneratedRegex(@"[\p{L}\p{N}']+")]
    private static partial Regex WordRegex();

    [GeneratedRegex(@"[^.!?]+[.!?]+|[^.!?]+$")]
    private static partial Regex SentenceRegex();

    /// <summary>Rebuilds a constraint from its metadata; throws naming the field.</summary>
    public static Constraint FromJson(JsonObject o)
    {
        string id = o["id"]?.GetValue<string>() ?? throw new ArgumentException("constraint without 'id'");
        int Int(string k) => o[k] is { } n && int.TryParse(n.ToJsonString(), out int v) ? v : throw new ArgumentException($"constraint {id}: '{k}' must be a whole number");
        string Str(string k) => o[k]?.GetValue<string>() ?? throw new ArgumentException($"constraint {id}: '{k}' is missing");
        List<string> List(string k) => o[k] is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToList() : throw new ArgumentException($"constraint {id}: '{k}' must be a list");
        return id switch
        {
            "include_keywords" => new IncludeKeywords(List("keywords")),
            "forbidden_words" => new ForbiddenWords(List("words")),
            "min_words" => new MinWords(Int("n")),
            "max_words" => new MaxWords(Int("n")),
            "num_sentences" => new NumSentences(Int("n")),
            "bullet_list" => new BulletList(Int("n")),
            "json_format" => new JsonFormat(),
            "lowercase" => new Lowercase(),
            "uppercase" => new Uppercase(),
            "end_with" => new EndWith(Str("phrase")),
            "start_with" => new StartWith(Str("word")),
            "no_commas" => new NoCommas(),
            "title" => new Title(),
            "num_paragraphs" => new NumParagraphs(Int("n")),
            "keyword_frequency" => new KeywordFrequency(Str("word"), Int("n")),
            _ => throw new ArgumentException($"unknown constraint '{id}'"),
        };
    }
}

/// <summary>Every listed keyword appears (case-insensitive, whole word).</summary>
public sealed class IncludeKeywords(IReadOnlyList<string> keywords) : Constraint
{
    public IReadOnlyList<string> Keywords { get; } = keywords;
    public override string Id => "include_keywords";
    public override string Instruction => Keywords.Count == 1 ? $"Include the word \"{Keywords[0]}\"." : $"Include the words {string.Join(", ", Keywords.Select(k => $"\"{k}\""))}.";
    public override (bool Ok, string Detail) Check(string r)
    {
        var words = Words(r).Select(w => w.ToLowerInvariant()).ToHashSet();
        var missing = Keywords.Where(k => !words.Contains(k.ToLowerInvariant())).ToList();
        return (missing.Count == 0, missing.Count == 0 ? "all keywords present" : $"missing {string.Join(", ", missing)}");
    }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["keywords"] = new JsonArray(Keywords.Select(k => (JsonNode)k).ToArray()) };
}

/// <summary>None of the listed words appears.</summary>
public sealed class ForbiddenWords(IReadOnlyList<string> words) : Constraint
{
    public IReadOnlyList<string> Forbidden { get; } = words;
    public override string Id => "forbidden_words";
    public override bool Positive => false;
    public override string Instruction => $"Do not use the word{(Forbidden.Count > 1 ? "s" : "")} {string.Join(", ", Forbidden.Select(k => $"\"{k}\""))}.";
    public override (bool Ok, string Detail) Check(string r)
    {
        var words = Words(r).Select(w => w.ToLowerInvariant()).ToHashSet();
        var used = Forbidden.Where(k => words.Contains(k.ToLowerInvariant())).ToList();
        return (used.Count == 0, used.Count == 0 ? "no forbidden word" : $"used {string.Join(", ", used)}");
    }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["words"] = new JsonArray(Forbidden.Select(k => (JsonNode)k).ToArray()) };
}

/// <summary>At least N words.</summary>
public sealed class MinWords(int n) : Constraint
{
    public int N { get; } = n;
    public override string Id => "min_words";
    public override string Instruction => $"Write at least {N} words.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "num_sentences", "json_format" };
    public override (bool Ok, string Detail) Check(string r) { int c = Words(r).Count; return (c >= N, $"{c} words"); }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["n"] = N };
}

/// <summary>At most N words.</summary>
public sealed class MaxWords(int n) : Constraint
{
    public int N { get; } = n;
    public override string Id => "max_words";
    public override bool Positive => false;
    public override string Instruction => $"Use at most {N} words.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "num_sentences", "json_format", "min_words", "bullet_list", "num_paragraphs" };
    public override (bool Ok, string Detail) Check(string r) { int c = Words(r).Count; return (c <= N, $"{c} words"); }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["n"] = N };
}

/// <summary>Exactly N sentences.</summary>
public sealed class NumSentences(int n) : Constraint
{
    public int N { get; } = n;
    public override string Id => "num_sentences";
    public override string Instruction => $"Write exactly {N} sentence{(N > 1 ? "s" : "")}.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "min_words", "max_words", "json_format", "bullet_list", "end_with", "num_paragraphs", "title" };
    public override (bool Ok, string Detail) Check(string r) { int c = Sentences(r); return (c == N, $"{c} sentences"); }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["n"] = N };
}

/// <summary>Exactly N markdown bullet lines ("* " or "- ").</summary>
public sealed class BulletList(int n) : Constraint
{
    public int N { get; } = n;
    public override string Id => "bullet_list";
    public override string Instruction => $"Answer with exactly {N} bullet points, each line starting with \"* \".";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "json_format", "num_sentences", "num_paragraphs", "max_words" };
    public override (bool Ok, string Detail) Check(string r)
    {
        int c = r.Split('\n').Count(l => l.TrimStart().StartsWith("* ") || l.TrimStart().StartsWith("- "));
        return (c == N, $"{c} bullet lines");
    }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["n"] = N };
}

/// <summary>The whole response is one JSON object.</summary>
public sealed class JsonFormat : Constraint
{
    public override string Id => "json_format";
    public override string Instruction => "Format the whole answer as a JSON object.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "bullet_list", "num_sentences", "min_words", "max_words", "end_with", "start_with", "title", "num_paragraphs", "uppercase" };
    public override (bool Ok, string Detail) Check(string r)
    {
        string t = r.Trim();
        if (t.StartsWith("```")) t = t.Trim('`').Trim(); // a fenced block is accepted
        if (t.StartsWith("json", StringComparison.OrdinalIgnoreCase)) t = t[4..].Trim();
        try { return JsonNode.Parse(t, documentOptions: new JsonDocumentOptions { MaxDepth = 32 }) is JsonObject ? (true, "valid JSON object") : (false, "JSON but not an object"); }
        catch (JsonException e) { return (false, $"not JSON ({e.Message.Split('.')[0]})"); }
    }
    public override JsonObject ToJson() => new() { ["id"] = Id };
}

/// <summary>No uppercase letters.</summary>
public sealed class Lowercase : Constraint
{
    public override string Id => "lowercase";
    public override bool Positive => false;
    public override string Instruction => "Write everything in lowercase letters.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "uppercase", "end_with", "start_with", "title" };
    public override (bool Ok, string Detail) Check(string r) { bool ok = !r.Any(char.IsUpper); return (ok, ok ? "all lowercase" : "has uppercase letters"); }
    public override JsonObject ToJson() => new() { ["id"] = Id };
}

/// <summary>No lowercase letters.</summary>
public sealed class Uppercase : Constraint
{
    public override string Id => "uppercase";
    public override bool Positive => false;
    public override string Instruction => "Write everything in capital letters.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "lowercase", "end_with", "start_with", "json_format", "title" };
    public override (bool Ok, string Detail) Check(string r) { bool ok = !r.Any(char.IsLower); return (ok, ok ? "all uppercase" : "has lowercase letters"); }
    public override JsonObject ToJson() => new() { ["id"] = Id };
}

/// <summary>Ends with an exact phrase.</summary>
public sealed class EndWith(string phrase) : Constraint
{
    public string Phrase { get; } = phrase;
    public override string Id => "end_with";
    public override string Instruction => $"End your answer with the exact phrase \"{Phrase}\".";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "json_format", "num_sentences", "lowercase", "uppercase" };
    public override (bool Ok, string Detail) Check(string r) { bool ok = r.TrimEnd().EndsWith(Phrase, StringComparison.Ordinal); return (ok, ok ? "ends with the phrase" : "does not end with the phrase"); }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["phrase"] = Phrase };
}

/// <summary>Starts with a given word.</summary>
public sealed class StartWith(string word) : Constraint
{
    public string Word { get; } = word;
    public override string Id => "start_with";
    public override string Instruction => $"Begin your answer with the word \"{Word}\".";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "json_format", "lowercase", "uppercase", "title", "bullet_list" };
    public override (bool Ok, string Detail) Check(string r)
    {
        var first = Words(r).FirstOrDefault();
        bool ok = first != null && string.Equals(first, Word, StringComparison.Ordinal) && r.TrimStart().StartsWith(first, StringComparison.Ordinal);
        return (ok, $"starts with '{first}'");
    }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["word"] = Word };
}

/// <summary>No commas at all.</summary>
public sealed class NoCommas : Constraint
{
    public override string Id => "no_commas";
    public override bool Positive => false;
    public override string Instruction => "Do not use any commas.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "json_format" };
    public override (bool Ok, string Detail) Check(string r) { int c = r.Count(ch => ch == ','); return (c == 0, $"{c} commas"); }
    public override JsonObject ToJson() => new() { ["id"] = Id };
}

/// <summary>A title in double angle brackets, like &lt;&lt;Title&gt;&gt;.</summary>
public sealed partial class Title : Constraint
{
    public override string Id => "title";
    public override string Instruction => "Give your answer a title wrapped in double angle brackets, like <<My Title>>.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "json_format", "num_sentences", "start_with", "lowercase", "uppercase" };
    [GeneratedRegex(@"<<[^<>\n]{1,100}>>")]
    private static partial Regex TitleRegex();
    public override (bool Ok, string Detail) Check(string r) { bool ok = TitleRegex().IsMatch(r.Length > 100_000 ? r[..100_000] : r); return (ok, ok ? "has a title" : "no <<title>>"); }
    public override JsonObject ToJson() => new() { ["id"] = Id };
}

/// <summary>Exactly N paragraphs separated by blank lines.</summary>
public sealed class NumParagraphs(int n) : Constraint
{
    public int N { get; } = n;
    public override string Id => "num_paragraphs";
    public override string Instruction => $"Write exactly {N} paragraphs separated by blank lines.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "json_format", "bullet_list", "num_sentences", "max_words" };
    public override (bool Ok, string Detail) Check(string r)
    {
        int c = Regex.Split(r.Trim(), @"\n\s*\n").Count(p => p.Trim().Length > 0);
        return (c == N, $"{c} paragraphs");
    }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["n"] = N };
}

/// <summary>A word appears at least N times.</summary>
public sealed class KeywordFrequency(string word, int n) : Constraint
{
    public string Word { get; } = word;
    public int N { get; } = n;
    public override string Id => "keyword_frequency";
    public override string Instruction => $"Use the word \"{Word}\" at least {N} times.";
    public override IReadOnlySet<string> Conflicts => new HashSet<string> { "max_words" };
    public override (bool Ok, string Detail) Check(string r) { int c = Words(r).Count(w => w.Equals(Word, StringComparison.OrdinalIgnoreCase)); return (c >= N, $"'{Word}' {c} times"); }
    public override JsonObject ToJson() => new() { ["id"] = Id, ["word"] = Word, ["n"] = N };
}
