namespace Nemotron.Gym.Training;

/// <summary>
/// Warmup-stable-decay: linear warmup to the peak, a long constant phase, then a decay over the last
/// <see cref="DecayFraction"/> of the steps down to <see cref="MinLr"/> (1 − sqrt shape, which keeps the
/// rate high a little longer than a linear ramp). WSD lets a run be extended from its stable phase.
/// </summary>
public sealed record LearningRateSchedule(float PeakLr, float MinLr, int WarmupSteps, int TotalSteps, float DecayFraction)
{
    /// <summary>The rate at 1-based step <paramref name="step"/>.</summary>
    public float At(int step)
    {
        if (WarmupSteps > 0 && step <= WarmupSteps) return PeakLr * step / WarmupSteps;
        int decaySteps = (int)MathF.Round(TotalSteps * DecayFraction);
        int decayStart = TotalSteps - decaySteps;
        if (decaySteps <= 0 || step <= decayStart) return PeakLr;
        float progress = Math.Clamp((step - decayStart) / (float)decaySteps, 0f, 1f);
        return MinLr + (PeakLr - MinLr) * (1f - MathF.Sqrt(progress));
    }
}
