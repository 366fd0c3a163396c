using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Model.Tests;

public class GptModelTests
{
    private static readonly GptConfig Tiny = new(Layers: 2, Width: 16, Heads: 2, Context: 12, Vocab: 23);

    private static (GptModel Model, TokenBatch Batch, float[] Weights) Setup(int seed)
    {
        var model = new GptModel(new CpuBackend(2), Tiny);
        model.InitializeWeights(seed);
        // Larger weights than the init so every path carries a visible gradient.
        var p = model.DownloadParameters();
        var rng = new Random(seed);
        for (int i = 0; i < p.Length; i++) p[i] = p[i] == 1f ? 1f + 0.3f * (float)(rng.NextDouble() - 0.5) : p[i] * 10f;
        model.UploadParameters(p);
        int b = 2, t = 7;
        var tokens = Enumerable.Range(0, b * t).Select(_ => rng.Next(Tiny.Vocab)).ToArray();
        var targets = Enumerable.Range(0, b * t).Select(i => i % 5 == 3 ? -1 : rng.Next(Tiny.Vocab)).ToArray();
        var weights = Enumerable.Range(0, b * t).Select(_ => (float)rng.NextDouble()).ToArray();
        return (model, new TokenBatch(b, t, tokens, targets), weights);
    }

    private static double Loss(GptModel model, TokenBatch batch, float[] weights)
    {
        var lp = model.Forward(batch).LogProbs;
        double l = 0;
        for (int i = 0; i < lp.Length; i++) l -= weights[i] * (double)lp[i];
        return l;
    }

    [Fact]
    public void EveryParameterGradientMatchesFiniteDifferences()
    {
        var (model, batch, weights) = Setup(3);
        model.ZeroGradients();
        model.Forward(batch);
        model.Backward(weights);
        var grad = new float[model.Layout.Total];
        model.Backend.Download(model.Gradients, grad);
        ParameterGradientCheck.AssertMatchesFiniteDifferences(model, grad, () => Loss(model, batch, weights), perSlot: 6, seed: 1);
    }

    [Fact]
    public void GradientsAccumulateAcrossMicroBatches()
    {
        var (model, batch, weights) = Setup(5);
        model.ZeroGradients();
        model.Forward(batch);
        model.Backward(weights);
        var whole = new float[model.Layout.Total];
        model.Backend.Download(model.Gradients, whole);

        model.ZeroGradients();
        int t = batch.SeqLen;
        for (int b = 0; b < batch.Batch; b++)
        {
            var part = new TokenBatch(1, t, batch.Tokens[(b * t)..((b + 1) * t)], batch.Targets[(b * t)..((b + 1) * t)]);
            model.Forward(part);
            model.Backward(weights[(b * t)..((b + 1) * t)]);
        }
        var split = new float[model.Layout.Total];
        model.Backend.Download(model.Gradients, split);
        for (int i = 0; i < whole.Length; i++)
            Assert.True(Math.Abs(whole[i] - split[i]) <= 1e-4f * (1 + Math.Abs(whole[i])), $"gradient {i}: {whole[i]} vs {split[i]}");
    }

    /// <summary>With a bf16 cache (the CPU backend's bf16 sampler) the logits move by the keys' and values' rounding only.</summary>
    [Theory]
    [InlineData(DType.F32, 1e-4f)]
    [InlineData(DType.BF16, 2e-2f)]
    public void IncrementalDecodingMatchesTheFullForwardPass(DType cacheType, float tolerance)
    {
        var cfg = new GptConfig(Layers: 3, Width: 32, Heads: 4, Context: 24, Vocab: 40);
        using var model = new GptModel(new CpuBackend(2), cfg) { CacheType = cacheType };
        model.InitializeWeights(11);
        double largest = 0;
        var rng = new Random(2);
        var seqA = Enumerable.Range(0, 20).Select(_ => rng.Next(cfg.Vocab)).ToArray();
        var seqB = Enumerable.Range(0, 20).Select(_ => rng.Next(cfg.Vocab)).ToArray();
        var full = model.FullLogits(new TokenBatch(2, 20, seqA.Concat(seqB).ToArray(), new int[40]));
        int vp = cfg.PaddedVocab;

        // Prompts of different lengths (7 and 4), then decode token by token up to 20.
        using var cache = new KvCache(model, 2, 24);
        var logits = model.Prefill([seqA[..7], seqB[..4]], cache);
        var host = new float[2 * vp];
        model.Backend.Download(logits, host);
        AssertRow(full, 6, host, 0);
        AssertRow(full, 20 + 3, host, 1);
        int posA = 7, posB = 4;
        while (posA < 20)
        {
            int[] toks = posB < 20 ? [seqA[posA], seqB[posB]] : [seqA[posA]];
            int[] pos = posB < 20 ? [posA, posB] : [posA];
            logits = model.DecodeStep(toks, pos, cache);
            model.Backend.Download(logits, host.AsSpan(0, toks.Length * vp));
            AssertRow(full, posA, host, 0);
            if (posB < 20) AssertRow(full, 20 + posB, host, 1);
            posA++; posB++;
        }
        // A bf16 cache really rounds: the logits are not the fp32 ones.
        if (cacheType == DType.BF16) Assert.True(largest > 1e-5, $"largest difference {largest}");

        void AssertRow(float[] want, int wantRow, float[] got, int gotRow)
        {
            for (int j = 0; j < cfg.Vocab; j++)
            {
                float d = Math.Abs(want[wantRow * vp + j] - got[gotRow * vp + j]);
                largest = Math.Max(largest, d);
                Assert.True(d < tolerance, $"row {wantRow} logit {j}: full {want[wantRow * vp + j]} vs incremental {got[gotRow * vp + j]}");
            }
        }
    }

