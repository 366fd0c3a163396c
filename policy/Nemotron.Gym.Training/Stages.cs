using System.Text.Json.Nodes;
using Nemotron.Gym.Kernels;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Training;

/// <summary>The pretraining and fine-tuning stages: config in, a checkpoint out.</summary>
public static class Stages
{
    /// <summary>Pretrains a new model (or resumes the run in config.Out).</summary>
    public static TrainingOutcome Pretrain(PretrainConfig config, IComputeBackend backend, ITrainingObserver observer, CancellationToken cancellation)
    {
        if (Completed(config.Out, observer) is { } done) return done;
        var tokenizer = TokenizerFactory.Create(config.Tokenizer);
        var m = config.Model;
        int seqLen = config.SeqLen > 0 ? config.SeqLen : m.Context;
        var modelConfig = RequireMemory(new GptConfig(m.Layers, m.Width, m.Heads, m.Context, tokenizer.VocabSize), (long)config.Train.MicroBatchSize * seqLen, seqLen);
        var train = TextCorpus.Load(config.Data.Train, tokenizer);
        var valid = TextCorpus.Load(config.Data.Valid, tokenizer);
        observer.OnMessage($"pretrain: {modelConfig.ParameterCount / 1e6:F2}M parameters ({m.Layers} layers, width {m.Width}, {m.Heads} heads, context {m.Context}); " +
            $"{train.Documents} documents, {train.Tokens / 1e6:F2}M tokens; {config.Train.Steps} steps of {config.Train.BatchSize}×{seqLen} tokens = {(double)config.Train.Steps * config.Train.BatchSize * seqLen / 1e6:F1}M tokens");
        using var model = new GptModel(backend, modelConfig);
        model.InitializeWeights(config.Seed);
        WriteResolvedConfig(config.Out, config);
        var loop = new TrainingLoop(model, tokenizer, config.Train, config.Out, "pretrain", observer);
        return loop.Run(new PretrainBatchSource(train, valid, config.Train, seqLen, config.Seed), cancellation);
    }

    /// <summary>Fine-tunes config.Init on chat data (or resumes the run in config.Out).</summary>
    public static TrainingOutcome Sft(SftConfig config, IComputeBackend backend, ITrainingObserver observer, CancellationToken cancellation)
    {
        if (Completed(config.Out, observer) is { } done) return done;
        var (model, tokenizer) = Checkpoint.Load(config.Init, backend);
        using (model)
        {
            var template = new ChatTemplate(tokenizer);
            var train = ChatExamples.Load(config.Data.Train, template, model.Config.Context);
            var valid = ChatExamples.Load(config.Data.Valid, template, model.Config.Context);
            var source = new ChatBatchSource(train, valid, config.Train, config.LossAggregation, tokenizer.Specials.Pad, config.Seed);
            observer.OnMessage($"sft: from {config.Init}; {train.Items.Count} training conversations ({train.Skipped} skipped), {valid.Items.Count} held out; " +
                $"{config.Train.Steps} steps of {config.Train.BatchSize} = {source.Epochs(config.Train.Steps):F2} epochs; loss per {config.LossAggregation.ToString().ToLowerInvariant()}");
            WriteResolvedConfig(config.Out, config);
            var loop = new TrainingLoop(model, tokenizer, config.Train, config.Out, "sft", observer);
            return loop.Run(source, cancellation);
        }
    }

    /// <summary>
    /// Refuses a model shape that cannot be built or trained in this machine's memory, with the estimate, before a byte
    /// of it is allocated (a shape too big for memory used to be killed by the kernel minutes later).
    /// </summary>
    public static GptConfig RequireMemory(GptConfig model, long tokensPerMicroBatch, int seqLen)
    {
        try { model.Validate(); }
        catch (ArgumentException e) { throw new ConfigException(e.Message); }
        double need = model.TrainingBytesEstimate(tokensPerMicroBatch, seqLen);
        long have = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (need > have)
            throw new ConfigException($"model.layers {model.Layers} × model.width {model.Width}: {model.ParameterEstimate / 1e6:N0}M parameters need about {need / 1e9:N1} GB to train " +
                $"(weights, gradients, AdamW moments, activations of {tokensPerMicroBatch} tokens), and this machine has {have / 1e9:N1} GB: use fewer layers, a smaller width or a smaller micro_batch");
        return model;
    }

    /// <summary>A finished run (final/ exists) is not run again: its outcome is read back.</summary>
    private static TrainingOutcome? Completed(string runDirectory, ITrainingObserver observer)
    {
        var folder = new RunFolder(runDirectory);
        if (!folder.IsFinished) return null;
        var final = folder.Final;
        Checkpoint.Verify(final);
        var state = Checkpoint.ReadJson(Path.Combine(final, Checkpoint.StateFile));
        int step = state["step"]?.GetValue<int>() ?? 0;
        double best = state["best_loss"]?.GetValue<double>() ?? double.NaN;
        observer.OnMessage($"{final} already exists (step {step}); delete the run folder to train again");
        return new TrainingOutcome(step, best, best, state["best_step"]?.GetValue<int>() ?? step, final, false, false);
    }

    private static void WriteResolvedConfig(string runDirectory, object config)
    {
        Directory.CreateDirectory(runDirectory);
        File.WriteAllText(Path.Combine(runDirectory, "config.yaml"), YamlConfig.ToYaml(config));
    }
}
