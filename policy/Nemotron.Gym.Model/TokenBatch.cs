using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Model;

/// <summary>
/// B rows of T tokens for a forward pass, token-major (row b, position t at b·T + t), with the target
/// (next token) of each position, or −1 where nothing is predicted (padding, or a position whose
/// prediction is not scored). Positions default to 0..T−1 in every row. A batch built by
/// <see cref="FromSharedPrefixes"/> is laid out as its <see cref="SharedPrefixes"/> says instead: the prompts its
/// rows share come first, once each, then the rows' own tokens.
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

    /// <summary>The shared-prefix layout, or null for B plain rows (then <see cref="Batch"/> × <see cref="SeqLen"/> is all).</summary>
    public SharedPrefixLayout? SharedPrefixes { get; private init; }

    private int[]? _rowOffsets;

    /// <summary>The sequences this batch holds (its rows).</summary>
    public int Rows => SharedPrefixes?.Rows ?? Batch;

    /// <summary>Positions per row.</summary>
    public int RowLength => SharedPrefixes?.RowLen ?? SeqLen;

    /// <summary>Where row b's first position sits in the batch.</summary>
    public long RowStart(int b) => SharedPrefixes == null ? (long)b * SeqLen : SharedPrefixes.PrefixTokens + (long)b * SharedPrefixes.RowLen;

    /// <summary>Which token of its sequence row b's first position holds: position p of the row predicts token RowOffset(b) + p + 1.</summary>
    public int RowOffset(int b) => _rowOffsets?[b] ?? 0;

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
    /// <summary>What identifies a shared prefix: its first <paramref name="length"/> tokens (equal keys, equal prefixes).</summary>
    public static string PrefixKey(int[] sequence, int length) => string.Join(',', sequence.Take(length));

    /// <summary>
    /// The rows of <see cref="FromSequences"/>, with the first <paramref name="shareLengths"/>[b] tokens of sequence b
    /// computed once for every sequence that starts with the same tokens (the G rollouts of a prompt). Row b then holds
    /// tokens shareLengths[b].. of its sequence (at their true positions) and attends to its prefix's keys; nothing is
    /// predicted at prefix positions, so shareLengths[b] must leave the first scored target in the row. The results
    /// equal FromSequences' up to the order of float sums; <see cref="RowStart"/> and <see cref="RowOffset"/> map them.
    /// </summary>
    public static TokenBatch FromSharedPrefixes(IReadOnlyList<int[]> sequences, IReadOnlyList<int> shareLengths, int padToken, IReadOnlyList<byte[]>? targetMask = null)
    {
        if (sequences.Count == 0) throw new ArgumentException("token batch: no sequences");
        if (shareLengths.Count != sequences.Count) throw new ArgumentException($"token batch: {shareLengths.Count} shared lengths for {sequences.Count} sequences");
        var prefixIndex = new Dictionary<string, int>();
        var prefixOf = new int[sequences.Count];
        var prefixSource = new List<int>();
        int rowLen = 1;
        for (int b = 0; b < sequences.Count; b++)
        {
            var seq = sequences[b];
            int l = shareLengths[b];
            if (l < 0 || l > seq.Length - 2)
                throw new ArgumentException($"token batch: sequence {b} of {seq.Length} tokens cannot share {l} (its row needs at least one input token)");
            for (int i = 1; i <= l; i++)
                if (targetMask == null || targetMask[b][i] != 0) throw new ArgumentException($"token batch: sequence {b} shares {l} tokens but scores token {i}, which a shared prefix cannot predict");
            string key = PrefixKey(seq, l);
            if (!prefixIndex.TryGetValue(key, out int p))
            {
                prefixIndex[key] = p = prefixSource.Count;
                prefixSource.Add(b);
            }
            prefixOf[b] = p;
            rowLen = Math.Max(rowLen, seq.Length - 1 - l);
        }
        var lengths = prefixSource.Select(b => shareLengths[b]).ToArray();
        int prefixLen = Math.Max(1, lengths.Max());
        var layout = new SharedPrefixLayout(lengths.Length, prefixLen, sequences.Count, rowLen, prefixOf, lengths).Validate();
        int n = checked((int)layout.Tokens);
        var tokens = new int[n];
        var targets = new int[n];
        var positions = new int[n];
        Array.Fill(tokens, padToken);
        Array.Fill(targets, -1);
        for (int p = 0; p < lengths.Length; p++)
            for (int i = 0; i < prefixLen; i++)
            {
                int at = p * prefixLen + i;
                positions[at] = i;
                if (i < lengths[p]) tokens[at] = sequences[prefixSource[p]][i];
            }
        for (int b = 0; b < sequences.Count; b++)
        {
            var seq = sequences[b];
            int l = shareLengths[b], start = (int)layout.PrefixTokens + b * rowLen;
            for (int j = 0; j < rowLen; j++)
            {
                int i = l + j, at = start + j;
                // Padding sits at 0..: its own positions could pass the model's context.
                positions[at] = i + 1 < seq.Length ? i : j;
                if (i + 1 >= seq.Length) continue;
                tokens[at] = seq[i];
                targets[at] = targetMask == null || targetMask[b][i + 1] != 0 ? seq[i + 1] : -1;
            }
        }
        return new TokenBatch(1, n, tokens, targets, positions) { SharedPrefixes = layout, _rowOffsets = shareLengths.ToArray() };
    }
}
