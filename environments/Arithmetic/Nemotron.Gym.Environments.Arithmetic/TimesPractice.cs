using Nemotron.Gym.Environments.Shared;

namespace Nemotron.Gym.Environments.Arithmetic;

/// <summary>
/// Pretraining documents for products by one digit, worked by the column method ("7*386. 7*6=42, 2 c4. 7*8+4=60,
/// 0 c6. 7*3+6=27, 7 c2. 2. So 2702."), and the times table itself. The math environment's references work "k bags
/// of b" this way, but without these documents the policy had seen the one-digit products only in a thousand SFT
/// answers and got almost none right (docs/learning-notes.md, experiments 12 and 14). Not a task of this environment,
/// whose problems are sums and differences: only text for the demo's pretraining corpus.
/// </summary>
public static class TimesPractice
{
    /// <summary>One document: a times-table row, or a product of a one-digit number and a number of up to three digits.</summary>
    public static string Document(Random rng)
    {
        int k = rng.Next(2, 10);
        if (rng.Next(4) == 0)
            return string.Join(" ", Enumerable.Range(1, 9).Select(y => $"{k}*{y}={k * y}.")); // "7*1=7. 7*2=14. ..."
        int digits = rng.Next(1, 4);
        int b = rng.Next(digits == 1 ? 2 : (int)Math.Pow(10, digits - 1), (int)Math.Pow(10, digits));
        string a = rng.Next(4) == 0 ? NumberWords.ToWords(k) : k.ToString(), bText = rng.Next(4) == 0 ? NumberWords.ToWords(b) : b.ToString();
        string working = ColumnWorking.Of(k, '*', b);
        return rng.Next(3) switch
        {
            0 => $"Q: What is {a} times {bText}?\nWorking: {working}\nA: {k * b}",
            1 => $"Multiply {bText} by {a}. {working} The answer is {k * b}.",
            _ => $"{k} * {b} = {k * b}",
        };
    }
}
