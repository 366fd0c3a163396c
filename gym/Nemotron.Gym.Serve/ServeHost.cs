using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Serve;

/// <summary>
/// An OpenAI-compatible HTTP server over one model: POST /v1/chat/completions (plain and streamed by
/// server-sent events), GET /v1/models and GET /health, with every generation going through one
/// <see cref="ContinuousBatcher"/>. The caller owns the model and its backend and keeps them alive until
/// the host is disposed.
/// </summary>
public sealed class ServeHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServeOptions _options;
    private readonly GptModel _model;
    private readonly ITokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private readonly byte[]? _apiKey;

    private ServeHost(WebApplication app, ServeOptions options, GptModel model, ITokenizer tokenizer, ContinuousBatcher batcher)
    {
        _app = app;
        _options = options;
        _model = model;
        _tokenizer = tokenizer;
        _template = new ChatTemplate(tokenizer);
        _apiKey = options.ApiKey is { Length: > 0 } key ? Encoding.UTF8.GetBytes(key) : null;
        Batcher = batcher;
    }

    /// <summary>The batcher all requests go through (its counters are the server's figures).</summary>
    public ContinuousBatcher Batcher { get; }

    /// <summary>Where the server listens, e.g. http://127.0.0.1:8000/ (the real port when 0 was asked for).</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Starts listening; returns once the port is bound.</summary>
    public static async Task<ServeHost> StartAsync(GptModel model, ITokenizer tokenizer, ServeOptions options, CancellationToken cancellation = default)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            if (options.Host == "localhost") k.ListenLocalhost(options.Port);
            else if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else throw new ArgumentException($"--host: '{options.Host}' is not an IP address (or localhost)");
        });
        var app = builder.Build();
        var batcher = new ContinuousBatcher(model, tokenizer, [tokenizer.Specials.EndOfTurn, tokenizer.Specials.EndOfText], options.MaxBatch, options.MaxPendingRequests);
        var host = new ServeHost(app, options, model, tokenizer, batcher);
        host.Map();
        try { await app.StartAsync(cancellation); }
        catch
        {
            batcher.Dispose();
            await app.DisposeAsync();
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        host.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return host;
    }

    private void Map()
    {
        _app.Use(async (ctx, next) =>
        {
            try
            {
                if (ctx.Request.Path.StartsWithSegments("/v1")) Authorize(ctx);
                await next(ctx);
            }
            catch (ServeRequestException e) when (!ctx.Response.HasStarted)
            {
                await WriteError(ctx, e);
            }
            catch (Exception e) when (e is not OperationCanceledException && !ctx.Response.HasStarted)
            {
                // Logging is off (the CLI prints its own lines), so the client gets the reason.
                await WriteError(ctx, new ServeRequestException(500, $"{e.GetType().Name}: {e.Message}", type: "server_error"));
            }
        });
        _app.MapGet("/health", (HttpContext ctx) => Health(ctx));
        _app.MapGet("/v1/models", (HttpContext ctx) => WriteJson(ctx, 200, new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(ModelJson()),
        }));
        _app.MapGet("/v1/models/{id}", (HttpContext ctx, string id) => id == _options.ModelName
            ? WriteJson(ctx, 200, ModelJson())
            : throw new ServeRequestException(404, $"model '{id}' is not served here; this server serves '{_options.ModelName}'", "model", "model_not_found"));
        _app.MapPost("/v1/chat/completions", (HttpContext ctx) => ChatCompletions(ctx));
    }

    private JsonObject ModelJson() => new()
    {
        ["id"] = _options.ModelName, ["object"] = "model", ["created"] = _created, ["owned_by"] = "nemotron-gym",
        ["context_length"] = _model.Config.Context,
    };

    private void Authorize(HttpContext ctx)
    {
        if (_apiKey == null) return;
        string header = ctx.Request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        var given = header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase) ? Encoding.UTF8.GetBytes(header[bearer.Length..].Trim()) : [];
        if (!CryptographicOperations.FixedTimeEquals(given, _apiKey))
            throw new ServeRequestException(401, header.Length == 0 ? "missing Authorization: Bearer <api key>" : "invalid API key",
                type: "authentication_error");
    }

    private Task Health(HttpContext ctx)
    {
        var b = Batcher;
        var body = new JsonObject
        {
            ["status"] = b.Fault == null ? "ok" : "failed", ["model"] = _options.ModelName,
            ["pending"] = b.Pending, ["max_pending"] = _options.MaxPendingRequests, ["max_batch"] = b.MaxBatch,
            ["steps"] = b.Steps, ["tokens_generated"] = b.TokensGenerated,
        };
        if (b.Fault != null) body["reason"] = b.Fault;
        return WriteJson(ctx, b.Fault == null ? 200 : 503, body);
    }

    private async Task ChatCompletions(HttpContext ctx)
    {
        if (ctx.Request.ContentLength > _options.MaxRequestBytes)
            throw new ServeRequestException(413, $"the request body has {ctx.Request.ContentLength} bytes; this server accepts at most {_options.MaxRequestBytes}");
        JsonNode? body;
        try { body = await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted); }
        catch (JsonException e) { throw new ServeRequestException(400, $"the request body is not valid JSON: {e.Message}"); }
        catch (BadHttpRequestException e) when (e.StatusCode == 413)
        {
            throw new ServeRequestException(413, $"the request body is larger than this server accepts ({_options.MaxRequestBytes} bytes)");
        }
        var request = ChatCompletionRequest.Parse(body, _options, Batcher.MaxBatch);
        if (request.Model != null && request.Model != _options.ModelName)
            throw new ServeRequestException(404, $"model '{request.Model}' is not served here; this server serves '{_options.ModelName}'", "model", "model_not_found");

        int[] prompt;
        try { prompt = _template.RenderGenerationPrompt(request.Conversation); }
        catch (ArgumentException e) { throw new ServeRequestException(400, $"messages: {e.Message}", "messages"); }
        int context = _model.Config.Context;
        if (prompt.Length >= context)
            throw new ServeRequestException(400, $"messages: the prompt is {prompt.Length} tokens long; the model's context holds {context} (prompt plus output)", "messages");
        if (prompt.FirstOrDefault(t => t >= _model.Config.Vocab, -1) is int outside and >= 0)
            throw new ServeRequestException(400, $"messages: the tokenizer produced id {outside}, outside the model's vocabulary of {_model.Config.Vocab} (tokenizer and checkpoint disagree)", "messages");
        // Unset, a choice runs to the end of the context (or the server's cap).
        int maxTokens = request.MaxTokens ?? (_options.MaxTokensLimit > 0 ? _options.MaxTokensLimit : context);
        int seed = request.Seed ?? RandomNumberGenerator.GetInt32(int.MaxValue);

        var generation = new GenerationRequest(prompt, request.Choices, request.Sampling, seed, maxTokens,
            request.Logprobs ? request.TopLogprobs : 0, request.Stop, ctx.RequestAborted);
        if (Batcher.Fault != null || Batcher.Stopped)
        {
            ctx.Response.Headers.RetryAfter = "5";
            throw new ServeRequestException(503, Batcher.Fault ?? "the server is shutting down", type: "server_error");
        }
        bool queued;
        try { queued = Batcher.TryEnqueue(generation); }
        catch (ArgumentException e) { throw new ServeRequestException(400, e.Message, e.Message.Split(':')[0]); }
        if (!queued)
        {
            ctx.Response.Headers.RetryAfter = "1";
            throw new ServeRequestException(429, $"the server is busy: {_options.MaxPendingRequests} requests are running or waiting; retry shortly",
                type: "rate_limit_error");
        }

        string id = "chatcmpl-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var choices = Enumerable.Range(0, request.Choices).Select(i => new ChoiceOutput(i, _tokenizer, Batcher.StopTokens, request.Stop, "call_" + id[9..])).ToArray();
        if (request.Stream) await Stream(ctx, request, generation, choices, id, created, prompt.Length);
        else await Whole(ctx, request, generation, choices, id, created, prompt.Length);
    }

    private async Task Whole(HttpContext ctx, ChatCompletionRequest request, GenerationRequest generation, ChoiceOutput[] choices, string id, long created, int promptTokens)
    {
        await foreach (var e in generation.Events.ReadAllAsync(ctx.RequestAborted))
        {
            switch (e)
            {
                case ChoiceToken t: choices[t.Choice].Add(t, request.Logprobs); break;
                case ChoiceFinished f: choices[f.Choice].Finished(f); break;
                case RequestFailed failed: throw new ServeRequestException(500, failed.Message, type: "server_error");
            }
        }
        await WriteJson(ctx, 200, new JsonObject
        {
            ["id"] = id, ["object"] = "chat.completion", ["created"] = created, ["model"] = _options.ModelName,
            ["choices"] = new JsonArray(choices.Select(c => (JsonNode)new JsonObject
            {
                ["index"] = c.Index, ["message"] = c.Message(), ["logprobs"] = c.Logprobs(request.Logprobs),
                ["finish_reason"] = c.FinishReasonText(),
            }).ToArray()),
            ["usage"] = Usage(promptTokens, choices),
        });
    }

    private async Task Stream(HttpContext ctx, ChatCompletionRequest request, GenerationRequest generation, ChoiceOutput[] choices, string id, long created, int promptTokens)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var output = ctx.Response.Body;
        JsonObject Chunk(JsonArray choiceArray) => new()
        {
            ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = _options.ModelName,
            ["choices"] = choiceArray,
        };
        async Task Send(JsonNode node)
        {
            await output.WriteAsync(Encoding.UTF8.GetBytes("data: " + node.ToJsonString(JsonText.Compact) + "\n\n"), ctx.RequestAborted);
        }

        // One choice per chunk, as OpenAI sends them (clients read choices[0] of each chunk).
        foreach (var c in choices)
            await Send(Chunk(new JsonArray(new JsonObject
            {
                ["index"] = c.Index, ["delta"] = new JsonObject { ["role"] = "assistant", ["content"] = "" }, ["logprobs"] = null, ["finish_reason"] = null,
            })));
        await output.FlushAsync(ctx.RequestAborted);

        var reader = generation.Events;
        while (await reader.WaitToReadAsync(ctx.RequestAborted))
        {
            // Everything that arrived since the last write goes out together: one chunk per choice per wake-up.
            var touched = new SortedSet<int>();
            var finished = new List<ChoiceOutput>();
            while (reader.TryRead(out var e))
            {
                switch (e)
                {
                    case ChoiceToken t: choices[t.Choice].Add(t, request.Logprobs); touched.Add(t.Choice); break;
                    case ChoiceFinished f: choices[f.Choice].Finished(f); finished.Add(choices[f.Choice]); touched.Add(f.Choice); break;
                    case RequestFailed failed:
                        await Send(new JsonObject { ["error"] = ErrorJson(failed.Message, null, "server_error") });
                        return;
                }
            }
            // A finished choice sends what was held back (a partial character, the start of a stop string) now.
            foreach (int c in touched)
                if (choices[c].NextDelta(final: choices[c].Finish != null, request.Logprobs) is { } d) await Send(Chunk(new JsonArray(d)));
            foreach (var c in finished)
                await Send(Chunk(new JsonArray(new JsonObject
                {
                    ["index"] = c.Index, ["delta"] = new JsonObject(), ["logprobs"] = null, ["finish_reason"] = c.FinishReasonText(),
                })));
            await output.FlushAsync(ctx.RequestAborted);
        }
        if (request.IncludeUsage)
        {
            var last = Chunk(new JsonArray());
            last["usage"] = Usage(promptTokens, choices);
            await Send(last);
        }
        await output.WriteAsync("data: [DONE]\n\n"u8.ToArray(), ctx.RequestAborted);
        await output.FlushAsync(ctx.RequestAborted);
    }

    private static JsonObject Usage(int promptTokens, ChoiceOutput[] choices)
    {
        int completion = choices.Sum(c => c.TokenCount);
        return new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completion, ["total_tokens"] = promptTokens + completion };
    }

    private static JsonObject ErrorJson(string message, string? param, string type) => new()
    {
        ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = null,
    };

    private static Task WriteError(HttpContext ctx, ServeRequestException e) =>
        WriteJson(ctx, e.Status, new JsonObject { ["error"] = ErrorJson(e.Message, e.Param, e.Type) });

    private static async Task WriteJson(HttpContext ctx, int status, JsonObject body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(JsonText.Compact), ctx.RequestAborted);
    }

    /// <summary>Stops decoding (requests in flight are told the server is shutting down), then the HTTP server.</summary>
    public async ValueTask DisposeAsync()
    {
        Batcher.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
