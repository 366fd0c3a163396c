using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Model.Sampling;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>It produced a stop token (kept as its last token).</summary>
    Stop,
    /// <summary>It reached the requested maximum of new tokens.</summary>
    Length,
    /// <summary>It reached the end of the model's context.</summary>
    Context,
}

/// <summary>How to generate.</summary>
/// <param name="MaxNewTokens">Upper bound on generated tokens per request.</param>
/// <param name="Sampling">Temperature, top-k, top-p.</param>
/// <param name="Seed">Request i draws from its own stream derived from (seed, i), so results do not depend on batching.</param>
/// <param name="StopTokens">Token ids that end a generation.</param>
/// <param name="MaxBatch">Rows decoded together.</param>
public sealed record GenerationOptions(int MaxNewTokens, SamplingParams Sampling, int Seed, IReadOnlyCollection<int> StopTokens, int MaxBatch = 128);

/// <summary>One finished generation: the new tokens and the sampler's log-probability of each.</summary>
public sealed record Generation(int[] Prompt, int[] Tokens, float[] LogProbs, FinishReason Finish);

/// <summary>
/// Batched generation with a KV cache. Identical prompts in a batch (the G rollouts of one RL task) are
/// prefilled once and their cache rows copied; decoding tells the backend which rows share a prompt, so it may read
/// the prompt's keys and values once for them all. Rows that finish are compacted away so each decoding step
/// only computes live rows.
/// </summary>
public sealed class Sampler : IDisposable
{
    private readonly GptModel _model;
    private KvCache? _prefillCache, _decodeCache;
    private Tensor? _tokens, _logProbs, _firstLogits;

    /// <summary>A sampler over the model (it always uses the model's current weights).</summary>
    public Sampler(GptModel model) => _model = model;

