using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Store;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Runs.Evaluation;

/// <summary>An environment to evaluate on, with the settings its tasks are generated with.</summary>
/// <param name="Name">The environment's name.</param>
/// <param name="Settings">Its settings (difficulty, constraints, ...); empty = its defaults.</param>
public sealed record EvalEnvironment(string Name, IReadOnlyDictionary<string, string> Settings);

/// <summary>One task's outcome: its greedy episode and how many of its sampled episodes passed.</summary>
/// <param name="TaskId">The environment's task id.</param>
/// <param name="GreedyReward">The grade reward of the greedy episode.</param>
/// <param name="GreedyPassed">The greedy reward reached the pass threshold.</param>
/// <param name="GreedyTokens">Tokens the policy generated in the greedy episode.</param>
/// <param name="GreedyTruncated">The greedy episode was cut off at a length limit.</param>
/// <param name="Samples">Sampled episodes (n).</param>
/// <param name="SamplesPassed">Sampled episodes that passed (c).</param>
/// <param name="GreedyNotJudged">The greedy episode got no verdict (a sandbox or judge failed): it counts neither as a
/// pass nor as a failure, and the task is left out of pass@1 and the mean reward.</param>
/// <param name="SamplesNotJudged">Sampled episodes without a verdict; pass@k uses the judged ones only.</param>
public sealed record TaskResult(string TaskId, double GreedyReward, bool GreedyPassed, int GreedyTokens, bool GreedyTruncated, int Samples, int SamplesPassed,
    bool GreedyNotJudged = false, int SamplesNotJudged = 0)
{
    /// <summary>Sampled episodes with a verdict.</summary>
    public int SamplesJudged => Samples - SamplesNotJudged;
}

/// <summary>The scores of one environment, with 95% intervals, and the per-task outcomes they came from.</summary>
public sealed class EnvironmentResult
{
    /// <summary>The environment.</summary>
    public required EvalEnvironment Environment { get; init; }
    /// <summary>The split evaluated.</summary>
    public required string Split { get; init; }
    /// <summary>Per task, in task order.</summary>
    public required IReadOnlyList<TaskResult> Tasks { get; init; }
    /// <summary>k of pass@k (0: no sampled episodes).</summary>
    public required int K { get; init; }
    /// <summary>Sampling temperature of the pass@k episodes.</summary>
    public required float Temperature { get; init; }

    /// <summary>Tasks whose greedy episode got a verdict: the ones pass@1 and the mean reward are over.</summary>
    public IReadOnlyList<TaskResult> JudgedTasks => _judged ??= [.. Tasks.Where(t => !t.GreedyNotJudged)];
    private IReadOnlyList<TaskResult>? _judged;
    /// <summary>Tasks whose greedy episode got no verdict (infrastructure failures, never counted as wrong answers).</summary>
    public int NotJudged => Tasks.Count(t => t.GreedyNotJudged);
    /// <summary>Fraction of judged tasks whose greedy episode passed (NaN when none was judged).</summary>
    public double Pass1 => JudgedTasks is { Count: > 0 } j ? j.Count(t => t.GreedyPassed) / (double)j.Count : double.NaN;
    /// <summary>Wilson 95% interval of <see cref="Pass1"/>.</summary>
    public Interval Pass1Interval => JudgedTasks is { Count: > 0 } j ? EvalStatistics.Wilson(j.Count(t => t.GreedyPassed), j.Count) : new Interval(double.NaN, double.NaN);
    /// <summary>Mean greedy reward over judged tasks (equals pass@1 for pass/fail environments; partial credit counts otherwise).</summary>
    public double MeanReward => JudgedTasks is { Count: > 0 } j ? j.Average(t => t.GreedyReward) : double.NaN;
    /// <summary>95% interval of <see cref="MeanReward"/>: Wilson when every reward is 0 or 1, the normal one otherwise.</summary>
    public Interval MeanRewardInterval => JudgedTasks is not { Count: > 0 } j ? new Interval(double.NaN, double.NaN)
        : j.All(t => t.GreedyReward is 0 or 1) ? EvalStatistics.Wilson(j.Count(t => t.GreedyReward == 1), j.Count)
        : EvalStatistics.MeanInterval([.. j.Select(t => t.GreedyReward)]);
    /// <summary>Tasks with at least k judged samples: the ones pass@k is over.</summary>
    private IReadOnlyList<TaskResult> PassKTasks => _passKTasks ??= [.. Tasks.Where(t => t.SamplesJudged >= K)];
    private IReadOnlyList<TaskResult>? _passKTasks;
    /// <summary>Mean over tasks of the unbiased pass@k estimate from their judged samples (NaN without sampled episodes).</summary>
    public double PassK => K == 0 || PassKTasks.Count == 0 ? double.NaN : PassKTasks.Average(t => EvalStatistics.PassAtK(t.SamplesJudged, t.SamplesPassed, K));
    /// <summary>95% interval of <see cref="PassK"/> over tasks.</summary>
    public Interval PassKInterval => K == 0 || PassKTasks.Count == 0 ? new Interval(double.NaN, double.NaN)
        : EvalStatistics.MeanInterval([.. PassKTasks.Select(t => EvalStatistics.PassAtK(t.SamplesJudged, t.SamplesPassed, K))]);
    /// <summary>Fraction of judged sampled episodes that passed.</summary>
    public double SampledPassRate => K == 0 || Tasks.Sum(t => t.SamplesJudged) == 0 ? double.NaN : Tasks.Sum(t => t.SamplesPassed) / (double)Tasks.Sum(t => t.SamplesJudged);
    /// <summary>Mean generated tokens of the greedy episodes.</summary>
    public double MeanLength => Tasks.Average(t => t.GreedyTokens);
    /// <summary>Fraction of greedy episodes cut off at a length limit.</summary>
    public double TruncationRate => Tasks.Count(t => t.GreedyTruncated) / (double)Tasks.Count;

