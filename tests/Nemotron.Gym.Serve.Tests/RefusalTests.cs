using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI.Chat;

namespace Nemotron.Gym.Serve.Tests;

/// <summary>What `gym serve` refuses, and how: status, OpenAI error body naming the field, Retry-After.</summary>
public class RefusalTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> Post(TestServer server, string body, string? key = null)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Host.BaseAddress, "v1/chat/completions"))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        if (key != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        JsonNode? json = null;
        try { json = JsonNode.Parse(text); } catch (System.Text.Json.JsonException) { }
        return (response.StatusCode, json, response);
    }

    private static string Chat(string extra = "", string content = "hi") =>
        $$"""{"model": "tiny", "messages": [{"role": "user", "content": {{System.Text.Json.JsonSerializer.Serialize(content)}}}]{{extra}}}""";

    [Fact]
    public async Task BadRequestsAreAnswered400WithTheFieldNamed()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 1, context: 64), new ServeOptions { MaxTokensLimit = 50, MaxBatch = 4 });

        var (status, body, _) = await Post(server, """{"model": "tiny", "messages": [""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("not valid JSON", (string)body!["error"]!["message"]!);

        foreach (var (request, field) in new[]
        {
            (Chat(", \"temperature\": 5"), "temperature"),
            (Chat(", \"top_p\": 0"), "top_p"),
            (Chat(", \"max_tokens\": 51"), "max_tokens"),
            (Chat(", \"max_completion_tokens\": 0"), "max_completion_tokens"),
            (Chat(", \"n\": 5"), "n"),
            (Chat(", \"seed\": \"x\""), "seed"),
            (Chat(", \"top_logprobs\": 3"), "top_logprobs"),
            (Chat(", \"stop\": [1]"), "stop"),
            (Chat(", \"presence_penalty\": 0.5"), "presence_penalty"),
            ("""{"messages": []}""", "messages"),
            ("""{"messages": [{"role": "wizard", "content": "x"}]}""", "messages[0].role"),
            ("""{"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]}""", "messages[1].role"),
            ("""{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}""", "messages[0].content[0].type"),
            ("""{"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}""", "messages[0].tool_calls[0].function.arguments"),
            ("""{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}""", "tools[0]"),
            (Chat(content: new string('a', 80)), "messages"), // 80 byte tokens do not fit a context of 64
        })
        {
            (status, body, _) = await Post(server, request);
            Assert.True(status == HttpStatusCode.BadRequest, $"{request}: {status}");
            Assert.Equal(field, (string?)body!["error"]!["param"]);
            Assert.Contains(field.Split('[')[0], (string)body["error"]!["message"]!);
            Assert.Equal("invalid_request_error", (string)body["error"]!["type"]!);
        }

        (status, body, _) = await Post(server, """{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}""");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("tiny", (string)body!["error"]!["message"]!);

        // The OpenAI library surfaces the refusal with its status and the server's reason.
        var client = ChatCompletionsTests.Client(server);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Temperature = 3f }, Ct));
        Assert.Equal(400, e.Status);
        Assert.Contains("temperature", e.Message);
        // ... and the server still answers afterwards.
        Assert.NotNull((await client.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 3 }, Ct)).Value);
    }

    [Fact]
    public async Task OversizeBodiesAreAnswered413()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 1), new ServeOptions { MaxRequestBytes = 4096 });
        var (status, body, _) = await Post(server, Chat(content: new string('a', 5000)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("4096", (string)body!["error"]!["message"]!);

        // Without a Content-Length (chunked), the limit still holds while the body is read.
        using var http = new HttpClient();
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(Chat(content: new string('a', 5000)))));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Host.BaseAddress, "v1/chat/completions")) { Content = content };
        request.Headers.TransferEncodingChunked = true;
        var response = await http.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);

        var client = ChatCompletionsTests.Client(server);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage(new string('b', 6000))], cancellationToken: Ct));
        Assert.Equal(413, e.Status);
    }

    [Fact]
    public async Task AnApiKeyIsRequiredWhenSetAndAnyOtherHostNeedsOne()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 1), new ServeOptions { ApiKey = "s3cret" });
        var (status, body, _) = await Post(server, Chat(", \"max_tokens\": 2"));
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("authentication_error", (string)body!["error"]!["type"]!);
        (status, _, _) = await Post(server, Chat(", \"max_tokens\": 2"), key: "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        (status, _, _) = await Post(server, Chat(", \"max_tokens\": 2"), key: "s3cret");
        Assert.Equal(HttpStatusCode.OK, status);

        var e = await Assert.ThrowsAsync<ClientResultException>(() => ChatCompletionsTests.Client(server, "nope").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        Assert.Equal(401, e.Status);
        var ok = await ChatCompletionsTests.Client(server, "s3cret").CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 2 }, Ct);
        Assert.Equal(2, ok.Value.Usage.OutputTokenCount);

        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(server.Host.BaseAddress, "health"), Ct)).StatusCode);

        var open = Assert.Throws<ArgumentException>(() => new ServeOptions { Host = "0.0.0.0" }.Validate());
        Assert.Contains("--api-key", open.Message);
        new ServeOptions { Host = "0.0.0.0", ApiKey = "k" }.Validate();
        new ServeOptions { Host = "::1" }.Validate();
    }

    [Fact]
    public async Task OverloadIsAnswered429WithRetryAfterAndADisconnectedClientFreesItsPlace()
    {
        // One request at a time; a long one keeps it busy (the scripted model never ends a turn, and its
        // eight layers make a thousand tokens take a while).
        var checkpoint = TestCheckpoints.Scripted(new Nemotron.Gym.Conversation.ChatTranscript([Nemotron.Gym.Conversation.Message.User("go on")]), "", layers: 8, context: 1024);
        await using var server = await TestServer.StartAsync(checkpoint, new ServeOptions { MaxPendingRequests = 1, MaxBatch = 2 });
        var client = ChatCompletionsTests.Client(server);
        using var cancelLong = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var stream = client.CompleteChatStreamingAsync([new UserChatMessage("go on")],
            new ChatCompletionOptions { Temperature = 1f, Seed = 3, MaxOutputTokenCount = 1000 }, cancelLong.Token).GetAsyncEnumerator(cancelLong.Token);
        while (await stream.MoveNextAsync() && stream.Current.ContentUpdate.Count == 0 && stream.Current.FinishReason == null) { }
        Assert.Null(stream.Current.FinishReason);

        var (status, body, response) = await Post(server, Chat(", \"max_tokens\": 2"));
        Assert.Equal((HttpStatusCode)429, status);
        Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, "429 without Retry-After");
        Assert.Contains("busy", (string)body!["error"]!["message"]!);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 2 }, Ct));
        Assert.Equal(429, e.Status);

        // The client walks away: its rows leave the batch and the next request is served.
        cancelLong.Cancel();
        try { await stream.DisposeAsync(); } catch (OperationCanceledException) { }
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (server.Host.Batcher.Pending > 0 && DateTime.UtcNow < deadline) await Task.Delay(20, Ct);
        Assert.Equal(0, server.Host.Batcher.Pending);
        Assert.True(server.Host.Batcher.TokensGenerated < 1000, $"the abandoned request ran on to {server.Host.Batcher.TokensGenerated} tokens");
        var ok = await client.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 2 }, Ct);
        Assert.Equal(2, ok.Value.Usage.OutputTokenCount);
    }
}