    [Fact]
    public void SamplerResultsDoNotDependOnBatchingAndLogProbsMatchTheModel()
    {
        var cfg = new GptConfig(Layers: 2, Width: 32, Heads: 2, Context: 40, Vocab: 30);
        using var model = new GptModel(new CpuBackend(2), cfg);
        model.InitializeWeights(4);
        var p = model.DownloadParameters();
        for (int i = 0; i < p.Length; i++) if (p[i] != 1f) p[i] *= 20f; // a peakier distribution
        model.UploadParameters(p);
        using var sampler = new Sampler(model);
        var prompts = new List<int[]> { new[] { 1, 2, 3 }, new[] { 4, 5 }, new[] { 1, 2, 3 }, new[] { 7, 8, 9, 10, 11 } };
        var options = new GenerationOptions(12, new SamplingParams(1f), Seed: 42, StopTokens: [0], MaxBatch: 8);
        var together = sampler.Generate(prompts, options, TestContext.Current.CancellationToken);
        var oneByOne = sampler.Generate(prompts, options with { MaxBatch = 1 }, TestContext.Current.CancellationToken);
        for (int i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(together[i].Tokens, oneByOne[i].Tokens);
            Assert.Equal(together[i].Finish, oneByOne[i].Finish);
        }
        // Identical prompts draw from different streams.
        Assert.NotEqual(together[0].Tokens, together[2].Tokens);

        // The sampler's log-probabilities are the model's (teacher-forced) log-probabilities.
        foreach (var g in together)
        {
            var seq = g.Prompt.Concat(g.Tokens).ToArray();
            var batch = TokenBatch.FromSequences([seq], padToken: 0);
            var lp = model.Forward(batch).LogProbs;
            for (int k = 0; k < g.Tokens.Length; k++)
                Assert.Equal(lp[g.Prompt.Length - 1 + k], g.LogProbs[k], 1e-4);
            if (g.Finish == FinishReason.Stop) Assert.Equal(0, g.Tokens[^1]);
            else Assert.Equal(12, g.Tokens.Length);
        }
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)] // rows moved and prompts shared in a bf16 cache
    public void RowsThatFinishAtSpreadLengthsAreCompactedWithoutChangingAnyOtherRow(DType cacheType)
    {
        // Many rows, several stop tokens: rows end at many different steps, so live rows are moved into freed
        // slots again and again; each must still get exactly the continuation it gets alone. Prompts come in
        // threes, so rows also read a prompt shared with others from the prefill cache.
        var cfg = new GptConfig(Layers: 2, Width: 32, Heads: 2, Context: 48, Vocab: 30);
        using var model = new GptModel(new CpuBackend(2), cfg) { CacheType = cacheType };
        model.InitializeWeights(9);
        using var sampler = new Sampler(model);
        var prompts = Enumerable.Range(0, 24).Select(i => Enumerable.Range(0, 2 + i / 3).Select(j => 3 + (i / 3 * 5 + j) % 27).ToArray()).ToList();
        var options = new GenerationOptions(30, new SamplingParams(1f), Seed: 7, StopTokens: [0, 1, 2], MaxBatch: 32);
        var together = sampler.Generate(prompts, options, TestContext.Current.CancellationToken);
        var oneByOne = sampler.Generate(prompts, options with { MaxBatch = 1 }, TestContext.Current.CancellationToken);
        var lengths = together.Select(g => g.Tokens.Length).ToList();
        Assert.True(lengths.Distinct().Count() >= 6, $"rows should end at spread lengths: {string.Join(",", lengths)}");
        Assert.Contains(together, g => g.Finish == FinishReason.Stop);
        for (int i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(oneByOne[i].Tokens, together[i].Tokens);
            Assert.Equal(oneByOne[i].Finish, together[i].Finish);
            for (int k = 0; k < together[i].LogProbs.Length; k++)
                Assert.Equal(oneByOne[i].LogProbs[k], together[i].LogProbs[k], 1e-4);
        }
    }

    [Fact]
    public void GreedyGenerationIsRepeatable()
    {
        var cfg = new GptConfig(Layers: 1, Width: 16, Heads: 2, Context: 20, Vocab: 20);
        using var model = new GptModel(new CpuBackend(1), cfg);
        model.InitializeWeights(1);
        using var sampler = new Sampler(model);
        var options = new GenerationOptions(10, SamplingParams.Greedy, Seed: 1, StopTokens: []);
        var a = sampler.Generate([[1, 2, 3]], options, TestContext.Current.CancellationToken);
        var b = sampler.Generate([[1, 2, 3]], options with { Seed = 99 }, TestContext.Current.CancellationToken);
        Assert.Equal(a[0].Tokens, b[0].Tokens);
        Assert.Equal(FinishReason.Length, a[0].Finish);
    }

    [Fact]
    public void PromptsLongerThanTheContextAreRefused()
    {
        var cfg = new GptConfig(Layers: 1, Width: 16, Heads: 2, Context: 8, Vocab: 20);
        using var model = new GptModel(new CpuBackend(1), cfg);
        using var sampler = new Sampler(model);
        var e = Assert.Throws<ArgumentException>(() => sampler.Generate([new int[8]], new GenerationOptions(4, SamplingParams.Greedy, 1, []), TestContext.Current.CancellationToken));
        Assert.Contains("context", e.Message);
    }
}
