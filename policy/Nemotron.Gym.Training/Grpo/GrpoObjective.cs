namespace Nemotron.Gym.Training.Grpo;

/// <summary>
/// One sample's positions inside the flat per-token arrays of a micro-batch.
/// </summary>
/// <param name="Start">First position.</param>
/// <param name="Length">Positions.</param>
/// <param name="Advantage">A_i.</param>
/// <param name="Kept">s_i before importance sampling (false for masked truncations).</param>
public readonly record struct SampleSpan(int Start, int Length, double Advantage, bool Kept);

/// <summary>Running sums behind the step's objective metrics.</summary>
public sealed class ObjectiveStats
{
    /// <summary>Σ s·m: tokens in the loss.</summary>
    public double Tokens;
    /// <summary>Generated tokens seen (m = 1), kept or not.</summary>
    public double AllTokens;
    /// <summary>Samples seen and samples kept (s = 1).</summary>
    public int Samples, KeptSamples;
    /// <summary>Σ of the loss terms before normalization.</summary>
    public double LossSum;
    /// <summary>Σ r and max r over loss tokens.</summary>
    public double RatioSum, RatioMax = double.NegativeInfinity;
    /// <summary>Loss tokens whose gradient the clip removed.</summary>
    public double Clipped;
    /// <summary>Tokens (token modes) or sequences (seq_mis) masked or truncated by the IS rule.</summary>
    public double IsOutOfBounds, IsCandidates;
    /// <summary>Σ |lp_old − lp_gen| over generated tokens.</summary>
    public double MismatchSum;
    /// <summary>Σ k3 over loss tokens.</summary>
    public double KlSum;

    /// <summary>Adds another set of sums.</summary>
    public void Add(ObjectiveStats o)
    {
        Tokens += o.Tokens; AllTokens += o.AllTokens; Samples += o.Samples; KeptSamples += o.KeptSamples;
        LossSum += o.LossSum; RatioSum += o.RatioSum; RatioMax = Math.Max(RatioMax, o.RatioMax);
        Clipped += o.Clipped; IsOutOfBounds += o.IsOutOfBounds; IsCandidates += o.IsCandidates;
        MismatchSum += o.MismatchSum; KlSum += o.KlSum;
    }
}

/// <summary>
/// The GRPO objective of docs/grpo.md for one micro-batch, and its gradient with respect to each
/// token's current log-probability lp. Everything that is not lp (lp_old, lp_gen, lp_ref, advantages,
/// masks) is a constant of the step. The normalizer is the WHOLE step's (Σ s·m for token level, the
/// number of kept samples for sequence level), so micro-batches add up to exactly the whole batch.
/// </summary>
public static class GrpoObjective
{
    /// <summary>
    /// Importance-sampling weights w per token and the kept flag s per sample, from lp_old and lp_gen.
    /// Tokens outside the mask get w = 0.
    /// </summary>
    public static (float[] Weights, bool[] Kept) ImportanceWeights(ReadOnlySpan<float> lpOld, ReadOnlySpan<float> lpGen, ReadOnlySpan<byte> mask,
        IReadOnlyList<SampleSpan> samples, GrpoSettings settings, ObjectiveStats stats)
    {
        var w = new float[lpOld.Length];
        var kept = new bool[samples.Count];
        for (int k = 0; k < samples.Count; k++)
        {
            var sp = samples[k];
            kept[k] = sp.Kept;
            double logSum = 0;
            int n = 0;
            for (int t = sp.Start; t < sp.Start + sp.Length; t++)
            {
                if (mask[t] == 0) continue;
                double diff = lpOld[t] - (double)lpGen[t];
                stats.MismatchSum += Math.Abs(diff);
                logSum += diff;
                n++;
                double raw = Math.Exp(diff);
                double wt = raw;
                switch (settings.IsCorrection)
                {
                    case IsCorrection.None:
                        wt = 1;
                        break;
                    case IsCorrection.Tis:
                        stats.IsCandidates++;
                        if (raw > settings.IsMax) { wt = settings.IsMax; stats.IsOutOfBounds++; }
                        break;
                    case IsCorrection.TokenMis:
                        stats.IsCandidates++;
                        if (raw < settings.IsMin || raw > settings.IsMax) { wt = 0; stats.IsOutOfBounds++; }
                        break;
                }
                w[t] = (float)wt;
            }
            if (settings.IsCorrection == IsCorrection.SeqMis && n > 0)
            {
                stats.IsCandidates++;
                double g = Math.Exp(logSum / n);
                if (g < settings.IsMin || g > settings.IsMax)
                {
                    kept[k] = false;
                    stats.IsOutOfBounds++;
                }
            }
        }
        return (w, kept);
    }