    /// <summary>One JSON object: the scores, their intervals, and the settings that produced them.</summary>
    public JsonObject ToJson()
    {
        var settings = new JsonObject();
        foreach (var (k, v) in Environment.Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal)) settings[k] = v;
        var json = new JsonObject
        {
            ["environment"] = Environment.Name, ["settings"] = settings, ["split"] = Split, ["tasks"] = Tasks.Count, ["not_judged"] = NotJudged,
            ["pass@1"] = Pass1, ["pass@1_ci95"] = Pair(Pass1Interval),
            ["mean_reward"] = MeanReward, ["mean_reward_ci95"] = Pair(MeanRewardInterval),
            ["mean_length"] = MeanLength, ["truncation_rate"] = TruncationRate,
        };
        if (K > 0)
        {
            json["k"] = K;
            json["samples_per_task"] = Tasks[0].Samples;
            json["temperature"] = Temperature;
            json[$"pass@{K}"] = PassK;
            json[$"pass@{K}_ci95"] = Pair(PassKInterval);
            json["sampled_pass_rate"] = SampledPassRate;
            json["samples_not_judged"] = Tasks.Sum(t => t.SamplesNotJudged);
        }
        return json;
    }

    private static JsonArray Pair(Interval i) => [i.Low, i.High];
}

/// <summary>
/// Scores a checkpoint on environments over the same path training uses: tasks listed by the environment grains,
/// episodes on episode grains, turns generated by the <see cref="RolloutCollector"/>. Per task one greedy episode
/// (pass@1, mean reward, length, truncation) and n sampled ones (pass@k). Every graded episode goes to the rollout
/// store under the evaluation's run id, step 0 for the greedy episodes and step 1 for the sampled ones, so it can be
/// browsed like a training run's rollouts. Deterministic: the same checkpoint, settings and seed give the same
/// numbers.
/// </summary>
public static class PolicyEvaluation
{
    /// <summary>The store step of the greedy episodes.</summary>
    public const int GreedyStep = 0;
    /// <summary>The store step of the sampled episodes.</summary>
    public const int SampledStep = 1;

