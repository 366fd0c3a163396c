using Nemotron.Gym.Model;

namespace Nemotron.Gym.Training.Grpo;

/// <summary>
/// Micro-batches for training on shared prompts (<c>share_prompts</c>, docs/grpo.md): the rollouts of one prompt go
/// into the same micro-batch, so the prompt is computed once for all of them, and prompts whose rollouts have similar
/// lengths go together, so rows pad little. Like <see cref="LengthGrouping"/>, this changes no gradient (the
/// normalizer spans the minibatch), only what is computed.
/// </summary>
public static class PromptGrouping
{
    /// <summary>
    /// The micro-batches the GRPO trainer computes for <paramref name="sequences"/> (rollouts' tokens, with the mask of
    /// the tokens the policy generated, the only ones scored), at most <paramref name="maxRows"/> rows each: with
    /// <paramref name="sharePrompts"/>, grouped by prompt with each prompt once (<see cref="TokenBatch.FromSharedPrefixes"/>);
    /// without, plain rows of similar lengths (<see cref="LengthGrouping"/>). Each comes with the indices of its rows.
    /// </summary>
    public static List<(List<int> Rows, TokenBatch Batch)> Batches(IReadOnlyList<int[]> sequences, IReadOnlyList<byte[]> generated, int maxRows, bool sharePrompts, int padToken)
    {
        if (!sharePrompts)
            return LengthGrouping.Group(sequences.Select(s => s.Length - 1).ToList(), maxRows)
                .Select(rows => (rows, TokenBatch.FromSequences(rows.Select(i => sequences[i]).ToList(), padToken, 0, rows.Select(i => generated[i]).ToList())))
                .ToList();
        var shared = sequences.Select((s, i) => SharedLength(generated[i], s.Length)).ToList();
        return Group(sequences, shared, maxRows)
            .Select(rows => (rows, TokenBatch.FromSharedPrefixes(rows.Select(i => sequences[i]).ToList(), rows.Select(i => shared[i]).ToList(), padToken,
                rows.Select(i => generated[i]).ToList())))
            .ToList();
    }

    /// <summary>
    /// How many leading tokens of a sequence its row can share, from the mask of generated tokens: everything before the
    /// first generated token except the last, whose position predicts the first generated token and so must be in the row.
    /// </summary>
    public static int SharedLength(byte[] generated, int length)
    {
        int first = Array.FindIndex(generated, g => g != 0);
        if (first < 0) first = length - 1; // nothing generated: nothing scored, share all but the last input
        return Math.Clamp(first - 1, 0, Math.Max(0, length - 2));
    }

    /// <summary>
    /// The indices of <paramref name="sequences"/> in micro-batches of at most <paramref name="maxRows"/> rows. Sequences
    /// with the same first <paramref name="sharedLengths"/> tokens form one prompt's rows (split only when they exceed
    /// maxRows); prompts sorted by their longest row are cut where the computed positions (one prefix per prompt, rows
    /// padded to the micro-batch's longest) plus <see cref="LengthGrouping.MicroBatchCharge"/> per micro-batch are fewest.
    /// </summary>
    public static List<List<int>> Group(IReadOnlyList<int[]> sequences, IReadOnlyList<int> sharedLengths, int maxRows)
    {
        if (maxRows < 1) throw new ArgumentOutOfRangeException(nameof(maxRows), maxRows, "a micro-batch holds at least one row");
        if (sharedLengths.Count != sequences.Count) throw new ArgumentException($"{sharedLengths.Count} shared lengths for {sequences.Count} sequences");
        var prompts = new Dictionary<string, List<int>>();
        var order = new List<List<int>>();
        for (int i = 0; i < sequences.Count; i++)
        {
            string key = TokenBatch.PrefixKey(sequences[i], sharedLengths[i]);
            if (!prompts.TryGetValue(key, out var rows)) { prompts[key] = rows = []; order.Add(rows); }
            rows.Add(i);
        }
        var chunks = order.SelectMany(rows => rows.Chunk(maxRows).Select(c => c.ToList()))
            .Select(rows => (Rows: rows, RowLen: rows.Max(i => sequences[i].Length - 1 - sharedLengths[i]), Prefix: sharedLengths[rows[0]]))
            .OrderBy(c => c.RowLen).ToList();
        int n = chunks.Count;
        var cost = new long[n + 1];
        var cut = new int[n + 1];
        for (int j = 1; j <= n; j++)
        {
            cost[j] = long.MaxValue;
            long longest = chunks[j - 1].RowLen, prefix = 0, rows = 0;
            for (int i = j - 1; i >= 0; i--)
            {
                rows += chunks[i].Rows.Count;
                if (rows > maxRows) break;
                prefix = Math.Max(prefix, chunks[i].Prefix);
                long c = cost[i] + rows * longest + (j - i) * Math.Max(1, prefix) + LengthGrouping.MicroBatchCharge;
                if (c < cost[j]) { cost[j] = c; cut[j] = i; }
            }
        }
        var groups = new List<List<int>>();
        for (int j = n; j > 0; j = cut[j]) groups.Add(chunks[cut[j]..j].SelectMany(c => c.Rows).ToList());
        groups.Reverse();
        return groups;
    }
}
