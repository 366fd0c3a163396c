using System.Diagnostics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Judges;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Rewards.Judging;
using Nemotron.Gym.Serve;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Judge comparisons per second through a silo's judge pool (the OpenAI client, retries, breaker, cache, HTTP):
/// (1) against the scripted judge server, which answers at once, so the figure is the pool's own ceiling; with the
/// cache on, a replay of the same comparisons; (2) against `gym serve` over a randomly initialised model (2 layers,
/// width 64, context 2048, byte tokenizer), pairwise groups graded end to end, so the figure is bounded by generation.
/// Args: [--comparisons N] [--concurrency 1,16,64] [--serve-groups G] [--max-tokens T].
/// </summary>
public sealed class JudgeBenchmark : IBenchmark
{
    public string Name => "judge";
    public string Description => "judge comparisons/s through the pool: scripted endpoint (pool ceiling, cache replay) and gym serve [--comparisons 2000] [--serve-groups 4]";

    public async Task<int> RunAsync(string[] args)
    {
        int comparisons = int.Parse(Arg(args, "--comparisons", "2000"));
        var levels = Arg(args, "--concurrency", "1,16,64").Split(',').Select(int.Parse).ToArray();
        int serveGroups = int.Parse(Arg(args, "--serve-groups", "4")), maxTokens = int.Parse(Arg(args, "--max-tokens", "32"));
        var ct = CancellationToken.None;
        Console.WriteLine($"{Environment.ProcessorCount} cores");

        await using (var scripted = await ScriptedJudgeServer.StartAsync(_ => ScriptedJudgeReply.Verdict(4, 2, 2)))
        {
            Console.WriteLine($"scripted endpoint, {comparisons} pairwise comparisons (distinct prompts), verdict parsed each time");
            Console.WriteLine($"{"concurrency",12} {"cmp/s",10} {"p50 ms",8} {"p99 ms",8} {"replay cmp/s",13}");
            foreach (int c in levels)
            {
                var pool = new JudgePool(new JudgeSettings { BaseUrl = scripted.BaseUrl, Model = "scripted", MaxConcurrency = c, TimeoutSeconds = 30 });
                await Compare(pool, 0, Math.Min(50, comparisons), c, ct, warm: true);
                var (rate, p50, p99) = await Compare(pool, 1000, comparisons, c, ct);
                // The same comparisons again: every verdict from the cache (a replayed episode).
                var (replay, _, _) = await Compare(pool, 1000, comparisons, c, ct);
                Console.WriteLine($"{c,12} {rate,10:F0} {p50,8:F2} {p99,8:F2} {replay,13:F0}");
            }
        }

        using var backend = new CpuBackend(0);
        var tokenizer = new ByteTokenizer();
        using var model = new GptModel(backend, new GptConfig(Layers: 2, Width: 64, Heads: 4, Context: 2048, Vocab: tokenizer.VocabSize));
        model.InitializeWeights(1);
        await using var serve = await ServeHost.StartAsync(model, tokenizer, new ServeOptions { Port = 0, MaxBatch = 32, ModelName = "judge" });
        Console.WriteLine($"gym serve judge: {model.Config.ParameterCount:N0} parameters, {maxTokens} tokens a verdict, {serveGroups} groups of 4 (circular + swap: 8 comparisons a group)");
        Console.WriteLine($"{"concurrency",12} {"cmp/s",10} {"s/group",8} {"masked",7}");
        foreach (int c in new[] { 1, 16 })
        {
            var pool = new JudgePool(new JudgeSettings { BaseUrl = new Uri(serve.BaseAddress, "v1").ToString(), Model = "judge", MaxConcurrency = c, MaxTokens = maxTokens, TimeoutSeconds = 300, CacheEntries = 0 });
            // Warm-up: the server's first request compiles its hot paths and grows the KV cache.
            await pool.CompleteAsync(new JudgeRequest(JudgePrompts.Pairwise([Message.User("warm-up")], "a", "b", null)), ct);
            long before = pool.Stats.Requests;
            var clock = Stopwatch.StartNew();
            int masked = 0;
            for (int g = 0; g < serveGroups; g++)
            {
                var members = Enumerable.Range(0, 4).Select(i => new GroupMember(i,
                    [Message.User($"Question {g}: explain how tides work."), Message.Assistant($"Answer {i} to {g}: the Moon's gravity pulls the oceans, {new string('.', 10 * i)}")],
                    Grade.Of(0, "provisional"), false)).ToList();
                var grades = await GroupJudging.GradeAsync(pool, true, members, null, new GroupJudgingSettings(Pairing.Circular, Swap: true, ParseRetries: 0), ct);
                masked += grades.Count(x => x.Masked);
            }
            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"{c,12} {(pool.Stats.Requests - before) / seconds,10:F2} {seconds / serveGroups,8:F2} {masked,7}");
        }
        Console.WriteLine("(a random small model writes no readable verdict, so its groups are masked: the figure is the machinery's, not a judge's)");
        return 0;
    }

    private static async Task<(double Rate, double P50, double P99)> Compare(JudgePool pool, int offset, int n, int concurrency, CancellationToken ct, bool warm = false)
    {
        var latencies = new double[n];
        int next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            for (int i = Interlocked.Increment(ref next); i < n; i = Interlocked.Increment(ref next))
            {
                var messages = JudgePrompts.Pairwise([Message.User($"Prompt {offset + i}: explain tides.")], "The Moon pulls the sea.", "Wind.", null);
                long t0 = Stopwatch.GetTimestamp();
                var answer = await pool.CompleteAsync(new JudgeRequest(messages), ct);
                if (!answer.IsOk || VerdictParser.Pairwise(answer.Text).Value == null) throw new InvalidOperationException($"comparison {i}: {answer.Error}");
                latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        if (warm) return (0, 0, 0);
        Array.Sort(latencies);
        return (n / seconds, latencies[n / 2], latencies[Math.Min(n - 1, (int)(n * 0.99))]);
    }

    private static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
