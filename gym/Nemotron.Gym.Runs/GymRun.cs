using Nemotron.Gym.Grains;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Store;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Runs;

/// <summary>
/// A multi-environment RLVR run: tasks from a blend of environments (through the environment grains), episodes
/// on episode grains, the GRPO trainer in this process, every rollout and step's metrics in the store, and the
/// run's lifecycle in its run grain. Running it again after an interruption (Ctrl-C, a crash, a restarted host)
/// resumes from the last checkpoint: the store drops the rollouts of steps after it, which are then redone.
/// </summary>
public static class GymRun
{
    /// <summary>The task sets of the run's training split.</summary>
    public static IEnumerable<TaskSetSpec> TrainSets(GymRunConfig cfg) =>
        cfg.Environments.Select(e => new TaskSetSpec(e.Name, e.Settings, "train", e.TrainTasks, cfg.Seed));

    /// <summary>The held-out task sets.</summary>
    public static IEnumerable<TaskSetSpec> EvalSets(GymRunConfig cfg) =>
        cfg.Environments.Where(e => e.EvalTasks > 0).Select(e => new TaskSetSpec(e.Name, e.Settings, e.EvalSplit, e.EvalTasks, cfg.Seed + 1000));

    /// <summary>Runs or resumes the run of <paramref name="cfg"/> on the cluster behind <paramref name="grains"/>.</summary>
    /// <param name="cfg">The run.</param>
    /// <param name="backend">Where the model computes.</param>
    /// <param name="grains">The cluster.</param>
    /// <param name="store">Where rollouts and step metrics go.</param>
    /// <param name="progress">Progress and warnings.</param>
    /// <param name="cancellation">Pauses the run (a checkpoint is written).</param>
    /// <param name="newRun">Discard what the run folder and the run state hold for this run id and start again.</param>
    public static async Task<RlOutcome> RunAsync(GymRunConfig cfg, IComputeBackend backend, IGrainFactory grains, IRolloutStore store, IRlObserver progress,
        CancellationToken cancellation, bool newRun = false)
    {
        string runId = cfg.RunId;
        string yaml = YamlConfig.ToYaml(cfg);
        var run = grains.GetGrain<IRunGrain>(runId);
        var folder = new RunFolder(cfg.Out);
        if (newRun) folder.Discard();
        var info = await OpenRunState(run, folder, yaml, cfg.Train.Steps, newRun, progress);
        Directory.CreateDirectory(cfg.Out);
        File.WriteAllText(folder.ConfigRecord, yaml);
        int resumeStep = folder.ResumeStep();
        if (info.Status != RunStatus.Completed) info = await CallRunGrain(run, g => g.Start(resumeStep));
        await store.PutRunAsync(Record(info), cancellation);

        // A finished run is kept as it is: only a resumed one drops the rollouts of the steps it is about to redo.
        if (info.Status == RunStatus.Completed || folder.IsFinished)
            progress.OnMessage($"run {runId} is complete ({info.Step}/{info.TotalSteps} steps): nothing to do, its rollouts are kept; use a new out folder to train again");
        else
            await store.DeleteRolloutsAfterAsync(runId, resumeStep, cancellation);
        try
        {
            var (model, tokenizer) = Checkpoint.Load(cfg.Init, backend);
            using (model)
            {
                using var reference = cfg.Grpo.KlBeta > 0 ? Checkpoint.Load(cfg.Init, backend).Model : null;
                var source = await GrainEpisodeSource.CreateAsync(grains, $"{runId}/train", TrainSets(cfg));
                var heldout = await GrainEpisodeSource.CreateAsync(grains, $"{runId}/eval", EvalSets(cfg));
                progress.OnMessage($"run {runId}: {string.Join(", ", cfg.Environments.Select(e => $"{e.Name} (weight {e.Weight}, {source.Tasks.Count(t => t.Environment == e.Name)} tasks)"))}; " +
                    $"{heldout.Tasks.Count} held-out tasks; store {Describe(cfg.StoreConnection)}" + (resumeStep > 0 ? $"; resuming after step {resumeStep}" : ""));
                var blend = cfg.Environments.ToDictionary(e => e.Name, e => e.Weight);
                var trainer = new GrpoTrainer(model, tokenizer, cfg.Grpo, cfg.Rollout, cfg.Train, cfg.Out, cfg.Seed, progress, reference, blend,
                    new StoreSink(store, run, runId, tokenizer));
                // No held-out tasks (eval_tasks: 0 everywhere): no evaluation during the run (gym eval scores checkpoints afterwards).
                var evaluate = heldout.Tasks.Count > 0 ? HeldOutReward(heldout, new ChatTemplate(tokenizer), cfg.Rollout) : null;
                var outcome = await trainer.RunAsync(source, evaluate, cancellation);
                if (info.Status != RunStatus.Completed)
                    info = outcome.Interrupted
                        ? await CallRunGrain(run, g => g.Pause(), i => i.Status == RunStatus.Paused)
                        : await CallRunGrain(run, g => g.Complete(outcome.FinalCheckpoint), i => i.Status == RunStatus.Completed);
                await store.PutRunAsync(Record(info), CancellationToken.None);
                return outcome;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            info = await CallRunGrain(run, g => g.Fail(e.Message), i => i.Status == RunStatus.Failed);
            await store.PutRunAsync(Record(info), CancellationToken.None);
            throw;
        }
    }

    /// <summary>
    /// Keys that change how a run executes but not what it computes: a resume may change them.
    /// </summary>
    public static readonly string[] ExecutionKeys = ["device", "threads", "cluster"];

    /// <summary>
    /// Brings the run state in line with the run folder. A folder without its config record holds no run (it was
    /// deleted, or never ran), so stored state for the id is stale and is replaced by a new run. A folder that holds a
    /// run resumes it when its config is the same; a config that differs in what it computes is refused naming the
    /// record and every key that differs, since resuming would mix two runs' steps.
    /// </summary>
    private static async Task<RunInfo> OpenRunState(IRunGrain run, RunFolder folder, string yaml, int totalSteps, bool newRun, IRlObserver progress)
    {
        var stored = await run.Get();
        if (stored == null) return await CallRunGrain(run, g => g.Create(yaml, totalSteps));
        if (newRun || !File.Exists(folder.ConfigRecord))
        {
            if (!newRun) progress.OnMessage($"{folder.Directory} holds no run (deleted?): the state stored for run '{stored.RunId}' ({stored.Status.ToString().ToLowerInvariant()}, step {stored.Step}) is replaced by a new run");
            return await CallRunGrain(run, g => g.Restart(yaml, totalSteps));
        }
        if (stored.ConfigYaml == yaml) return stored;
        var changes = ConfigDiff.Compare(stored.ConfigYaml, yaml, ExecutionKeys);
        if (changes.Count > 0)
            throw new ConfigException($"{folder.ConfigRecord}: run '{stored.RunId}' was started with a different config ({string.Join("; ", changes.Take(8))}" +
                (changes.Count > 8 ? $"; and {changes.Count - 8} more" : "") +
                "): run with the same config to resume it, with --new-run to discard it (checkpoints, metrics, rollouts) and start again, or choose another out folder");
        return await CallRunGrain(run, g => g.Reconfigure(yaml));
    }

    /// <summary>
    /// Calls the run grain, riding out the loss of the silo it lives on: the next call activates it again on a
    /// live silo from its stored state. Only the cluster's failures (<see cref="ClusterFaults"/>) are retried, after a
    /// doubling wait, for as long as <paramref name="patience"/> (default <see cref="ClusterFaults.DefaultPatience"/>):
    /// a crashed silo stays in the membership, refusing or timing out calls, until its probes have failed. A
    /// transition retried after its reply was lost may already have been made; <paramref name="landed"/> recognises
    /// that in the stored state instead of making it twice.
    /// </summary>
    internal static async Task<RunInfo> CallRunGrain(IRunGrain run, Func<IRunGrain, Task<RunInfo>> call, Func<RunInfo, bool>? landed = null,
        TimeSpan? patience = null, TimeSpan? firstWait = null)
    {
        var outage = new ClusterFaults.Outage();
        while (true)
        {
            try
            {
                if (outage.Tries > 0 && landed != null && await run.Get() is { } now && landed(now)) return now;
                return await call(run);
            }
            catch (Exception e) when (ClusterFaults.Is(e) && outage.Retry(patience ?? ClusterFaults.DefaultPatience))
            {
                await Task.Delay(ClusterFaults.Wait(firstWait ?? TimeSpan.FromMilliseconds(250), outage.Tries));
            }
        }
    }

    /// <summary>Mean greedy reward per environment over the held-out tasks (one episode each).</summary>
    public static RlEvaluator HeldOutReward(GrainEpisodeSource heldout, ChatTemplate template, RolloutSettings rollout) => async (model, cancellation) =>
    {
        var greedy = new RolloutSettings { MaxNewTokens = rollout.MaxNewTokens, MaxTurns = rollout.MaxTurns, MaxBatch = rollout.MaxBatch, Temperature = 0 };
        var collector = new RolloutCollector(model, template, greedy);
        var (groups, _) = await collector.CollectAsync(heldout.Tasks, 1, heldout, seed: 1, cancellation);
        // Episodes that could not be judged (infrastructure failures) are left out of the mean, not counted as 0.
        return groups.SelectMany(g => g.Rollouts).GroupBy(r => r.Task.Environment).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Where(r => !r.Grade.Masked).Select(r => r.Grade.Reward).DefaultIfEmpty(0).Average());
    };

