using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Model;

public sealed partial class GptModel
{
    private Tensor? _stepNorm, _stepLogits;
    private int _stepCapacity;

    /// <summary>
    /// Runs <paramref name="prompts"/> (right-padded to the longest) through the model, stores their keys and
    /// values in rows 0..count−1 of <paramref name="cache"/>, and returns a [count, PaddedVocab] device tensor
    /// holding each prompt's next-token logits (at its last real token). Padding writes garbage past a row's
    /// length in the cache, which decoding overwrites before it ever reads it.
    /// </summary>
    public Tensor Prefill(IReadOnlyList<int[]> prompts, KvCache cache)
    {
        int count = prompts.Count;
        if (count == 0 || count > cache.Batch) throw new ArgumentException($"prefill: {count} prompts for a cache of {cache.Batch} rows");
        int t = prompts.Max(p => p.Length);
        if (prompts.Any(p => p.Length == 0)) throw new ArgumentException("prefill: empty prompt");
        if (t > cache.MaxSeqLen) throw new ArgumentException($"prefill: a prompt of {t} tokens does not fit the cache of {cache.MaxSeqLen}");
        var tokens = new int[count * t];
        for (int b = 0; b < count; b++)
        {
            Array.Fill(tokens, prompts[b][^1], b * t, t);
            prompts[b].CopyTo(tokens, b * t);
        }
        var positions = Enumerable.Range(0, count * t).Select(i => i % t).ToArray();
        var a = Acts(ActivationSet.Generate, count * t);
        RunBlocks(a, count, t, tokens, positions, cache);
        var (norm, logits) = StepBuffers(count);
        int c = Config.Width;
        for (int b = 0; b < count; b++)
            Backend.Copy(norm, (long)b * c, a.FinalNorm, ((long)b * t + prompts[b].Length - 1) * c, c);
        Backend.MatMul(logits, norm, P(Layout.TokenTable), count, Config.PaddedVocab, c, false, true);
        return logits;
    }

    /// <summary>
    /// One decoding step: row b of the cache takes token tokens[b] at position positions[b]. Returns the
    /// [rows, PaddedVocab] device tensor of next-token logits.
    /// </summary>
    public Tensor DecodeStep(int[] tokens, int[] positions, KvCache cache) => DecodeStep(tokens, positions, cache, null);

    /// <summary>
    /// <see cref="DecodeStep(int[], int[], KvCache)"/>, told which rows share which prefix (<see cref="SharedPrefix"/>):
    /// the logits are the same, and a backend may read a shared prefix once for all its rows.
    /// </summary>
    public Tensor DecodeStep(int[] tokens, int[] positions, KvCache cache, SharedPrefix? shared)
    {
        int rows = tokens.Length;
        if (rows == 0 || rows > cache.Batch || positions.Length != rows)
            throw new ArgumentException($"decode: {rows} tokens, {positions.Length} positions, cache of {cache.Batch} rows");
        var a = Acts(ActivationSet.Generate, rows);
        RunBlocks(a, rows, 1, tokens, positions, cache, shared);
        var (_, logits) = StepBuffers(rows);
        Backend.MatMul(logits, a.FinalNorm, P(Layout.TokenTable), rows, Config.PaddedVocab, Config.Width, false, true);
        return logits;
    }

    /// <summary>Logits of every position of one full forward pass, [B·T, PaddedVocab] on the host (for tests and eval).</summary>
    public float[] FullLogits(TokenBatch batch)
    {
        var a = Acts(ActivationSet.Generate, batch.Count);
        RunBlocks(a, batch.Batch, batch.SeqLen, batch.Tokens, batch.Positions, cache: null);
        int n = batch.Count, vp = Config.PaddedVocab;
        Backend.MatMul(a.Logits, a.FinalNorm, P(Layout.TokenTable), n, vp, Config.Width, false, true);
        var host = new float[(long)n * vp];
        Backend.Download(a.Logits, host);
        return host;
    }

    private (Tensor Norm, Tensor Logits) StepBuffers(int rows)
    {
        if (_stepCapacity < rows)
        {
            _stepNorm?.Dispose();
            _stepLogits?.Dispose();
            _stepCapacity = Math.Max(rows, 2 * _stepCapacity);
            _stepNorm = Backend.Allocate(DType.F32, (long)_stepCapacity * Config.Width, "step.ln_f");
            _stepLogits = Backend.Allocate(DType.F32, (long)_stepCapacity * Config.PaddedVocab, "step.logits");
        }
        return (_stepNorm!, _stepLogits!);
    }
}

/// <summary>
/// Rows of a decoding batch that share a prefix: row b's first <see cref="Lengths"/>[b] positions hold the same keys
/// and values as row <see cref="Rows"/>[b] of <see cref="Cache"/> (the prefill cache the rows were copied from).
/// </summary>
public sealed record SharedPrefix(KvCache Cache, int[] Rows, int[] Lengths);
