using System.Text.Json.Nodes;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Runs;
using Nemotron.Gym.Serve.Tests;
using Nemotron.Gym.Store;
using Nemotron.Gym.TestSupport;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Judges.Tests;

/// <summary>`gym rl` over rlhf + math end to end: a silo whose judge pool calls a real endpoint, the trainer, the store.</summary>
public sealed class RlhfRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-rlhf-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed class Quiet : IRlObserver
    {
        public readonly List<GrpoStepMetrics> Steps = new();
        public void OnStep(GrpoStepMetrics m, int totalSteps) => Steps.Add(m);
        public void OnEval(int step, IReadOnlyDictionary<string, double> scores) { }
        public void OnMessage(string message) { }
    }

    private GymRunConfig Config(string name, string judgeUrl, string judgeModel)
    {
        string sft = Path.Combine(_dir, "sft");
        if (!Directory.Exists(sft))
        {
            using var backend = new CpuBackend();
            using var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 256));
            model.InitializeWeights(3);
            Checkpoint.Save(sft, model, new ByteTokenizer());
        }
        return new GymRunConfig
        {
            Out = Path.Combine(_dir, "runs", name), Init = sft, Device = "cpu", Seed = 5,
            Environments =
            [
                new BlendEntry { Name = "rlhf", Weight = 1, Settings = new() { ["swap"] = "false" }, TrainTasks = 6, EvalTasks = 0 },
                new BlendEntry { Name = "math", Weight = 1, Settings = new() { ["difficulty"] = "1" }, TrainTasks = 6, EvalTasks = 1 },
            ],
            Grpo = new GrpoSettings { TasksPerStep = 2, GroupSize = 2, DynamicFiltering = false },
            Rollout = new RolloutSettings { MaxNewTokens = 8 },
            Train = new RlTrainSettings { Steps = 2, EvalEvery = 2, CheckpointEvery = 0, WarmupSteps = 0 },
            Judge = new JudgeSettings { BaseUrl = judgeUrl, Model = judgeModel, MaxTokens = 16, TimeoutSeconds = 60, BackoffSeconds = 0.05 },
        };
    }

    private async Task<(List<StoredRollout> Rollouts, Quiet Seen, JudgePoolStats Judge)> RunAsync(GymRunConfig cfg)
    {
        var silo = await GymSilo.StartAsync(new GymSiloOptions
        {
            SiloPort = Ports.Free(), GatewayPort = Ports.Free(), PluginFolders = [RepoPaths.Plugins], StateStorage = "sqlite:" + Path.Combine(_dir, "gym-state.db"),
            Judge = cfg.Judge,
        });
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            var seen = new Quiet();
            await using var store = await RolloutStores.OpenAsync(cfg.StoreConnection);
            using var backend = new CpuBackend();
            var outcome = await GymRun.RunAsync(cfg, backend, grains, store, seen, TestContext.Current.CancellationToken);
            Assert.Equal(2, outcome.Steps);
            var rollouts = await store.ReadRolloutsAsync(new RolloutQuery(cfg.RunId)).ToListAsync();
            var pool = (JudgePool)silo.Services.GetService(typeof(JudgePool))!;
            return (rollouts, seen, pool.Stats);
        }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
        }
    }

    [Fact]
    public async Task ARunAgainstAScriptedJudgeRewardsRlhfFromTheVerdictsAndKeepsTheReasoning()
    {
        // Prefers the shorter reply, with reasoning the store must keep.
        await using var judge = await ScriptedJudgeServer.StartAsync(c =>
        {
            int a = c.Reply1!.Length, b = c.Reply2!.Length;
            return ScriptedJudgeReply.Say($"Reply {(a <= b ? 1 : 2)} is more concise.\n{{\"score_1\": {(a <= b ? 4 : 2)}, \"score_2\": {(a <= b ? 2 : 4)}, \"ranking\": {(a <= b ? 2 : 5)}}}");
        });
        var (rollouts, seen, stats) = await RunAsync(Config("scripted", judge.BaseUrl, "scripted"));

        var rlhf = rollouts.Where(r => r.Environment == "rlhf").ToList();
        Assert.NotEmpty(rlhf);
        Assert.Contains(rollouts, r => r.Environment == "math");
        foreach (var r in rlhf)
        {
            Assert.DoesNotContain("not judged", r.MaskedReason ?? "");
            Assert.True(r.Components.ContainsKey("judge_score"), r.Reason);
            Assert.Contains(r.Evidence, e => e.Key.StartsWith("judge_vs_", StringComparison.Ordinal) && e.Value.Contains("more concise"));
        }
        Assert.True(stats.Requests > 0);
        Assert.All(seen.Steps, m => Assert.Equal(0, m.NotJudgedFraction));
    }

    [Fact]
    public async Task ARunAgainstGymServeAsTheJudgeCompletesAndMasksWhatTheSmallJudgeCannotGrade()
    {
        await using var server = await TestServer.StartAsync(TestCheckpoints.Random(seed: 11, context: 2048));
        var cfg = Config("served", server.V1.ToString(), "tiny");
        var (rollouts, seen, stats) = await RunAsync(cfg);

        var rlhf = rollouts.Where(r => r.Environment == "rlhf").ToList();
        Assert.NotEmpty(rlhf);
        // A random small model writes no verdict: every rlhf rollout is masked with the reason, none scored.
        foreach (var r in rlhf)
        {
            Assert.StartsWith("not judged: the judge gave no verdict", r.MaskedReason);
            Assert.True(r.SequenceMasked);
        }
        // Math trains as usual beside it.
        Assert.All(rollouts.Where(r => r.Environment == "math"), r => Assert.DoesNotContain("not judged", r.MaskedReason ?? ""));
        Assert.True(stats.Requests > 0);
        Assert.Contains(seen.Steps, m => m.NotJudgedFraction > 0 && m.JudgeParseFailureRate == 1);
        var line = JsonNode.Parse(File.ReadLines(Path.Combine(cfg.Out, "metrics.jsonl")).First(l => l.Contains("\"judge_parse_failure_rate\"")))!;
        Assert.Equal(1.0, line["judge_parse_failure_rate"]!.GetValue<double>());
    }
}
