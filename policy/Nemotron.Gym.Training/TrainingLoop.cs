using Nemotron.Gym.Conversation;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Training;

/// <summary>One forward/backward pass worth of rows, with loss weights already normalized over the whole step.</summary>
/// <param name="Batch">The rows.</param>
/// <param name="Weights">Per position: the loss is Σ weight · (−log p(target)).</param>
/// <param name="ScoredTokens">Positions with a non-zero weight (for throughput figures).</param>
public sealed record MicroBatch(TokenBatch Batch, float[] Weights, long ScoredTokens);

/// <summary>Where a stage's rows come from.</summary>
public interface IBatchSource
{
    /// <summary>The micro-batches of optimizer step <paramref name="step"/> (1-based); a pure function of the step, so a resumed run sees the same data.</summary>
    IReadOnlyList<MicroBatch> TrainStep(int step);

    /// <summary>The fixed held-out micro-batches; each one's weights sum to 1 over its scored positions.</summary>
    IReadOnlyList<MicroBatch> Validation();
}

/// <summary>What a step did, for progress displays and metrics files.</summary>
public sealed record StepReport(int Step, int TotalSteps, double Loss, float LearningRate, double GradNorm, long Tokens, double TokensPerSecond, TimeSpan Elapsed, TimeSpan Remaining);

/// <summary>A held-out evaluation.</summary>
public sealed record EvalReport(int Step, double Loss, double BestLoss, bool Improved);

/// <summary>Receives progress from a stage.</summary>
public interface ITrainingObserver
{
    /// <summary>After each optimizer step.</summary>
    void OnStep(StepReport report);
    /// <summary>After each held-out evaluation.</summary>
    void OnEval(EvalReport report);
    /// <summary>Anything else worth a line (resumed, checkpoint saved, early stop).</summary>
    void OnMessage(string message);
}

/// <summary>The outcome of a stage.</summary>
public sealed record TrainingOutcome(int Steps, double FinalValidationLoss, double BestValidationLoss, int BestStep, string FinalCheckpoint, bool Interrupted, bool EarlyStopped);

/// <summary>
/// The loop every training stage shares: zero gradients, forward and backward each micro-batch, clip,
/// AdamW with the warmup-stable-decay rate, evaluate, checkpoint. A run folder holds
/// checkpoints/step-N (resumable, the last two kept), best/ (with early stopping), final/ and metrics.jsonl.
/// Cancellation saves a resumable checkpoint and returns; running the same stage again resumes it.
/// </summary>
public sealed class TrainingLoop(GptModel model, ITokenizer tokenizer, TrainSettings settings, string runDirectory, string stage, ITrainingObserver observer)
{
    private readonly RunFolder _folder = new(runDirectory);

    /// <summary>Extra state a stage wants saved in trainer_state.json (its config, for example).</summary>
    public JsonObject StageState { get; init; } = new();

