using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Training;

/// <summary>
/// Text for pretraining, tokenized into one stream with &lt;|endoftext|&gt; between documents. Rows are
/// windows of the stream ("packed sequences": no padding, every position is trained on).
/// </summary>
public sealed class TextCorpus
{
    private readonly int[] _stream;

    private TextCorpus(int[] stream, int documents)
    {
        _stream = stream;
        Documents = documents;
    }

    /// <summary>Tokens in the stream.</summary>
    public long Tokens => _stream.Length;
    /// <summary>Documents read.</summary>
    public int Documents { get; }

    /// <summary>Reads .txt (blank-line separated documents) and .jsonl files ("text" field, or chat "messages").</summary>
    public static TextCorpus Load(IEnumerable<string> paths, ITokenizer tokenizer)
    {
        var stream = new List<int>();
        int docs = 0;
        foreach (var path in paths)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: text data file not found", path);
            foreach (var doc in ReadDocuments(path))
            {
                tokenizer.EncodeTo(doc, stream);
                stream.Add(tokenizer.Specials.EndOfText);
                docs++;
            }
        }
        if (docs == 0) throw new InvalidDataException($"no documents in {string.Join(", ", paths)}");
        return new TextCorpus(stream.ToArray(), docs);
    }

    private static IEnumerable<string> ReadDocuments(string path)
    {
        if (File.Exists(path)) Nemotron.Gym.Conversation.StrictText.RequireUtf8(path);
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            int lineNo = 0;
            foreach (var line in File.ReadLines(path))
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonNode? node;
                try { node = JsonNode.Parse(line); }
                catch (JsonException e) { throw new InvalidDataException($"{path}:{lineNo}: not valid JSON ({e.Message})", e); }
                if (node?["text"] is JsonValue v && v.TryGetValue(out string? text)) yield return text;
                // A chat line (what `gym env sft-data` writes): its turns' contents, one paragraph each, so the same
                // files can pretrain a model on the language of its tasks and then fine-tune it on the conversations.
                else if (node?["messages"] is JsonArray messages && messages.Count > 0)
                {
                    var turns = new List<string>();
                    for (int i = 0; i < messages.Count; i++)
                    {
                        if (messages[i]?["content"] is not JsonValue c || !c.TryGetValue(out string? content))
                            throw new InvalidDataException($"{path}:{lineNo}: messages[{i}].content: expected a string");
                        turns.Add(content);
                    }
                    yield return string.Join("\n\n", turns);
                }
                else throw new InvalidDataException($"{path}:{lineNo}: expected an object with a string field 'text' or a 'messages' array (chat JSONL)");
            }
            yield break;
        }
        var current = new System.Text.StringBuilder();
        foreach (var line in File.ReadLines(path))
        {
            if (line.Trim().Length == 0)
            {
                if (current.Length > 0) { yield return current.ToString(); current.Clear(); }
                continue;
            }
            if (current.Length > 0) current.Append('\n');
            current.Append(line);
        }
        if (current.Length > 0) yield return current.ToString();
    }

    /// <summary>
    /// <paramref name="rows"/> windows of <paramref name="seqLen"/>+1 tokens at offsets drawn from
    /// <paramref name="rng"/>, as teacher-forcing rows with every target scored and weight
    /// <paramref name="weight"/>.
    /// </summary>
    public MicroBatch RandomWindows(Random rng, int rows, int seqLen, float weight)
    {
        if (_stream.Length <= seqLen + 1) throw new InvalidDataException($"the corpus has {_stream.Length} tokens, fewer than one row of {seqLen + 1}");
        var tokens = new int[rows * seqLen];
        var targets = new int[rows * seqLen];
        for (int r = 0; r < rows; r++)
        {
            int start = rng.Next(_stream.Length - seqLen - 1);
            Array.Copy(_stream, start, tokens, r * seqLen, seqLen);
            Array.Copy(_stream, start + 1, targets, r * seqLen, seqLen);
        }
        var weights = new float[rows * seqLen];
        Array.Fill(weights, weight);
        return new MicroBatch(new TokenBatch(rows, seqLen, tokens, targets), weights, rows * seqLen);
    }

    /// <summary>Consecutive non-overlapping windows from the start: a fixed evaluation set.</summary>
    public IReadOnlyList<MicroBatch> SequentialBatches(int batches, int rows, int seqLen)
    {
        var result = new List<MicroBatch>();
        int offset = 0;
        for (int b = 0; b < batches && offset + rows * seqLen + 1 <= _stream.Length; b++)
        {
            var tokens = new int[rows * seqLen];
            var targets = new int[rows * seqLen];
            for (int r = 0; r < rows; r++, offset += seqLen)
            {
                Array.Copy(_stream, offset, tokens, r * seqLen, seqLen);
                Array.Copy(_stream, offset + 1, targets, r * seqLen, seqLen);
            }
            var w = new float[rows * seqLen];
            Array.Fill(w, 1f / (rows * seqLen));
            result.Add(new MicroBatch(new TokenBatch(rows, seqLen, tokens, targets), w, rows * seqLen));
        }
        if (result.Count == 0) throw new InvalidDataException($"the held-out corpus ({_stream.Length} tokens) is shorter than one batch of {rows}×{seqLen}");
        return result;
    }
}

/// <summary>Pretraining rows: random windows of the training stream, a pure function of (seed, step).</summary>
public sealed class PretrainBatchSource(TextCorpus train, TextCorpus valid, TrainSettings settings, int seqLen, int seed) : IBatchSource
{
    private IReadOnlyList<MicroBatch>? _validation;

    /// <inheritdoc />
    public IReadOnlyList<MicroBatch> TrainStep(int step)
    {
        var rng = new Random(Sampler.StreamSeed(seed, step));
        int micro = settings.MicroBatchSize;
        float weight = 1f / ((long)settings.BatchSize * seqLen);
        var list = new List<MicroBatch>();
        for (int done = 0; done < settings.BatchSize; done += micro)
            list.Add(train.RandomWindows(rng, Math.Min(micro, settings.BatchSize - done), seqLen, weight));
        return list;
    }

    /// <inheritdoc />
    public IReadOnlyList<MicroBatch> Validation() => _validation ??= valid.SequentialBatches(settings.EvalBatches, settings.MicroBatchSize, seqLen);
}