    /// <summary>Generates one continuation per prompt, in order.</summary>
    public IReadOnlyList<Generation> Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, CancellationToken cancellation = default)
    {
        options.Sampling.Validate();
        if (options.MaxNewTokens < 1) throw new ArgumentException($"max_new_tokens must be >= 1, got {options.MaxNewTokens}");
        var results = new Generation[prompts.Count];
        for (int start = 0; start < prompts.Count; start += options.MaxBatch)
        {
            int count = Math.Min(options.MaxBatch, prompts.Count - start);
            GenerateChunk(prompts, start, count, options, results, cancellation);
        }
        return results;
    }

    private void GenerateChunk(IReadOnlyList<int[]> prompts, int start, int count, GenerationOptions options, Generation[] results, CancellationToken cancellation)
    {
        var cfg = _model.Config;
        var be = _model.Backend;
        int longest = 0;
        for (int i = 0; i < count; i++)
        {
            var p = prompts[start + i];
            if (p.Length == 0) throw new ArgumentException($"prompt {start + i} is empty");
            if (p.Length >= cfg.Context) throw new ArgumentException($"prompt {start + i} has {p.Length} tokens; the context holds {cfg.Context}");
            longest = Math.Max(longest, p.Length);
        }
        int maxLen = Math.Min(cfg.Context, longest + options.MaxNewTokens);

        // Prefill each distinct prompt once.
        var unique = new List<int[]>();
        var uniqueIndex = new int[count];
        var seen = new Dictionary<int[], int>(new SequenceComparer());
        for (int i = 0; i < count; i++)
        {
            var p = prompts[start + i];
            if (!seen.TryGetValue(p, out int u)) { u = unique.Count; seen[p] = u; unique.Add(p); }
            uniqueIndex[i] = u;
        }
        var prefillCache = Cache(ref _prefillCache, unique.Count, maxLen);
        var decodeCache = Cache(ref _decodeCache, count, maxLen);
        var prefillLogits = _model.Prefill(unique, prefillCache);
        int vp = cfg.PaddedVocab;
        EnsureStepTensors(count, vp);
        for (int i = 0; i < count; i++)
        {
            decodeCache.CopyRow(i, prefillCache, uniqueIndex[i], prompts[start + i].Length);
            be.Copy(_firstLogits!, (long)i * vp, prefillLogits, (long)uniqueIndex[i] * vp, vp);
        }

        var rngs = Enumerable.Range(0, count).Select(i => new Random(StreamSeed(options.Seed, start + i))).ToArray();
        var outTokens = Enumerable.Range(0, count).Select(_ => new List<int>()).ToArray();
        var outLogProbs = Enumerable.Range(0, count).Select(_ => new List<float>()).ToArray();
        var stop = options.StopTokens as IReadOnlySet<int> ?? options.StopTokens.ToHashSet();
        // slot s of the decode cache holds request owner[s]; live slots are 0..live-1.
        var owner = Enumerable.Range(0, count).ToArray();
        var position = Enumerable.Range(0, count).Select(i => prompts[start + i].Length).ToArray();
        int live = count;
        var logits = _firstLogits!;
        var uniforms = new float[count];
        var sampled = new int[count];
        var sampledLp = new float[count];
        var alive = new bool[count];
        while (live > 0)
        {
            cancellation.ThrowIfCancellationRequested();
            for (int s = 0; s < live; s++) uniforms[s] = (float)rngs[owner[s]].NextDouble();
            be.SampleTokens(_tokens!, _logProbs!, logits, live, cfg.Vocab, vp, options.Sampling, uniforms.AsSpan(0, live));
            be.Download(_tokens!, sampled.AsSpan(0, live));
            be.Download(_logProbs!, sampledLp.AsSpan(0, live));
            int kept = 0;
            for (int s = 0; s < live; s++)
            {
                int r = owner[s];
                outTokens[r].Add(sampled[s]);
                outLogProbs[r].Add(sampledLp[s]);
                FinishReason? finish = stop.Contains(sampled[s]) ? FinishReason.Stop
                    : outTokens[r].Count >= options.MaxNewTokens ? FinishReason.Length
                    : position[r] >= maxLen ? FinishReason.Context : null;
                alive[s] = finish == null;
                if (finish is { } f)
                    results[start + r] = new Generation(prompts[start + r], outTokens[r].ToArray(), outLogProbs[r].ToArray(), f);
                else kept++;
            }
            // Compact the live rows into slots 0..kept-1 by moving the last live row into each freed slot: one cache
            // row copied per finished row, where shifting every row above it down copied all of those
            // (kernels/Nemotron.Gym.Kernels/Cpu/PERF.md).
            for (int lo = 0, hi = live - 1; ; lo++, hi--)
            {
                while (lo < hi && alive[lo]) lo++;
                while (hi > lo && !alive[hi]) hi--;
                if (lo >= hi) break;
                decodeCache.CopyRow(lo, decodeCache, hi, position[owner[hi]]);
                owner[lo] = owner[hi];
                sampled[lo] = sampled[hi];
            }
            live = kept;
            if (live == 0) break;
            var nextTokens = new int[live];
            var nextPositions = new int[live];
            var sharedRows = new int[live];
            var sharedLengths = new int[live];
            for (int s = 0; s < live; s++)
            {
                int r = owner[s];
                nextTokens[s] = sampled[s];
                nextPositions[s] = position[r]++;
                sharedRows[s] = uniqueIndex[r];
                sharedLengths[s] = prompts[start + r].Length;
            }
            // Every row's prompt is still in the prefill cache, shared by the rows of one prompt.
            logits = _model.DecodeStep(nextTokens, nextPositions, decodeCache, new SharedPrefix(prefillCache, sharedRows, sharedLengths));
        }
    }

    private KvCache Cache(ref KvCache? cache, int rows, int maxLen)
    {
        if (cache != null && cache.Batch >= rows && cache.MaxSeqLen >= maxLen) return cache;
        int keepRows = cache?.Batch ?? 0, keepLen = cache?.MaxSeqLen ?? 0;
        cache?.Dispose();
        cache = new KvCache(_model, Math.Max(rows, keepRows), Math.Min(_model.Config.Context, Math.Max(maxLen, keepLen)));
        return cache;
    }

    private void EnsureStepTensors(int rows, int vp)
    {
        if (_tokens != null && _tokens.Length >= rows) return;
        _tokens?.Dispose(); _logProbs?.Dispose(); _firstLogits?.Dispose();
        var be = _model.Backend;
        _tokens = be.Allocate(DType.I32, rows, "sample.tokens");
        _logProbs = be.Allocate(DType.F32, rows, "sample.logprobs");
        _firstLogits = be.Allocate(DType.F32, (long)rows * vp, "sample.first_logits");
    }

    /// <summary>A well-mixed 31-bit seed for request <paramref name="index"/> (SplitMix64 finalizer).</summary>
    public static int StreamSeed(int seed, int index)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)index) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _prefillCache?.Dispose(); _decodeCache?.Dispose();
        _tokens?.Dispose(); _logProbs?.Dispose(); _firstLogits?.Dispose();
    }

    private sealed class SequenceComparer : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? x, int[]? y) => x != null && y != null && x.AsSpan().SequenceEqual(y);
        public int GetHashCode(int[] a)
        {
            var h = new HashCode();
            foreach (int v in a) h.Add(v);
            return h.ToHashCode();
        }
    }
}
