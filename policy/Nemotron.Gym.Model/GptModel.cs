using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Model;

/// <summary>Per-token results of a forward pass with targets, on the host.</summary>
/// <param name="LogProbs">log p(target) per position (0 where the target is −1).</param>
/// <param name="Entropy">Entropy of the predictive distribution per position, when asked for.</param>
public sealed record ForwardResult(float[] LogProbs, float[]? Entropy);

/// <summary>
/// The policy: a GPT-style decoder (see <see cref="GptConfig"/>) written only against
/// <see cref="IComputeBackend"/>, so the same code runs on the CPU and on CUDA. Forward and backward are
/// explicit, block by block, as in llm.c; activations are kept between them.
/// </summary>
public sealed partial class GptModel : IDisposable
{
    private readonly Dictionary<ActivationSet, Activations> _activations = new();
    private Tensor? _gradients;
    private BackwardScratch? _scratch;
    private TokenBatch? _lastBatch;

    /// <summary>A model with all parameters zero; call <see cref="InitializeWeights"/> or load a checkpoint.</summary>
    public GptModel(IComputeBackend backend, GptConfig config)
    {
        Backend = backend;
        Config = config.Validate();
        Layout = new ParameterLayout(config);
        Parameters = backend.Allocate(DType.F32, Layout.Total, "parameters");
    }

    /// <summary>The device the model lives on.</summary>
    public IComputeBackend Backend { get; }
    /// <summary>Shape.</summary>
    public GptConfig Config { get; }

    /// <summary>
    /// Element type of the key and value caches generation allocates (<see cref="KvCache"/>): F32, or BF16 where the
    /// backend supports it (<see cref="IComputeBackend.SupportsBf16Caches"/>) and the model is a bf16 sampler, whose
    /// mismatch with the trainer the IS correction measures and covers. Decoding at the RL batch reads the caches
    /// from memory, so bf16 halves its bytes.
    /// </summary>
    public DType CacheType
    {
        get => _cacheType;
        set
        {
            if (value is not (DType.F32 or DType.BF16)) throw new ArgumentException($"cache type {value}: key and value caches are F32 or BF16");
            if (value == DType.BF16 && !Backend.SupportsBf16Caches) throw new ArgumentException($"cache type BF16: the {Backend.Name} backend keeps its caches in F32");
            _cacheType = value;
        }
    }
    private DType _cacheType = DType.F32;
    /// <summary>Where each parameter sits in <see cref="Parameters"/>.</summary>
    public ParameterLayout Layout { get; }
    /// <summary>All weights, one flat buffer.</summary>
    public Tensor Parameters { get; }
    /// <summary>Gradients in the same layout (allocated at the first backward pass).</summary>
    public Tensor Gradients => _gradients ??= Backend.Allocate(DType.F32, Layout.Total, "gradients");

    private Tensor P(ParameterSlot s) => Parameters.Slice(s.Offset, s.Length, s.Name);
    private Tensor G(ParameterSlot s) => Gradients.Slice(s.Offset, s.Length, "d" + s.Name);

    /// <summary>
    /// GPT-2 style initialization from a seed: N(0, 0.02) for matrices and embeddings, residual output
    /// projections scaled by 1/sqrt(2·layers), norm gains 1, unused vocabulary rows 0.
    /// </summary>
    public void InitializeWeights(int seed)
    {
        var rng = new Random(seed);
        var host = new float[Layout.Total];
        float residualStd = 0.02f / MathF.Sqrt(2f * Config.Layers);
        foreach (var s in Layout.Slots)
        {
            bool isNorm = !s.Decay;
            bool isResidualOut = s.Name.EndsWith("attn.proj.weight") || s.Name.EndsWith("mlp.proj.weight");
            float std = isResidualOut ? residualStd : 0.02f;
            long rows = s == Layout.TokenTable ? Config.Vocab * (long)Config.Width : s.Length;
            for (long i = 0; i < s.Length; i++)
                host[s.Offset + i] = isNorm ? 1f : i < rows ? std * Gaussian(rng) : 0f;
        }
        Backend.Upload(Parameters, host);
    }

