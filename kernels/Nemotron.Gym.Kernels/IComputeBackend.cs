namespace Nemotron.Gym.Kernels;

/// <summary>
/// Keys and values that decoding rows share (one layer): row b's positions below <see cref="Lengths"/>[b] hold the
/// same keys and values as row <see cref="Rows"/>[b] of <see cref="Keys"/> and <see cref="Values"/>, laid out
/// <c>[rows, MaxSeqLen, channels]</c> like a KV cache. Rows and Lengths are host arrays of at least the batch.
/// </summary>
public sealed record DecodePrefix(Tensor Keys, Tensor Values, int MaxSeqLen, int[] Rows, int[] Lengths);

/// <summary>
/// The shape of a training batch whose rows continue shared prefixes (the G rollouts of one prompt share it):
/// <see cref="Prefixes"/> prefix sequences of <see cref="PrefixLen"/> positions come first, token-major, then
/// <see cref="Rows"/> rows of <see cref="RowLen"/> positions. Prefix i holds <see cref="PrefixLengths"/>[i] real
/// tokens (the rest is padding); row r continues prefix <see cref="PrefixOfRow"/>[r]: its position t attends to that
/// prefix's first PrefixLengths[i] keys and to its own positions 0..t. Prefix positions attend causally among
/// themselves. Computing a prompt once for its G rows instead of G times is what this layout is for.
/// </summary>
public sealed record SharedPrefixLayout(int Prefixes, int PrefixLen, int Rows, int RowLen, int[] PrefixOfRow, int[] PrefixLengths)
{
    /// <summary>Positions of the prefix block: Prefixes × PrefixLen.</summary>
    public long PrefixTokens => (long)Prefixes * PrefixLen;
    /// <summary>Positions of the row block: Rows × RowLen.</summary>
    public long RowTokens => (long)Rows * RowLen;
    /// <summary>All positions.</summary>
    public long Tokens => PrefixTokens + RowTokens;

    /// <summary>Throws unless the counts and indices are consistent.</summary>
    public SharedPrefixLayout Validate()
    {
        if (Prefixes < 0 || Rows < 1 || RowLen < 1 || PrefixLen < 0 || (Prefixes > 0 && PrefixLen < 1))
            throw new ArgumentException($"shared prefixes: {Prefixes} prefixes of {PrefixLen} positions and {Rows} rows of {RowLen}");
        if (PrefixOfRow.Length != Rows) throw new ArgumentException($"shared prefixes: {PrefixOfRow.Length} prefix indices for {Rows} rows");
        if (PrefixLengths.Length != Prefixes) throw new ArgumentException($"shared prefixes: {PrefixLengths.Length} lengths for {Prefixes} prefixes");
        for (int i = 0; i < Prefixes; i++)
            if ((uint)PrefixLengths[i] > (uint)PrefixLen)
                throw new ArgumentException($"shared prefixes: prefix {i} has {PrefixLengths[i]} tokens, outside 0..{PrefixLen}");
        for (int r = 0; r < Rows; r++)
            if ((uint)PrefixOfRow[r] >= (uint)Prefixes)
                throw new ArgumentException($"shared prefixes: row {r} continues prefix {PrefixOfRow[r]} of {Prefixes}");
        return this;
    }
}

/// <summary>One AdamW update's hyper-parameters. <see cref="Step"/> counts from 1 (bias correction).</summary>
public readonly record struct AdamWStep(float LearningRate, float Beta1, float Beta2, float Epsilon, float WeightDecay, int Step);

