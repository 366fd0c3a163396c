namespace Nemotron.Gym.Training;

/// <summary>
/// Splits sequences into micro-batches that compute few padded positions. A micro-batch is padded to its longest row,
/// so a step's sequences of mixed lengths (short arithmetic chats beside long answers, short and long rollouts) cost
/// the longest one's length in every row; sorted by length and cut where it pays, the same rows cost far less. The
/// losses that use these groups normalize over the whole step (or minibatch), so the grouping does not change the
/// gradient, only the order of float sums.
/// </summary>
public static class LengthGrouping
{
    /// <summary>What one more micro-batch costs beyond its positions, in positions (its fixed work: a pass over every weight).</summary>
    public const int MicroBatchCharge = 384;

    /// <summary>
    /// The indices of <paramref name="lengths"/> in micro-batches of at most <paramref name="maxRows"/> rows: sorted by
    /// length (stable) and cut where the padded positions plus <see cref="MicroBatchCharge"/> per micro-batch are fewest.
    /// </summary>
    public static List<List<int>> Group(IReadOnlyList<int> lengths, int maxRows)
    {
        if (maxRows < 1) throw new ArgumentOutOfRangeException(nameof(maxRows), maxRows, "a micro-batch holds at least one row");
        var order = Enumerable.Range(0, lengths.Count).OrderBy(i => lengths[i]).ToArray();
        int n = order.Length;
        // cost[j]: fewest positions to compute the first j sorted sequences; a micro-batch [i, j) is padded to sorted j − 1.
        var cost = new long[n + 1];
        var cut = new int[n + 1];
        for (int j = 1; j <= n; j++)
        {
            cost[j] = long.MaxValue;
            long longest = lengths[order[j - 1]];
            for (int i = Math.Max(0, j - maxRows); i < j; i++)
            {
                long c = cost[i] + (j - i) * longest + MicroBatchCharge;
                if (c < cost[j]) { cost[j] = c; cut[j] = i; }
            }
        }
        var groups = new List<List<int>>();
        for (int j = n; j > 0; j = cut[j]) groups.Add(order[cut[j]..j].ToList());
        groups.Reverse();
        return groups;
    }
}
