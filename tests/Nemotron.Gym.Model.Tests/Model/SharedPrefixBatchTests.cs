using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;

namespace Nemotron.Gym.Model.Tests;

/// <summary>
/// A batch whose rows share their prompts (<see cref="TokenBatch.FromSharedPrefixes"/>) against the same sequences as
/// plain rows (<see cref="TokenBatch.FromSequences"/>): every scored log-probability and entropy, and every parameter
/// gradient, agree up to float rounding; the gradient also matches finite differences; and a prefix that would hide a
/// scored token is refused.
/// </summary>
public class SharedPrefixBatchTests
{
    private static readonly GptConfig Config = new(Layers: 2, Width: 32, Heads: 2, Context: 40, Vocab: 29);

    /// <summary>Two prompts with three and two completions, one lone prompt; the completions' tokens are scored.</summary>
    private static (List<int[]> Sequences, List<byte[]> Masks, List<int> Shared, GptModel Model) Setup(int seed)
    {
        var rng = new Random(seed);
        var model = new GptModel(new CpuBackend(2), Config);
        model.InitializeWeights(seed);
        var p = model.DownloadParameters();
        for (int i = 0; i < p.Length; i++) p[i] = p[i] == 1f ? 1f + 0.3f * (float)(rng.NextDouble() - 0.5) : p[i] * 8f;
        model.UploadParameters(p);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(Config.Vocab)).ToArray();
        var prompts = new[] { Tokens(11), Tokens(6), Tokens(9) };
        var sequences = new List<int[]>();
        var masks = new List<byte[]>();
        var shared = new List<int>();
        foreach (var (prompt, completions) in new[] { (0, 3), (1, 2), (2, 1) })
            for (int k = 0; k < completions; k++)
            {
                var seq = prompts[prompt].Concat(Tokens(3 + rng.Next(12))).ToArray();
                var mask = new byte[seq.Length];
                for (int i = prompts[prompt].Length; i < seq.Length; i++) mask[i] = 1;
                sequences.Add(seq);
                masks.Add(mask);
                shared.Add(prompts[prompt].Length - 1); // the prompt's last token predicts the first scored one
            }
        return (sequences, masks, shared, model);
    }

    /// <summary>Loss weights per position of a batch: the same weight for the same (sequence, token) in either layout.</summary>
    private static float[] Weights(TokenBatch batch, IReadOnlyList<int[]> sequences)
    {
        var w = new float[batch.Count];
        for (int b = 0; b < batch.Rows; b++)
            for (int p = 0; batch.RowOffset(b) + p + 1 < sequences[b].Length; p++)
            {
                int token = batch.RowOffset(b) + p + 1;
                w[batch.RowStart(b) + p] = batch.Targets[batch.RowStart(b) + p] < 0 ? 0f : 0.2f + 0.05f * ((b * 7 + token) % 11);
            }
        return w;
    }

    private static float[] Gradient(GptModel model, TokenBatch batch, float[] weights)
    {
        model.ZeroGradients();
        model.Forward(batch);
        model.Backward(weights);
        var g = new float[model.Layout.Total];
        model.Backend.Download(model.Gradients, g);
        return g;
    }

    [Fact]
    public void SharedPrefixesGiveThePlainRowsLogProbsEntropiesAndGradients()
    {
        var (sequences, masks, shared, model) = Setup(11);
        using var _ = model;
        var plain = TokenBatch.FromSequences(sequences, 0, 0, masks);
        var prefixed = TokenBatch.FromSharedPrefixes(sequences, shared, 0, masks);
        Assert.Equal(3, prefixed.SharedPrefixes!.Prefixes);
        Assert.True(prefixed.Count < plain.Count, $"{prefixed.Count} positions shared vs {plain.Count} plain");
        var a = model.Forward(plain, withEntropy: true);
        var b = model.Forward(prefixed, withEntropy: true);
        int scored = 0;
        for (int r = 0; r < sequences.Count; r++)
            for (int token = 1; token < sequences[r].Length; token++)
            {
                if (masks[r][token] == 0) continue;
                long at = plain.RowStart(r) + token - 1, bt = prefixed.RowStart(r) + token - 1 - prefixed.RowOffset(r);
                Assert.Equal(plain.Targets[at], prefixed.Targets[bt]);
                Assert.True(Math.Abs(a.LogProbs[at] - b.LogProbs[bt]) < 2e-5, $"row {r} token {token}: log p {a.LogProbs[at]} vs {b.LogProbs[bt]}");
                Assert.True(Math.Abs(a.Entropy![at] - b.Entropy![bt]) < 2e-5, $"row {r} token {token}: entropy {a.Entropy[at]} vs {b.Entropy[bt]}");
                scored++;
            }
        Assert.True(scored > 40);
        var gPlain = Gradient(model, plain, Weights(plain, sequences));
        var gShared = Gradient(model, prefixed, Weights(prefixed, sequences));
        double scale = gPlain.Max(Math.Abs);
        for (int i = 0; i < gPlain.Length; i++)
            Assert.True(Math.Abs(gPlain[i] - gShared[i]) <= 1e-4 * scale, $"gradient {i}: plain {gPlain[i]} vs shared {gShared[i]} (scale {scale:G3})");
    }

    [Fact]
    public void SharedPrefixGradientMatchesFiniteDifferences()
    {
        var (sequences, masks, shared, model) = Setup(12);
        using var _ = model;
        var batch = TokenBatch.FromSharedPrefixes(sequences, shared, 0, masks);
        var weights = Weights(batch, sequences);
        var grad = Gradient(model, batch, weights);
        double Loss()
        {
            var lp = model.Forward(batch).LogProbs;
            double l = 0;
            for (int i = 0; i < lp.Length; i++) l -= weights[i] * (double)lp[i];
            return l;
        }
        ParameterGradientCheck.AssertMatchesFiniteDifferences(model, grad, Loss, perSlot: 4, seed: 3);
    }

    [Fact]
    public void APrefixThatWouldHideAScoredTokenIsRefused()
    {
        var (sequences, masks, shared, model) = Setup(13);
        model.Dispose();
        var tooLong = shared.Select(l => l + 1).ToList();
        var e = Assert.Throws<ArgumentException>(() => TokenBatch.FromSharedPrefixes(sequences, tooLong, 0, masks));
        Assert.Contains("sequence 0 shares 11 tokens but scores token 11", e.Message);
        var whole = Assert.Throws<ArgumentException>(() => TokenBatch.FromSharedPrefixes(sequences, sequences.Select(s => s.Length - 1).ToList(), 0, masks));
        Assert.Contains("its row needs at least one input token", whole.Message);
    }
}