    /// <summary>A rollout as the store keeps it, with what the trainer did with it when it was trained on.</summary>
    internal static StoredRollout ToStored(Rollout r, string runId, int step, ITokenizer tokenizer, DateTimeOffset now) => new()
    {
        RunId = runId, Step = step, TaskId = r.Task.Id, Environment = r.Task.Environment, SampleIndex = r.SampleIndex,
        Tokens = r.Tokens, Generated = r.Generated, SamplerLogProbs = r.SamplerLogProbs, Messages = r.Messages,
        Reward = r.Grade.Reward, ShapedReward = r.Reward, Components = r.Grade.Components, Reason = r.Grade.Reason,
        Evidence = r.Grade.Evidence, Truncated = r.Truncated, Turns = r.Turns,
        GenerateSeconds = r.GenerateSeconds, EnvironmentSeconds = r.EnvironmentSeconds, CreatedAt = now,
        Advantage = r.Training?.Advantage, TrainerLogProbs = r.Training?.TrainerLogProbs, ImportanceWeights = r.Training?.ImportanceWeights,
        TokenMasked = r.Training?.TokenMasked, SequenceMasked = r.Training?.SequenceMasked, MaskedReason = r.Training?.MaskedReason,
        // The store keeps no tokenizer: each token's text travels with the rollout for the token view.
        TokenTexts = [.. r.Tokens.Select(t => tokenizer.Decode([t]))],
    };

