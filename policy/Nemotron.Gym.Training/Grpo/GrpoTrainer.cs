using Nemotron.Gym.Conversation;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Grpo;

/// <summary>Scores a model on held-out data (name → score, e.g. "arithmetic" → accuracy).</summary>
public delegate Task<IReadOnlyDictionary<string, double>> RlEvaluator(GptModel model, CancellationToken cancellation);

/// <summary>The outcome of an RL run.</summary>
public sealed record RlOutcome(int Steps, IReadOnlyDictionary<string, double> Before, IReadOnlyDictionary<string, double> After, string FinalCheckpoint, bool Interrupted);

/// <summary>
/// Synchronous GRPO with masked importance sampling (docs/grpo.md): each step samples tasks (blend ×
/// curriculum), generates G rollouts per task, has them graded through the caller's
/// <see cref="IEpisodeSource"/>, shapes rewards, computes advantages and drops zero-variance groups
/// (refilling up to max_gen_batches rounds), recomputes lp_old, builds the masks, and takes one optimizer
/// step per minibatch. The sampler uses the model's weights directly, so new weights reach it at once.
/// The trainer knows nothing of Orleans or of environments beyond the episode interface.
/// </summary>
public sealed class GrpoTrainer(
    GptModel model, ITokenizer tokenizer, GrpoSettings grpo, RolloutSettings rollout, RlTrainSettings train,
    string runDirectory, int seed, IRlObserver observer, GptModel? reference = null, IReadOnlyDictionary<string, double>? blend = null,
    IRolloutSink? sink = null)
{
    private readonly RunFolder _folder = new(runDirectory);
    private readonly ChatTemplate _template = new(tokenizer);
    private GptModel? _samplerCopy;

    /// <summary>
    /// The model the sampler generates with: the trainer's, or its bf16 copy, which also keeps its keys and values in
    /// bf16 where the backend can (the CPU backend: decoding reads half the bytes; docs/grpo.md).
    /// </summary>
    private GptModel SamplerModel()
    {
        if (rollout.SamplerPrecision == SamplerPrecision.Fp32) return model;
        _samplerCopy ??= new GptModel(model.Backend, model.Config) { CacheType = model.Backend.SupportsBf16Caches ? DType.BF16 : DType.F32 };
        return _samplerCopy;
    }

    /// <summary>Step 9 of the spec: hand the new weights to the sampler.</summary>
    private void SyncSampler()
    {
        if (rollout.SamplerPrecision == SamplerPrecision.Fp32) return;
        var weights = model.DownloadParameters();
        Bf16.Round(weights);
        SamplerModel().UploadParameters(weights);
    }

    /// <summary>Runs (or resumes) the RL stage.</summary>
    public async Task<RlOutcome> RunAsync(IEpisodeSource source, RlEvaluator? evaluate, CancellationToken cancellation)
    {
        if (grpo.KlBeta > 0 && reference == null) throw new ArgumentException("kl_beta > 0 needs a reference model");
        Directory.CreateDirectory(runDirectory);
        var final = _folder.Final;
        if (_folder.IsFinished)
        {
            var done = Checkpoint.ReadJson(Path.Combine(final, Checkpoint.StateFile));
            observer.OnMessage($"{final} already exists; delete the run folder to train again");
            return new RlOutcome(done["step"]!.GetValue<int>(), Scores(done["eval_before"]), Scores(done["eval_after"]), final, false);
        }

        using var optimizer = new AdamWOptimizer(model, train.Optimizer);
        var curriculum = new Curriculum(source.Tasks, grpo, blend);
        int step = 0;
        IReadOnlyDictionary<string, double> before = new Dictionary<string, double>();
        foreach (var orphan in _folder.RemoveInterruptedSaves()) observer.OnMessage($"removed {orphan}, left by an interrupted checkpoint write");
        var resumeFrom = _folder.LatestCheckpoint(observer.OnMessage);
        if (resumeFrom != null)
        {
            Checkpoint.LoadWeights(resumeFrom, model);
            var state = Checkpoint.LoadTrainingState(resumeFrom, optimizer) ?? throw new InvalidDataException($"{resumeFrom}: no trainer state");
            if (state["stage"]?.GetValue<string>() != "grpo") throw new InvalidDataException($"{resumeFrom}: not a GRPO checkpoint");
            step = state["step"]!.GetValue<int>();
            curriculum.Load(state["curriculum"] as JsonObject ?? new JsonObject());
            before = Scores(state["eval_before"]);
            observer.OnMessage($"resumed from {resumeFrom} at step {step}");
        }
        else if (evaluate != null)
        {
            before = await evaluate(model, cancellation);
            observer.OnEval(0, before);
        }

        SyncSampler();
        // Lines of steps after the checkpoint are redone below; without this cut they would appear twice.
        _folder.TruncateMetricsAfter(resumeFrom != null ? step : -1);
        using var metrics = new StreamWriter(_folder.Metrics, append: true);
        if (resumeFrom == null && before.Count > 0) metrics.WriteLine(EvalLine(0, before));
        IReadOnlyDictionary<string, double> after = before;
        bool interrupted = false;
        while (step < train.Steps)
        {
            if (cancellation.IsCancellationRequested) { interrupted = true; break; }
            GrpoStepMetrics m;
            try { m = await StepAsync(step + 1, source, curriculum, optimizer, cancellation); }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested) { interrupted = true; break; }
            step++;
            bool evaluating = evaluate != null && (step % train.EvalEvery == 0 || step == train.Steps);
            if (evaluating)
            {
                after = await evaluate!(model, cancellation);
                m = m with { HeldOutByEnvironment = after };
            }
            if (sink != null) await sink.AddStepAsync(m, CancellationToken.None);
            observer.OnStep(m, train.Steps);
            metrics.WriteLine(JsonText.Line(m.ToJson()));
            if (evaluating)
            {
                observer.OnEval(step, after);
                metrics.WriteLine(EvalLine(step, after));
            }
            metrics.Flush();
            if (train.CheckpointEvery > 0 && step % train.CheckpointEvery == 0 && step < train.Steps)
                await SaveResumable(optimizer, curriculum, step, before);
        }
        _samplerCopy?.Dispose();
        _samplerCopy = null;
        if (interrupted)
        {
            await SaveResumable(optimizer, curriculum, step, before);
            observer.OnMessage($"interrupted at step {step}; run the same command to resume");
            return new RlOutcome(step, before, after, "", true);
        }
        var finalState = State(curriculum, step, before);
        finalState["eval_after"] = ScoresJson(after);
        Checkpoint.Save(final, model, tokenizer, null, finalState);
        observer.OnMessage($"saved {final}");
        return new RlOutcome(step, before, after, final, false);
    }

    /// <summary>One synchronous GRPO step.</summary>
    public async Task<GrpoStepMetrics> StepAsync(int step, IEpisodeSource source, Curriculum curriculum, AdamWOptimizer optimizer, CancellationToken cancellation)
    {
        var collector = new RolloutCollector(SamplerModel(), _template, rollout);
        var kept = new List<RolloutGroup>();     // what the loss trains on (judged rollouts only)
        var keptGroups = new HashSet<RolloutGroup>(); // the same groups as generated, for the records
        var all = new List<RolloutGroup>();
        var used = new HashSet<string>();
        double genSeconds = 0, envSeconds = 0;
        int rounds = 0;
        while (kept.Count < grpo.TasksPerStep && rounds < grpo.MaxGenBatches)
        {
            var tasks = curriculum.Sample(grpo.TasksPerStep - kept.Count, seed, step, rounds, used);
            if (tasks.Count == 0) break;
            foreach (var t in tasks) used.Add(t.Id);
            var (groups, times) = await collector.CollectAsync(tasks, grpo.GroupSize, source, Sampler.StreamSeed(seed, step * 64 + rounds), cancellation);
            genSeconds += times.GenerateSeconds;
            envSeconds += times.EnvironmentSeconds;
            rounds++;
            foreach (var g in groups)
            {
                // A rollout that could not be judged (the sandbox or a judge failed) says nothing about its answer: the
                // group's baseline, the curriculum and the loss see only the judged ones.
                var judged = Judged(g);
                all.Add(g);
                if (judged.Rollouts.Count == 0) continue;
                Advantages.Prepare(judged, grpo);
                if (judged != g)
                    for (int i = 0, j = 0; i < g.Rollouts.Count; i++)
                        g.Advantages[i] = g.Rollouts[i].Grade.Masked ? 0 : judged.Advantages[j++];
                curriculum.Record(g.Task.Id, judged.Rollouts.Count(r => r.Reward >= grpo.PassThreshold), judged.Rollouts.Count);
                if ((judged == g || judged.Rollouts.Count >= 2) && !(grpo.DynamicFiltering && judged.ZeroVariance))
                {
                    kept.Add(judged);
                    keptGroups.Add(g);
                }
            }
            if (!grpo.DynamicFiltering) break;
        }

        var clock = Stopwatch.StartNew();
        float lr = train.Schedule.At(step);
        var result = kept.Count > 0 ? Train(kept, step, lr, optimizer) : null;
        SyncSampler();
        double trainSeconds = clock.Elapsed.TotalSeconds;
        RecordAdvantages(all, keptGroups);
        // Persisted once the step is done (a finished step is kept even when Ctrl-C comes during the write).
        if (sink != null) await sink.AddRolloutsAsync(step, all, CancellationToken.None);

        var generatedRollouts = all.SelectMany(g => g.Rollouts).ToList();
        // Rewards, pass rate and lengths are over judged rollouts: a not-judged one's reward is a placeholder.
        var rollouts = generatedRollouts.Where(r => !r.Grade.Masked).ToList();
        if (rollouts.Count == 0) rollouts = generatedRollouts;
        var keptAdv = kept.SelectMany(g => g.Advantages).ToList();
        double advMean = keptAdv.Count > 0 ? keptAdv.Average() : 0;
        long generated = rollouts.Sum(r => (long)r.GeneratedCount);
        var stats = result?.Stats ?? new ObjectiveStats();
        return new GrpoStepMetrics
        {
            Step = step,
            RewardMean = rollouts.Average(r => r.Reward),
            RewardByEnvironment = rollouts.GroupBy(r => r.Task.Environment).ToDictionary(g => g.Key, g => g.Average(r => r.Reward)),
            PassRate = rollouts.Count(r => r.Reward >= grpo.PassThreshold) / (double)rollouts.Count,
            AdvantageMean = advMean,
            AdvantageStd = keptAdv.Count > 1 ? Math.Sqrt(keptAdv.Sum(a => (a - advMean) * (a - advMean)) / keptAdv.Count) : 0,
            RatioMean = stats.Tokens > 0 ? stats.RatioSum / stats.Tokens : 1,
            RatioMax = stats.Tokens > 0 ? stats.RatioMax : 1,
            ClipFraction = stats.Tokens > 0 ? stats.Clipped / stats.Tokens : 0,
            IsOobFraction = stats.IsCandidates > 0 ? stats.IsOutOfBounds / stats.IsCandidates : 0,
            Mismatch = stats.AllTokens > 0 ? stats.MismatchSum / stats.AllTokens : 0,
            Kl = stats.Tokens > 0 ? stats.KlSum / stats.Tokens : 0,
            Entropy = result?.Entropy ?? 0,
            ResponseLengthMean = rollouts.Average(r => r.GeneratedCount),
            ResponseLengthMax = rollouts.Max(r => r.GeneratedCount),
            DroppedGroupFraction = all.Count > 0 ? 1.0 - (double)kept.Count / all.Count : 0,
            GenerationRounds = rounds,
            Loss = result?.Loss ?? 0,
            GradNorm = result?.GradNorm ?? 0,
            LearningRate = lr,
            GenerateSeconds = genSeconds,
            GradeSeconds = envSeconds,
            TrainSeconds = trainSeconds,
            GenerateTokensPerSecond = genSeconds > 0 ? generated / genSeconds : 0,
            TrainTokensPerSecond = trainSeconds > 0 && result != null ? result.TrainedTokens / trainSeconds : 0,
            TasksRetired = source.Tasks.Count - curriculum.ActiveCount,
            TruncatedFraction = rollouts.Count(r => r.Truncated) / (double)rollouts.Count,
            NotJudgedFraction = generatedRollouts.Count(r => r.Grade.Masked) / (double)generatedRollouts.Count,
            JudgeParseFailureRate = JudgeParseFailures(generatedRollouts),
        };
    }

    /// <summary>
    /// Comparisons whose judge answers held no readable verdict over comparisons the judge answered, from the components
    /// group judges record per rollout (judge_parse_failures, judge_verdicts); a comparison counts once per response it
    /// scored. Null when no rollout of the step was judged by a model.
    /// </summary>
    private static double? JudgeParseFailures(IEnumerable<Rollout> rollouts)
    {
        double failures = 0, answers = 0;
        foreach (var r in rollouts)
        {
            if (!r.Grade.Components.TryGetValue("judge_parse_failures", out double f)) continue;
            failures += f;
            answers += f + r.Grade.Components.GetValueOrDefault("judge_verdicts");
        }
        return answers > 0 ? failures / answers : null;
    }

    internal sealed record TrainResult(double Loss, double GradNorm, double Entropy, ObjectiveStats Stats, long TrainedTokens);

    /// <summary>The group's judged rollouts: the group itself when every rollout was judged.</summary>
    internal static RolloutGroup Judged(RolloutGroup g) =>
        g.Rollouts.Any(r => r.Grade.Masked) ? new RolloutGroup(g.Task, [.. g.Rollouts.Where(r => !r.Grade.Masked)]) : g;

    /// <summary>
    /// Every rollout's advantage, and why a rollout never reached the loss: it could not be judged, or its group was
    /// filtered out (zero variance, or fewer than two judged rollouts to compare).
    /// </summary>
    private static void RecordAdvantages(List<RolloutGroup> all, HashSet<RolloutGroup> trained)
    {
        foreach (var g in all)
        {
            int judged = g.Rollouts.Count(r => !r.Grade.Masked);
            for (int i = 0; i < g.Rollouts.Count; i++)
            {
                var r = g.Rollouts[i];
                var record = r.Training ??= new TrainingRecord { Advantage = g.Advantages[i] };
                if (r.Grade.MaskReason is { } notJudged) { record.SequenceMasked = true; record.MaskedReason = $"not judged: {notJudged}"; }
                else if (!trained.Contains(g))
                {
                    record.SequenceMasked = true;
                    record.MaskedReason = judged < 2 && judged < g.Rollouts.Count ? $"only {judged} of {g.Rollouts.Count} rollouts of the group could be judged: filtered out of the step"
                        : "zero-variance group: filtered out of the step";
                }
            }
        }
    }

    /// <summary>
    /// Keeps, per rollout of a micro-batch, what the loss used: lp_old, the importance weights, token and sequence masks
    /// (position p of a row predicts token p + 1).
    /// </summary>
    private void RecordTraining(Micro micro, ReadOnlySpan<float> lpOld, float[] weights, bool[] kept)
    {
        for (int b = 0; b < micro.Rows.Count; b++)
        {
            var (r, advantage) = micro.Rows[b];
            var record = r.Training ??= new TrainingRecord { Advantage = advantage };
            int n = r.Tokens.Length, start = (int)micro.Batch.RowStart(b), offset = micro.Batch.RowOffset(b);
            var lp = new float[n];
            var w = new float[n];
            var masked = new byte[n];
            for (int p = 0; offset + p + 1 < n; p++)
            {
                int at = start + p, token = offset + p + 1;
                if (micro.Mask[at] == 0) continue;
                lp[token] = lpOld[at];
                w[token] = weights[at];
                if (grpo.IsCorrection == IsCorrection.TokenMis && weights[at] == 0) masked[token] = 1;
            }
            (record.TrainerLogProbs, record.ImportanceWeights, record.TokenMasked) = (lp, w, masked);
            if (!micro.Spans[b].Kept) (record.SequenceMasked, record.MaskedReason) = (true, "cut off at the length limit (truncation: mask)");
            else if (!kept[b]) (record.SequenceMasked, record.MaskedReason) = (true, $"{YamlConfig.Snake(grpo.IsCorrection.ToString())}: sequence importance ratio outside [{grpo.IsMin}, {grpo.IsMax}]");
        }
    }


    /// <summary>One micro-batch: rows, the generated-token mask per position, lp_gen per position, the samples' spans.</summary>
    private sealed class Micro
    {
        public required TokenBatch Batch;
        public required byte[] Mask;
        public required float[] LpGen;
        public required List<SampleSpan> Spans;
        public required List<(Rollout Rollout, double Advantage)> Rows;
        public float[]? LpOld;
    }

    /// <summary>Tests: compute lp_old in its own forward pass even with one minibatch (the single-pass path must match it).</summary>
    internal bool ForceSeparateOldPass { get; init; }

    internal TrainResult Train(List<RolloutGroup> groups, int step, float lr, AdamWOptimizer optimizer)
    {
        var samples = groups.SelectMany(g => g.Rollouts.Select((r, i) => (Rollout: r, Advantage: g.Advantages[i]))).ToList();
        new Random(Sampler.StreamSeed(seed, 500_000 + step)).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(samples));
        int parts = Math.Min(grpo.Minibatches, samples.Count);
        var minibatches = Enumerable.Range(0, parts).Select(p => samples.Skip(samples.Count * p / parts).Take(samples.Count * (p + 1) / parts - samples.Count * p / parts).ToList()).ToList();
        var micros = minibatches.Select(mb => BuildMicros(mb)).ToList();

        var stats = new ObjectiveStats();
        double loss = 0, gradNorm = 0, entropySum = 0, entropyCount = 0;
        long trained = 0;
        // With several minibatches, lp_old must come from the weights before the first update.
        bool twoPass = parts > 1 || ForceSeparateOldPass;
        if (twoPass)
            foreach (var micro in micros.SelectMany(m => m))
                micro.LpOld = model.Forward(micro.Batch).LogProbs;

        foreach (var mbMicros in micros)
        {
            model.ZeroGradients();
            // The normalizer: exact when lp_old is known; provisional (no IS masks yet) in the single pass,
            // where the gradient is rescaled once the masks are known (it is linear in 1/Z).
            double z0 = 0;
            var weightsPerMicro = new List<(float[] W, bool[] Kept)>();
            if (twoPass)
            {
                foreach (var micro in mbMicros)
                {
                    var wk = GrpoObjective.ImportanceWeights(micro.LpOld, micro.LpGen, micro.Mask, micro.Spans, grpo, stats);
                    RecordTraining(micro, micro.LpOld, wk.Weights, wk.Kept);
                    weightsPerMicro.Add(wk);
                    z0 += GrpoObjective.Normalizer(micro.Mask, micro.Spans, wk.Kept, grpo.LossLevel);
                }
            }
            else
                foreach (var micro in mbMicros)
                    z0 += GrpoObjective.Normalizer(micro.Mask, micro.Spans, micro.Spans.Select(s => s.Kept).ToArray(), grpo.LossLevel);
            if (z0 == 0) continue;

            double z = 0, mbLoss = 0;
            for (int i = 0; i < mbMicros.Count; i++)
            {
                var micro = mbMicros[i];
                var fwd = model.Forward(micro.Batch, withEntropy: true);
                var lpOld = micro.LpOld ?? fwd.LogProbs;
                var (w, kept) = twoPass ? weightsPerMicro[i] : GrpoObjective.ImportanceWeights(lpOld, micro.LpGen, micro.Mask, micro.Spans, grpo, stats);
                if (!twoPass) RecordTraining(micro, lpOld, w, kept);
                if (!twoPass) z += GrpoObjective.Normalizer(micro.Mask, micro.Spans, kept, grpo.LossLevel);
                var lpRef = grpo.KlBeta > 0 ? reference!.Forward(micro.Batch).LogProbs : [];
                var grad = new float[fwd.LogProbs.Length];
                mbLoss += GrpoObjective.Evaluate(fwd.LogProbs, lpOld, lpRef, w, micro.Mask, micro.Spans, kept, grpo, z0, grad, stats);
                for (int p = 0; p < grad.Length; p++)
                {
                    if (micro.Mask[p] != 0) { entropySum += fwd.Entropy![p]; entropyCount++; }
                    grad[p] = -grad[p]; // the model's backward takes the weight of −lp
                }
                model.Backward(grad);
                trained += micro.Rows.Sum(row => row.Rollout.Tokens.Length - 1L);
            }
            if (!twoPass)
            {
                if (z == 0) continue; // every sample masked: nothing to learn from this minibatch
                if (z != z0)
                {
                    model.Backend.Scale(model.Gradients, (float)(z0 / z), model.Layout.Total);
                    mbLoss *= z0 / z;
                }
            }
            gradNorm = model.ClipGradients(train.GradClip);
            optimizer.Update(lr);
            loss += mbLoss;
        }
        return new TrainResult(loss / parts, gradNorm, entropyCount > 0 ? entropySum / entropyCount : 0, stats, trained);
    }

    /// <summary>Whether the micro-batches compute each prompt once for its rollouts (share_prompts, where the backend can).</summary>
    private bool SharesPrompts => grpo.SharePrompts && model.Backend.SupportsSharedPrefixes && (reference == null || reference.Backend.SupportsSharedPrefixes);

    private List<Micro> BuildMicros(List<(Rollout Rollout, double Advantage)> samples)
    {
        int size = grpo.MicroBatch > 0 ? grpo.MicroBatch : samples.Count;
        var list = new List<Micro>();
        var rollouts = samples.Select(s => s.Rollout).ToList();
        foreach (var (rows, batch) in PromptGrouping.Batches(rollouts.Select(r => r.Tokens).ToList(), rollouts.Select(r => r.Generated).ToList(), size, SharesPrompts, tokenizer.Specials.Pad))
        {
            var part = rows.Select(i => samples[i]).ToList();
            var mask = new byte[batch.Count];
            var lpGen = new float[batch.Count];
            var spans = new List<SampleSpan>();
            for (int b = 0; b < part.Count; b++)
            {
                var r = part[b].Rollout;
                int start = (int)batch.RowStart(b), offset = batch.RowOffset(b);
                for (int p = 0; offset + p + 1 < r.Tokens.Length; p++)
                {
                    mask[start + p] = r.Generated[offset + p + 1];
                    lpGen[start + p] = r.SamplerLogProbs[offset + p + 1];
                }
                bool keep = !(r.Truncated && grpo.Truncation == TruncationPolicy.Mask);
                spans.Add(new SampleSpan(start, batch.RowLength, part[b].Advantage, keep));
            }
            list.Add(new Micro { Batch = batch, Mask = mask, LpGen = lpGen, Spans = spans, Rows = part });
        }
        return list;
    }

    private async Task SaveResumable(AdamWOptimizer optimizer, Curriculum curriculum, int step, IReadOnlyDictionary<string, double> before)
    {
        var dir = _folder.SaveResumable(step, model, tokenizer, optimizer, State(curriculum, step, before));
        observer.OnMessage($"checkpoint {dir}");
        if (sink != null) await sink.CheckpointWrittenAsync(step, dir, CancellationToken.None);
    }

    private static JsonObject State(Curriculum curriculum, int step, IReadOnlyDictionary<string, double> before) => new()
    {
        ["stage"] = "grpo", ["step"] = step, ["curriculum"] = curriculum.ToJson(), ["eval_before"] = ScoresJson(before),
    };

    private static JsonObject ScoresJson(IReadOnlyDictionary<string, double> scores)
    {
        var o = new JsonObject();
        foreach (var (k, v) in scores) o[k] = v;
        return o;
    }

    private static IReadOnlyDictionary<string, double> Scores(JsonNode? node) =>
        node is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>()) : new Dictionary<string, double>();

    private static string EvalLine(int step, IReadOnlyDictionary<string, double> scores) =>
        JsonText.Line(new JsonObject { ["stage"] = "grpo_eval", ["step"] = step, ["scores"] = ScoresJson(scores) });
}
