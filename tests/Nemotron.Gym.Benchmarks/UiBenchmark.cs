using System.Diagnostics;
using System.Globalization;
using Nemotron.Gym.Store;
using Nemotron.Gym.Ui;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// The web UI over a large store: generates a run of N rollouts (default 1,000,000 over 1,000 steps, four environments)
/// into a SQLite file, serves it with the real UI server on loopback, and times the pages a person opens first:
/// the rollout browser's first page, a filtered and sorted page, one rollout, and the dashboard with its metrics.
/// Figures are request times as the client sees them on loopback (server time plus a loopback round trip), median of 7.
/// </summary>
public sealed class UiBenchmark : IBenchmark
{
    public string Name => "ui";
    public string Description => "gym ui page times over a generated store ([--rollouts 1000000] [--steps 1000] [--store PATH.db: reuse or keep])";

    public async Task<int> RunAsync(string[] args)
    {
        int rollouts = 1_000_000, steps = 1000;
        string? storePath = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rollouts": rollouts = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--steps": steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--store": storePath = Path.GetFullPath(args[++i]); break;
                default: Console.Error.WriteLine($"ui: unknown argument '{args[i]}'"); return 2;
            }
        }
        bool keep = storePath != null;
        string dir = Directory.CreateTempSubdirectory("gym-ui-bench-").FullName;
        storePath ??= Path.Combine(dir, "rollouts.db");
        const string run = "bench";
        try
        {
            if (!File.Exists(storePath)) await GenerateAsync(storePath, run, rollouts, steps);
            else Console.WriteLine($"using the store at {storePath}");

            await using var server = await UiServer.StartAsync(new UiOptions("sqlite:" + storePath, Port: 0));
            using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
            StoredRollout? some;
            await using (var browser = await RolloutBrowsers.OpenReadOnlyAsync("sqlite:" + storePath))
            {
                var page = await browser.ReadRolloutPageAsync(new RolloutFilter { RunId = run, FromStep = steps / 2, Limit = 1 });
                some = await browser.ReadRolloutAsync(run, page.Rows[0].Step, page.Rows[0].TaskId, page.Rows[0].SampleIndex);
            }
            var pages = new (string Name, string Path)[]
            {
                ("browser, first page", $"/rollouts?run={run}"),
                ("browser, filtered + sorted", $"/rollouts?run={run}&env=math&rmin=0.5&from={steps / 5}&to={steps * 4 / 5}&sort=reward&desc=yes"),
                ("browser, filtered by task", $"/rollouts?run={run}&task={Uri.EscapeDataString(some!.TaskId)}"),
                ("browser, text search", $"/rollouts?run={run}&q=needle-{steps / 2}&from={steps / 2}&to={steps / 2}"),
                ("rollout page", $"/rollout?run={run}&step={some.Step}&task={Uri.EscapeDataString(some.TaskId)}&sample={some.SampleIndex}"),
                ("group page", $"/group?run={run}&step={some.Step}&task={Uri.EscapeDataString(some.TaskId)}"),
                ("dashboard page", $"/run?id={run}"),
                ($"dashboard data ({steps} steps)", $"/api/metrics?run={run}"),
                ("runs page", "/"),
            };
            Console.WriteLine($"{"page",-34} {"median ms",10} {"min ms",8} {"bytes",10}");
            foreach (var (name, path) in pages)
            {
                var times = new List<double>();
                long bytes = 0;
                for (int i = 0; i < 8; i++)
                {
                    var sw = Stopwatch.StartNew();
                    using var response = await http.GetAsync(path);
                    byte[] body = await response.Content.ReadAsByteArrayAsync();
                    sw.Stop();
                    if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{path}: HTTP {(int)response.StatusCode}");
                    bytes = body.Length;
                    if (i > 0) times.Add(sw.Elapsed.TotalMilliseconds); // the first request warms the connection and JIT
                }
                times.Sort();
                Console.WriteLine($"{name,-34} {times[times.Count / 2],10:F1} {times[0],8:F1} {bytes,10}");
            }
            return 0;
        }
        finally
        {
            if (!keep) Directory.Delete(dir, true);
        }
    }

    /// <summary>A run of <paramref name="count"/> rollouts over <paramref name="steps"/> steps with step metrics, written through the store's own insert path.</summary>
    private static async Task GenerateAsync(string path, string run, int count, int steps)
    {
        var sw = Stopwatch.StartNew();
        string[] envs = ["math", "reasoning", "instruction_following", "tool_use"];
        const int group = 8;
        int perStep = Math.Max(group, count / steps / group * group);
        var rng = new Random(17);
        await using var store = await RolloutStores.OpenAsync("sqlite:" + path);
        var now = DateTimeOffset.UtcNow;
        await store.PutRunAsync(new RunRecord(run, "completed", steps, steps, "environments:\n" + string.Join("\n", envs.Select(e => $"  - {{name: {e}, weight: 1}}")), now, now));
        int written = 0;
        var batch = new List<StoredRollout>(perStep);
        for (int step = 1; step <= steps && written < count; step++)
        {
            batch.Clear();
            for (int k = 0; k < perStep && written + batch.Count < count; k++)
            {
                int task = k / group, generated = 16 + rng.Next(64);
                string env = envs[task % envs.Length];
                double reward = rng.Next(5) / 4.0;
                var tokens = new int[32 + generated];
                var mask = new byte[tokens.Length];
                var lp = new float[tokens.Length];
                for (int t = 0; t < tokens.Length; t++)
                {
                    tokens[t] = rng.Next(256);
                    if (t >= 32) { mask[t] = 1; lp[t] = -(float)rng.NextDouble() * 3; }
                }
                batch.Add(new StoredRollout
                {
                    RunId = run, Step = step, TaskId = $"{env}-train-{(step * 131 + task) % 5000:D5}", Environment = env, SampleIndex = k % group,
                    Tokens = tokens, Generated = mask, SamplerLogProbs = lp,
                    Messages = [Nemotron.Gym.Conversation.Message.System("Answer briefly."), Nemotron.Gym.Conversation.Message.User($"What is {step} plus {k}? needle-{step}"), Nemotron.Gym.Conversation.Message.Assistant($"<think>{step}+{k}</think>The answer is {step + k}.")],
                    Reward = reward, ShapedReward = reward, Components = new Dictionary<string, double> { ["correct"] = reward },
                    Reason = reward == 1 ? "matched" : "wrong answer", Evidence = new Dictionary<string, string> { ["extracted"] = (step + k).ToString(CultureInfo.InvariantCulture) },
                    Truncated = generated > 76, Turns = 1, GenerateSeconds = 0.01, EnvironmentSeconds = 0.001, CreatedAt = now,
                    Advantage = reward - 0.5,
                });
            }
            written += await store.AddRolloutsAsync(batch);
            await store.PutStepMetricsAsync(run, step, $$"""
                {"stage":"grpo","step":{{step}},"reward_mean":{{rng.NextDouble():F4}},"reward_by_env":{"math":{{rng.NextDouble():F4}},"reasoning":{{rng.NextDouble():F4}},"instruction_following":{{rng.NextDouble():F4}},"tool_use":{{rng.NextDouble():F4}}},"pass_rate":0.3,"advantage_mean":0,"advantage_std":0.4,"ratio_mean":1,"ratio_max":1.3,"clip_fraction":0.01,"is_oob_fraction":0.002,"mismatch":0.01,"kl":0.001,"entropy":1.2,"response_length_mean":48,"response_length_max":80,"dropped_group_fraction":0.1,"generation_rounds":3,"loss":0.1,"grad_norm":0.5,"lr":0.0001,"time_generate_s":2,"time_grade_s":0.2,"time_train_s":3,"generate_tokens_per_second":5000,"train_tokens_per_second":9000,"tasks_retired":0}
                """);
            if (step % 100 == 0) Console.WriteLine($"  generated {written:N0} rollouts ({step} steps) in {sw.Elapsed.TotalSeconds:F0} s");
        }
        Console.WriteLine($"generated {written:N0} rollouts over {steps} steps in {sw.Elapsed.TotalSeconds:F0} s ({new FileInfo(path).Length / 1e6:F0} MB)");
    }
}