    private static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    /// <summary>Copies all weights to the host.</summary>
    public float[] DownloadParameters()
    {
        var host = new float[Layout.Total];
        Backend.Download(Parameters, host);
        return host;
    }

    /// <summary>Replaces all weights from the host.</summary>
    public void UploadParameters(ReadOnlySpan<float> host)
    {
        if (host.Length != Layout.Total) throw new ArgumentException($"expected {Layout.Total} parameters, got {host.Length}");
        Backend.Upload(Parameters, host);
    }

    /// <summary>Copies the weights of another model of the same shape (any backend).</summary>
    public void CopyWeightsFrom(GptModel other)
    {
        if (other.Config != Config) throw new ArgumentException($"cannot copy weights of {other.Config} into {Config}");
        if (ReferenceEquals(other.Backend, Backend)) Backend.Copy(Parameters, 0, other.Parameters, 0, Layout.Total);
        else UploadParameters(other.DownloadParameters());
    }

    // ---- training forward / backward -------------------------------------------------------------

    /// <summary>
    /// Runs the model over a batch and scores its targets. Activations are kept for <see cref="Backward"/>.
    /// </summary>
    public ForwardResult Forward(TokenBatch batch, bool withEntropy = false)
    {
        var a = Acts(ActivationSet.Train, batch.Count);
        RunBlocks(a, batch.Batch, batch.SeqLen, batch.Tokens, batch.Positions, cache: null, layout: batch.SharedPrefixes);
        int n = batch.Count, vp = Config.PaddedVocab, c = Config.Width;
        // Shared prefixes predict nothing: the head runs over the rows only (log-probabilities 0 at prefix positions).
        int skip = (int)(batch.SharedPrefixes?.PrefixTokens ?? 0), m = n - skip;
        Backend.MatMul(Rows(a.Logits, skip, m, vp), Rows(a.FinalNorm, skip, m, c), P(Layout.TokenTable), m, vp, c, false, true);
        Backend.Upload(a.Targets, batch.Targets);
        Backend.SoftmaxCrossEntropyForward(Rows(a.LogProbs, skip, m, 1), Rows(a.LogSumExp, skip, m, 1), withEntropy ? Rows(a.Entropy, skip, m, 1) : null,
            Rows(a.Logits, skip, m, vp), Rows(a.Targets, skip, m, 1), m, Config.Vocab, vp);
        var lp = new float[n];
        Backend.Download(a.LogProbs, lp.AsSpan(skip), skip);
        float[]? entropy = null;
        if (withEntropy)
        {
            entropy = new float[n];
            Backend.Download(a.Entropy, entropy.AsSpan(skip), skip);
        }
        _lastBatch = batch;
        return new ForwardResult(lp, entropy);
    }

    /// <summary>Sets every gradient to zero (once per optimizer step; backward passes accumulate).</summary>
    public void ZeroGradients() => Backend.Fill(Gradients, 0f);