/// <summary>
/// Every operation a decoder-only transformer needs for training and inference, forward and
/// backward, on one device. The CPU backend (C#) is the reference; the CUDA backend must match it.
///
/// Conventions, shared by every implementation:
/// <list type="bullet">
/// <item>Tensors are flat; dimensions are passed explicitly. Matrices are row-major.</item>
/// <item>Activations are laid out token-major: <c>[n, channels]</c> with n = batch × sequence.</item>
/// <item>The fused attention input <c>qkv</c> is <c>[n, 3·channels]</c>: q, then k, then v; head h owns
///   channels <c>[h·hs, (h+1)·hs)</c> of each, with hs = channels / heads.</item>
/// <item>Backward operations ADD (+=) into every gradient they write, parameter and input gradients alike
///   (callers zero gradient buffers once per step; accumulation across micro-batches is then free),
///   except <see cref="SoftmaxCrossEntropyBackward"/>, which overwrites <c>dlogits</c>.</item>
/// <item>Operations are ordered on one stream: a later call sees the effects of an earlier one.
///   Methods that return values to the host synchronize.</item>
/// </list>
/// </summary>
public interface IComputeBackend : IDisposable
{
    /// <summary>Short name: "cpu" or "cuda".</summary>
    string Name { get; }

    /// <summary>What runs the math, for the start-up banner ("cpu: 2 threads, AVX-512").</summary>
    string Description { get; }

    // ---- memory -------------------------------------------------------------------------------

    /// <summary>A new zero-filled tensor.</summary>
    Tensor Allocate(DType dtype, long length, string name);

    /// <summary>
    /// Whether <see cref="KvCacheWrite"/>, <see cref="Copy"/> and the decoding ops take key and value caches of
    /// <see cref="DType.BF16"/> (the CPU backend: decoding at the RL sampler's batch is bound by reading the caches).
    /// </summary>
    bool SupportsBf16Caches => false;

    /// <summary>Copies host floats into <paramref name="destination"/> starting at element <paramref name="offset"/>.</summary>
    void Upload(Tensor destination, ReadOnlySpan<float> source, long offset = 0);

    /// <summary>Copies host ints into <paramref name="destination"/> starting at element <paramref name="offset"/>.</summary>
    void Upload(Tensor destination, ReadOnlySpan<int> source, long offset = 0);

    /// <summary>Copies elements starting at <paramref name="offset"/> into host memory (synchronizes).</summary>
    void Download(Tensor source, Span<float> destination, long offset = 0);

    /// <summary>Copies elements starting at <paramref name="offset"/> into host memory (synchronizes).</summary>
    void Download(Tensor source, Span<int> destination, long offset = 0);

