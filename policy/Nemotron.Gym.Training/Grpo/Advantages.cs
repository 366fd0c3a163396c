namespace Nemotron.Gym.Training.Grpo;

/// <summary>Reward shaping and group-relative advantages (docs/grpo.md, "Advantage" and "Length control").</summary>
public static class Advantages
{
    /// <summary>The spec's epsilon in the denominator.</summary>
    public const double StdEpsilon = 1e-6;

    /// <summary>
    /// Sets each rollout's shaped reward from its grade: truncated responses get 0 under
    /// <see cref="TruncationPolicy.ZeroReward"/>; then group-relative length control.
    /// </summary>
    public static void ShapeRewards(RolloutGroup group, GrpoSettings settings)
    {
        foreach (var r in group.Rollouts)
            r.Reward = r.Truncated && settings.Truncation == TruncationPolicy.ZeroReward ? 0 : r.Grade.Reward;
        if (settings.LengthPenalty > 0) ApplyLengthControl(group.Rollouts, settings.LengthPenalty);
    }

    /// <summary>
    /// Among the rollouts that reached the group's best reward, shorter ones gain and longer ones lose:
    /// c_i = 1 − (len_i − min)/(max − min) over the whole group, centred on the mean of the best rollouts'
    /// c so that their bonuses cancel and the group's mean reward is unchanged; R_i += λ·c_i.
    /// </summary>
    public static void ApplyLengthControl(IReadOnlyList<Rollout> rollouts, double lambda)
    {
        int min = rollouts.Min(r => r.GeneratedCount), max = rollouts.Max(r => r.GeneratedCount);
        if (max == min) return;
        double best = rollouts.Max(r => r.Reward);
        var winners = rollouts.Where(r => r.Reward == best).ToList();
        if (winners.Count < 2) return; // one winner: nothing to compare it with
        double C(Rollout r) => 1.0 - (double)(r.GeneratedCount - min) / (max - min);
        double mean = winners.Average(C);
        foreach (var r in winners) r.Reward += lambda * (C(r) - mean);
    }

    /// <summary>
    /// A_i = (R_i − mean)/(std + 1e-6) over the group's shaped rewards, the std Bessel-corrected; with
    /// leave-one-out, mean and std are taken without sample i; without normalize_std, no division.
    /// </summary>
    public static double[] Compute(IReadOnlyList<double> rewards, GrpoSettings settings)
    {
        int g = rewards.Count;
        var a = new double[g];
        if (g == 0) return a;
        if (settings.LeaveOneOutBaseline)
        {
            double total = rewards.Sum();
            for (int i = 0; i < g; i++)
            {
                double baseline = (total - rewards[i]) / (g - 1);
                double std = 0;
                if (settings.NormalizeStd)
                {
                    double ss = 0;
                    for (int j = 0; j < g; j++) if (j != i) ss += (rewards[j] - baseline) * (rewards[j] - baseline);
                    std = Math.Sqrt(ss / (g - 2));
                }
                a[i] = settings.NormalizeStd ? (rewards[i] - baseline) / (std + StdEpsilon) : rewards[i] - baseline;
            }
            return a;
        }
        double m = rewards.Average();
        double s = 0;
        if (settings.NormalizeStd && g > 1) s = Math.Sqrt(rewards.Sum(r => (r - m) * (r - m)) / (g - 1));
        for (int i = 0; i < g; i++) a[i] = settings.NormalizeStd ? (rewards[i] - m) / (s + StdEpsilon) : rewards[i] - m;
        return a;
    }

    /// <summary>Shapes rewards and sets advantages for a group.</summary>
    public static void Prepare(RolloutGroup group, GrpoSettings settings)
    {
        ShapeRewards(group, settings);
        group.Advantages = Compute(group.Rollouts.Select(r => r.Reward).ToList(), settings);
    }
}
