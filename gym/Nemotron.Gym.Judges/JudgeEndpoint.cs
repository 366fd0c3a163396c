using System.ClientModel;
using System.ClientModel.Primitives;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using OpenAI;
using OpenAI.Chat;

namespace Nemotron.Gym.Judges;

/// <summary>How one HTTP request to the judge ended.</summary>
/// <param name="Outcome">Ok, or the kind of failure.</param>
/// <param name="Text">The judge's text (Ok only).</param>
/// <param name="Error">What failed, for a person.</param>
public readonly record struct JudgeTry(JudgeOutcome Outcome, string Text, string? Error)
{
    /// <summary>A failure the next try may not repeat (timeouts, an endpoint down or overloaded).</summary>
    public bool Retryable => Outcome is JudgeOutcome.Timeout or JudgeOutcome.Unavailable;
}

/// <summary>
/// One OpenAI-compatible chat-completions endpoint, called through the official OpenAI .NET library with its own
/// retries off (the pool retries, so the breaker sees every failure). Each call is one HTTP request, bounded by the
/// timeout, and ends in a <see cref="JudgeTry"/>: exceptions are sorted into timeouts, unavailability and refusals here.
/// </summary>
public sealed class JudgeEndpoint
{
    private readonly ChatClient _client;
    private readonly JudgeSettings _settings;

    /// <summary>A client for the endpoint and model of <paramref name="settings"/>.</summary>
    public JudgeEndpoint(JudgeSettings settings)
    {
        if (!settings.Enabled) throw new ArgumentException("judge.base_url is empty: no judge endpoint to call");
        _settings = settings;
        string key = Environment.GetEnvironmentVariable(settings.ApiKeyEnv) is { Length: > 0 } k ? k : "no-key";
        _client = new ChatClient(settings.Model, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(settings.BaseUrl),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            // Our own timeout (below) decides; the transport's must not cut in first.
            NetworkTimeout = TimeSpan.FromSeconds(settings.TimeoutSeconds) + TimeSpan.FromSeconds(5),
        });
    }

    /// <summary>Sends one request; never throws except for the caller's cancellation.</summary>
    public async Task<JudgeTry> CompleteAsync(IReadOnlyList<Message> messages, int attempt, CancellationToken cancellation)
    {
        var options = new ChatCompletionOptions
        {
            Temperature = (float)_settings.Temperature, TopP = (float)_settings.TopP, MaxOutputTokenCount = _settings.MaxTokens,
            Seed = _settings.Seed + attempt,
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(TimeSpan.FromSeconds(_settings.TimeoutSeconds));
        try
        {
            ChatCompletion completion = await _client.CompleteChatAsync(messages.Select(ToChat).ToList(), options, timeout.Token);
            string text = string.Concat(completion.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
            return new JudgeTry(JudgeOutcome.Ok, text, null);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested) { throw; }
        catch (OperationCanceledException)
        {
            return new JudgeTry(JudgeOutcome.Timeout, "", $"no answer within {_settings.TimeoutSeconds:0.###} s from {_settings.BaseUrl}");
        }
        catch (ClientResultException e) when (e.Status is 408)
        {
            return new JudgeTry(JudgeOutcome.Timeout, "", $"HTTP 408 from {_settings.BaseUrl}");
        }
        catch (ClientResultException e) when (e.Status is 0 or 429 or >= 500)
        {
            // Status 0: the request never got an HTTP answer (connection refused, reset, DNS).
            string what = e.Status == 0 ? $"cannot reach {_settings.BaseUrl}: {Inner(e)}" : $"HTTP {e.Status} from {_settings.BaseUrl}: {Short(e.Message)}";
            return new JudgeTry(JudgeOutcome.Unavailable, "", what);
        }
        catch (ClientResultException e)
        {
            return new JudgeTry(JudgeOutcome.Refused, "", $"HTTP {e.Status} from {_settings.BaseUrl}: {Short(e.Message)}");
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return new JudgeTry(JudgeOutcome.Unavailable, "", $"cannot reach {_settings.BaseUrl}: {e.Message}");
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or System.Text.Json.JsonException or ArgumentException)
        {
            // An answer that is not a chat completion (a proxy's HTML page, a truncated body): the endpoint is broken.
            return new JudgeTry(JudgeOutcome.Unavailable, "", $"unreadable answer from {_settings.BaseUrl}: {e.GetType().Name}: {Short(e.Message)}");
        }
    }

    private static ChatMessage ToChat(Message m) => m.Role switch
    {
        Role.System => new SystemChatMessage(m.Content),
        Role.User => new UserChatMessage(m.Content),
        Role.Assistant => new AssistantChatMessage(m.Content),
        _ => throw new ArgumentException($"a judge conversation holds system, user and assistant messages, not {m.Role}"),
    };

    private static string Inner(Exception e)
    {
        while (e.InnerException != null) e = e.InnerException;
        return Short(e.Message);
    }

    private static string Short(string text) => text.Length <= 300 ? text : text[..300] + "…";
}