    /// <summary>Runs (or resumes) the stage.</summary>
    public TrainingOutcome Run(IBatchSource source, CancellationToken cancellation)
    {
        Directory.CreateDirectory(runDirectory);
        using var optimizer = new AdamWOptimizer(model, settings.Optimizer);
        var schedule = settings.Schedule;
        int startStep = 0;
        double best = double.PositiveInfinity, lastValid = double.NaN;
        int bestStep = 0, evalsSinceBest = 0;

        foreach (var orphan in _folder.RemoveInterruptedSaves()) observer.OnMessage($"removed {orphan}, left by an interrupted checkpoint write");
        var resumeFrom = _folder.LatestCheckpoint(observer.OnMessage);
        if (resumeFrom != null)
        {
            Checkpoint.LoadWeights(resumeFrom, model);
            var state = Checkpoint.LoadTrainingState(resumeFrom, optimizer) ?? throw new InvalidDataException($"{resumeFrom}: no trainer state");
            if (state["stage"]?.GetValue<string>() != stage)
                throw new InvalidDataException($"{resumeFrom}: was saved by stage '{state["stage"]}', not '{stage}'");
            startStep = state["step"]!.GetValue<int>();
            best = state["best_loss"]?.GetValue<double>() ?? double.PositiveInfinity;
            bestStep = state["best_step"]?.GetValue<int>() ?? 0;
            evalsSinceBest = state["evals_since_best"]?.GetValue<int>() ?? 0;
            observer.OnMessage($"resumed from {resumeFrom} at step {startStep}");
        }

        var metricsPath = _folder.Metrics;
        // Lines of steps after the checkpoint are redone below; without this cut they would appear twice.
        _folder.TruncateMetricsAfter(resumeFrom != null ? startStep : -1);
        using var metrics = new StreamWriter(metricsPath, append: true);
        var clock = Stopwatch.StartNew();
        long tokensThisRun = 0;
        int step = startStep;
        bool interrupted = false, earlyStopped = false;
        var validation = source.Validation();

        while (step < settings.Steps)
        {
            if (cancellation.IsCancellationRequested) { interrupted = true; break; }
            step++;
            float lr = schedule.At(step);
            model.ZeroGradients();
            double loss = 0;
            long tokens = 0;
            foreach (var micro in source.TrainStep(step))
            {
                var lp = model.Forward(micro.Batch).LogProbs;
                for (int i = 0; i < lp.Length; i++) loss -= micro.Weights[i] * (double)lp[i];
                model.Backward(micro.Weights);
                tokens += micro.Batch.Count;
            }
            double norm = model.ClipGradients(settings.GradClip);
            optimizer.Update(lr);
            tokensThisRun += tokens;
            double elapsed = clock.Elapsed.TotalSeconds;
            double perStep = elapsed / (step - startStep);
            var report = new StepReport(step, settings.Steps, loss, lr, norm, tokens, tokensThisRun / Math.Max(elapsed, 1e-9),
                clock.Elapsed, TimeSpan.FromSeconds(perStep * (settings.Steps - step)));
            observer.OnStep(report);
            var line = new JsonObject
            {
                ["stage"] = stage, ["step"] = step, ["loss"] = loss, ["lr"] = lr, ["grad_norm"] = norm,
                ["tokens"] = tokens, ["tokens_per_second"] = report.TokensPerSecond, ["elapsed_s"] = elapsed,
            };

            bool last = step == settings.Steps;
            if (step % settings.EvalEvery == 0 || last)
            {
                lastValid = Evaluate(validation);
                bool improved = lastValid < best - 1e-4;
                if (improved) { best = lastValid; bestStep = step; evalsSinceBest = 0; }
                else evalsSinceBest++;
                observer.OnEval(new EvalReport(step, lastValid, best, improved));
                line["valid_loss"] = lastValid;
                if (settings.Patience > 0)
                {
                    if (improved) Save(_folder.Best, step, best, bestStep, evalsSinceBest);
                    else if (evalsSinceBest >= settings.Patience)
                    {
                        observer.OnMessage($"held-out loss has not improved for {evalsSinceBest} evaluations: stopping at step {step}, best {best:F4} at step {bestStep}");
                        earlyStopped = true;
                    }
                }
            }
            metrics.WriteLine(line.ToJsonString(JsonText.Compact));
            metrics.Flush();
            if (earlyStopped) break;
            if (settings.CheckpointEvery > 0 && step % settings.CheckpointEvery == 0 && !last)
                SaveResumable(optimizer, step, best, bestStep, evalsSinceBest);
        }

        if (interrupted)
        {
            SaveResumable(optimizer, step, best, bestStep, evalsSinceBest);
            observer.OnMessage($"interrupted at step {step}; run the same command to resume");
            return new TrainingOutcome(step, lastValid, best, bestStep, "", true, false);
        }
        if (double.IsNaN(lastValid)) lastValid = Evaluate(validation);
        var final = _folder.Final;
        // With early stopping the stage's result is the best checkpoint, not the last one.
        if (settings.Patience > 0 && Directory.Exists(_folder.Best))
        {
            Checkpoint.LoadWeights(_folder.Best, model);
            lastValid = best;
        }
        Save(final, step, best, bestStep, evalsSinceBest);
        observer.OnMessage($"saved {final}");
        return new TrainingOutcome(step, lastValid, best, bestStep, final, false, earlyStopped);
    }

    private double Evaluate(IReadOnlyList<MicroBatch> validation)
    {
        double total = 0;
        foreach (var micro in validation)
        {
            var lp = model.Forward(micro.Batch).LogProbs;
            for (int i = 0; i < lp.Length; i++) total -= micro.Weights[i] * (double)lp[i];
        }
        return validation.Count == 0 ? double.NaN : total / validation.Count;
    }

    private void SaveResumable(AdamWOptimizer optimizer, int step, double best, int bestStep, int evalsSinceBest)
    {
        var dir = _folder.SaveResumable(step, model, tokenizer, optimizer, State(step, best, bestStep, evalsSinceBest));
        observer.OnMessage($"checkpoint {dir}");
    }

    private void Save(string dir, int step, double best, int bestStep, int evalsSinceBest) =>
        Checkpoint.Save(dir, model, tokenizer, null, State(step, best, bestStep, evalsSinceBest));

    private JsonObject State(int step, double best, int bestStep, int evalsSinceBest) => new()
    {
        ["stage"] = stage, ["step"] = step, ["best_loss"] = double.IsFinite(best) ? best : null,
        ["best_step"] = bestStep, ["evals_since_best"] = evalsSinceBest, ["stage_state"] = StageState.DeepClone(),
    };
}