    /// <summary>Evaluates <paramref name="model"/> on each environment in turn.</summary>
    /// <param name="model">The policy.</param>
    /// <param name="template">Its chat template (over its tokenizer).</param>
    /// <param name="grains">The cluster the episodes run on.</param>
    /// <param name="environments">What to evaluate on.</param>
    /// <param name="settings">Split, count, k, temperature, seed, limits.</param>
    /// <param name="store">Where every graded episode goes.</param>
    /// <param name="runId">The evaluation's run id in the store; rollouts stored under it before are replaced.</param>
    /// <param name="describe">What the run record says the evaluation was (the store lists it as its config).</param>
    /// <param name="progress">Told when an environment is done.</param>
    /// <param name="cancellation">Stops the evaluation.</param>
    public static async Task<IReadOnlyList<EnvironmentResult>> RunAsync(GptModel model, ChatTemplate template, IGrainFactory grains,
        IReadOnlyList<EvalEnvironment> environments, EvalSettings settings, IRolloutStore store, string runId, string describe,
        Action<EnvironmentResult>? progress, CancellationToken cancellation)
    {
        settings.Validate("eval");
        if (environments.Count == 0) throw new ArgumentException("evaluate on at least one environment");
        var created = DateTimeOffset.UtcNow;
        await store.DeleteRolloutsAfterAsync(runId, -1, cancellation);
        await store.PutRunAsync(new RunRecord(runId, "running", 0, 2, describe, created, created), cancellation);

        var greedy = new RolloutSettings { MaxNewTokens = settings.MaxNewTokens, MaxTurns = settings.MaxTurns, MaxBatch = settings.MaxBatch, Temperature = 0 };
        var sampled = new RolloutSettings { MaxNewTokens = settings.MaxNewTokens, MaxTurns = settings.MaxTurns, MaxBatch = settings.MaxBatch, Temperature = settings.Temperature };
        var results = new List<EnvironmentResult>();
        foreach (var env in environments)
        {
            var spec = new TaskSetSpec(env.Name, env.Settings, settings.Split, settings.Count, settings.TaskSeed);
            var source = await GrainEpisodeSource.CreateAsync(grains, $"{runId}/{env.Name}", [spec]);
            if (source.Tasks.Count == 0) throw new InvalidOperationException($"{env.Name}: the {settings.Split} split gave no tasks");

            var (greedyGroups, _) = await new RolloutCollector(model, template, greedy).CollectAsync(source.Tasks, 1, source, settings.Seed, cancellation);
            await Store(store, runId, GreedyStep, greedyGroups, template, cancellation);
            var passes = new int[source.Tasks.Count];
            var notJudged = new int[source.Tasks.Count];
            int n = settings.SamplesPerTask;
            if (n > 0)
            {
                var (sampledGroups, _) = await new RolloutCollector(model, template, sampled).CollectAsync(source.Tasks, n, source, settings.Seed, cancellation);
                await Store(store, runId, SampledStep, sampledGroups, template, cancellation);
                for (int i = 0; i < passes.Length; i++)
                {
                    passes[i] = sampledGroups[i].Rollouts.Count(r => !r.Grade.Masked && r.Grade.Reward >= settings.PassThreshold);
                    notJudged[i] = sampledGroups[i].Rollouts.Count(r => r.Grade.Masked);
                }
            }
            var tasks = greedyGroups.Select((g, i) =>
            {
                var r = g.Rollouts[0];
                // Ids without the environment prefix the episode source adds: the ids the environment itself uses.
                string id = g.Task.Id[(env.Name.Length + 1)..];
                bool judged = !r.Grade.Masked;
                return new TaskResult(id, r.Grade.Reward, judged && r.Grade.Reward >= settings.PassThreshold, r.GeneratedCount, r.Truncated, n, passes[i],
                    GreedyNotJudged: !judged, SamplesNotJudged: notJudged[i]);
            }).ToList();
            var result = new EnvironmentResult { Environment = env, Split = settings.Split, Tasks = tasks, K = settings.K, Temperature = settings.Temperature };
            results.Add(result);
            progress?.Invoke(result);
        }
        var done = DateTimeOffset.UtcNow;
        await store.PutRunAsync(new RunRecord(runId, "evaluated", 2, 2, describe, created, done), cancellation);
        return results;
    }

    private static async Task Store(IRolloutStore store, string runId, int step, IReadOnlyList<RolloutGroup> groups, ChatTemplate template, CancellationToken cancellation)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var g in groups)
            foreach (var r in g.Rollouts) r.Reward = r.Grade.Reward; // no shaping in an evaluation
        await store.AddRolloutsAsync([.. groups.SelectMany(g => g.Rollouts).Select(r => GymRun.ToStored(r, runId, step, template.Tokenizer, now))], cancellation);
    }
}
