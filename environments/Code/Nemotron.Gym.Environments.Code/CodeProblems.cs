using System.Globalization;
using System.Text;

namespace Nemotron.Gym.Environments.Code;

/// <summary>A generated stdin/stdout problem: statement, hidden tests (expected outputs computed in C#), a shown example, and two Python programs.</summary>
public sealed record CodeProblem(string Family, string Statement, string ExampleInput, string ExampleOutput,
    IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, string Reference, string Wrong);

/// <summary>
/// Procedural code problems in families (string, list, number, parsing, simulation). Each family draws
/// inputs from a seeded generator, sized by a difficulty of 1 to 3, and computes the expected outputs
/// with a C# reference; each also carries a Python reference solution and a plausible wrong one (an
/// off-by-one, a missed edge case) so `gym env check` can show that the tests tell them apart.
/// </summary>
public static class CodeProblems
{
    /// <summary>The family names.</summary>
    public static readonly string[] Families =
        ["sum_list", "reverse_words", "count_vowels", "run_length", "max_subarray", "brackets", "robot_walk", "order_totals", "count_primes", "top_word"];

    private static readonly string[] Words = ["apple", "river", "stone", "cloud", "tiger", "maple", "orbit", "lemon", "pixel", "ember", "quartz", "delta", "amber", "cedar", "nova"];

