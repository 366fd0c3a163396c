namespace Nemotron.Gym.Environments.Arithmetic;

/// <summary>English words for whole numbers below one million ("three hundred forty-seven").</summary>
public static class NumberWords
{
    private static readonly string[] Small =
    [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    ];
    private static readonly string[] Tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

    /// <summary>The words for <paramref name="n"/> (0 ≤ n &lt; 1,000,000).</summary>
    public static string ToWords(int n)
    {
        if (n < 0 || n >= 1_000_000) throw new ArgumentOutOfRangeException(nameof(n), n, "words are written for 0..999999");
        if (n < 1000) return BelowThousand(n);
        string head = BelowThousand(n / 1000) + " thousand";
        return n % 1000 == 0 ? head : head + " " + BelowThousand(n % 1000);
    }

    private static string BelowThousand(int n)
    {
        if (n < 20) return Small[n];
        if (n < 100) return n % 10 == 0 ? Tens[n / 10] : Tens[n / 10] + "-" + Small[n % 10];
        string head = Small[n / 100] + " hundred";
        return n % 100 == 0 ? head : head + " " + BelowThousand(n % 100);
    }
}
