using System.Globalization;

namespace Nemotron.Gym.Judges;

/// <summary>
/// The run config's `judge:` section: where the judge model is served (any OpenAI-compatible endpoint) and how the
/// silo's judge pool calls it. An empty <see cref="BaseUrl"/> means no judge: environments that need one mask their
/// rollouts with that reason.
/// </summary>
public sealed class JudgeSettings
{
    /// <summary>The endpoint's base URL up to and including /v1 ("http://127.0.0.1:8000/v1"); empty: no judge.</summary>
    public string BaseUrl { get; set; } = "";
    /// <summary>The model name the endpoint serves the judge under.</summary>
    public string Model { get; set; } = "nemotron-gym";
    /// <summary>The environment variable that holds the API key (sent as a Bearer token); unset: a placeholder key, which local servers ignore.</summary>
    public string ApiKeyEnv { get; set; } = "JUDGE_API_KEY";
    /// <summary>Sampling temperature of the judge.</summary>
    public double Temperature { get; set; } = 0.7;
    /// <summary>Nucleus sampling of the judge (1 = off).</summary>
    public double TopP { get; set; } = 1;
    /// <summary>Most tokens the judge may write per verdict (its reasoning and the JSON).</summary>
    public int MaxTokens { get; set; } = 512;
    /// <summary>The judge's sampling seed; a re-ask after an unreadable verdict adds its attempt number.</summary>
    public int Seed { get; set; } = 1;
    /// <summary>Seconds one HTTP request may take before it counts as a timeout (and is retried).</summary>
    public double TimeoutSeconds { get; set; } = 120;
    /// <summary>Requests in flight to the endpoint at once from one silo.</summary>
    public int MaxConcurrency { get; set; } = 16;
    /// <summary>Tries after the first, for timeouts, unreachable endpoints and server errors (5xx, 429).</summary>
    public int MaxRetries { get; set; } = 3;
    /// <summary>Seconds before the first retry; each further retry waits twice as long (at most 30 s).</summary>
    public double BackoffSeconds { get; set; } = 0.5;
    /// <summary>Failed requests in a row that open the circuit breaker.</summary>
    public int BreakerFailures { get; set; } = 8;
    /// <summary>Seconds the open circuit refuses calls before one probe is let through.</summary>
    public double BreakerCooldownSeconds { get; set; } = 30;
    /// <summary>Verdicts the cache keeps (oldest dropped first); 0 turns the cache off.</summary>
    public int CacheEntries { get; set; } = 100_000;

    /// <summary>Whether a judge is configured.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(BaseUrl);

    /// <summary>The first bad value as (key, problem), or null when the settings are usable.</summary>
    public (string Key, string Problem)? Check()
    {
        if (Enabled && (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
            return ("base_url", $"expected an http(s) URL such as http://127.0.0.1:8000/v1, got '{BaseUrl}'");
        if (string.IsNullOrWhiteSpace(Model)) return ("model", "the judge's model name is required");
        if (!(Temperature >= 0 && Temperature <= 2)) return ("temperature", $"expected 0-2, got {Num(Temperature)}");
        if (!(TopP > 0 && TopP <= 1)) return ("top_p", $"expected (0, 1], got {Num(TopP)}");
        if (MaxTokens < 1) return ("max_tokens", $"must be >= 1, got {MaxTokens}");
        if (!(TimeoutSeconds > 0)) return ("timeout_seconds", $"must be > 0, got {Num(TimeoutSeconds)}");
        if (MaxConcurrency < 1) return ("max_concurrency", $"must be >= 1, got {MaxConcurrency}");
        if (MaxRetries < 0) return ("max_retries", $"must be >= 0, got {MaxRetries}");
        if (!(BackoffSeconds >= 0)) return ("backoff_seconds", $"must be >= 0, got {Num(BackoffSeconds)}");
        if (BreakerFailures < 1) return ("breaker_failures", $"must be >= 1, got {BreakerFailures}");
        if (!(BreakerCooldownSeconds >= 0)) return ("breaker_cooldown_seconds", $"must be >= 0, got {Num(BreakerCooldownSeconds)}");
        if (CacheEntries < 0) return ("cache_entries", $"must be >= 0, got {CacheEntries}");
        return null;
    }

    private static string Num(double x) => x.ToString(CultureInfo.InvariantCulture);
}