    /// <summary>Generates one problem of a family with <paramref name="tests"/> hidden tests.</summary>
    public static CodeProblem Generate(string family, int difficulty, Random rng, int tests = 5)
    {
        var size = difficulty switch { 1 => 8, 2 => 40, _ => 300 };
        Func<string> input;
        // The last test of every task is a trap for the family's typical mistake (the wrong solution falls in it).
        Func<string>? trap = null;
        Func<string, string> solve;
        string statement, reference, wrong;
        switch (family)
        {
            case "sum_list":
                statement = "The first line holds n; the second holds n integers separated by spaces. Print their sum.";
                input = () => { var n = rng.Next(1, size + 1); return $"{n}\n{string.Join(' ', Enumerable.Range(0, n).Select(_ => rng.Next(-1000 * difficulty, 1000 * difficulty)))}\n"; };
                solve = text => Lines(text)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Sum(long.Parse).ToString(CultureInfo.InvariantCulture);
                reference = "n = int(input())\nprint(sum(map(int, input().split()[:n])))\n";
                wrong = "n = int(input())\nprint(sum(map(int, input().split()[1:n])))\n"; // drops the first number
                break;
            case "reverse_words":
                statement = "Read one line of words separated by single spaces. Print the words in reverse order, separated by single spaces.";
                input = () => string.Join(' ', Enumerable.Range(0, rng.Next(1, size + 2)).Select(_ => Words[rng.Next(Words.Length)])) + "\n";
                solve = text => string.Join(' ', Lines(text)[0].Split(' ').Reverse());
                reference = "print(' '.join(reversed(input().split())))\n";
                wrong = "w = input().split()\nprint(' '.join(w[::-1][:-1] if len(w) > 1 else w))\n"; // loses the first word
                trap = () => string.Join(' ', Enumerable.Range(0, rng.Next(2, size + 3)).Select(_ => Words[rng.Next(Words.Length)])) + "\n";
                break;
            case "count_vowels":
                statement = "Read one line of lowercase letters and spaces. Print how many of its letters are vowels (a, e, i, o, u).";
                input = () => string.Join(' ', Enumerable.Range(0, rng.Next(1, size + 2)).Select(_ => Words[rng.Next(Words.Length)])) + "\n";
                solve = text => Lines(text)[0].Count(c => "aeiou".Contains(c)).ToString(CultureInfo.InvariantCulture);
                reference = "print(sum(c in 'aeiou' for c in input()))\n";
                wrong = "print(sum(c in 'eiou' for c in input()))\n"; // forgets a
                trap = () => "apple " + input();
                break;
            case "run_length":
                statement = "Read one line of lowercase letters. Print its run-length encoding: each run of a repeated letter as the letter followed by the run's length (\"aaab\" gives \"a3b1\").";
                input = () =>
                {
                    var sb = new StringBuilder();
                    var runs = rng.Next(1, size / 2 + 2);
                    for (var i = 0; i < runs; i++) sb.Append((char)('a' + rng.Next(3)), rng.Next(1, 2 + difficulty * 3));
                    return sb + "\n";
                };
                solve = text =>
                {
                    var s = Lines(text)[0];
                    var sb = new StringBuilder();
                    for (var i = 0; i < s.Length;)
                    {
                        var j = i;
                        while (j < s.Length && s[j] == s[i]) j++;
                        sb.Append(s[i]).Append(j - i);
                        i = j;
                    }
                    return sb.ToString();
                };
                reference = "s = input().strip()\nout, i = [], 0\nwhile i < len(s):\n    j = i\n    while j < len(s) and s[j] == s[i]:\n        j += 1\n    out.append(s[i] + str(j - i))\n    i = j\nprint(''.join(out))\n";
                wrong = "s = input().strip()\nout, i = [], 0\nwhile i < len(s):\n    j = i\n    while j < len(s) and s[j] == s[i]:\n        j += 1\n    out.append(s[i] + (str(j - i) if j - i > 1 else ''))\n    i = j\nprint(''.join(out))\n"; // drops the 1s
                trap = () => input().TrimEnd('\n') + "z\n";
                break;
            case "max_subarray":
                statement = "The first line holds n; the second holds n integers. Print the largest sum of a non-empty run of consecutive numbers.";
                input = () => { var n = rng.Next(1, size + 1); return $"{n}\n{string.Join(' ', Enumerable.Range(0, n).Select(_ => rng.Next(-50, 40)))}\n"; };
                solve = text =>
                {
                    var xs = Lines(text)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
                    long best = xs[0], current = xs[0];
                    for (var i = 1; i < xs.Length; i++) { current = Math.Max(xs[i], current + xs[i]); best = Math.Max(best, current); }
                    return best.ToString(CultureInfo.InvariantCulture);
                };
                reference = "input()\nxs = list(map(int, input().split()))\nbest = cur = xs[0]\nfor x in xs[1:]:\n    cur = max(x, cur + x)\n    best = max(best, cur)\nprint(best)\n";
                wrong = "input()\nxs = list(map(int, input().split()))\nbest = cur = 0\nfor x in xs:\n    cur = max(0, cur + x)\n    best = max(best, cur)\nprint(best)\n"; // 0 for all-negative input
                trap = () => { var n = rng.Next(1, size + 1); return $"{n}\n{string.Join(' ', Enumerable.Range(0, n).Select(_ => rng.Next(-90, 0)))}\n"; };
                break;
            case "brackets":
                statement = "Read one line made of the characters ()[]{}. Print YES if every bracket is closed by the matching one in the right order, else NO.";
                input = () =>
                {
                    var sb = new StringBuilder();
                    var stack = new Stack<char>();
                    var length = rng.Next(1, size + 2);
                    for (var i = 0; i < length; i++)
                    {
                        if (stack.Count > 0 && rng.Next(2) == 0) sb.Append(Close(stack.Pop()));
                        else { var open = "([{"[rng.Next(3)]; stack.Push(open); sb.Append(open); }
                    }
                    while (stack.Count > 0) sb.Append(Close(stack.Pop()));
                    // Half the inputs get one character changed or removed, so NO answers are common too.
                    if (rng.Next(2) == 0 && sb.Length > 0) { var at = rng.Next(sb.Length); if (rng.Next(2) == 0) sb.Remove(at, 1); else sb[at] = "()[]{}"[rng.Next(6)]; }
                    return sb + "\n";
                };
                solve = text =>
                {
                    var stack = new Stack<char>();
                    foreach (var c in Lines(text)[0])
                    {
                        if (c is '(' or '[' or '{') stack.Push(c);
                        else if (stack.Count == 0 || Close(stack.Pop()) != c) return "NO";
                    }
                    return stack.Count == 0 ? "YES" : "NO";
                };
                reference = "s = input().strip()\npairs = {')': '(', ']': '[', '}': '{'}\nstack = []\nok = True\nfor c in s:\n    if c in '([{':\n        stack.append(c)\n    elif not stack or stack.pop() != pairs[c]:\n        ok = False\n        break\nprint('YES' if ok and not stack else 'NO')\n";
                wrong = "s = input().strip()\nprint('YES' if s.count('(') == s.count(')') and s.count('[') == s.count(']') and s.count('{') == s.count('}') else 'NO')\n"; // counts, ignores order
                // Balanced counts, crossed pairs: "([" + valid + ")]".
                trap = () => "([" + string.Concat(Enumerable.Repeat("{}", rng.Next(0, size))) + ")]\n";
                break;
            case "robot_walk":
                statement = "A robot starts at (0, 0). Read one line of moves: U (y+1), D (y-1), L (x-1), R (x+1). Print its final x and y, then the largest Manhattan distance from the start it ever reached, separated by spaces.";
                input = () => new string(Enumerable.Range(0, rng.Next(1, size * 2)).Select(_ => "UDLR"[rng.Next(4)]).ToArray()) + "\n";
                solve = text =>
                {
                    long x = 0, y = 0, far = 0;
                    foreach (var c in Lines(text)[0])
                    {
                        switch (c) { case 'U': y++; break; case 'D': y--; break; case 'L': x--; break; case 'R': x++; break; }
                        far = Math.Max(far, Math.Abs(x) + Math.Abs(y));
                    }
                    return $"{x} {y} {far}";
                };
                reference = "x = y = far = 0\nfor c in input().strip():\n    dx, dy = {'U': (0, 1), 'D': (0, -1), 'L': (-1, 0), 'R': (1, 0)}[c]\n    x, y = x + dx, y + dy\n    far = max(far, abs(x) + abs(y))\nprint(x, y, far)\n";
                wrong = "x = y = 0\nfor c in input().strip():\n    dx, dy = {'U': (0, 1), 'D': (0, -1), 'L': (-1, 0), 'R': (1, 0)}[c]\n    x, y = x + dx, y + dy\nprint(x, y, abs(x) + abs(y))\n"; // final distance, not the largest
                trap = () => { var k = rng.Next(1, size + 1); return new string('R', k) + new string('L', k) + "\n"; };
                break;
            case "order_totals":
                statement = "Each input line is an order: name,quantity,unit_price (price with two decimals). Print the total of quantity times price over all lines, with exactly two decimals.";
                input = () => string.Concat(Enumerable.Range(0, rng.Next(1, size + 1)).Select(_ =>
                    $"{Words[rng.Next(Words.Length)]},{rng.Next(0, 20)},{rng.Next(1, 100000 * difficulty) / 100m:0.00}\n"));
                solve = text => Lines(text).Where(l => l.Length > 0).Sum(l => { var f = l.Split(','); return int.Parse(f[1]) * decimal.Parse(f[2], CultureInfo.InvariantCulture); })
                    .ToString("0.00", CultureInfo.InvariantCulture);
                reference = "import sys\nfrom decimal import Decimal\ntotal = Decimal(0)\nfor line in sys.stdin:\n    line = line.strip()\n    if line:\n        name, qty, price = line.split(',')\n        total += int(qty) * Decimal(price)\nprint(f'{total:.2f}')\n";
                wrong = "import sys\ntotal = 0\nfor line in sys.stdin:\n    line = line.strip()\n    if line:\n        name, qty, price = line.split(',')\n        total += float(price)\nprint(f'{total:.2f}')\n"; // ignores the quantity
                break;
            case "count_primes":
                statement = "Read an integer n. Print how many prime numbers are less than or equal to n.";
                input = () => $"{rng.Next(0, difficulty switch { 1 => 100, 2 => 10_000, _ => 300_000 })}\n";
                solve = text =>
                {
                    var n = int.Parse(Lines(text)[0], CultureInfo.InvariantCulture);
                    if (n < 2) return "0";
                    var composite = new bool[n + 1];
                    var count = 0;
                    for (var i = 2; i <= n; i++)
                    {
                        if (composite[i]) continue;
                        count++;
                        for (long j = (long)i * i; j <= n; j += i) composite[j] = true;
                    }
                    return count.ToString(CultureInfo.InvariantCulture);
                };
                reference = "n = int(input())\nif n < 2:\n    print(0)\nelse:\n    sieve = bytearray([1]) * (n + 1)\n    sieve[0] = sieve[1] = 0\n    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n            sieve[i * i::i] = bytearray(len(range(i * i, n + 1, i)))\n    print(sum(sieve))\n";
                wrong = "n = int(input())\nprint(sum(1 for k in range(1, n + 1) if all(k % d for d in range(2, int(k ** 0.5) + 1))))\n"; // counts 1 as a prime
                trap = () => $"{rng.Next(2, difficulty switch { 1 => 100, 2 => 10_000, _ => 300_000 })}\n";
                break;
            case "top_word":
                statement = "Read lines of lowercase words separated by spaces until the end of input. Print the most frequent word and its count; on a tie, the word that comes first alphabetically.";
                input = () => string.Concat(Enumerable.Range(0, rng.Next(1, size / 4 + 2)).Select(_ =>
                    string.Join(' ', Enumerable.Range(0, rng.Next(1, 8)).Select(_ => Words[rng.Next(4 + difficulty * 3)])) + "\n"));
                solve = text =>
                {
                    var best = Lines(text).SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).GroupBy(w => w)
                        .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).First();
                    return $"{best.Key} {best.Count()}";
                };
                reference = "import sys\nfrom collections import Counter\nc = Counter(sys.stdin.read().split())\nword, n = min(c.items(), key=lambda kv: (-kv[1], kv[0]))\nprint(word, n)\n";
                wrong = "import sys\nfrom collections import Counter\nc = Counter(sys.stdin.readline().split())\nword, n = min(c.items(), key=lambda kv: (-kv[1], kv[0]))\nprint(word, n)\n"; // reads only the first line
                trap = () => "apple\n" + string.Concat(Enumerable.Range(0, rng.Next(1, 4)).Select(_ => "river river\n"));
                break;
            default:
                throw new ArgumentException($"code: unknown family '{family}' (expected {string.Join(", ", Families)})");
        }
        var inputs = Enumerable.Range(0, tests - 1).Select(_ => input()).Append((trap ?? input)()).ToList();
        var example = input();
        return new CodeProblem(family, statement, example, solve(example), inputs, inputs.Select(solve).ToList(), reference, wrong);
    }

    private static char Close(char open) => open switch { '(' => ')', '[' => ']', _ => '}' };

    private static string[] Lines(string text) => text.Replace("\r\n", "\n").Split('\n');
}
