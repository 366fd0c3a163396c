using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.Shared;

namespace Nemotron.Gym.Environments.Math;

/// <summary>
/// Procedural math problems with exact answers, in families whose numbers grow with the difficulty
/// (1 easy … 3 hard): arithmetic, fractions, percentages, linear equations, word problems, powers and
/// roots, decimals. One problem in ten (by a hash of its text) belongs to the held-out split.
/// </summary>
public static class MathProblems
{
    /// <summary>The families.</summary>
    public static readonly string[] Families = ["arithmetic", "fractions", "percent", "linear", "word", "powers", "decimals"];

    /// <summary>
    /// One problem: its text, the exact answer (canonical text) and a short worked solution. <paramref name="Steps"/>,
    /// when set, is a step-by-step working (the column method for sums, differences and products by one digit) that the
    /// reference puts in its reasoning, with only the boxed answer after it.
    /// </summary>
    public sealed record Problem(string Family, string Question, string Answer, string Working, string? Steps = null);

    /// <summary>The operations of the word problems: + (gets more), - (gives away), * (bags of).</summary>
    public static readonly char[] WordOperations = ['+', '-', '*'];

    /// <summary>
    /// A problem of <paramref name="family"/> at <paramref name="difficulty"/>, word problems drawn from
    /// <paramref name="wordOperations"/> only (a non-empty subset of <see cref="WordOperations"/>); <paramref name="wordMax"/>,
    /// when positive, bounds the word problems' starting amounts in place of the difficulty (their second numbers stay
    /// below two thirds of it, as the difficulty's bounds do: 300 draws what difficulty 3 draws).
    /// </summary>
    public static Problem Generate(string family, int difficulty, Random rng, IReadOnlyList<char> wordOperations, int wordMax = 0)
    {
        int Scale(int easy, int medium, int hard) => difficulty <= 1 ? easy : difficulty == 2 ? medium : hard;
        switch (family)
        {
            case "arithmetic":
            {
                int a = rng.Next(2, Scale(20, 100, 1000)), b = rng.Next(2, Scale(20, 100, 1000));
                return rng.Next(4) switch
                {
                    0 => new(family, $"What is {a} + {b}?", $"{a + b}", $"{a} + {b} = {a + b}"),
                    1 => new(family, $"What is {System.Math.Max(a, b)} - {System.Math.Min(a, b)}?", $"{System.Math.Max(a, b) - System.Math.Min(a, b)}", $"{System.Math.Max(a, b)} - {System.Math.Min(a, b)} = {System.Math.Max(a, b) - System.Math.Min(a, b)}"),
                    2 => new(family, $"What is {a} × {b % Scale(10, 20, 50) + 2}?", $"{a * (b % Scale(10, 20, 50) + 2)}", $"{a} × {b % Scale(10, 20, 50) + 2} = {a * (b % Scale(10, 20, 50) + 2)}"),
                    _ => DivisionProblem(family, a, b % Scale(9, 12, 25) + 2),
                };
            }
            case "fractions":
            {
                int d1 = rng.Next(2, Scale(6, 10, 13)), d2 = rng.Next(2, Scale(6, 10, 13));
                int n1 = rng.Next(1, d1), n2 = rng.Next(1, d2);
                bool add = rng.Next(2) == 0 || n1 * d2 < n2 * d1 == false;
                long num = add ? (long)n1 * d2 + (long)n2 * d1 : (long)n1 * d2 - (long)n2 * d1, den = (long)d1 * d2;
                var (rn, rd) = Reduce(num, den);
                string answer = rd == 1 ? $"{rn}" : $"{rn}/{rd}";
                string op = add ? "+" : "-";
                return new(family, $"Compute {n1}/{d1} {op} {n2}/{d2}. Give the answer as a fraction in lowest terms.", answer,
                    $"{n1}/{d1} {op} {n2}/{d2} = {num}/{den} = {answer}");
            }
            case "percent":
            {
                int p = new[] { 10, 20, 25, 50, 75, 5, 15, 40 }[rng.Next(Scale(4, 6, 8))];
                int baseValue = rng.Next(1, Scale(10, 40, 200)) * 20;
                int value = p * baseValue / 100;
                return new(family, $"What is {p}% of {baseValue}?", $"{value}", $"{p}/100 × {baseValue} = {value}");
            }
            case "linear":
            {
                int x = rng.Next(-Scale(5, 20, 50), Scale(10, 20, 50)), a = rng.Next(2, Scale(6, 10, 15)), b = rng.Next(-Scale(10, 30, 100), Scale(10, 30, 100));
                int c = a * x + b;
                string bs = b >= 0 ? $"+ {b}" : $"- {-b}";
                return new(family, $"Solve for x: {a}x {bs} = {c}.", $"{x}", $"{a}x = {c - b}, so x = {x}", LinearSteps(a, b, c, x));
            }
            case "word":
            {
                string[] names = ["Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo"];
                string[] things = ["apples", "marbles", "stickers", "books", "coins", "pencils"];
                string n = names[rng.Next(names.Length)], t = things[rng.Next(things.Length)];
                int a = rng.Next(3, wordMax > 0 ? wordMax : Scale(20, 60, 300)), b = rng.Next(2, wordMax > 0 ? wordMax * 2 / 3 : Scale(15, 40, 200)), k = rng.Next(2, Scale(4, 6, 9));
                return wordOperations[rng.Next(wordOperations.Count)] switch
                {
                    '+' => new(family, $"{n} has {a} {t} and gets {b} more. How many {t} does {n} have now?", $"{a + b}", $"{a} + {b} = {a + b}", ColumnWorking.Of(a, '+', b)),
                    '-' => new(family, $"{n} has {a + b} {t} and gives away {b}. How many {t} are left?", $"{a}", $"{a + b} - {b} = {a}", ColumnWorking.Of(a + b, '-', b)),
                    '*' => new(family, $"{n} buys {k} bags with {b} {t} in each. How many {t} is that in total?", $"{k * b}", $"{k} × {b} = {k * b}", ColumnWorking.Of(k, '*', b)),
                    var op => throw new ArgumentException($"math: unknown word-problem operation '{op}' (expected one of + - *)"),
                };
            }
            case "powers":
            {
                int r = rng.Next(2, Scale(13, 26, 60));
                return rng.Next(3) switch
                {
                    0 => new(family, $"What is the square root of {r * r}?", $"{r}", $"{r} × {r} = {r * r}"),
                    1 => new(family, $"What is {r}^2?", $"{r * r}", $"{r} × {r} = {r * r}"),
                    _ => new(family, $"What is 2^{r % Scale(8, 12, 20) + 1}?", $"{1L << (r % Scale(8, 12, 20) + 1)}", "doubling repeatedly"),
                };
            }
            case "decimals":
            {
                int a = rng.Next(1, Scale(50, 200, 2000)), b = rng.Next(1, Scale(50, 200, 2000));
                decimal x = a / 10m, y = b / 10m;
                return rng.Next(2) == 0
                    ? new(family, $"What is {x} + {y}?", $"{x + y}", $"{x} + {y} = {x + y}")
                    : new(family, $"What is {x} × {System.Math.Max(2, b % 9)}?", $"{x * System.Math.Max(2, b % 9)}", $"{x} × {System.Math.Max(2, b % 9)} = {x * System.Math.Max(2, b % 9)}");
            }
            default:
                throw new ArgumentException($"unknown math family '{family}' (expected {string.Join(", ", Families)})");
        }
    }