    /// <summary>
    /// Accumulates into <see cref="Gradients"/> the gradient of L = Σ_i lossWeights[i] · (−logProbs[i]) over the
    /// positions of the last <see cref="Forward"/>. Cross-entropy with a loss mask is weights = mask / tokens;
    /// a policy-gradient objective passes −∂L/∂logProb per token.
    /// </summary>
    public void Backward(ReadOnlySpan<float> lossWeights)
    {
        var batch = _lastBatch ?? throw new InvalidOperationException("backward needs a forward pass first");
        int n = batch.Count, c = Config.Width, vp = Config.PaddedVocab, b = batch.Batch, t = batch.SeqLen, nh = Config.Heads;
        if (lossWeights.Length != n) throw new ArgumentException($"backward: {lossWeights.Length} loss weights for {n} positions");
        var a = Acts(ActivationSet.Train, n);
        var d = Scratch(n);
        var be = Backend;
        be.Upload(d.Weights, lossWeights);

        // LM head (tied to the token table), over the positions the forward pass scored.
        var layout = batch.SharedPrefixes;
        int skip = (int)(layout?.PrefixTokens ?? 0), m = n - skip;
        be.SoftmaxCrossEntropyBackward(Rows(d.Logits, skip, m, vp), Rows(a.Logits, skip, m, vp), Rows(a.LogSumExp, skip, m, 1), Rows(a.Targets, skip, m, 1),
            Rows(d.Weights, skip, m, 1), m, Config.Vocab, vp);
        if (skip > 0) be.Fill(d.Norm.Slice(0, (long)skip * c), 0f);
        be.MatMul(Rows(d.Norm, skip, m, c), Rows(d.Logits, skip, m, vp), P(Layout.TokenTable), m, c, vp, false, false);
        be.MatMul(G(Layout.TokenTable), Rows(d.Logits, skip, m, vp), Rows(a.FinalNorm, skip, m, c), vp, c, m, true, false, 1f, 1f);
        // d.Residual carries ∂L/∂(residual stream) backwards; every block adds into it.
        be.Fill(d.Residual, 0f);
        var last = Config.Layers > 0 ? a.Layers[^1].Out : a.Encoded;
        be.RmsNormBackward(d.Residual, G(Layout.FinalNorm), d.Norm, last, P(Layout.FinalNorm), a.FinalRstd, n, c);

        for (int l = Config.Layers - 1; l >= 0; l--)
        {
            var s = Layout.Layers[l];
            var la = a.Layers[l];
            var input = l == 0 ? a.Encoded : a.Layers[l - 1].Out;
            // MLP: out = mid + gelu(ln2 · fcᵀ) · projᵀ
            be.MatMul(d.Hidden2, d.Residual, P(s.FcProj), n, 4 * c, c, false, false);
            be.MatMul(G(s.FcProj), d.Residual, la.HiddenGelu, c, 4 * c, n, true, false, 1f, 1f);
            be.Fill(d.Hidden, 0f);
            be.GeluBackward(d.Hidden, d.Hidden2, la.Hidden, (long)n * 4 * c);
            be.MatMul(d.Norm, d.Hidden, P(s.Fc), n, c, 4 * c, false, false);
            be.MatMul(G(s.Fc), d.Hidden, la.Norm2, 4 * c, c, n, true, false, 1f, 1f);
            be.RmsNormBackward(d.Residual, G(s.Norm2), d.Norm, la.Mid, P(s.Norm2), la.Rstd2, n, c);
            // Attention: mid = input + attn(ln1 · qkvᵀ) · projᵀ
            be.MatMul(d.Attn, d.Residual, P(s.AttnProj), n, c, c, false, false);
            be.MatMul(G(s.AttnProj), d.Residual, la.Attn, c, c, n, true, false, 1f, 1f);
            be.Fill(d.Qkv, 0f);
            if (layout == null) be.AttentionBackward(d.Qkv, d.Attn, la.Qkv, la.Attn, la.LogSumExp, b, t, c, nh);
            else be.PrefixAttentionBackward(d.Qkv, d.Attn, la.Qkv, la.Attn, la.LogSumExp, layout, c, nh);
            be.MatMul(d.Norm, d.Qkv, P(s.Qkv), n, c, 3 * c, false, false);
            be.MatMul(G(s.Qkv), d.Qkv, la.Norm1, 3 * c, c, n, true, false, 1f, 1f);
            be.RmsNormBackward(d.Residual, G(s.Norm1), d.Norm, input, P(s.Norm1), la.Rstd1, n, c);
        }
        be.EmbeddingBackward(G(Layout.TokenTable), G(Layout.PositionTable), d.Residual, a.Tokens, a.Positions, n, c);
    }

    /// <summary>Rows [first, first + count) of a row-major buffer <paramref name="width"/> wide (the buffer itself from row 0: the ops take sizes).</summary>
    private static Tensor Rows(Tensor t, int first, int count, int width) =>
        first == 0 ? t : t.Slice((long)first * width, (long)count * width);

    /// <summary>The global L2 norm of all gradients.</summary>
    public double GradientNorm() => Math.Sqrt(Backend.SumOfSquares(Gradients, Layout.Total));