    internal static RunRecord Record(RunInfo i) => new(i.RunId, i.Status.ToString().ToLowerInvariant(), i.Step, i.TotalSteps, i.ConfigYaml, i.Created, i.Updated);

    private static string Describe(string connection) => connection.StartsWith("postgres:", StringComparison.Ordinal) ? "postgres" : connection;

    /// <summary>
    /// The run's sink: every step's rollouts and metrics into the rollout store, steps and checkpoints into the run
    /// grain. Awaited by the trainer, so a failing store fails the run with its error.
    /// </summary>
    private sealed class StoreSink(IRolloutStore store, IRunGrain run, string runId, ITokenizer tokenizer) : IRolloutSink
    {
        public Task AddStepAsync(GrpoStepMetrics m, CancellationToken cancellation) => Task.WhenAll(
            store.PutStepMetricsAsync(runId, m.Step, JsonText.Line(m.ToJson()), cancellation),
            CallRunGrain(run, g => g.ReportStep(m.Step, null)));

        public Task CheckpointWrittenAsync(int step, string directory, CancellationToken cancellation) =>
            CallRunGrain(run, g => g.ReportStep(step, directory));

        public Task AddRolloutsAsync(int step, IReadOnlyList<RolloutGroup> groups, CancellationToken cancellation)
        {
            var now = DateTimeOffset.UtcNow;
            var rows = groups.SelectMany(g => g.Rollouts).Select(r => ToStored(r, runId, step, tokenizer, now)).ToList();
            return store.AddRolloutsAsync(rows, cancellation);
        }
    }
}
