using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Nemotron.Gym.TestSupport;

/// <summary>A chat-completions request as the scripted judge received it.</summary>
/// <param name="Number">1 for the first request the server got, 2 for the second, ...</param>
/// <param name="System">The system message.</param>
/// <param name="User">The user message.</param>
/// <param name="Seed">The request's seed (null when absent).</param>
public sealed record ScriptedJudgeCall(int Number, string System, string User, long? Seed)
{
    /// <summary>The text of the "## Reply 1" section of a pairwise prompt (null when there is none).</summary>
    public string? Reply1 => Section("## Reply 1");
    /// <summary>The text of the "## Reply 2" section.</summary>
    public string? Reply2 => Section("## Reply 2");
    /// <summary>The text of the "## Reply" section of a rubric prompt.</summary>
    public string? Reply => Section("## Reply\n");

    private string? Section(string heading)
    {
        int at = User.IndexOf(heading, StringComparison.Ordinal);
        if (at < 0) return null;
        int start = User.IndexOf('\n', at + heading.Length - 1) + 1;
        int end = User.IndexOf("\n## ", start, StringComparison.Ordinal);
        return (end < 0 ? User[start..] : User[start..end]).Trim();
    }
}

/// <summary>What the scripted judge answers: an HTTP status, the assistant text of a 200, and a delay before answering.</summary>
public sealed record ScriptedJudgeReply(int Status, string Text, TimeSpan Delay = default)
{
    /// <summary>A 200 with <paramref name="text"/> as the judge's answer.</summary>
    public static ScriptedJudgeReply Say(string text) => new(200, text);
    /// <summary>A pairwise verdict after a line of reasoning.</summary>
    public static ScriptedJudgeReply Verdict(double score1, double score2, int ranking) =>
        Say($"Both replies address the question; weighing them.\n{{\"score_1\": {score1}, \"score_2\": {score2}, \"ranking\": {ranking}}}");
}

/// <summary>
/// A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions shape and answers with whatever its script
/// returns for each request: fixed verdicts, server errors, garbage or long delays. Tests and benchmarks point the
/// judge client at it to drive aggregation and faults through the real client, pool and HTTP stack.
/// </summary>
public sealed class ScriptedJudgeServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;

    private ScriptedJudgeServer(WebApplication app) => _app = app;

    /// <summary>The base URL clients use ("http://127.0.0.1:PORT/v1").</summary>
    public string BaseUrl { get; private set; } = "";

    /// <summary>Requests received so far.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Every request received, in arrival order.</summary>
    public List<ScriptedJudgeCall> Calls { get; } = new();

    /// <summary>Starts a server whose answers come from <paramref name="script"/>.</summary>
    public static async Task<ScriptedJudgeServer> StartAsync(Func<ScriptedJudgeCall, ScriptedJudgeReply> script)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new ScriptedJudgeServer(app);
        app.MapPost("/v1/chat/completions", async (HttpContext ctx) =>
        {
            var body = await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted) as JsonObject ?? new JsonObject();
            var messages = body["messages"] as JsonArray ?? [];
            string Content(string role) => messages.OfType<JsonObject>().Where(m => (string?)m["role"] == role)
                .Select(m => m["content"] is JsonValue v ? (string?)v ?? "" : string.Concat((m["content"] as JsonArray ?? []).Select(p => (string?)p?["text"]))).FirstOrDefault() ?? "";
            long? seed = body["seed"] is JsonValue s && s.TryGetValue(out long x) ? x : null;
            int number = Interlocked.Increment(ref server._requests);
            var call = new ScriptedJudgeCall(number, Content("system"), Content("user"), seed);
            lock (server.Calls) server.Calls.Add(call);
            var reply = script(call);
            if (reply.Delay > TimeSpan.Zero) await Task.Delay(reply.Delay, ctx.RequestAborted);
            ctx.Response.StatusCode = reply.Status;
            ctx.Response.ContentType = "application/json";
            var json = reply.Status == 200
                ? new JsonObject
                {
                    ["id"] = $"chatcmpl-{number}", ["object"] = "chat.completion", ["created"] = 1_700_000_000, ["model"] = (string?)body["model"] ?? "judge",
                    ["choices"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0, ["finish_reason"] = "stop",
                        ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply.Text },
                    }),
                    ["usage"] = new JsonObject { ["prompt_tokens"] = 1, ["completion_tokens"] = 1, ["total_tokens"] = 2 },
                }
                : new JsonObject { ["error"] = new JsonObject { ["message"] = reply.Text, ["type"] = "server_error" } };
            await ctx.Response.WriteAsync(json.ToJsonString(), ctx.RequestAborted);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = address.TrimEnd('/') + "/v1";
        return server;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
