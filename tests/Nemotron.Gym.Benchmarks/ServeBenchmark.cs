using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Serve;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// `gym serve` throughput: C clients (1, 16, 64) each send R chat completions one after another over HTTP
/// to an in-process server, and the same prompts, seeds and lengths go through the model's offline batched
/// generation (<see cref="Sampler"/> with a batch of C) for comparison. Prints generated tokens/s for both,
/// their ratio, and the p50/p99 request latency. The model is a checkpoint (--checkpoint) or, by default, a
/// randomly initialised one of the demo's shape (4 layers, width 192, context 192, byte tokenizer).
/// Args: [--checkpoint DIR] [--clients 1,16,64] [--requests R] [--max-tokens N] [--device cpu|cuda].
/// </summary>
public sealed class ServeBenchmark : IBenchmark
{
    public string Name => "serve";
    public string Description => "gym serve tokens/s at 1, 16, 64 concurrent clients vs offline batched generation [--checkpoint DIR] [--requests 4] [--max-tokens 64]";

    public async Task<int> RunAsync(string[] args)
    {
        string? checkpoint = Arg(args, "--checkpoint", null);
        var clientCounts = Arg(args, "--clients", "1,16,64")!.Split(',').Select(int.Parse).ToArray();
        int requests = int.Parse(Arg(args, "--requests", "4")!), maxTokens = int.Parse(Arg(args, "--max-tokens", "64")!);
        string device = Arg(args, "--device", "cpu")!;

        using IComputeBackend backend = device == "cuda"
            ? Nemotron.Gym.Kernels.Cuda.CudaBackend.TryCreate(out string why) ?? throw new InvalidOperationException($"--device cuda: {why}")
            : new CpuBackend(0);
        GptModel model;
        ITokenizer tokenizer;
        if (checkpoint != null) (model, tokenizer) = Checkpoint.Load(checkpoint, backend);
        else
        {
            tokenizer = new ByteTokenizer();
            model = new GptModel(backend, new GptConfig(Layers: 4, Width: 192, Heads: 6, Context: 192, Vocab: tokenizer.VocabSize));
            model.InitializeWeights(1);
        }
        using var _ = model;
        int maxBatch = clientCounts.Max();
        Console.WriteLine($"model: {model.Config.ParameterCount:N0} parameters, context {model.Config.Context}; {backend.Description}; {Environment.ProcessorCount} cores");
        Console.WriteLine($"each client sends {requests} requests of up to {maxTokens} tokens (temperature 1, seeded); server batch {maxBatch}");

        await using var server = await ServeHost.StartAsync(model, tokenizer, new ServeOptions { Port = 0, MaxBatch = maxBatch, ModelName = "bench" });
        var template = new ChatTemplate(tokenizer);
        var specials = tokenizer.Specials;
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };
        string Question(int i) => $"Question {i}: what is {17 * i % 97} plus {31 * i % 89}?";

        // Warm-up: compiles the hot paths and grows the buffers.
        await Ask(http, Question(0), 0, 8);
        Console.WriteLine($"{"clients",8} {"serve tok/s",12} {"offline tok/s",14} {"ratio",6} {"p50 ms",8} {"p99 ms",8}");
        foreach (int clients in clientCounts)
        {
            var latencies = new List<double>();
            long tokens = 0;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
            {
                for (int r = 0; r < requests; r++)
                {
                    int i = c * requests + r;
                    var t0 = Stopwatch.GetTimestamp();
                    int n = await Ask(http, Question(i), i, maxTokens);
                    lock (latencies) latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    Interlocked.Add(ref tokens, n);
                }
            }));
            double serveRate = tokens / clock.Elapsed.TotalSeconds;

            // Offline: the same prompts, C at a time, through the sampler's own batched generation. Its streams are
            // (batch seed, index in batch) rather than the server's (request seed, 0), so the texts differ; the
            // lengths are drawn alike, and the rate is what is compared.
            using var sampler = new Sampler(model);
            long batchedTokens = 0;
            clock.Restart();
            for (int start = 0; start < clients * requests; start += clients)
            {
                var prompts = Enumerable.Range(start, clients).Select(i => template.RenderGenerationPrompt(new Nemotron.Gym.Conversation.ChatTranscript([Nemotron.Gym.Conversation.Message.User(Question(i))]))).ToList();
                batchedTokens += sampler.Generate(prompts, new GenerationOptions(maxTokens, new SamplingParams(1f), start, [specials.EndOfTurn, specials.EndOfText], MaxBatch: clients)).Sum(g => g.Tokens.Length);
            }
            double offlineRate = batchedTokens / clock.Elapsed.TotalSeconds;
            latencies.Sort();
            Console.WriteLine($"{clients,8} {serveRate,12:F0} {offlineRate,14:F0} {serveRate / offlineRate,6:F2} {latencies[latencies.Count / 2],8:F0} {latencies[(int)(latencies.Count * 0.99)],8:F0}");
        }
        return 0;
    }

    private static async Task<int> Ask(HttpClient http, string question, int seed, int maxTokens)
    {
        var body = new JsonObject
        {
            ["model"] = "bench", ["temperature"] = 1.0, ["seed"] = seed, ["max_tokens"] = maxTokens,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = question }),
        };
        using var response = await http.PostAsJsonAsync("v1/chat/completions", body);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"server answered {(int)response.StatusCode}: {text}");
        return (int)JsonNode.Parse(text)!["usage"]!["completion_tokens"]!;
    }

    private static string? Arg(string[] args, string name, string? fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
