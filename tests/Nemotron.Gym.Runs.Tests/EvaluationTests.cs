using System.Numerics;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.Runs.Evaluation;
using Nemotron.Gym.Store;
using Nemotron.Gym.TestSupport;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Runs.Tests;

public sealed class EvalStatisticsTests
{
    // 1 − C(n−c, k)/C(n, k) with exact binomials: the definition the product form must match.
    private static double Exact(int n, int c, int k)
    {
        static BigInteger Choose(int a, int b)
        {
            if (b < 0 || b > a) return 0;
            BigInteger r = 1;
            for (int i = 1; i <= b; i++) r = r * (a - b + i) / i;
            return r;
        }
        var fail = Choose(n - c, k);
        var all = Choose(n, k);
        return 1 - (double)fail / (double)all;
    }

    [Theory]
    [InlineData(5, 0, 1, 0.0)]
    [InlineData(5, 5, 1, 1.0)]
    [InlineData(5, 2, 1, 0.4)]                 // pass@1 is the fraction passed
    [InlineData(5, 2, 2, 0.7)]                 // 1 − C(3,2)/C(5,2) = 1 − 3/10
    [InlineData(8, 3, 4, 1 - 5.0 / 70)]        // 1 − C(5,4)/C(8,4)
    [InlineData(8, 5, 4, 1.0)]                 // only 3 failures: any 4 draws hold a pass
    [InlineData(4, 1, 4, 1.0)]                 // n = k: pass@k is "any passed"
    [InlineData(4, 0, 4, 0.0)]
    public void PassAtKMatchesHandWorkedCases(int n, int c, int k, double expected) =>
        Assert.Equal(expected, EvalStatistics.PassAtK(n, c, k), 12);

    [Fact]
    public void PassAtKMatchesTheBinomialDefinitionEverywhere()
    {
        for (int n = 1; n <= 30; n++)
            for (int c = 0; c <= n; c++)
                for (int k = 1; k <= n; k++)
                    Assert.True(Math.Abs(Exact(n, c, k) - EvalStatistics.PassAtK(n, c, k)) < 1e-12, $"n={n} c={c} k={k}");
    }

    [Fact]
    public void PassAtKRefusesImpossibleCounts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => EvalStatistics.PassAtK(4, 5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => EvalStatistics.PassAtK(4, 1, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => EvalStatistics.PassAtK(0, 0, 1));
    }

    [Fact]
    public void WilsonIntervalMatchesTheFormulaAndStaysInsideZeroOne()
    {
        var i = EvalStatistics.Wilson(8, 10);
        Assert.Equal(0.4902, i.Low, 3);
        Assert.Equal(0.9433, i.High, 3);
        foreach (int n in new[] { 1, 3, 7, 200 })
        {
            Assert.Equal(0.0, EvalStatistics.Wilson(0, n).Low);   // exactly: the observed rate lies inside
            Assert.Equal(1.0, EvalStatistics.Wilson(n, n).High);
        }
        var none = EvalStatistics.Wilson(0, 200);
        Assert.InRange(none.High, 0.015, 0.025); // about 3.8/n: the "rule of three" at 95%
        var all = EvalStatistics.Wilson(200, 200);
        Assert.Equal(1, all.High, 12);
    }

    [Fact]
    public void PairedDifferenceIsTheMeanChangeWithANormalInterval()
    {
        double[] before = [0, 0, 1, 1, 0, 1, 0, 0];
        double[] after = [1, 0, 1, 1, 1, 1, 0, 1];
        var (d, ci) = EvalStatistics.PairedDifference(before, after);
        Assert.Equal(3.0 / 8, d, 12);
        // differences 1,0,0,0,1,0,0,1: sample sd = sqrt(15/56); half-width 1.96·sd/√8
        double half = EvalStatistics.Z95 * Math.Sqrt(15.0 / 56 / 8);
        Assert.Equal(d - half, ci.Low, 9);
        Assert.Equal(d + half, ci.High, 9);
        Assert.Throws<ArgumentException>(() => EvalStatistics.PairedDifference([1], [1, 0]));
    }

