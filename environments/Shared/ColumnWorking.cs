using System.Text;

namespace Nemotron.Gym.Environments.Shared;

/// <summary>
/// The column method for a sum or difference of two whole numbers, or a product by one digit, units first, carries
/// and borrows spelled out: "5+9=14, 4 c1. 2+0+1=3. " for 25+9. The demo's arithmetic corpus teaches the policy this working, and the math
/// environment's references use the same one, so that a small model can do the sums inside a word problem the way
/// it learnt them (docs/learning-notes.md, experiment 12). One source file, compiled into each plugin that uses it.
/// </summary>
internal static class ColumnWorking
{
    /// <summary>
    /// The column steps of <paramref name="a"/> <paramref name="op"/> <paramref name="b"/> ('+', '-' or '*'), each
    /// ending with ". ". Needs a ≥ 0, b ≥ 0; for '-', a ≥ b; for '*', a of one digit.
    /// </summary>
    public static string Steps(int a, char op, int b)
    {
        if (op == '*') return TimesSteps(a, b);
        if (a < 0 || b < 0 || (op == '-' && a < b) || op is not ('+' or '-'))
            throw new ArgumentException($"the column method needs whole numbers with a non-negative result, not {a}{op}{b}");
        var sb = new StringBuilder();
        var da = Digits(a);
        var db = Digits(b);
        int columns = System.Math.Max(da.Count, db.Count);
        int carry = 0;
        for (int i = 0; i < columns; i++)
        {
            int x = i < da.Count ? da[i] : 0, y = i < db.Count ? db[i] : 0;
            if (op == '+')
            {
                int s = x + y + carry;
                sb.Append(carry > 0 ? $"{x}+{y}+1={s}" : $"{x}+{y}={s}");
                carry = s / 10;
                sb.Append(carry > 0 ? $", {s % 10} c1. " : ". ");
            }
            else
            {
                int top = x - carry;
                int borrow = top < y ? 1 : 0;
                int d = top + 10 * borrow - y;
                sb.Append(carry > 0 ? $"{x}-1" : $"{x}");
                sb.Append(borrow > 0 ? $"+10-{y}={d}, b1. " : $"-{y}={d}. ");
                carry = borrow;
            }
        }
        if (op == '+' && carry > 0) sb.Append("1. ");
        return sb.ToString();
    }

    /// <summary>
    /// A one-digit <paramref name="k"/> times <paramref name="b"/>, units of b first, the carry written as "c4":
    /// "5*9=45, 5 c4. 5*3+4=19, 9 c1. 1. " for 5*39.
    /// </summary>
    private static string TimesSteps(int k, int b)
    {
        if (k is < 0 or > 9 || b < 0)
            throw new ArgumentException($"the column method multiplies by one digit, not {k}*{b}");
        var sb = new StringBuilder();
        int carry = 0;
        foreach (int y in Digits(b))
        {
            int p = k * y + carry;
            sb.Append(carry > 0 ? $"{k}*{y}+{carry}={p}" : $"{k}*{y}={p}");
            carry = p / 10;
            sb.Append(carry > 0 ? $", {p % 10} c{carry}. " : ". ");
        }
        if (carry > 0) sb.Append($"{carry}. ");
        return sb.ToString();
    }

    /// <summary>The whole working: "25+9. " then the column steps, then "So 34." ('+', '-', or '*' by one digit).</summary>
    public static string Of(int a, char op, int b) => $"{a}{op}{b}. {Steps(a, op, b)}So {op switch { '+' => a + b, '-' => a - b, _ => a * b }}.";

    private static List<int> Digits(int n)
    {
        var d = new List<int>();
        do { d.Add(n % 10); n /= 10; } while (n > 0);
        return d;
    }
}
