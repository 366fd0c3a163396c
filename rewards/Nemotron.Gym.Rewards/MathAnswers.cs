using System.Text;
using System.Text.RegularExpressions;

namespace Nemotron.Gym.Rewards;

/// <summary>How a final answer was found in a response.</summary>
public enum ExtractionMethod
{
    /// <summary>Nothing that looks like an answer.</summary>
    None,
    /// <summary>The last \boxed{...}.</summary>
    Boxed,
    /// <summary>After "Answer:" / "final answer is".</summary>
    AnswerLine,
    /// <summary>The whole response is short enough to be the answer.</summary>
    WholeResponse,
    /// <summary>The last number in the text.</summary>
    LastNumber,
}

/// <summary>
/// Final-answer extraction and equivalence for math: integers, decimals, fractions, percentages,
/// simple LaTeX (\frac, \sqrt, \pi), sets and tuples, with or without units. Model output is untrusted:
/// nothing here throws on strange input, inputs are length-capped, and parsing is bounded.
/// </summary>
public static partial class MathAnswers
{
    /// <summary>Only the tail of very long responses is searched.</summary>
    public const int MaxScan = 20_000;

    [GeneratedRegex(@"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?%?|-?\.\d+", RegexOptions.RightToLeft, matchTimeoutMilliseconds: 200)]
    private static partial Regex LastNumber();

    /// <summary>The final answer of a response, and how it was found.</summary>
    public static (string? Answer, ExtractionMethod Method) Extract(string response)
    {
        string text = response.Length > MaxScan ? response[^MaxScan..] : response;
        var boxed = LastBoxed(text);
        if (boxed != null) return (boxed.Trim(), ExtractionMethod.Boxed);
        var line = AnswerLine(text);
        if (line != null) return (TrimSentenceEnd(line), ExtractionMethod.AnswerLine);
        // A short response that is itself a value ("3/4", "{1, 2}", "12 cm") is the answer; a short sentence is not.
        string trimmed = TrimSentenceEnd(text.Trim());
        if (trimmed.Length > 0 && trimmed.Length <= 40 && !trimmed.Contains('\n') && IsValue(trimmed)) return (trimmed, ExtractionMethod.WholeResponse);
        try
        {
            var n = LastNumber().Match(text);
            if (n.Success) return (n.Value.Trim(), ExtractionMethod.LastNumber);
        }
        catch (RegexMatchTimeoutException) { }
        return (null, ExtractionMethod.None);
    }

    /// <summary>The rest of the line after the last "answer is" / "answer:" / "answer =" (linear scan, no regex backtracking).</summary>
    private static string? AnswerLine(string text)
    {
        int at = text.Length;
        while ((at = text.LastIndexOf("answer", at - 1 < 0 ? 0 : at - 1, StringComparison.OrdinalIgnoreCase)) >= 0)
        {
            int i = at + "answer".Length;
            while (i < text.Length && text[i] is ' ' or '\t') i++;
            int after = -1;
            if (i < text.Length && text[i] is ':' or '=') after = i + 1;
            else if (i + 1 < text.Length && string.Compare(text, i, "is", 0, 2, StringComparison.OrdinalIgnoreCase) == 0) after = i + 2;
            if (after >= 0)
            {
                int end = text.IndexOf('\n', after);
                string line = (end < 0 ? text[after..] : text[after..end]).Trim();
                if (line.Length > 0) return line;
            }
            if (at == 0) break;
        }
        return null;
    }

    private static bool IsValue(string s)
    {
        string n = Normalize(s);
        if (MathExpression.TryEvaluate(n.TrimEnd('%')) != null) return true;
        var items = SplitCollection(n);
        return items != null && items.Value.Items.All(i => MathExpression.TryEvaluate(i.TrimEnd('%')) != null);
    }

    /// <summary>The content of the last \boxed{...} (or \fbox{...}), braces balanced; null if none.</summary>
    public static string? LastBoxed(string text)
    {
        int at = Math.Max(text.LastIndexOf("\\boxed", StringComparison.Ordinal), text.LastIndexOf("\\fbox", StringComparison.Ordinal));
        if (at < 0) return null;
        int open = text.IndexOf('{', at);
        if (open < 0 || open > at + 8) return null;
        int depth = 0;
        for (int i = open; i < text.Length; i++)
        {
            if (text[i] == '{') depth++;
            else if (text[i] == '}' && --depth == 0) return text[(open + 1)..i];
        }
        return null; // unbalanced
    }

    private static string TrimSentenceEnd(string s)
    {
        s = s.Trim().TrimEnd('.', '!', ';').Trim();
        if (s.StartsWith('$') && s.EndsWith('$') && s.Length > 1) s = s.Trim('$');
        return s;
    }

    private static readonly string[] Units =
    [
        "square centimeters", "square meters", "square units", "cubic units", "centimeters", "millimeters", "kilometers", "kilograms",
        "meters", "metres", "inches", "miles", "grams", "hours", "minutes", "seconds", "degrees", "dollars", "cents", "units", "feet", "years",
        "days", "cm^2", "m^2", "cm", "mm", "km", "kg", "mg", "ml", "m", "g", "s", "h", "ft", "in", "°",
    ];