    [Fact]
    public void EpisodesWithoutAVerdictCountNeitherAsPassesNorAsFailures()
    {
        // Four tasks: one greedy pass, one greedy failure, two whose greedy episode a broken sandbox left unjudged;
        // 4 samples each, some of them unjudged too.
        TaskResult[] tasks =
        [
            new("a", 1, true, 10, false, 4, 2, GreedyNotJudged: false, SamplesNotJudged: 1),
            new("b", 0, false, 10, false, 4, 0, GreedyNotJudged: false, SamplesNotJudged: 0),
            new("c", 0, false, 10, false, 4, 1, GreedyNotJudged: true, SamplesNotJudged: 3),
            new("d", 0, false, 10, false, 4, 0, GreedyNotJudged: true, SamplesNotJudged: 4),
        ];
        var result = new EnvironmentResult { Environment = new EvalEnvironment("code", new Dictionary<string, string>()), Split = "heldout", Tasks = tasks, K = 2, Temperature = 1 };
        Assert.Equal(2, result.NotJudged);
        Assert.Equal(0.5, result.Pass1);
        Assert.Equal(0.5, result.MeanReward);
        // pass@2 over the tasks with at least 2 judged samples (a: n=3, c=2; b: n=4, c=0).
        Assert.Equal((EvalStatistics.PassAtK(3, 2, 2) + EvalStatistics.PassAtK(4, 0, 2)) / 2, result.PassK, 12);
        Assert.Equal(3.0 / 8, result.SampledPassRate, 12);
        Assert.Equal(2, result.ToJson()["not_judged"]!.GetValue<int>());

        var none = new EnvironmentResult { Environment = result.Environment, Split = "heldout", Tasks = tasks[2..], K = 2, Temperature = 1 };
        Assert.True(double.IsNaN(none.Pass1));
        Assert.True(double.IsNaN(none.PassK));
    }
}

/// <summary>
/// Two real checkpoints with known answers: a small model fine-tuned until it recites the reference answers of the
/// very held-out tasks the evaluation draws (it must score 1.0), and one fine-tuned on each task's prompt with
/// another task's answer (it must score 0). Both run through the whole evaluation path: environment grains, episode
/// grains, the rollout collector and the store.
/// </summary>
public sealed class EvaluationFixture : IAsyncLifetime
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("gym-eval-").FullName;
    public string Right => Path.Combine(Dir, "right", "final");
    public string Wrong => Path.Combine(Dir, "wrong", "final");
    public int Tasks { get; private set; }

    public static readonly EvalEnvironment Sorting = new("reasoning", new Dictionary<string, string> { ["difficulty"] = "1", ["families"] = "sorting" });
    public static EvalSettings Settings() => new() { Count = 4, K = 2, Samples = 3, Temperature = 0.3f, Seed = 7, MaxNewTokens = 24, MaxTurns = 1 };

    public async ValueTask InitializeAsync()
    {
        var loaded = PluginLoader.LoadAll([RepoPaths.Plugins]);
        var plugin = loaded.Environments.Single(e => e.Descriptor.Name == Sorting.Name);
        var env = await HostedEnvironment.StartAsync(plugin, Sorting.Settings, HostLimits.Default);
        var s = Settings();
        var refs = await ReferenceConversations.BuildAsync(env, new TaskQuery(s.Split, s.Count, s.TaskSeed));
        var convs = refs.Conversations;
        Tasks = convs.Count;
        Assert.Equal(s.Count, Tasks);
        // The wrong checkpoint learns each prompt with the next task's answer (sorted lists of other numbers).
        var wrong = convs.Select((c, i) => new Nemotron.Gym.Conversation.ChatTranscript(
            [.. c.Messages.Take(c.Messages.Count - 1), convs[(i + 1) % convs.Count].Messages[^1]])).ToList();
        Train("right", convs);
        Train("wrong", wrong);
    }

    private void Train(string name, IReadOnlyList<Nemotron.Gym.Conversation.ChatTranscript> conversations)
    {
        string data = Path.Combine(Dir, name + ".jsonl");
        File.WriteAllLines(data, conversations.Select(ChatJsonl.ToLine));
        using var backend = new CpuBackend();
        string init = Path.Combine(Dir, name + "-init");
        using (var model = new GptModel(backend, new GptConfig(Layers: 2, Width: 64, Heads: 2, Context: 192)))
        {
            model.InitializeWeights(11);
            Checkpoint.Save(init, model, new ByteTokenizer());
        }
        var cfg = new SftConfig
        {
            Out = Path.Combine(Dir, name), Init = init, Seed = 3, Device = "cpu",
            Data = new ChatDataSettings { Train = [data], Valid = [data] },
            Train = new TrainSettings { BatchSize = 4, Steps = 400, Lr = 3e-3f, MinLr = 1e-3f, WarmupSteps = 10, EvalEvery = 400, EvalBatches = 1, CheckpointEvery = 0 },
        };
        Stages.Sft(cfg, backend, new Quiet(), default);
    }

    private sealed class Quiet : ITrainingObserver
    {
        public void OnStep(StepReport report) { }
        public void OnEval(EvalReport report) { }
        public void OnMessage(string message) { }
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(Dir, true);
        return ValueTask.CompletedTask;
    }
}