    /// <summary>Scales the gradients so their global norm is at most <paramref name="maxNorm"/>; returns the norm before.</summary>
    public double ClipGradients(float maxNorm)
    {
        double norm = GradientNorm();
        if (maxNorm > 0 && norm > maxNorm) Backend.Scale(Gradients, (float)(maxNorm / norm), Layout.Total);
        return norm;
    }

    // ---- the blocks, shared by training, prefill and decoding ---------------------------------------

    /// <summary>
    /// Embedding, every block and the final norm. With a cache and seqLen = 1 each row is one decoding step
    /// at its own position; with a cache and seqLen &gt; 1 it is a prefill that also stores keys and values.
    /// </summary>
    private void RunBlocks(Activations a, int batch, int seqLen, int[] tokens, int[] positions, KvCache? cache, SharedPrefix? shared = null, SharedPrefixLayout? layout = null)
    {
        int n = batch * seqLen, c = Config.Width, nh = Config.Heads;
        var be = Backend;
        be.Upload(a.Tokens, tokens);
        be.Upload(a.Positions, positions);
        be.EmbeddingForward(a.Encoded, a.Tokens, a.Positions, P(Layout.TokenTable), P(Layout.PositionTable), n, c);
        bool decoding = cache != null && seqLen == 1;
        for (int l = 0; l < Config.Layers; l++)
        {
            var s = Layout.Layers[l];
            var la = a.Layers[l];
            var input = l == 0 ? a.Encoded : a.Layers[l - 1].Out;
            be.RmsNormForward(la.Norm1, la.Rstd1, input, P(s.Norm1), n, c, GptConfig.NormEps);
            be.MatMul(la.Qkv, la.Norm1, P(s.Qkv), n, 3 * c, c, false, true);
            if (decoding)
            {
                if (shared == null)
                    be.AttentionDecode(la.Attn, la.Qkv, cache!.Keys[l], cache.Values[l], a.Positions, batch, c, nh, cache.MaxSeqLen);
                else
                    be.AttentionDecode(la.Attn, la.Qkv, cache!.Keys[l], cache.Values[l], a.Positions, batch, c, nh, cache.MaxSeqLen,
                        new DecodePrefix(shared.Cache.Keys[l], shared.Cache.Values[l], shared.Cache.MaxSeqLen, shared.Rows, shared.Lengths));
            }
            else if (layout != null)
                be.PrefixAttentionForward(la.Attn, la.LogSumExp, la.Qkv, layout, c, nh);
            else
            {
                be.AttentionForward(la.Attn, la.LogSumExp, la.Qkv, batch, seqLen, c, nh);
                if (cache != null) be.KvCacheWrite(cache.Keys[l], cache.Values[l], la.Qkv, batch, seqLen, c, cache.MaxSeqLen);
            }
            be.MatMul(la.Mid, la.Attn, P(s.AttnProj), n, c, c, false, true);
            be.Add(la.Mid, la.Mid, input, (long)n * c);
            be.RmsNormForward(la.Norm2, la.Rstd2, la.Mid, P(s.Norm2), n, c, GptConfig.NormEps);
            be.MatMul(la.Hidden, la.Norm2, P(s.Fc), n, 4 * c, c, false, true);
            be.GeluForward(la.HiddenGelu, la.Hidden, (long)n * 4 * c);
            be.MatMul(la.Out, la.HiddenGelu, P(s.FcProj), n, c, 4 * c, false, true);
            be.Add(la.Out, la.Out, la.Mid, (long)n * c);
        }
        var last = Config.Layers > 0 ? a.Layers[^1].Out : a.Encoded;
        be.RmsNormForward(a.FinalNorm, a.FinalRstd, last, P(Layout.FinalNorm), n, c, GptConfig.NormEps);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var a in _activations.Values) a.Dispose();
        _activations.Clear();
        _scratch?.Dispose();
        _stepNorm?.Dispose();
        _stepLogits?.Dispose();
        _gradients?.Dispose();
        Parameters.Dispose();
    }
}
