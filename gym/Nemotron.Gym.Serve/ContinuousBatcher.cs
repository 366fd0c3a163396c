using System.Threading.Channels;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Serve;

/// <summary>One token a choice produced: the sampler's log-probability and, when asked for, the most likely alternatives.</summary>
public sealed record TokenAlternative(int Token, float LogProb);

/// <summary>Something that happened to one choice of a request.</summary>
public abstract record ChoiceEvent(int Choice);

/// <summary>Choice <paramref name="Choice"/> produced a token.</summary>
public sealed record ChoiceToken(int Choice, int Token, float LogProb, TokenAlternative[]? Top) : ChoiceEvent(Choice);

/// <summary>Choice <paramref name="Choice"/> is done. <paramref name="StopText"/> is the stop string that ended it, if one did.</summary>
public sealed record ChoiceFinished(int Choice, FinishReason Finish, string? StopText) : ChoiceEvent(Choice);

/// <summary>The request failed inside the model; no more events follow.</summary>
public sealed record RequestFailed(string Message) : ChoiceEvent(-1);

/// <summary>
/// What to generate for one request: <see cref="Choices"/> continuations of one prompt. Choice i draws its
/// uniforms from <c>new Random(Sampler.StreamSeed(Seed, i))</c>, the same stream <see cref="Sampler"/> gives
/// prompt i of a batch, so a request reproduces the sampler's tokens and log-probabilities whatever else
/// shares the batch.
/// </summary>
public sealed class GenerationRequest
{
    /// <summary>A request; events arrive on <see cref="Events"/> until every choice has finished.</summary>
    public GenerationRequest(int[] prompt, int choices, SamplingParams sampling, int seed, int maxTokens, int topLogprobs,
        IReadOnlyList<string> stopStrings, CancellationToken cancellation)
    {
        Prompt = prompt;
        Choices = choices;
        Sampling = sampling;
        Seed = seed;
        MaxTokens = maxTokens;
        TopLogprobs = topLogprobs;
        StopStrings = stopStrings;
        Cancellation = cancellation;
    }

    /// <summary>Prompt token ids.</summary>
    public int[] Prompt { get; }
    /// <summary>Continuations (OpenAI's n).</summary>
    public int Choices { get; }
    /// <summary>Temperature and top-p.</summary>
    public SamplingParams Sampling { get; }
    /// <summary>Seed of the per-choice random streams.</summary>
    public int Seed { get; }
    /// <summary>Most new tokens per choice.</summary>
    public int MaxTokens { get; }
    /// <summary>Alternatives to report per token; 0 for none.</summary>
    public int TopLogprobs { get; }
    /// <summary>Texts that end a choice when its output contains one.</summary>
    public IReadOnlyList<string> StopStrings { get; }
    /// <summary>The client went away: its rows leave the batch at the next step.</summary>
    public CancellationToken Cancellation { get; }

    private readonly Channel<ChoiceEvent> _events = Channel.CreateUnbounded<ChoiceEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    internal ChannelWriter<ChoiceEvent> Writer => _events.Writer;
    internal int Unfinished;

    /// <summary>Tokens, finishes and failures, in order; completes when the request is done.</summary>
    public ChannelReader<ChoiceEvent> Events => _events.Reader;
}

/// <summary>
/// Continuous batching over one model: a request joins the running batch at the next decoding step (its
/// prompt is prefilled, together with others that arrived meanwhile, and its KV row copied in once per choice) and each choice leaves as soon as
/// it finishes, so rows of different requests, lengths and sampling settings decode together. One thread
/// owns the model; requests wait in a bounded queue and <see cref="TryEnqueue"/> refuses when it is full.
/// </summary>
public sealed class ContinuousBatcher : IDisposable
{
    private readonly GptModel _model;
    private readonly ITokenizer _tokenizer;
    private readonly HashSet<int> _stopTokens;
    private readonly int _maxBatch, _maxPending;
    private readonly Queue<GenerationRequest> _waiting = new(), _retry = new();
    private readonly object _gate = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private int _pending;

    // Batch state, touched by the decoding thread only. Slot s (0..live-1) of the decode cache and of
    // _rowLogits holds _rows[s].
    private readonly KvCache _decodeCache, _prefillCache;
    private readonly Tensor _rowLogits, _scratchLogits, _tokens, _logProbs;
    private readonly Row?[] _rows;
    private int _live;
    private long _stepCount, _tokenCount;