public sealed class EvaluationTests(EvaluationFixture fixture) : IClassFixture<EvaluationFixture>
{
    private async Task<(IReadOnlyList<EnvironmentResult> Results, List<StoredRollout> Stored)> Evaluate(string checkpoint, string runId)
    {
        var silo = await GymSilo.StartAsync(new GymSiloOptions
        {
            SiloPort = Ports.Free(), GatewayPort = Ports.Free(), PluginFolders = [RepoPaths.Plugins],
            StateStorage = "sqlite:" + Path.Combine(fixture.Dir, "gym-state.db"),
        });
        try
        {
            var grains = (IGrainFactory)silo.Services.GetService(typeof(IGrainFactory))!;
            using var backend = new CpuBackend();
            var (model, tokenizer) = Checkpoint.Load(checkpoint, backend);
            using (model)
            {
                string connection = "sqlite:" + Path.Combine(fixture.Dir, "eval.db");
                await using var store = await RolloutStores.OpenAsync(connection);
                var results = await PolicyEvaluation.RunAsync(model, new ChatTemplate(tokenizer), grains, [EvaluationFixture.Sorting], EvaluationFixture.Settings(),
                    store, runId, "test", null, default);
                var stored = await store.ReadRolloutsAsync(new RolloutQuery(runId)).ToListAsync();
                return (results, stored);
            }
        }
        finally
        {
            await silo.StopAsync();
            silo.Dispose();
        }
    }

    [Fact]
    public async Task ACheckpointThatRecitesTheAnswersScoresOneAndEveryEpisodeIsStored()
    {
        var (results, stored) = await Evaluate(fixture.Right, "eval-right");
        var r = Assert.Single(results);
        Assert.Equal(fixture.Tasks, r.Tasks.Count);
        Assert.Equal(1.0, r.Pass1);
        Assert.Equal(1.0, r.MeanReward);
        Assert.Equal(1.0, r.PassK);
        Assert.Equal(0.0, r.TruncationRate);
        Assert.True(r.MeanLength > 3, $"mean length {r.MeanLength}");
        // One greedy episode (step 0) and n sampled ones (step 1) per task, graded, in the store.
        Assert.Equal(fixture.Tasks, stored.Count(s => s.Step == PolicyEvaluation.GreedyStep));
        Assert.Equal(fixture.Tasks * 3, stored.Count(s => s.Step == PolicyEvaluation.SampledStep));
        Assert.All(stored, s => Assert.Equal(1.0, s.Reward));
        Assert.All(stored, s => Assert.Equal("reasoning", s.Environment));
        var json = r.ToJson();
        Assert.Equal(1.0, (double)json["pass@1"]!);
        Assert.Equal(1.0, (double)json["pass@2"]!);
    }

