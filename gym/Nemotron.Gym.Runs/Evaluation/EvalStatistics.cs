namespace Nemotron.Gym.Runs.Evaluation;

/// <summary>A two-sided confidence interval.</summary>
/// <param name="Low">Lower bound.</param>
/// <param name="High">Upper bound.</param>
public readonly record struct Interval(double Low, double High)
{
    /// <summary>"[0.312, 0.441]".</summary>
    public override string ToString() => $"[{Low:F3}, {High:F3}]";
}

/// <summary>
/// The statistics of an evaluation: the unbiased pass@k estimator, and 95% intervals for a pass rate, a mean and a
/// paired difference. All intervals use z = 1.96.
/// </summary>
public static class EvalStatistics
{
    /// <summary>The normal quantile of a two-sided 95% interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>
    /// The unbiased estimate of pass@k from <paramref name="n"/> samples of which <paramref name="c"/> passed: the
    /// chance that k samples drawn without replacement from the n include at least one that passed,
    /// 1 − C(n−c, k) / C(n, k). Computed as 1 − Π_{i=n−c+1..n} (1 − k/i), which needs no large binomials.
    /// </summary>
    public static double PassAtK(int n, int c, int k)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "pass@k needs at least one sample");
        if (c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), c, $"passed samples must be in [0, {n}]");
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [1, n = {n}]");
        // Fewer failures than k: every draw of k holds a pass.
        if (n - c < k) return 1.0;
        double allFail = 1.0;
        for (int i = n - c + 1; i <= n; i++) allFail *= 1.0 - (double)k / i;
        return 1.0 - allFail;
    }

    /// <summary>Wilson score interval of a binomial proportion: <paramref name="successes"/> out of <paramref name="n"/>.</summary>
    public static Interval Wilson(int successes, int n)
    {
        if (n < 1) return new Interval(0, 1);
        double p = (double)successes / n, z2 = Z95 * Z95;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = Z95 * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / (1 + z2 / n);
        // At 0 or n successes one bound is exactly the observed rate; the formula gives it only up to rounding.
        return new Interval(successes == 0 ? 0 : Math.Max(0, centre - half), successes == n ? 1 : Math.Min(1, centre + half));
    }

    /// <summary>
    /// Normal-approximation interval of the mean of <paramref name="values"/> (sample standard deviation over √n),
    /// for scores that are not plain pass/fail (fractional rewards, per-task pass@k).
    /// </summary>
    public static Interval MeanInterval(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return new Interval(0, 0);
        double mean = values.Average();
        if (values.Count == 1) return new Interval(mean, mean);
        double var = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        double half = Z95 * Math.Sqrt(var / values.Count);
        return new Interval(mean - half, mean + half);
    }

    /// <summary>
    /// The mean of after − before over the same tasks, with its 95% interval. Pairing by task removes the spread
    /// between easy and hard tasks from the interval, which is what makes a before/after comparison on one held-out
    /// set tighter than two independent intervals.
    /// </summary>
    public static (double Difference, Interval Interval) PairedDifference(IReadOnlyList<double> before, IReadOnlyList<double> after)
    {
        if (before.Count != after.Count) throw new ArgumentException($"paired scores need the same tasks: {before.Count} before, {after.Count} after");
        var d = before.Zip(after, (b, a) => a - b).ToList();
        return (d.Count == 0 ? 0 : d.Average(), MeanInterval(d));
    }
}