    /// <summary>Canonical text of an answer: LaTeX wrappers, spaces, units and thousands separators removed.</summary>
    public static string Normalize(string answer)
    {
        string s = answer.Length > 1000 ? answer[..1000] : answer;
        s = s.Trim().Trim('$').Trim();
        s = Regex.Replace(s, @"\\(?:text|mathrm|textbf|mbox|operatorname)\{([^{}]*)\}", "$1", RegexOptions.None, TimeSpan.FromMilliseconds(200));
        s = s.Replace("^\\circ", "").Replace("^{\\circ}", "").Replace("\\circ", "").Replace("\\%", "%").Replace("\\$", "").Replace("$", "").Replace("\\!", "").Replace("\\,", "").Replace("\\ ", " ");
        // "x = 5" → "5" (a single variable assignment).
        var assign = Regex.Match(s, @"^[a-zA-Z]\s*=\s*(.+)$", RegexOptions.None, TimeSpan.FromMilliseconds(200));
        if (assign.Success) s = assign.Groups[1].Value;
        s = s.Trim();
        foreach (var unit in Units)
            if (s.Length > unit.Length && s.EndsWith(unit, StringComparison.OrdinalIgnoreCase))
            {
                string head = s[..^unit.Length];
                if (head.Length > 0 && (char.IsDigit(head[^1]) || head[^1] is ' ' or '}' or ')'))
                {
                    s = head.Trim();
                    break;
                }
            }
        // Thousands separators: 1,234,567 (only when every group after the first has three digits).
        if (Regex.IsMatch(s, @"^-?\d{1,3}(,\d{3})+(\.\d+)?$", RegexOptions.None, TimeSpan.FromMilliseconds(200))) s = s.Replace(",", "");
        var sb = new StringBuilder();
        foreach (char c in s) if (!char.IsWhiteSpace(c)) sb.Append(c);
        return sb.ToString();
    }

    /// <summary>True when the two answers denote the same value (or the same set or tuple of values).</summary>
    public static bool Equivalent(string answer, string expected)
    {
        string a = Normalize(answer), b = Normalize(expected);
        if (a.Length == 0 || b.Length == 0) return false;
        if (a == b) return true;
        var la = SplitCollection(a);
        var lb = SplitCollection(b);
        if (la != null || lb != null)
        {
            if (la == null || lb == null || la.Value.Items.Count != lb.Value.Items.Count) return false;
            if (la.Value.Ordered && lb.Value.Ordered)
                return la.Value.Items.Zip(lb.Value.Items).All(p => ScalarEquivalent(p.First, p.Second));
            // A set on either side: match as multisets.
            var remaining = lb.Value.Items.ToList();
            foreach (var x in la.Value.Items)
            {
                int k = remaining.FindIndex(y => ScalarEquivalent(x, y));
                if (k < 0) return false;
                remaining.RemoveAt(k);
            }
            return true;
        }
        return ScalarEquivalent(a, b);
    }

    private static bool ScalarEquivalent(string a, string b)
    {
        if (a == b) return true;
        // A final answer is a value, not the question's arithmetic restated: "15 + 14" for 29 would otherwise evaluate
        // to the right number, and RL learns to copy the expression instead of computing it (seen in the demo's math
        // runs). An operator-free answer is required unless the expected answer is itself an expression (2 + \sqrt{3}).
        if (HasArithmeticOperator(a) && !HasArithmeticOperator(b)) return false;
        var va = MathExpression.TryEvaluate(a.TrimEnd('%'));
        var vb = MathExpression.TryEvaluate(b.TrimEnd('%'));
        if (va is null || vb is null) return false;
        if (Close(va.Value, vb.Value)) return true;
        // A percentage written with or without its sign: 50% matches 50 and 0.5.
        bool pa = a.EndsWith('%'), pb = b.EndsWith('%');
        if (pa != pb) return Close(pa ? va.Value / 100 : va.Value, pb ? vb.Value / 100 : vb.Value);
        return false;
    }

    /// <summary>
    /// Whether a normalized answer applies +, −, ×, ·, ÷ or * between two operands (a leading sign, an exponent's sign
    /// as in 1.5e-3, a fraction's slash and a power are not operators here: 3/4, -5 and 2^{10} are final forms).
    /// </summary>
    internal static bool HasArithmeticOperator(string s)
    {
        if (s.Contains("\\times", StringComparison.Ordinal) || s.Contains("\\cdot", StringComparison.Ordinal) || s.Contains("\\div", StringComparison.Ordinal)) return true;
        for (int i = 1; i < s.Length; i++)
        {
            char c = s[i], prev = s[i - 1];
            if (c is '×' or '·' or '÷' or '*') return true;
            if (c is '+' or '-' or '−' && (char.IsDigit(prev) || prev is ')' or '}' or ']')) return true;
        }
        return false;
    }

    private static bool Close(double x, double y) => Math.Abs(x - y) <= 1e-9 + 1e-6 * Math.Max(Math.Abs(x), Math.Abs(y));

    /// <summary>{a,b} is a set; (a,b) and [a,b] are tuples; a bare "a, b" is a set.</summary>
    private static (bool Ordered, List<string> Items)? SplitCollection(string s)
    {
        bool ordered;
        string inner;
        if (s.Length >= 2 && s[0] == '{' && s[^1] == '}' || s.StartsWith("\\{") && s.EndsWith("\\}"))
        {
            ordered = false;
            inner = s.StartsWith("\\{") ? s[2..^2] : s[1..^1];
        }
        else if (s.Length >= 2 && (s[0] == '(' && s[^1] == ')' || s[0] == '[' && s[^1] == ']'))
        {
            ordered = true;
            inner = s[1..^1];
        }
        else
        {
            ordered = false;
            inner = s;
        }
        var items = SplitTopLevel(inner);
        if (items.Count < 2) return null;
        return (ordered, items);
    }

    private static List<string> SplitTopLevel(string s)
    {
        var items = new List<string>();
        int depth = 0, start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '(' or '[' or '{') depth++;
            else if (c is ')' or ']' or '}') depth--;
            else if ((c == ',' || c == ';') && depth == 0)
            {
                items.Add(s[start..i]);
                start = i + 1;
            }
        }
        items.Add(s[start..]);
        return items.Where(x => x.Length > 0).ToList();
    }
}