    [Fact]
    public async Task ACheckpointThatGivesAnotherTasksAnswerScoresZero()
    {
        var (results, stored) = await Evaluate(fixture.Wrong, "eval-wrong");
        var r = Assert.Single(results);
        Assert.Equal(0.0, r.Pass1);
        Assert.Equal(0.0, r.MeanReward);
        Assert.Equal(0.0, r.PassK);
        Assert.Equal(0.0, r.Pass1Interval.Low);
        Assert.All(stored, s => Assert.Equal(0.0, s.Reward));
        // It did answer (a sorted list), so the zero is the verifier's, not an empty reply.
        Assert.All(stored.Where(s => s.Step == 0), s => Assert.Contains(",", s.Messages[^1].Content));
    }

    [Fact]
    public async Task TheSameCheckpointGivesTheSameNumbersTwiceAndAStoredRunIsReplacedNotDoubled()
    {
        var (a, storedA) = await Evaluate(fixture.Right, "eval-twice");
        var (b, storedB) = await Evaluate(fixture.Right, "eval-twice");
        Assert.Equal(a[0].ToJson().ToJsonString(), b[0].ToJson().ToJsonString());
        Assert.Equal(a[0].Tasks, b[0].Tasks);
        Assert.Equal(storedA.Count, storedB.Count);
        Assert.Equal(storedA.Select(s => string.Join(",", s.Tokens)), storedB.Select(s => string.Join(",", s.Tokens)));
    }
}

/// <summary>
/// The demo's held-out tasks are never trained on: for the environments and settings of its RL config, the held-out
/// set gym eval scores (seed + 1000) shares no prompt with the SFT data (training tasks from seed + 100 and
/// seed + 200, as the demo writes them) or the RL stage's training tasks (seed), for the default seed and the seeds
/// quoted in docs/learning-notes.md.
/// </summary>
public sealed class HeldOutDisjointnessTests
{
    [Fact]
    public async Task TheDemosHeldOutPromptsNeverAppearInItsTrainingData()
    {
        string yaml = File.ReadAllText(Path.Combine(RepoPaths.Root, "gym", "Nemotron.Gym.Cli", "Configs", "demo-rl.yaml")).Replace("{run}", "runs/x");
        var rl = Nemotron.Gym.Training.Config.YamlConfig.Parse<GymRunConfig>(yaml, "demo-rl.yaml");
        var eval = new EvalSettings { Count = 200 };
        var loaded = PluginLoader.LoadAll([RepoPaths.Plugins]);
        var problems = new List<string>();
        foreach (var entry in rl.Environments)
        {
            var plugin = loaded.Environments.Single(e => e.Descriptor.Name == entry.Name);
            var env = await HostedEnvironment.StartAsync(plugin, entry.Settings, HostLimits.Default);
            // The SFT data is written with the entry's sft_settings over its settings (DemoCommand).
            var sftEnv = entry.SftSettings.Count == 0 ? env : await HostedEnvironment.StartAsync(plugin, entry.SettingsForSft(), HostLimits.Default);
            foreach (int seed in new[] { 1, 11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43, 51, 52, 53, 84, 85, 86 })
            {
                static string Prompt(TaskRecord t) => string.Join("\n", t.Input.Select(m => m.Content));
                var tasks = await env.LoadTasksAsync(new TaskQuery(eval.Split, eval.Count, seed + 1000));
                var heldOut = tasks.Select(Prompt).ToHashSet();
                if (tasks.Count != eval.Count || heldOut.Count != eval.Count)
                    problems.Add($"{entry.Name} (seed {seed}): {tasks.Count} held-out tasks, {heldOut.Count} distinct prompts, {eval.Count} asked for");
                foreach (var (source, count, taskSeed) in new[] { (env, entry.TrainTasks, seed), (sftEnv, SftTasks(entry.Name), seed + 100), (sftEnv, 100, seed + 200) })
                {
                    var leaked = (await source.LoadTasksAsync(new TaskQuery("train", count, taskSeed))).Select(Prompt).Where(heldOut.Contains).Distinct().ToList();
                    if (leaked.Count > 0) problems.Add($"{entry.Name} (seed {seed}): {leaked.Count} held-out prompts are in the training tasks of seed {taskSeed}, e.g. {leaked[0]}");
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    // As the demo writes its SFT data (DemoCommand.EnvSftTasksFor): 3,000 tasks per environment, 9,000 for instruction following.
    private static int SftTasks(string environment) => environment == "instruction_following" ? 9000 : 3000;
}
