namespace Nemotron.Gym.Model;

/// <summary>
/// B rows of T tokens for a forward pass, token-major (row b, position t at b·T + t), with the target
/// (next token) of each position, or −1 where nothing is predicted (padding, or a position whose
/// prediction is not scored). Positions default to 0..T−1 in every row.
/// </summary>
public sealed class TokenBatch
{
    /// <summary>Wraps the arrays; checks their lengths.</summary>
    public TokenBatch(int batch, int seqLen, int[] tokens, int[] targets, int[]? positions = null)
    {
        if (batch < 1 || seqLen < 1) throw new ArgumentException($"token batch: {batch} rows of {seqLen} tokens");
        long n = (long)batch * seqLen;
        if (tokens.Length != n) throw new ArgumentException($"token batch: {tokens.Length} tokens for {batch}×{seqLen}");
        if (targets.Length != n) throw new ArgumentException($"token batch: {targets.Length} targets for {batch}×{seqLen}");
        if (positions != null && positions.Length != n) throw new ArgumentException($"token batch: {positions.Length} positions for {batch}×{seqLen}");
        Batch = batch;
        SeqLen = seqLen;
        Tokens = tokens;
        Targets = targets;
        Positions = positions ?? Enumerable.Range(0, (int)n).Select(i => i % seqLen).ToArray();
    }

    /// <summary>Rows.</summary>
    public int Batch { get; }
    /// <summary>Tokens per row.</summary>
    public int SeqLen { get; }
    /// <summary>Input ids, B·T.</summary>
    public int[] Tokens { get; }
    /// <summary>Next-token targets, B·T; −1 = none.</summary>
    public int[] Targets { get; }
    /// <summary>Position ids, B·T.</summary>
    public int[] Positions { get; }
    /// <summary>B·T.</summary>
    public int Count => Tokens.Length;

    /// <summary>
    /// Teacher-forcing rows from whole sequences: inputs are seq[0..^1], targets seq[1..]; rows are
    /// right-padded with <paramref name="padToken"/> (target −1) to the longest, or to <paramref name="seqLen"/>.
    /// <paramref name="targetMask"/>, when given per sequence, marks which targets are scored (mask[i] refers to
    /// token i of the sequence, predicted from position i−1).
    /// </summary>
    public static TokenBatch FromSequences(IReadOnlyList<int[]> sequences, int padToken, int seqLen = 0, IReadOnlyList<byte[]>? targetMask = null)
    {
        if (sequences.Count == 0) throw new ArgumentException("token batch: no sequences");
        int longest = sequences.Max(s => s.Length) - 1;
        int t = seqLen > 0 ? seqLen : Math.Max(1, longest);
        if (longest > t) throw new ArgumentException($"token batch: a sequence of {longest + 1} tokens does not fit rows of {t}");
        var tokens = new int[sequences.Count * t];
        var targets = new int[sequences.Count * t];
        Array.Fill(tokens, padToken);
        Array.Fill(targets, -1);
        for (int b = 0; b < sequences.Count; b++)
        {
            var s = sequences[b];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                tokens[b * t + i] = s[i];
                bool scored = targetMask == null || targetMask[b][i + 1] != 0;
                targets[b * t + i] = scored ? s[i + 1] : -1;
            }
        }
        return new TokenBatch(sequences.Count, t, tokens, targets);
    }
}
