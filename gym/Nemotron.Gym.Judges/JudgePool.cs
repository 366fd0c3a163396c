using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Judges;

/// <summary>Counters of a judge pool since it started.</summary>
/// <param name="Calls">Calls made to the pool.</param>
/// <param name="CacheHits">Calls answered from the cache (or joined to an identical call in flight).</param>
/// <param name="Requests">HTTP requests sent.</param>
/// <param name="Retries">Requests that were retries of a failed one.</param>
/// <param name="Failures">Calls that ended without a verdict text (timeout, unavailable, refused, circuit open).</param>
/// <param name="CircuitRefusals">Calls refused at once because the circuit was open.</param>
/// <param name="BreakerOpenings">Times the circuit breaker opened.</param>
public sealed record JudgePoolStats(long Calls, long CacheHits, long Requests, long Retries, long Failures, long CircuitRefusals, long BreakerOpenings);

/// <summary>
/// A silo's judge: every environment on the silo asks it through <see cref="IJudgeService"/>. It holds
/// <list type="bullet">
/// <item>a concurrency limit (<see cref="JudgeSettings.MaxConcurrency"/> requests in flight; the rest wait their turn),</item>
/// <item>retries of timeouts and server errors with a doubling wait,</item>
/// <item>a circuit breaker: after <see cref="JudgeSettings.BreakerFailures"/> failed requests in a row every call is
/// refused at once (outcome CircuitOpen) for the cool-down, then one probe decides whether it closes again,</item>
/// <item>a cache of verdicts keyed by the judge, its sampling settings, the attempt and the full conversation (so the
/// prompt, the responses and the principle): a replayed episode or a re-graded group costs no second request, and
/// identical calls in flight share one request. Failures are not cached: the next call tries again.</item>
/// </list>
/// </summary>
public sealed class JudgePool : IJudgeService
{
    private readonly JudgeSettings _settings;
    private readonly Func<IReadOnlyList<Message>, int, CancellationToken, Task<JudgeTry>> _send;
    private readonly SemaphoreSlim _slots;
    private readonly CircuitBreaker _breaker;
    private readonly ConcurrentDictionary<string, Lazy<Task<JudgeCompletion>>> _cache = new();
    private readonly ConcurrentQueue<string> _cacheOrder = new();
    private long _calls, _hits, _requests, _retries, _failures, _refusals;

    /// <summary>A pool over the endpoint of <paramref name="settings"/>.</summary>
    public JudgePool(JudgeSettings settings) : this(settings, new JudgeEndpoint(settings).CompleteAsync) { }

    /// <summary>A pool over any sender of single requests (the benchmark measures the pool's own overhead with one).</summary>
    public JudgePool(JudgeSettings settings, Func<IReadOnlyList<Message>, int, CancellationToken, Task<JudgeTry>> send)
    {
        if (settings.Check() is { } bad) throw new ArgumentException($"judge.{bad.Key}: {bad.Problem}");
        _settings = settings;
        _send = send;
        _slots = new SemaphoreSlim(settings.MaxConcurrency);
        _breaker = new CircuitBreaker(settings.BreakerFailures, TimeSpan.FromSeconds(settings.BreakerCooldownSeconds));
    }

    /// <inheritdoc />
    public string Judge => $"{_settings.Model}@{_settings.BaseUrl}";

    /// <summary>The counters so far.</summary>
    public JudgePoolStats Stats => new(Interlocked.Read(ref _calls), Interlocked.Read(ref _hits), Interlocked.Read(ref _requests),
        Interlocked.Read(ref _retries), Interlocked.Read(ref _failures), Interlocked.Read(ref _refusals), _breaker.Openings);

    /// <summary>The breaker's state now.</summary>
    public CircuitState Circuit => _breaker.State;

    /// <inheritdoc />
    public async ValueTask<JudgeCompletion> CompleteAsync(JudgeRequest request, CancellationToken cancellation)
    {
        Interlocked.Increment(ref _calls);
        var bad = request.Messages.FirstOrDefault(m => m.Role is not (Role.System or Role.User or Role.Assistant));
        if (request.Messages.Count == 0 || bad != null)
        {
            Interlocked.Increment(ref _failures);
            string why = bad == null ? "the request has no messages" : $"a judge conversation holds system, user and assistant messages, not {bad.Role}";
            return new JudgeCompletion(JudgeOutcome.Refused, "", why, 0, false);
        }
        if (_settings.CacheEntries == 0) return Count(await CallAsync(request, cancellation));
        string key = CacheKey(request);
        while (true)
        {
            var mine = new Lazy<Task<JudgeCompletion>>(() => CallAsync(request, CancellationToken.None));
            var entry = _cache.GetOrAdd(key, mine);
            // The request runs to its end even if this caller gives up, so that callers joined to it still get a verdict.
            var result = await entry.Value.WaitAsync(cancellation);
            if (!ReferenceEquals(entry, mine) && result.IsOk)
            {
                Interlocked.Increment(ref _hits);
                return result with { Tries = 0, Cached = true };
            }
            if (!result.IsOk)
            {
                // Failures are not kept. A caller that joined someone else's failed request tries on its own.
                _cache.TryRemove(new KeyValuePair<string, Lazy<Task<JudgeCompletion>>>(key, entry));
                if (!ReferenceEquals(entry, mine)) continue;
                return Count(result);
            }
            _cacheOrder.Enqueue(key);
            while (_cacheOrder.Count > _settings.CacheEntries && _cacheOrder.TryDequeue(out var old)) _cache.TryRemove(old, out _);
            return result;
        }
    }

