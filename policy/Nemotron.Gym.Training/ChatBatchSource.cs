using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Training;

/// <summary>Rendered chat examples: token ids and the assistant-token mask.</summary>
public sealed class ChatExamples
{
    /// <summary>Renders every conversation of the files; those longer than the context are skipped and counted.</summary>
    public static ChatExamples Load(IEnumerable<string> paths, ChatTemplate template, int context)
    {
        var kept = new List<RenderedChat>();
        int skipped = 0;
        foreach (var path in paths)
        {
            var conversations = ChatJsonl.Read(path);
            for (int i = 0; i < conversations.Count; i++)
            {
                RenderedChat r;
                try { r = template.Render(conversations[i]); }
                catch (ArgumentException e) { throw new InvalidDataException($"{path}: conversation {i + 1}: {e.Message}", e); }
                if (r.Tokens.Length > context + 1 || !r.LossMask.Any(m => m != 0)) { skipped++; continue; }
                kept.Add(r);
            }
        }
        if (kept.Count == 0) throw new InvalidDataException($"no usable conversations in {string.Join(", ", paths)} ({skipped} skipped: too long for the context of {context} or without assistant turns)");
        return new ChatExamples { Items = kept, Skipped = skipped };
    }

    /// <summary>The examples.</summary>
    public required IReadOnlyList<RenderedChat> Items { get; init; }
    /// <summary>Conversations left out (too long, or nothing to train on).</summary>
    public int Skipped { get; init; }

    /// <summary>
    /// Teacher-forcing micro-batches of the given examples (each padded to its own longest), with loss
    /// weights on assistant tokens normalized by <paramref name="aggregation"/> over all of them together.
    /// </summary>
    public static List<MicroBatch> MakeMicroBatches(IReadOnlyList<RenderedChat> examples, int microSize, int padToken, LossAggregation aggregation)
    {
        var parts = new List<List<RenderedChat>>();
        for (int start = 0; start < examples.Count; start += microSize)
            parts.Add(examples.Skip(start).Take(microSize).ToList());
        return Build(parts, examples, padToken, aggregation);
    }

    /// <summary>
    /// The same loss as <see cref="MakeMicroBatches"/> (every weight is normalized over all the examples together, so
    /// how they are grouped does not change the gradient), with less padding: the examples sorted by length and cut
    /// into micro-batches of at most <paramref name="microSize"/> rows where that computes fewer padded positions.
    /// A demo SFT step of 32 conversations padded to its longest was about 60% padding (see <see cref="LengthGrouping"/>).
    /// </summary>
    public static List<MicroBatch> MakeLengthGroupedMicroBatches(IReadOnlyList<RenderedChat> examples, int microSize, int padToken, LossAggregation aggregation)
    {
        var parts = LengthGrouping.Group(examples.Select(e => e.Tokens.Length - 1).ToList(), microSize)
            .Select(g => g.Select(i => examples[i]).ToList()).ToList();
        return Build(parts, examples, padToken, aggregation);
    }

    private static List<MicroBatch> Build(List<List<RenderedChat>> parts, IReadOnlyList<RenderedChat> examples, int padToken, LossAggregation aggregation)
    {
        long totalMasked = examples.Sum(e => (long)e.LossMask.Skip(1).Count(m => m != 0));
        var result = new List<MicroBatch>();
        foreach (var part in parts)
        {
            var batch = TokenBatch.FromSequences(part.Select(e => e.Tokens).ToList(), padToken, 0, part.Select(e => e.LossMask).ToList());
            var weights = new float[batch.Count];
            long scored = 0;
            for (int b = 0; b < part.Count; b++)
            {
                int masked = part[b].LossMask.Skip(1).Count(m => m != 0);
                float w = aggregation == LossAggregation.Token ? 1f / totalMasked : 1f / ((float)masked * examples.Count);
                for (int t = 0; t < batch.SeqLen; t++)
                    if (batch.Targets[b * batch.SeqLen + t] >= 0) { weights[b * batch.SeqLen + t] = w; scored++; }
            }
            result.Add(new MicroBatch(batch, weights, scored));
        }
        return result;
    }
}

/// <summary>Fine-tuning rows: the examples in a fresh seeded order every epoch, a pure function of (seed, step).</summary>
public sealed class ChatBatchSource(ChatExamples train, ChatExamples valid, TrainSettings settings, LossAggregation aggregation, int padToken, int seed) : IBatchSource
{
    private readonly Dictionary<int, int[]> _orders = new();
    private IReadOnlyList<MicroBatch>? _validation;

    private int[] Order(int epoch)
    {
        if (_orders.TryGetValue(epoch, out var o)) return o;
        o = Enumerable.Range(0, train.Items.Count).ToArray();
        new Random(Sampler.StreamSeed(seed, 1_000_000 + epoch)).Shuffle(o);
        if (_orders.Count > 4) _orders.Clear();
        return _orders[epoch] = o;
    }

    /// <inheritdoc />
    public IReadOnlyList<MicroBatch> TrainStep(int step)
    {
        int n = train.Items.Count;
        var picked = new List<RenderedChat>(settings.BatchSize);
        long first = (long)(step - 1) * settings.BatchSize;
        for (long i = first; i < first + settings.BatchSize; i++)
            picked.Add(train.Items[Order((int)(i / n))[(int)(i % n)]]);
        return ChatExamples.MakeLengthGroupedMicroBatches(picked, settings.MicroBatchSize, padToken, aggregation);
    }

    /// <inheritdoc />
    public IReadOnlyList<MicroBatch> Validation()
    {
        if (_validation != null) return _validation;
        var items = valid.Items.Take(settings.EvalBatches * settings.MicroBatchSize).ToList();
        // One normalization per micro-batch, so each evaluation batch is a mean per assistant token.
        var list = new List<MicroBatch>();
        for (int start = 0; start < items.Count; start += settings.MicroBatchSize)
            list.AddRange(ChatExamples.MakeMicroBatches(items.Skip(start).Take(settings.MicroBatchSize).ToList(), settings.MicroBatchSize, padToken, LossAggregation.Token));
        return _validation = list;
    }

    /// <summary>Epochs covered by a run of <paramref name="steps"/> steps.</summary>
    public double Epochs(int steps) => (double)steps * settings.BatchSize / train.Items.Count;
}
