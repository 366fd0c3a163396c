using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Training.Tests;

public class ObjectiveTests
{
    private static (double Loss, float[] Grad, ObjectiveStats Stats) Run(float[] lp, float[] lpOld, float[] lpGen, float[] lpRef, byte[] mask,
        SampleSpan[] spans, GrpoSettings s)
    {
        var stats = new ObjectiveStats();
        var (w, kept) = GrpoObjective.ImportanceWeights(lpOld, lpGen, mask, spans, s, stats);
        double z = GrpoObjective.Normalizer(mask, spans, kept, s.LossLevel);
        var grad = new float[lp.Length];
        double loss = GrpoObjective.Evaluate(lp, lpOld, lpRef, w, mask, spans, kept, s, z, grad, stats);
        return (loss, grad, stats);
    }

    [Fact]
    public void WorkedExampleAtRatioOne()
    {
        // One sample, two generated tokens, A = 1, r = 1, w = 1: each token's term is −A·r = −1, and the
        // token-level normalizer is 2, so L = (−1 − 1)/2 = −1 and ∂L/∂lp = −A·r/2 = −0.5 per token.
        float[] lp = [-1f, -2f, -0.5f];
        byte[] mask = [0, 1, 1];
        var (loss, grad, _) = Run(lp, lp, lp, [], mask, [new SampleSpan(0, 3, 1.0, true)], new GrpoSettings { IsCorrection = IsCorrection.None });
        Assert.Equal(-1.0, loss, 1e-9);
        Assert.Equal([0f, -0.5f, -0.5f], grad);
    }

    [Theory]
    // A, r, expected term, expected gradient (Z = 1), clipped?
    // A = 1, r = 1.5: −1.5 vs −1.28 → max is the clipped −1.28, gradient 0.
    [InlineData(1.0, 1.5, -1.28, 0.0, true)]
    // A = −1, r = 0.5: 0.5 vs 0.8 → clipped 0.8, gradient 0.
    [InlineData(-1.0, 0.5, 0.8, 0.0, true)]
    // A = −1, r = 1.5: 1.5 vs 1.28 → unclipped 1.5, gradient −A·r = 1.5.
    [InlineData(-1.0, 1.5, 1.5, 1.5, false)]
    // A = 1, r = 0.5: −0.5 vs −0.8 → unclipped −0.5, gradient −A·r = −0.5.
    [InlineData(1.0, 0.5, -0.5, -0.5, false)]
    // A = 1, r = 1.25 (inside [0.8, 1.28]): −1.25, gradient −1.25.
    [InlineData(1.0, 1.25, -1.25, -1.25, false)]
    public void ClipHigherSurrogate(double a, double r, double term, double grad, bool clipped)
    {
        float lpOld = -1f, lp = (float)(lpOld + Math.Log(r));
        var (loss, g, stats) = Run([0f, lp], [0f, lpOld], [0f, lpOld], [], [0, 1], [new SampleSpan(0, 2, a, true)], new GrpoSettings { IsCorrection = IsCorrection.None });
        Assert.Equal(term, loss, 1e-5);
        Assert.Equal(grad, g[1], 1e-5);
        Assert.Equal(clipped ? 1 : 0, stats.Clipped);
    }

    [Fact]
    public void KlK3WorkedExample()
    {
        // lp_ref − lp = 0.5: k3 = e^0.5 − 1 − 0.5 = 0.148721; ∂k3/∂lp = 1 − e^0.5 = −0.648721.
        // With A = 0 only the KL term remains: L = β·k3 = 0.0148721, ∂L/∂lp = −0.0648721 (β = 0.1, Z = 1).
        var s = new GrpoSettings { IsCorrection = IsCorrection.None, KlBeta = 0.1f };
        var (loss, g, _) = Run([0f, -1f], [0f, -1f], [0f, -1f], [0f, -0.5f], [0, 1], [new SampleSpan(0, 2, 0, true)], s);
        Assert.Equal(0.0148721, loss, 1e-6);
        Assert.Equal(-0.0648721, g[1], 1e-6);
    }