    private sealed class Row(GenerationRequest request, int choice, int position)
    {
        public GenerationRequest Request { get; } = request;
        public int Choice { get; } = choice;
        public Random Rng { get; } = new(Sampler.StreamSeed(request.Seed, choice));
        public List<int> Tokens { get; } = new();
        public int Position { get; set; } = position;
    }

    /// <summary>Starts the decoding thread. Stop tokens end a choice (kept as its last token), as in <see cref="Sampler"/>.</summary>
    public ContinuousBatcher(GptModel model, ITokenizer tokenizer, IEnumerable<int> stopTokens, int maxBatch, int maxPending)
    {
        if (maxBatch < 1) throw new ArgumentException($"max batch must be >= 1, got {maxBatch}");
        if (maxPending < 1) throw new ArgumentException($"max pending must be >= 1, got {maxPending}");
        _model = model;
        _tokenizer = tokenizer;
        _stopTokens = stopTokens.ToHashSet();
        _maxBatch = maxBatch;
        _maxPending = maxPending;
        var cfg = model.Config;
        var be = model.Backend;
        _decodeCache = new KvCache(model, maxBatch, cfg.Context);
        _prefillCache = new KvCache(model, PrefillRows, cfg.Context);
        _rowLogits = be.Allocate(DType.F32, (long)maxBatch * cfg.PaddedVocab, "serve.row_logits");
        _scratchLogits = be.Allocate(DType.F32, (long)maxBatch * cfg.PaddedVocab, "serve.group_logits");
        _tokens = be.Allocate(DType.I32, maxBatch, "serve.tokens");
        _logProbs = be.Allocate(DType.F32, maxBatch, "serve.logprobs");
        _rows = new Row?[maxBatch];
        _thread = new Thread(Loop) { IsBackground = true, Name = "gym-serve-decode" };
        _thread.Start();
    }

    /// <summary>Bytes of the key/value caches (decode rows plus prefill rows), all allocated up front.</summary>
    public long KvCacheBytes => 2L * _model.Config.Layers * (_maxBatch + PrefillRows) * _model.Config.Context * _model.Config.Width * sizeof(float);
    /// <summary>Token ids that end a choice.</summary>
    public IReadOnlySet<int> StopTokens => _stopTokens;
    /// <summary>Rows decoded together at most.</summary>
    public int MaxBatch => _maxBatch;
    /// <summary>Requests running or waiting now.</summary>
    public int Pending => Volatile.Read(ref _pending);
    /// <summary>Decoding steps run so far (each samples one token for every live row).</summary>
    public long Steps => Interlocked.Read(ref _stepCount);
    /// <summary>Tokens sampled so far.</summary>
    public long TokensGenerated => Interlocked.Read(ref _tokenCount);
    /// <summary>True once the batcher is being disposed: it admits nothing more.</summary>
    public bool Stopped => _stop.IsCancellationRequested;
    /// <summary>Set when the decoding thread stopped on an error: the server answers 503 from then on.</summary>
    public string? Fault { get; private set; }

    /// <summary>Queues a request, or returns false when <c>maxPending</c> requests are already running or waiting.</summary>
    public bool TryEnqueue(GenerationRequest request)
    {
        if (request.Choices < 1 || request.Choices > _maxBatch)
            throw new ArgumentException($"n: {request.Choices} choices do not fit the batch of {_maxBatch} rows");
        if (request.Prompt.Length == 0 || request.Prompt.Length >= _model.Config.Context)
            throw new ArgumentException($"messages: the prompt has {request.Prompt.Length} tokens; the model's context holds {_model.Config.Context}");
        lock (_gate)
        {
            if (Fault != null || _stop.IsCancellationRequested || _pending >= _maxPending) return false;
            _pending++;
            request.Unfinished = request.Choices;
            _waiting.Enqueue(request);
        }
        _wake.Release();
        return true;
    }