    /// <summary>
    /// ax + b = c worked as ax = c − b (the column method when no negative number is involved), then x = ax / a:
    /// "13+7. 3+7=10, 0 c1. 1+0+1=2. So 4x=20. x=20/4=5." for 4x − 7 = 13.
    /// </summary>
    private static string LinearSteps(int a, int b, int c, int x)
    {
        int ax = a * x;
        string move = b >= 0 ? $"{c}-{b}" : $"{c}+{-b}";
        string column = c >= 0 && ax >= 0 ? (b >= 0 ? ColumnWorking.Steps(c, '-', b) : ColumnWorking.Steps(c, '+', -b)) : "";
        return $"{move}. {column}So {a}x={ax}. x={ax}/{a}={x}.";
    }

    private static Problem DivisionProblem(string family, int quotient, int divisor) =>
        new(family, $"What is {quotient * divisor} ÷ {divisor}?", $"{quotient}", $"{quotient * divisor} ÷ {divisor} = {quotient}");

    private static (long, long) Reduce(long n, long d)
    {
        long g = Gcd(System.Math.Abs(n), d);
        return g == 0 ? (n, d) : (n / g, d / g);
    }

    private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>True when a question belongs to the held-out split (stable hash of its text).</summary>
    public static bool IsHeldOut(string question)
    {
        uint h = 2166136261;
        foreach (char ch in question) h = (h ^ ch) * 16777619;
        return h % 10 == 0;
    }

    /// <summary>
    /// The task record of a problem. Its reference carries the step-by-step working, when there is one, as reasoning
    /// before the boxed answer; otherwise the one-line working and the answer.
    /// </summary>
    public static TaskRecord ToTask(string id, Problem p, string instruction)
    {
        string answer = p.Steps == null ? $"{p.Working}. The answer is \\boxed{{{p.Answer}}}." : $"The answer is \\boxed{{{p.Answer}}}.";
        return new()
        {
            Id = id,
            Input = [Message.User($"{p.Question} {instruction}".Trim())],
            VerifierMetadata = new JsonObject { ["answer"] = p.Answer, ["family"] = p.Family },
            Reference = [new AssistantTurn(answer, answer, p.Steps, [], [])],
        };
    }
}
