using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Sampling;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;

namespace Nemotron.Gym.Serve.Tests;

/// <summary>`gym serve` driven by the official OpenAI .NET library, over real tiny checkpoints.</summary>
public class ChatCompletionsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static ChatClient Client(TestServer server, string key = "unused") =>
        new("tiny", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = server.V1, RetryPolicy = new ClientRetryPolicy(maxRetries: 0) });

    /// <summary>What our own sampler gives for the same prompt, seed and settings (choice i = prompt i of a batch).</summary>
    private static IReadOnlyList<Generation> SamplerReference(TestServer server, string user, int choices, SamplingParams sampling, int seed, int maxTokens)
    {
        var template = new ChatTemplate(server.Tokenizer);
        var prompt = template.RenderGenerationPrompt(new ChatTranscript([Message.User(user)]));
        using var sampler = new Sampler(server.Model);
        var s = server.Tokenizer.Specials;
        return sampler.Generate(Enumerable.Repeat(prompt, choices).ToList(),
            new GenerationOptions(maxTokens, sampling, seed, [s.EndOfTurn, s.EndOfText]), Ct);
    }

    private static int[] Tokens(IEnumerable<ChatTokenLogProbabilityDetails> details) =>
        details.Select(d => Bytes(d) is [var b] ? b : -1).ToArray();

    private static byte[] Bytes(ChatTokenLogProbabilityDetails d) => d.Utf8Bytes is { } m ? m.ToArray() : [];
    private static byte[] Bytes(ChatTokenTopLogProbabilityDetails d) => d.Utf8Bytes is { } m ? m.ToArray() : [];

    [Fact]
    public async Task CompletionReproducesTheSamplerTokensAndLogprobsForItsSeed()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 3));
        var client = Client(server);
        var options = new ChatCompletionOptions { Temperature = 1f, Seed = 1234, MaxOutputTokenCount = 30, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("What is 2+3?")], options, Ct);

        var want = SamplerReference(server, "What is 2+3?", 1, new SamplingParams(1f), 1234, 30)[0];
        var details = completion.ContentTokenLogProbabilities;
        Assert.Equal(want.Tokens.Length, details.Count);
        for (int k = 0; k < want.Tokens.Length; k++)
        {
            var token = want.Tokens[k];
            if (token < 256) Assert.Equal([(byte)token], Bytes(details[k]));
            else Assert.Equal(server.Tokenizer.Decode([token]), details[k].Token);
            Assert.Equal(want.LogProbs[k], details[k].LogProbability);
        }
        // The alternatives are the three most likely tokens of the model's own (teacher-forced) distribution.
        var prompt0 = new ChatTemplate(server.Tokenizer).RenderGenerationPrompt(new ChatTranscript([Message.User("What is 2+3?")]));
        var sequence = prompt0.Concat(want.Tokens).ToArray();
        var logits = server.Model.FullLogits(Nemotron.Gym.Model.TokenBatch.FromSequences([sequence], padToken: 0));
        int vocab = server.Model.Config.Vocab, vp = server.Model.Config.PaddedVocab;
        for (int k = 0; k < want.Tokens.Length; k++)
        {
            var row = logits.AsSpan((prompt0.Length - 1 + k) * vp, vocab).ToArray();
            double max = row.Max(), logZ = max + Math.Log(row.Sum(z => Math.Exp(z - max)));
            var best = Enumerable.Range(0, vocab).OrderByDescending(j => row[j]).Take(3).ToArray();
            var top = details[k].TopLogProbabilities;
            Assert.Equal(3, top.Count);
            for (int a = 0; a < 3; a++)
            {
                Assert.Equal(best[a] < 256 ? [(byte)best[a]] : System.Text.Encoding.UTF8.GetBytes(server.Tokenizer.Decode([best[a]])), Bytes(top[a]));
                Assert.Equal(row[best[a]] - logZ, top[a].LogProbability, 1e-4);
            }
        }
        Assert.Equal(want.Finish == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(want.Tokens.Length, completion.Usage.OutputTokenCount);
        var prompt = new ChatTemplate(server.Tokenizer).RenderGenerationPrompt(new ChatTranscript([Message.User("What is 2+3?")]));
        Assert.Equal(prompt.Length, completion.Usage.InputTokenCount);
        Assert.Equal("tiny", completion.Model);

        // The same seed again gives the same completion; another seed gives another.
        ChatCompletion again = await client.CompleteChatAsync([new UserChatMessage("What is 2+3?")], options, Ct);
        Assert.Equal(Tokens(details), Tokens(again.ContentTokenLogProbabilities));
        options.Seed = 99;
        ChatCompletion other = await client.CompleteChatAsync([new UserChatMessage("What is 2+3?")], options, Ct);
        Assert.NotEqual(Tokens(details), Tokens(other.ContentTokenLogProbabilities));
    }

    [Fact]
    public async Task ConcurrentRequestsShareDecodingStepsAndEachStillMatchesTheSampler()
    {
        // Bigger than the other tests' model so that a request is still decoding when the next arrive.
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 5, layers: 3, width: 128, context: 400));
        var client = Client(server);
        var cases = new (string User, float Temperature, float TopP, int Seed, int MaxTokens)[]
        {
            ("a long one", 1f, 1f, 7, 300), ("hello", 1f, 1f, 8, 40), ("hello", 0.7f, 0.9f, 9, 60), ("greedy", 0f, 1f, 10, 50), ("x", 1.3f, 1f, 11, 80),
        };
        async Task<ChatCompletion> Ask(int i)
        {
            var c = cases[i];
            var options = new ChatCompletionOptions { Temperature = c.Temperature, TopP = c.TopP, Seed = c.Seed, MaxOutputTokenCount = c.MaxTokens, IncludeLogProbabilities = true };
            return (await client.CompleteChatAsync([new UserChatMessage(c.User)], options, Ct)).Value;
        }
        // The long request starts first (its first streamed token proves it is decoding), the rest join it.
        var stream = client.CompleteChatStreamingAsync([new UserChatMessage("a long one")],
            new ChatCompletionOptions { Temperature = 1f, Seed = 7, MaxOutputTokenCount = 300 }, Ct).GetAsyncEnumerator(Ct);
        while (await stream.MoveNextAsync() && stream.Current.ContentUpdate.Count == 0) { }
        var stepsBefore = server.Host.Batcher.Steps;
        var results = await Task.WhenAll(Enumerable.Range(0, cases.Length).Select(Ask));
        while (await stream.MoveNextAsync()) { }
        await stream.DisposeAsync();

        long tokens = results.Sum(r => (long)r.Usage.OutputTokenCount);
        long steps = server.Host.Batcher.Steps - stepsBefore;
        Assert.True(steps < tokens, $"{tokens} tokens took {steps} decoding steps: the requests did not share steps");
        for (int i = 0; i < cases.Length; i++)
        {
            var c = cases[i];
            var want = SamplerReference(server, c.User, 1, new SamplingParams(c.Temperature, 0, c.TopP), c.Seed, c.MaxTokens)[0];
            var got = results[i].ContentTokenLogProbabilities;
            Assert.Equal(want.Tokens.Length, got.Count);
            Assert.Equal(want.LogProbs, got.Select(d => d.LogProbability).ToArray());
        }
    }

    [Fact]
    public async Task SeveralChoicesEachFollowTheirOwnStream()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 4));
        using var http = new HttpClient();
        var body = new JsonObject
        {
            ["model"] = "tiny", ["n"] = 3, ["seed"] = 77, ["max_tokens"] = 25, ["logprobs"] = true,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Tell me" }),
        };
        // The typed client has no n; its protocol method sends the raw body, as any OpenAI client can.
        var client = Client(server);
        var result = await client.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(body.ToJsonString())), new RequestOptions { CancellationToken = Ct });
        var json = JsonNode.Parse(result.GetRawResponse().Content.ToString())!;
        var choices = json["choices"]!.AsArray();
        Assert.Equal(3, choices.Count);
        var want = SamplerReference(server, "Tell me", 3, new SamplingParams(1f), 77, 25);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(i, (int)choices[i]!["index"]!);
            var lps = choices[i]!["logprobs"]!["content"]!.AsArray().Select(e => (float)e!["logprob"]!).ToArray();
            Assert.Equal(want[i].LogProbs, lps);
        }
        Assert.NotEqual(want[0].Tokens, want[1].Tokens);
        Assert.Equal(want.Sum(g => g.Tokens.Length), (int)json["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task SeveralStreamedChoicesArriveOnePerChunkAndAddUpToTheWholeOnes()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 8));
        using var http = new HttpClient { BaseAddress = server.Host.BaseAddress };
        JsonObject Body(bool stream) => new()
        {
            ["model"] = "tiny", ["n"] = 2, ["seed"] = 21, ["max_tokens"] = 30, ["stream"] = stream,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Go" }),
        };
        var whole = JsonNode.Parse(await (await http.PostAsync("v1/chat/completions", new StringContent(Body(false).ToJsonString()), Ct)).Content.ReadAsStringAsync(Ct))!;

        var response = await http.PostAsync("v1/chat/completions", new StringContent(Body(true).ToJsonString()), Ct);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", lines[^1]);
        var texts = new[] { new System.Text.StringBuilder(), new System.Text.StringBuilder() };
        var finishes = new string?[2];
        foreach (var line in lines[..^1])
        {
            Assert.StartsWith("data: ", line);
            var chunk = JsonNode.Parse(line["data: ".Length..])!;
            Assert.Equal("chat.completion.chunk", (string)chunk["object"]!);
            var choice = Assert.Single(chunk["choices"]!.AsArray())!;
            int index = (int)choice["index"]!;
            texts[index].Append((string?)choice["delta"]!["content"] ?? "");
            finishes[index] ??= (string?)choice["finish_reason"];
        }
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal((string)whole["choices"]![i]!["message"]!["content"]!, texts[i].ToString());
            Assert.Equal((string)whole["choices"]![i]!["finish_reason"]!, finishes[i]);
        }
        Assert.NotEqual(texts[0].ToString(), texts[1].ToString());
    }

    [Fact]
    public async Task StreamedCompletionCarriesTheSameTextAsTheWholeOne()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 6));
        var client = Client(server);
        var options = new ChatCompletionOptions { Temperature = 0.8f, Seed = 5, MaxOutputTokenCount = 40, IncludeLogProbabilities = true };
        ChatCompletion whole = await client.CompleteChatAsync([new UserChatMessage("Say something")], options, Ct);

        var text = new System.Text.StringBuilder();
        var logprobs = new List<float>();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Say something")], options, Ct))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            logprobs.AddRange(update.ContentTokenLogProbabilities.Select(d => d.LogProbability));
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.True(updates > 3, $"only {updates} updates");
        Assert.Equal(whole.Content.Count == 0 ? "" : whole.Content[0].Text, text.ToString());
        Assert.Equal(whole.ContentTokenLogProbabilities.Select(d => d.LogProbability), logprobs);
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage); // the library asks for include_usage
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task ToolCallsAndReasoningComeBackInOpenAiShape()
    {
        var tool = ChatTool.CreateFunctionTool("add", "Adds two integers",
            BinaryData.FromString("""{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]}"""));
        var asked = new[] { Message.System("You are a calculator."), Message.User("What is 2+3?") };
        // The tool as the chat template shows it: the Responses API shape the environments train with.
        var toolDef = new ToolDefinition("add", "Adds two integers",
            JsonNode.Parse("""{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]}""")!.AsObject());
        var checkpoint = TestCheckpoints.Scripted(new ChatTranscript(asked, [toolDef]),
            """<think>Use the tool.</think><tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call><|end|>""", context: 512);
        await using var server = await TestServer.StartAsync(checkpoint);
        var client = Client(server);
        var options = new ChatCompletionOptions { Tools = { tool }, Temperature = 0f };
        var result = await client.CompleteChatAsync([new SystemChatMessage("You are a calculator."), new UserChatMessage("What is 2+3?")], options, Ct);
        ChatCompletion completion = result.Value;

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("add", call.FunctionName);
        Assert.Equal(ChatToolCallKind.Function, call.Kind);
        Assert.False(string.IsNullOrEmpty(call.Id));
        var args = JsonNode.Parse(call.FunctionArguments.ToString())!;
        Assert.Equal(2, (int)args["a"]!);
        Assert.Equal(3, (int)args["b"]!);
        var raw = JsonNode.Parse(result.GetRawResponse().Content.ToString())!;
        Assert.Equal("Use the tool.", (string)raw["choices"]![0]!["message"]!["reasoning_content"]!);

        // Streamed: the call arrives as one tool-call update with its id, name and arguments.
        var calls = new List<StreamingChatToolCallUpdate>();
        ChatFinishReason? finish = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new SystemChatMessage("You are a calculator."), new UserChatMessage("What is 2+3?")], options, Ct))
        {
            calls.AddRange(update.ToolCallUpdates);
            finish ??= update.FinishReason;
        }
        var streamed = Assert.Single(calls);
        Assert.Equal("add", streamed.FunctionName);
        Assert.Equal(call.FunctionArguments.ToString(), streamed.FunctionArgumentsUpdate.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);

        // The conversation continues with the call and its result: the server renders it (one more turn).
        var next = await client.CompleteChatAsync(
            [new SystemChatMessage("You are a calculator."), new UserChatMessage("What is 2+3?"), new AssistantChatMessage([call]), new ToolChatMessage(call.Id, "5")],
            new ChatCompletionOptions { Tools = { tool }, Temperature = 0f, MaxOutputTokenCount = 3 }, Ct);
        var followUp = new ChatTemplate(server.Tokenizer).RenderGenerationPrompt(new ChatTranscript(
            [.. asked, Message.Assistant("", toolCalls: [new ToolCall(call.Id, "add", JsonNode.Parse(call.FunctionArguments.ToString())!.AsObject())]), new Message(Role.Tool, "5", ToolCallId: call.Id)], [toolDef]));
        Assert.Equal(followUp.Length, next.Value.Usage.InputTokenCount);
    }

    [Fact]
    public async Task StopStringsEndTheChoiceAndAreLeftOut()
    {
        var conversation = new ChatTranscript([Message.User("Greet")]);
        await using var server = await TestServer.StartAsync(TestCheckpoints.Scripted(conversation, "Hello world, and more.<|end|>"));
        var client = Client(server);
        ChatCompletion plain = await client.CompleteChatAsync([new UserChatMessage("Greet")], new ChatCompletionOptions { Temperature = 0f }, Ct);
        Assert.Equal("Hello world, and more.", plain.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, plain.FinishReason);

        var options = new ChatCompletionOptions { Temperature = 0f, StopSequences = { "world" } };
        ChatCompletion cut = await client.CompleteChatAsync([new UserChatMessage("Greet")], options, Ct);
        Assert.Equal("Hello", cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
        var streamed = new System.Text.StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Greet")], options, Ct))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal("Hello", streamed.ToString());

        ChatCompletion shortOne = await client.CompleteChatAsync([new UserChatMessage("Greet")], new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 5 }, Ct);
        Assert.Equal("Hello", shortOne.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, shortOne.FinishReason);
    }

    [Fact]
    public async Task AnEndOfTextTokenEndsTheChoiceWithoutShowingInIt()
    {
        var conversation = new ChatTranscript([Message.User("Greet")]);
        await using var server = await TestServer.StartAsync(TestCheckpoints.Scripted(conversation, "Hi there<|endoftext|>"));
        var client = Client(server);
        ChatCompletion whole = await client.CompleteChatAsync([new UserChatMessage("Greet")], new ChatCompletionOptions { Temperature = 0f }, Ct);
        Assert.Equal("Hi there", whole.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, whole.FinishReason);
        Assert.Equal(9, whole.Usage.OutputTokenCount); // the stop token is generated, and counted
        var streamed = new System.Text.StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Greet")], new ChatCompletionOptions { Temperature = 0f }, Ct))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal("Hi there", streamed.ToString());
    }

    [Fact]
    public async Task ModelsAndHealthAreListed()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 2));
        var models = new OpenAIModelClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = server.V1 });
        var list = (await models.GetModelsAsync(Ct)).Value;
        Assert.Equal("tiny", Assert.Single(list).Id);
        Assert.Equal("tiny", (await models.GetModelAsync("tiny", Ct)).Value.Id);
        using var http = new HttpClient();
        var health = JsonNode.Parse(await http.GetStringAsync(new Uri(server.Host.BaseAddress, "health"), Ct))!;
        Assert.Equal("ok", (string)health["status"]!);
    }
}