    private void Loop()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                Admit();
                if (_live == 0)
                {
                    try { _wake.Wait(_stop.Token); } catch (OperationCanceledException) { break; }
                    continue;
                }
                Step();
            }
        }
        catch (Exception e)
        {
            // The model failed (a backend error): every request in flight or waiting gets the reason.
            lock (_gate) Fault = $"the decoding loop stopped: {e.GetType().Name}: {e.Message}";
            for (int s = 0; s < _live; s++) Fail(_rows[s]!.Request, Fault);
            lock (_gate)
                while (_waiting.TryDequeue(out var r)) Fail(r, Fault);
        }
        finally
        {
            lock (_gate)
                while (_waiting.TryDequeue(out var r)) Fail(r, "the server is shutting down");
            for (int s = 0; s < _live; s++) Fail(_rows[s]!.Request, "the server is shutting down");
        }
    }

    private void Fail(GenerationRequest r, string message)
    {
        if (r.Writer.TryWrite(new RequestFailed(message))) r.Writer.TryComplete();
        if (Interlocked.Exchange(ref r.Unfinished, 0) > 0) lock (_gate) _pending--;
    }

    /// <summary>Prompts prefilled together at most (the prefill cache's rows).</summary>
    private const int PrefillRows = 8;

    /// <summary>
    /// Moves waiting requests into free rows, first come first served: the prompts of up to
    /// <see cref="PrefillRows"/> requests are prefilled in one pass, then each prompt's KV row and
    /// next-token logits are copied once per choice.
    /// </summary>
    private void Admit()
    {
        int vp = _model.Config.PaddedVocab;
        while (true)
        {
            var admitted = new List<GenerationRequest>();
            int rows = _live;
            lock (_gate)
            {
                while (admitted.Count < PrefillRows && _waiting.TryPeek(out var r))
                {
                    if (r.Cancellation.IsCancellationRequested) { _waiting.Dequeue(); Drop(r); continue; }
                    if (_maxBatch - rows < r.Choices) break;
                    _waiting.Dequeue();
                    admitted.Add(r);
                    rows += r.Choices;
                }
            }
            if (admitted.Count == 0) return;
            Tensor logits;
            try { logits = _model.Prefill(admitted.Select(r => r.Prompt).ToList(), _prefillCache); }
            catch (ArgumentException e)
            {
                // A prompt that cannot run (a token id outside the model's vocabulary, say) fails its request alone.
                foreach (var r in admitted)
                {
                    try { _model.Prefill([r.Prompt], _prefillCache); }
                    catch (ArgumentException) { Fail(r, $"messages: {e.Message}"); continue; }
                    lock (_gate) _retry.Enqueue(r);
                }
                lock (_gate)
                {
                    foreach (var r in _waiting) _retry.Enqueue(r);
                    _waiting.Clear();
                    while (_retry.TryDequeue(out var r)) _waiting.Enqueue(r);
                }
                continue;
            }
            for (int k = 0; k < admitted.Count; k++)
            {
                var r = admitted[k];
                for (int c = 0; c < r.Choices; c++)
                {
                    int s = _live++;
                    _decodeCache.CopyRow(s, _prefillCache, k, r.Prompt.Length);
                    _model.Backend.Copy(_rowLogits, (long)s * vp, logits, (long)k * vp, vp);
                    _rows[s] = new Row(r, c, r.Prompt.Length);
                }
            }
        }
    }

    private void Drop(GenerationRequest r)
    {
        r.Writer.TryComplete();
        if (Interlocked.Exchange(ref r.Unfinished, 0) > 0) lock (_gate) _pending--;
    }

    /// <summary>Samples one token for every live row, retires finished rows, and runs one decoding step for the rest.</summary>
    private void Step()
    {
        var cfg = _model.Config;
        var be = _model.Backend;
        int vp = cfg.PaddedVocab, live = _live;
        var uniforms = new float[live];
        for (int s = 0; s < live; s++) uniforms[s] = (float)_rows[s]!.Rng.NextDouble();
        var sampled = new int[live];
        var sampledLp = new float[live];

        // One sampling call per distinct setting; rows of a setting are gathered when they are not all rows.
        var groups = new Dictionary<SamplingParams, List<int>>();
        for (int s = 0; s < live; s++)
        {
            var p = _rows[s]!.Request.Sampling;
            if (!groups.TryGetValue(p, out var list)) groups[p] = list = new List<int>();
            list.Add(s);
        }
        foreach (var (sampling, slots) in groups)
        {
            var source = _rowLogits;
            if (slots.Count != live)
            {
                for (int g = 0; g < slots.Count; g++) be.Copy(_scratchLogits, (long)g * vp, _rowLogits, (long)slots[g] * vp, vp);
                source = _scratchLogits;
            }
            var u = slots.Select(s => uniforms[s]).ToArray();
            be.SampleTokens(_tokens, _logProbs, source, slots.Count, cfg.Vocab, vp, sampling, u);
            var tk = new int[slots.Count];
            var lp = new float[slots.Count];
            be.Download(_tokens, tk);
            be.Download(_logProbs, lp);
            for (int g = 0; g < slots.Count; g++) { sampled[slots[g]] = tk[g]; sampledLp[slots[g]] = lp[g]; }
        }
        Interlocked.Increment(ref _stepCount);
        Interlocked.Add(ref _tokenCount, live);

        var nextTokens = new List<int>(live);
        var nextPositions = new List<int>(live);
        int kept = 0;
        for (int s = 0; s < live; s++)
        {
            var row = _rows[s]!;
            var r = row.Request;
            if (r.Cancellation.IsCancellationRequested) { Drop(r); continue; }
            row.Tokens.Add(sampled[s]);
            var top = r.TopLogprobs > 0 ? TopAlternatives(s, r.TopLogprobs, r.Sampling) : null;
            r.Writer.TryWrite(new ChoiceToken(row.Choice, sampled[s], sampledLp[s], top));
            string? stopText = null;
            FinishReason? finish = _stopTokens.Contains(sampled[s]) ? FinishReason.Stop
                : (stopText = MatchedStop(row)) != null ? FinishReason.Stop
                : row.Tokens.Count >= r.MaxTokens ? FinishReason.Length
                : row.Position >= cfg.Context ? FinishReason.Context : null;
            if (finish is { } f)
            {
                r.Writer.TryWrite(new ChoiceFinished(row.Choice, f, stopText));
                if (Interlocked.Decrement(ref r.Unfinished) == 0)
                {
                    r.Writer.TryComplete();
                    lock (_gate) _pending--;
                }
                continue;
            }
            // The row stays: compact it down to slot `kept`, moving its cache if it shifts.
            if (kept != s) _decodeCache.CopyRow(kept, _decodeCache, s, row.Position);
            _rows[kept] = row;
            nextTokens.Add(sampled[s]);
            nextPositions.Add(row.Position);
            row.Position++;
            kept++;
        }
        for (int s = kept; s < live; s++) _rows[s] = null;
        _live = kept;
        if (kept == 0) return;
        var logits = _model.DecodeStep(nextTokens.ToArray(), nextPositions.ToArray(), _decodeCache);
        be.Copy(_rowLogits, 0, logits, 0, (long)kept * vp);
    }

    /// <summary>
    /// The most likely tokens of slot s under the distribution the sampled token's log-probability is
    /// taken from: softmax(logits / T), T = 1 when greedy, before top-p truncation.
    /// </summary>
    private TokenAlternative[] TopAlternatives(int slot, int count, SamplingParams sampling)
    {
        int vocab = _model.Config.Vocab;
        var row = new float[vocab];
        _model.Backend.Download(_rowLogits, row, (long)slot * _model.Config.PaddedVocab);
        double scale = sampling.Temperature == 0f ? 1.0 : 1.0 / sampling.Temperature;
        double max = double.NegativeInfinity;
        foreach (var z in row) max = Math.Max(max, z * scale);
        double sum = 0;
        foreach (var z in row) sum += Math.Exp(z * scale - max);
        double logZ = max + Math.Log(sum);
        var order = Enumerable.Range(0, vocab).ToArray();
        Array.Sort(order, (a, b) => row[a] != row[b] ? row[b].CompareTo(row[a]) : a.CompareTo(b));
        return order.Take(Math.Min(count, vocab)).Select(t => new TokenAlternative(t, (float)(row[t] * scale - logZ))).ToArray();
    }

    /// <summary>The first stop string the choice's text now contains, if any.</summary>
    private string? MatchedStop(Row row)
    {
        var stops = row.Request.StopStrings;
        if (stops.Count == 0) return null;
        string text = _tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(row.Tokens));
        foreach (var s in stops)
            if (text.Contains(s, StringComparison.Ordinal)) return s;
        return null;
    }

    /// <summary>Stops the decoding thread; requests still running or waiting are told the server is shutting down.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _decodeCache.Dispose();
        _prefillCache.Dispose();
        _rowLogits.Dispose();
        _scratchLogits.Dispose();
        _tokens.Dispose();
        _logProbs.Dispose();
        _stop.Dispose();
        _wake.Dispose();
    }
}
