using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Nemotron.Gym.Rewards.Judging;

/// <summary>
/// A pairwise verdict: how good each of the two responses is (1–5) and which is better (1–6: 1 response 1 much
/// better, 2 better, 3 slightly better, 4 response 2 slightly better, 5 better, 6 much better).
/// </summary>
/// <param name="Score1">Score of the response shown first.</param>
/// <param name="Score2">Score of the response shown second.</param>
/// <param name="Ranking">The ranking, 1–6.</param>
public sealed record PairwiseVerdict(double Score1, double Score2, int Ranking)
{
    /// <summary>Whether the ranking prefers the first response (1–3) rather than the second (4–6).</summary>
    public bool RankingPrefersFirst => Ranking <= 3;
}

/// <summary>A verdict read from a judge's text, or why none could be read.</summary>
/// <param name="Value">The verdict; null when the text held none.</param>
/// <param name="Problem">Why no verdict was read (null when one was).</param>
public sealed record ParsedVerdict<T>(T? Value, string? Problem) where T : class;

/// <summary>
/// Reads verdicts out of a judge's output. The output is untrusted text: the judge reasons freely and is asked to end
/// with a JSON object; the LAST JSON object in the text that has the required fields with values in range is the
/// verdict (an earlier one may be an example the judge quoted, or a draft it revised). Anything else (no JSON, broken
/// JSON, missing or out-of-range fields) gives a problem, never an exception and never a default score.
/// </summary>
public static class VerdictParser
{
    // Only the tail is searched and only so many objects are tried, so a hostile output costs bounded work.
    private const int TailChars = 16_384;
    private const int MaxCandidates = 64;

    /// <summary>The last valid pairwise verdict in <paramref name="text"/>.</summary>
    public static ParsedVerdict<PairwiseVerdict> Pairwise(string text) => Last<PairwiseVerdict>(text, o =>
    {
        if (Number(o, "score_1", 1, 5, out double s1) is { } p1) return (null, p1);
        if (Number(o, "score_2", 1, 5, out double s2) is { } p2) return (null, p2);
        if (Number(o, "ranking", 1, 6, out double r) is { } p3) return (null, p3);
        if (r != Math.Floor(r)) return (null, $"ranking must be a whole number 1-6, got {Num(r)}");
        return (new PairwiseVerdict(s1, s2, (int)r), null);
    }, "{\"score_1\": 1-5, \"score_2\": 1-5, \"ranking\": 1-6}");

    /// <summary>The last valid rubric verdict: every one of <paramref name="attributes"/> present, each 0–4.</summary>
    public static ParsedVerdict<IReadOnlyDictionary<string, double>> Rubric(string text, IReadOnlyList<string> attributes) => Last<IReadOnlyDictionary<string, double>>(text, o =>
    {
        var scores = new Dictionary<string, double>();
        foreach (var a in attributes)
        {
            if (Number(o, a, 0, 4, out double v) is { } p) return (null, p);
            scores[a] = v;
        }
        return (scores, null);
    }, "{" + string.Join(", ", attributes.Select(a => $"\"{a}\": 0-4")) + "}");

    private static ParsedVerdict<T> Last<T>(string text, Func<JsonElement, (T? Value, string? Problem)> read, string shape) where T : class
    {
        if (string.IsNullOrWhiteSpace(text)) return new(null, "the judge's answer is empty");
        int offset = Math.Max(0, text.Length - TailChars);
        var tail = text[offset..];
        string? firstProblem = null;
        int tried = 0;
        for (int at = tail.LastIndexOf('{'); at >= 0 && tried < MaxCandidates; at = at > 0 ? tail.LastIndexOf('{', at - 1) : -1)
        {
            tried++;
            var bytes = Encoding.UTF8.GetBytes(tail[at..]);
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
            JsonDocument doc;
            try
            {
                if (!JsonDocument.TryParseValue(ref reader, out var parsed) || parsed == null) continue;
                doc = parsed;
            }
            catch (JsonException) { continue; }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) continue;
                var (value, problem) = read(doc.RootElement);
                if (value != null) return new(value, null);
                // The problem of the last object the judge wrote is the one worth reporting.
                firstProblem ??= problem;
            }
        }
        string tailShown = text.Length <= 160 ? text : "…" + text[^160..];
        return new(null, firstProblem != null
            ? $"the last JSON object is not a verdict: {firstProblem} (expected {shape})"
            : $"no JSON object in the judge's answer (expected {shape} at its end); it ends: {tailShown.ReplaceLineEndings(" ")}");
    }

    private static string? Number(JsonElement o, string name, double min, double max, out double value)
    {
        value = 0;
        if (!o.TryGetProperty(name, out var e)) return $"'{name}' is missing";
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out value)) return $"'{name}' is not a number ({e.GetRawText()})";
        if (!(value >= min && value <= max)) return $"'{name}' is {Num(value)}, outside {Num(min)}-{Num(max)}";
        return null;
    }

    private static string Num(double x) => x.ToString(CultureInfo.InvariantCulture);
}
