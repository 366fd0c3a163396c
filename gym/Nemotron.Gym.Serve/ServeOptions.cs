using System.Net;

namespace Nemotron.Gym.Serve;

/// <summary>How <c>gym serve</c> listens and what it admits.</summary>
public sealed record ServeOptions
{
    /// <summary>Address to bind. Anything but loopback requires <see cref="ApiKey"/>.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 lets the system pick a free one (the server reports which).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>When set, every /v1 request must carry <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }
    /// <summary>The model id clients name in requests and that GET /v1/models lists.</summary>
    public string ModelName { get; init; } = "nemotron-gym";
    /// <summary>Rows (sequences) decoded together: the continuous batch's capacity. A request takes n rows.</summary>
    public int MaxBatch { get; init; } = 32;
    /// <summary>Requests admitted and not yet finished (running plus waiting). One more is answered 429.</summary>
    public int MaxPendingRequests { get; init; } = 256;
    /// <summary>Largest request body in bytes; a larger one is answered 413.</summary>
    public long MaxRequestBytes { get; init; } = 1 << 20;
    /// <summary>Largest max_tokens a request may ask for; 0 means the model's context.</summary>
    public int MaxTokensLimit { get; init; }
    /// <summary>Most top_logprobs a request may ask for (OpenAI's own limit is 20).</summary>
    public int MaxTopLogprobs { get; init; } = 20;

    /// <summary>True when <see cref="Host"/> names the loopback interface only.</summary>
    public bool IsLoopback => Host is "localhost" || IPAddress.TryParse(Host, out var ip) && IPAddress.IsLoopback(ip);

    /// <summary>Throws naming the option that is out of range.</summary>
    public ServeOptions Validate()
    {
        if (!IsLoopback && string.IsNullOrEmpty(ApiKey))
            throw new ArgumentException($"--host {Host} is reachable from other machines: give --api-key (clients then send it as a Bearer token)");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port: expected 0-65535, got {Port}");
        if (MaxBatch < 1) throw new ArgumentException($"--max-batch must be >= 1, got {MaxBatch}");
        if (MaxPendingRequests < 1) throw new ArgumentException($"--max-pending must be >= 1, got {MaxPendingRequests}");
        if (MaxRequestBytes < 1024) throw new ArgumentException($"--max-request-bytes must be >= 1024, got {MaxRequestBytes}");
        if (MaxTokensLimit < 0) throw new ArgumentException($"--max-tokens-limit must be >= 0, got {MaxTokensLimit}");
        if (string.IsNullOrWhiteSpace(ModelName)) throw new ArgumentException("--model-name must not be empty");
        return this;
    }
}