    /// <summary>Device-to-device copy of <paramref name="count"/> elements.</summary>
    void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count);

    /// <summary>Sets every element of <paramref name="tensor"/> to <paramref name="value"/>.</summary>
    void Fill(Tensor tensor, float value);

    /// <summary>Waits until every queued operation has finished.</summary>
    void Synchronize();

    // ---- elementwise --------------------------------------------------------------------------

    /// <summary>output[i] = a[i] + b[i] for i &lt; n (output may alias a or b).</summary>
    void Add(Tensor output, Tensor a, Tensor b, long n);

    /// <summary>tensor[i] *= scale for i &lt; n.</summary>
    void Scale(Tensor tensor, float scale, long n);

    /// <summary>Σ tensor[i]² over i &lt; n, accumulated in double precision on the host side of the sum.</summary>
    double SumOfSquares(Tensor tensor, long n);

    /// <summary>GELU (tanh approximation): output[i] = gelu(input[i]).</summary>
    void GeluForward(Tensor output, Tensor input, long n);

    /// <summary>dinput[i] += gelu'(input[i]) · doutput[i].</summary>
    void GeluBackward(Tensor dinput, Tensor doutput, Tensor input, long n);

    // ---- matrix products ----------------------------------------------------------------------

    /// <summary>
    /// C = alpha · op(A) · op(B) + beta · C for each of <paramref name="batch"/> matrices, row-major,
    /// where op(A) is m×k, op(B) is k×n and C is m×n. With transposeA, A is stored k×m; with
    /// transposeB, B is stored n×k. Matrix i of each operand starts at i × its stride (elements).
    /// beta = 1 accumulates (used for weight gradients).
    /// </summary>
    void MatMul(Tensor c, Tensor a, Tensor b, int m, int n, int k, bool transposeA, bool transposeB,
        float alpha = 1f, float beta = 0f, int batch = 1, long strideA = 0, long strideB = 0, long strideC = 0);

    // ---- embedding and normalization ----------------------------------------------------------

    /// <summary>output[i, :] = tokenTable[tokens[i], :] + positionTable[positions[i], :] for i &lt; n.</summary>
    void EmbeddingForward(Tensor output, Tensor tokens, Tensor positions, Tensor tokenTable, Tensor positionTable, int n, int channels);

    /// <summary>dTokenTable[tokens[i], :] += doutput[i, :]; dPositionTable[positions[i], :] += doutput[i, :].</summary>
    void EmbeddingBackward(Tensor dTokenTable, Tensor dPositionTable, Tensor doutput, Tensor tokens, Tensor positions, int n, int channels);

    /// <summary>
    /// RMSNorm: rstd[i] = 1 / sqrt(mean(input[i, :]²) + eps); output[i, j] = input[i, j] · rstd[i] · weight[j].
    /// rstd is kept for the backward pass.
    /// </summary>
    void RmsNormForward(Tensor output, Tensor rstd, Tensor input, Tensor weight, int n, int channels, float eps);

    /// <summary>dinput += ∂/∂input, dweight += ∂/∂weight of Σ doutput · output.</summary>
    void RmsNormBackward(Tensor dinput, Tensor dweight, Tensor doutput, Tensor input, Tensor weight, Tensor rstd, int n, int channels);

    // ---- attention ----------------------------------------------------------------------------

    /// <summary>
    /// Causal multi-head self-attention over <paramref name="batch"/> sequences of <paramref name="seqLen"/>
    /// tokens: output[b, t, head h] = softmax_s≤t(q_t·k_s / sqrt(hs)) · v_s. logSumExp[b, h, t] keeps each
    /// row's softmax normalizer so the backward pass can recompute the probabilities (flash-style;
    /// nothing of size T² is kept).
    /// </summary>
    void AttentionForward(Tensor output, Tensor logSumExp, Tensor qkv, int batch, int seqLen, int channels, int heads);

    /// <summary>dqkv += the gradient of Σ doutput · output with respect to qkv.</summary>
    void AttentionBackward(Tensor dqkv, Tensor doutput, Tensor qkv, Tensor output, Tensor logSumExp, int batch, int seqLen, int channels, int heads);

    /// <summary>
    /// Stores the keys and values of a prefilled batch in a KV cache laid out
    /// <c>[batch, maxSeqLen, channels]</c> (one per layer for keys and one for values):
    /// cache[b, t, :] = k (or v) of qkv[b·seqLen + t] for t &lt; seqLen.
    /// </summary>
    void KvCacheWrite(Tensor keyCache, Tensor valueCache, Tensor qkv, int batch, int seqLen, int channels, int maxSeqLen);

    /// <summary>
    /// One decoding step for <paramref name="batch"/> sequences, each at its own position: writes the new
    /// token's k and v (from qkv[b]) at cache[b, positions[b]], then output[b] = attention of q (from qkv[b])
    /// over cache[b, 0..positions[b]] inclusive.
    /// </summary>
    void AttentionDecode(Tensor output, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor positions, int batch, int channels, int heads, int maxSeqLen);

    /// <summary>
    /// <see cref="AttentionDecode(Tensor, Tensor, Tensor, Tensor, Tensor, int, int, int, int)"/> with a hint: the
    /// first <c>prefix.Lengths[b]</c> keys and values of row b equal those of row <c>prefix.Rows[b]</c> of the prefix
    /// tensors (the G samples of one prompt share its prefill).
    /// The result is the same; a backend bound by reading the cache may read a shared prefix once for all the rows
    /// that share it. The default ignores the hint.
    /// </summary>
    void AttentionDecode(Tensor output, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor positions, int batch, int channels, int heads, int maxSeqLen, DecodePrefix prefix)
        => AttentionDecode(output, qkv, keyCache, valueCache, positions, batch, channels, heads, maxSeqLen);

    /// <summary>Whether <see cref="PrefixAttentionForward"/> and <see cref="PrefixAttentionBackward"/> are implemented.</summary>
    bool SupportsSharedPrefixes => false;

    /// <summary>
    /// <see cref="AttentionForward"/> over a batch laid out as <paramref name="layout"/> says: the prefix block is plain
    /// causal attention (logSumExp <c>[Prefixes, heads, PrefixLen]</c> first), and row r's position t attends to the keys
    /// of its prefix's real tokens and of its own positions 0..t (logSumExp <c>[Rows, heads, RowLen]</c> after).
    /// </summary>
    void PrefixAttentionForward(Tensor output, Tensor logSumExp, Tensor qkv, SharedPrefixLayout layout, int channels, int heads)
        => throw new NotSupportedException($"{Name}: attention over shared prefixes is not implemented on this backend");

    /// <summary>dqkv += the gradient of Σ doutput · output of <see cref="PrefixAttentionForward"/> with respect to qkv.</summary>
    void PrefixAttentionBackward(Tensor dqkv, Tensor doutput, Tensor qkv, Tensor output, Tensor logSumExp, SharedPrefixLayout layout, int channels, int heads)
        => throw new NotSupportedException($"{Name}: attention over shared prefixes is not implemented on this backend");

    // ---- loss and sampling --------------------------------------------------------------------

    /// <summary>
    /// Fused log-softmax and target gather over rows of logits with row stride <paramref name="stride"/>,
    /// of which the first <paramref name="vocab"/> columns are real: logSumExp[i] = log Σ_j exp(logits[i, j]),
    /// logProbs[i] = logits[i, targets[i]] − logSumExp[i] (0 where targets[i] &lt; 0), and, when given,
    /// entropy[i] = −Σ_j p_ij log p_ij. The cross-entropy of token i is −logProbs[i].
    /// </summary>
    void SoftmaxCrossEntropyForward(Tensor logProbs, Tensor logSumExp, Tensor? entropy, Tensor logits, Tensor targets, int n, int vocab, int stride);

    /// <summary>
    /// Gradient of L = Σ_i lossWeights[i] · (−logProbs[i]): dlogits[i, j] = lossWeights[i] · (p_ij − [j = targets[i]])
    /// for j &lt; vocab, and 0 for the padding columns and for rows with targets[i] &lt; 0. OVERWRITES dlogits.
    /// A loss mask is a weight of 0; a policy-gradient objective passes −∂L/∂logProbs as the weight.
    /// </summary>
    void SoftmaxCrossEntropyBackward(Tensor dlogits, Tensor logits, Tensor logSumExp, Tensor targets, Tensor lossWeights, int n, int vocab, int stride);

    /// <summary>
    /// Picks one token per row of logits (the first <paramref name="vocab"/> columns of each row of stride
    /// <paramref name="stride"/>) with temperature, top-k and top-p, using uniforms[i] in [0, 1) as row i's
    /// random draw (the caller's seeded generator, so both backends pick the same tokens). Writes tokens[i] and
    /// logProbs[i] = log p(token) under softmax(logits / T) before top-k/top-p truncation (T = 1 when greedy):
    /// the sampler's log-probability that RL compares with the trainer's.
    /// </summary>
    void SampleTokens(Tensor tokens, Tensor logProbs, Tensor logits, int rows, int vocab, int stride, SamplingParams sampling, ReadOnlySpan<float> uniforms);

    // ---- optimizer ----------------------------------------------------------------------------

    /// <summary>
    /// AdamW on n elements: m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; with bias corrections for
    /// <see cref="AdamWStep.Step"/>, p −= lr · (m̂ / (sqrt(v̂) + eps) + weightDecay · p).
    /// </summary>
    void AdamW(Tensor parameters, Tensor gradients, Tensor m, Tensor v, long n, AdamWStep step);
}