    public static TheoryData<IsCorrection, LossLevel, float> Modes()
    {
        var d = new TheoryData<IsCorrection, LossLevel, float>();
        foreach (var m in Enum.GetValues<IsCorrection>())
            foreach (var l in Enum.GetValues<LossLevel>())
                foreach (var kl in new[] { 0f, 0.2f })
                    d.Add(m, l, kl);
        return d;
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void GradientMatchesCentralDifferences(IsCorrection mode, LossLevel level, float klBeta)
    {
        var rng = new Random((int)mode * 10 + (int)level + (int)(klBeta * 10));
        int n = 30;
        var lp = new float[n]; var lpOld = new float[n]; var lpGen = new float[n]; var lpRef = new float[n]; var mask = new byte[n];
        for (int i = 0; i < n; i++)
        {
            lpOld[i] = -(float)rng.NextDouble() * 3;
            lp[i] = lpOld[i] + (float)(rng.NextDouble() - 0.5) * 0.6f;
            lpGen[i] = lpOld[i] + (float)(rng.NextDouble() - 0.5) * 0.4f;
            lpRef[i] = lpOld[i] + (float)(rng.NextDouble() - 0.5);
            mask[i] = (byte)(i % 7 == 0 ? 0 : 1);
        }
        SampleSpan[] spans = [new(0, 10, 0.7, true), new(10, 12, -1.1, true), new(22, 8, 0.3, true)];
        var s = new GrpoSettings { IsCorrection = mode, LossLevel = level, KlBeta = klBeta, IsMin = 0.85f, IsMax = 1.15f };
        var stats = new ObjectiveStats();
        var (w, kept) = GrpoObjective.ImportanceWeights(lpOld, lpGen, mask, spans, s, stats);
        double z = GrpoObjective.Normalizer(mask, spans, kept, level);
        var grad = new float[n];
        GrpoObjective.Evaluate(lp, lpOld, klBeta > 0 ? lpRef : [], w, mask, spans, kept, s, z, grad, stats);
        double L(float[] x)
        {
            var tmp = new float[n];
            return GrpoObjective.Evaluate(x, lpOld, klBeta > 0 ? lpRef : [], w, mask, spans, kept, s, z, tmp, new ObjectiveStats());
        }
        const float h = 1e-3f;
        for (int i = 0; i < n; i++)
        {
            // Skip points within h of a clip boundary, where the loss has a kink.
            double r = Math.Exp(lp[i] - lpOld[i]);
            if (Math.Abs(r - 0.8) < 0.01 || Math.Abs(r - 1.28) < 0.01) continue;
            var up = (float[])lp.Clone(); up[i] += h;
            var down = (float[])lp.Clone(); down[i] -= h;
            double numeric = (L(up) - L(down)) / (2 * h);
            Assert.True(Math.Abs(numeric - grad[i]) < 1e-4 + 1e-2 * Math.Abs(numeric), $"token {i}: analytic {grad[i]} numeric {numeric}");
        }
    }

    [Fact]
    public void AtRatioOneAndWeightOneTheGradientIsReinforce()
    {
        // REINFORCE with group-normalized advantages: L = −(1/Z) Σ A_i · lp_t, so ∂L/∂lp_t = −A_i / Z.
        var rng = new Random(3);
        int n = 20;
        var lp = Enumerable.Range(0, n).Select(_ => -(float)rng.NextDouble() * 2).ToArray();
        var mask = Enumerable.Range(0, n).Select(i => (byte)(i % 5 == 0 ? 0 : 1)).ToArray();
        SampleSpan[] spans = [new(0, 10, 1.3, true), new(10, 10, -0.4, true)];
        var (_, g, _) = Run(lp, lp, lp, [], mask, spans, new GrpoSettings { IsCorrection = IsCorrection.None });
        double z = mask.Sum(m => m);
        for (int i = 0; i < n; i++)
            Assert.Equal(mask[i] == 0 ? 0 : -(i < 10 ? 1.3 : -0.4) / z, g[i], 1e-6);
    }

    [Fact]
    public void EachImportanceSamplingModeMasksExactlyWhatItsRuleNames()
    {
        // Token weights w = exp(lp_old − lp_gen): sample A has w = 0.5, 1.0, 3.0; sample B has 1.1, 1.2, 1.3.
        float[] lpGen = [0, 0, 0, 0, 0, 0, 0, 0];
        float[] lpOld = [0, (float)Math.Log(0.5), 0, (float)Math.Log(3.0), 0, (float)Math.Log(1.1), (float)Math.Log(1.2), (float)Math.Log(1.3)];
        byte[] mask = [0, 1, 1, 1, 0, 1, 1, 1];
        SampleSpan[] spans = [new(0, 4, 1, true), new(4, 4, 1, true)];
        (float[] W, bool[] Kept, ObjectiveStats Stats) Weights(IsCorrection mode)
        {
            var st = new ObjectiveStats();
            var (w, k) = GrpoObjective.ImportanceWeights(lpOld, lpGen, mask, spans, new GrpoSettings { IsCorrection = mode, IsMin = 0.8f, IsMax = 2f }, st);
            return (w, k, st);
        }
        var none = Weights(IsCorrection.None);
        Assert.Equal([0f, 1, 1, 1, 0, 1, 1, 1], none.W);
        Assert.Equal(0, none.Stats.IsOutOfBounds);

        var tis = Weights(IsCorrection.Tis); // only w = 3 is above is_max, truncated to 2
        Assert.Equal([0f, 0.5f, 1, 2, 0, 1.1f, 1.2f, 1.3f], tis.W.Select(x => MathF.Round(x, 4)));
        Assert.Equal(1, tis.Stats.IsOutOfBounds);
        Assert.Equal(6, tis.Stats.IsCandidates);

        var token = Weights(IsCorrection.TokenMis); // w = 0.5 and w = 3 leave the loss
        Assert.Equal([0f, 0, 1, 0, 0, 1.1f, 1.2f, 1.3f], token.W.Select(x => MathF.Round(x, 4)));
        Assert.Equal([true, true], token.Kept);
        Assert.Equal(2, token.Stats.IsOutOfBounds);

        // Sequence A's geometric mean is (0.5·1·3)^(1/3) = 1.145 (inside), B's (1.1·1.2·1.3)^(1/3) = 1.197 (inside).
        var seq = Weights(IsCorrection.SeqMis);
        Assert.Equal([true, true], seq.Kept);
        Assert.Equal(0, seq.Stats.IsOutOfBounds);
        var st2 = new ObjectiveStats();
        var (_, kept2) = GrpoObjective.ImportanceWeights(lpOld, lpGen, mask, spans, new GrpoSettings { IsCorrection = IsCorrection.SeqMis, IsMin = 0.8f, IsMax = 1.16f }, st2);
        Assert.Equal([true, false], kept2); // with is_max 1.16 only B (1.197) is masked
        Assert.Equal(1, st2.IsOutOfBounds);
        Assert.Equal(2, st2.IsCandidates);
        // A masked sequence leaves both the loss and the normalizer.
        Assert.Equal(3, GrpoObjective.Normalizer(mask, spans, kept2, LossLevel.Token));
    }

    [Fact]
    public void SequenceLevelAveragesWithinEachSampleFirst()
    {
        // Sample A: 1 token, A = 1; sample B: 3 tokens, A = 1. Sequence level: L = ½(−1/1·1) + ½(−3/3) = −1,
        // and A's single token carries gradient −1/(1·2) = −0.5 while each of B's carries −1/(3·2).
        float[] lp = [0, -1, 0, -1, -1, -1];
        byte[] mask = [0, 1, 0, 1, 1, 1];
        var (loss, g, _) = Run(lp, lp, lp, [], mask, [new(0, 2, 1, true), new(2, 4, 1, true)], new GrpoSettings { IsCorrection = IsCorrection.None, LossLevel = LossLevel.Sequence });
        Assert.Equal(-1, loss, 1e-9);
        Assert.Equal(-0.5f, g[1], 1e-6);
        Assert.Equal(-1f / 6, g[3], 1e-6);
    }

    /// <summary>The RL sections as a run config holds them.</summary>
    private sealed class RlSections
    {
        public GrpoSettings Grpo { get; set; } = new();
        public RlTrainSettings Train { get; set; } = new();
    }

    [Fact]
    public void ConfigErrorsNameTheKey()
    {
        var e = Assert.Throws<Nemotron.Gym.Training.Config.ConfigException>(() => Nemotron.Gym.Training.Config.YamlConfig.Parse<RlSections>(
            "grpo: {group_size: 1}", "rl.yaml"));
        Assert.Contains("grpo.group_size", e.Message);
        e = Assert.Throws<Nemotron.Gym.Training.Config.ConfigException>(() => Nemotron.Gym.Training.Config.YamlConfig.Parse<RlSections>(
            "grpo: {is_correction: masked}", "rl.yaml"));
        Assert.Contains("none, tis, token_mis, seq_mis", e.Message);
        e = Assert.Throws<Nemotron.Gym.Training.Config.ConfigException>(() => Nemotron.Gym.Training.Config.YamlConfig.Parse<RlSections>(
            "train: {min_lr: 1}", "rl.yaml"));
        Assert.Contains("train.min_lr: must be in [0, lr]", e.Message);
    }
}