    private JudgeCompletion Count(JudgeCompletion c)
    {
        if (!c.IsOk) Interlocked.Increment(ref _failures);
        return c;
    }

    private async Task<JudgeCompletion> CallAsync(JudgeRequest request, CancellationToken cancellation)
    {
        int tries = 0;
        JudgeTry last = default;
        for (int attempt = 0; attempt <= _settings.MaxRetries; attempt++)
        {
            if (attempt > 0)
            {
                Interlocked.Increment(ref _retries);
                var wait = TimeSpan.FromSeconds(Math.Min(30, _settings.BackoffSeconds * (1 << Math.Min(attempt - 1, 16))));
                await Task.Delay(wait, cancellation);
            }
            if (!_breaker.TryPass())
            {
                Interlocked.Increment(ref _refusals);
                string why = tries > 0 ? $"{last.Error}; then the circuit opened" : $"the judge at {_settings.BaseUrl} failed {_settings.BreakerFailures} times in a row";
                return new JudgeCompletion(JudgeOutcome.CircuitOpen, "", $"circuit open: {why} (cool-down {_settings.BreakerCooldownSeconds:0.#} s)", tries, false);
            }
            await _slots.WaitAsync(cancellation);
            try
            {
                tries++;
                Interlocked.Increment(ref _requests);
                last = await _send(request.Messages, request.Attempt, cancellation);
            }
            finally { _slots.Release(); }
            if (last.Outcome == JudgeOutcome.Ok)
            {
                _breaker.Succeeded();
                return new JudgeCompletion(JudgeOutcome.Ok, last.Text, null, tries, false);
            }
            if (!last.Retryable)
            {
                // A refusal is the request's fault (or the configuration's), not a sign that the endpoint is down.
                _breaker.Succeeded();
                break;
            }
            _breaker.Failed();
        }
        return new JudgeCompletion(last.Outcome, "", $"{last.Error} (after {tries} request{(tries == 1 ? "" : "s")})", tries, false);
    }

    /// <summary>The cache key: a hash of the judge, its sampling, the attempt and every message.</summary>
    internal string CacheKey(JudgeRequest request)
    {
        var text = new StringBuilder();
        text.Append(Judge).Append('\n').Append(_settings.Temperature).Append('|').Append(_settings.TopP).Append('|')
            .Append(_settings.MaxTokens).Append('|').Append(_settings.Seed).Append('|').Append(request.Attempt).Append('\n');
        foreach (var m in request.Messages) text.Append((int)m.Role).Append(':').Append(m.Content.Length).Append(':').Append(m.Content).Append('\n');
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}

/// <summary>The circuit breaker's state.</summary>
public enum CircuitState
{
    /// <summary>Calls pass.</summary>
    Closed,
    /// <summary>Calls are refused until the cool-down ends.</summary>
    Open,
    /// <summary>The cool-down ended: one probe is in flight; its result closes or reopens the circuit.</summary>
    HalfOpen,
}

/// <summary>
/// Counts failed requests in a row; at the threshold it opens and refuses every call for the cool-down, then lets
/// one probe through: success closes it, failure opens it again for another cool-down.
/// </summary>
public sealed class CircuitBreaker(int threshold, TimeSpan cooldown)
{
    private readonly object _lock = new();
    private int _failuresInRow;
    private long _openedAt;
    private bool _probing;
    private CircuitState _state = CircuitState.Closed;

    /// <summary>How many times it opened.</summary>
    public long Openings { get; private set; }

    /// <summary>The state now.</summary>
    public CircuitState State
    {
        get { lock (_lock) return _state; }
    }

    /// <summary>Whether a request may go now.</summary>
    public bool TryPass()
    {
        lock (_lock)
        {
            switch (_state)
            {
                case CircuitState.Closed: return true;
                case CircuitState.Open when Stopwatch.GetElapsedTime(_openedAt) >= cooldown:
                    _state = CircuitState.HalfOpen;
                    _probing = true;
                    return true;
                case CircuitState.HalfOpen when !_probing:
                    _probing = true;
                    return true;
                default: return false;
            }
        }
    }

    /// <summary>A request got an answer.</summary>
    public void Succeeded()
    {
        lock (_lock)
        {
            _failuresInRow = 0;
            _probing = false;
            _state = CircuitState.Closed;
        }
    }

    /// <summary>A request failed (timeout, unreachable, server error).</summary>
    public void Failed()
    {
        lock (_lock)
        {
            _failuresInRow++;
            _probing = false;
            if (_state == CircuitState.HalfOpen || (_state == CircuitState.Closed && _failuresInRow >= threshold))
            {
                _state = CircuitState.Open;
                _openedAt = Stopwatch.GetTimestamp();
                Openings++;
            }
        }
    }
}