    /// <summary>The step's normalizer: Σ s·m (token level) or Σ s (sequence level).</summary>
    public static double Normalizer(ReadOnlySpan<byte> mask, IReadOnlyList<SampleSpan> samples, IReadOnlyList<bool> kept, LossLevel level)
    {
        double z = 0;
        for (int k = 0; k < samples.Count; k++)
        {
            if (!kept[k]) continue;
            if (level == LossLevel.Sequence) { z += 1; continue; }
            for (int t = samples[k].Start; t < samples[k].Start + samples[k].Length; t++) z += mask[t];
        }
        return z;
    }

    /// <summary>
    /// Adds this micro-batch's part of L to the returned value and writes ∂L/∂lp per position into
    /// <paramref name="gradient"/>. <paramref name="lpRef"/> may be empty when kl_beta is 0.
    /// </summary>
    public static double Evaluate(ReadOnlySpan<float> lp, ReadOnlySpan<float> lpOld, ReadOnlySpan<float> lpRef, ReadOnlySpan<float> isWeights,
        ReadOnlySpan<byte> mask, IReadOnlyList<SampleSpan> samples, IReadOnlyList<bool> kept, GrpoSettings settings, double normalizer,
        Span<float> gradient, ObjectiveStats stats)
    {
        gradient.Clear();
        if (settings.KlBeta > 0 && lpRef.Length != lp.Length)
            throw new ArgumentException($"kl_beta is {settings.KlBeta} but no reference log-probabilities were given");
        double lo = 1 - settings.EpsLow, hi = 1 + settings.EpsHigh, beta = settings.KlBeta;
        double loss = 0;
        for (int k = 0; k < samples.Count; k++)
        {
            var sp = samples[k];
            stats.Samples++;
            int tokens = 0;
            for (int t = sp.Start; t < sp.Start + sp.Length; t++) tokens += mask[t];
            stats.AllTokens += tokens;
            if (!kept[k] || tokens == 0) continue;
            stats.KeptSamples++;
            // Token level: every loss token weighs 1/Z. Sequence level: 1/(tokens of the sample · Z).
            double scale = settings.LossLevel == LossLevel.Token ? 1.0 / normalizer : 1.0 / (tokens * normalizer);
            double a = sp.Advantage;
            for (int t = sp.Start; t < sp.Start + sp.Length; t++)
            {
                if (mask[t] == 0) continue;
                double r = Math.Exp(lp[t] - (double)lpOld[t]);
                double clipped = Math.Clamp(r, lo, hi);
                double unclippedTerm = -a * r, clippedTerm = -a * clipped;
                double term, dTerm;
                if (unclippedTerm >= clippedTerm) { term = unclippedTerm; dTerm = -a * r; }
                else { term = clippedTerm; dTerm = 0; stats.Clipped++; }
                double kl = 0, dKl = 0;
                if (beta > 0)
                {
                    double x = lpRef[t] - (double)lp[t];
                    double xc = Math.Clamp(x, -20, 20);
                    double k3 = Math.Exp(xc) - 1 - xc;
                    kl = Math.Clamp(k3, -10, 10);
                    // d k3 / d lp = −(e^x − 1) where neither clamp is active.
                    if (x == xc && k3 == kl) dKl = 1 - Math.Exp(xc);
                    stats.KlSum += kl;
                }
                double w = isWeights[t];
                loss += scale * w * (term + beta * kl);
                gradient[t] = (float)(scale * w * (dTerm + beta * dKl));
                stats.Tokens++;
                stats.RatioSum += r;
                stats.RatioMax = Math.Max(stats.RatioMax, r);
            }
        }
        stats.LossSum += loss;
        return loss;
    }
}
