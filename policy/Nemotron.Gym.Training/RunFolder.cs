using System.Text.Json.Nodes;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Training;

/// <summary>
/// The files of one training stage's run folder, the same for every stage (pretrain, SFT, GRPO):
/// <c>checkpoints/step-NNNNNN/</c> (resumable: weights, optimizer state, trainer state; the newest two kept),
/// <c>final/</c> (the stage's result), <c>best/</c> (with early stopping), <c>metrics.jsonl</c> and <c>config.yaml</c>.
/// See docs/architecture.md, "Run folders".
/// </summary>
public sealed class RunFolder(string directory)
{
    /// <summary>Resumable checkpoints kept; older ones are deleted when a new one is written.</summary>
    public const int ResumableKept = 2;

    /// <summary>The folder.</summary>
    public string Directory { get; } = directory;
    /// <summary>The stage's result.</summary>
    public string Final => Path.Combine(Directory, "final");
    /// <summary>The best checkpoint by held-out loss (early stopping).</summary>
    public string Best => Path.Combine(Directory, "best");
    /// <summary>One JSON line per step and per evaluation.</summary>
    public string Metrics => Path.Combine(Directory, "metrics.jsonl");
    /// <summary>Where resumable checkpoints live.</summary>
    public string Checkpoints => Path.Combine(Directory, "checkpoints");

    /// <summary>The folder of the resumable checkpoint after <paramref name="step"/>.</summary>
    public string CheckpointOf(int step) => Path.Combine(Checkpoints, $"step-{step:D6}");

    /// <summary>True when the stage has finished (its final checkpoint is complete).</summary>
    public bool IsFinished => File.Exists(Path.Combine(Final, Checkpoint.ManifestFile));

    /// <summary>The newest complete resumable checkpoint, or null.</summary>
    public string? LatestCheckpoint()
    {
        if (!System.IO.Directory.Exists(Checkpoints)) return null;
        return System.IO.Directory.GetDirectories(Checkpoints, "step-*")
            .Where(d => File.Exists(Path.Combine(d, Checkpoint.ManifestFile)))
            .OrderByDescending(d => d, StringComparer.Ordinal)
            .FirstOrDefault();
    }

    /// <summary>The step of the newest resumable checkpoint (0: none).</summary>
    public int ResumeStep()
    {
        var latest = LatestCheckpoint();
        if (latest == null) return 0;
        return Checkpoint.ReadJson(Path.Combine(latest, Checkpoint.StateFile))["step"]?.GetValue<int>() ?? 0;
    }

    /// <summary>Writes a resumable checkpoint after <paramref name="step"/> and deletes all but the newest <see cref="ResumableKept"/>.</summary>
    public string SaveResumable(int step, GptModel model, ITokenizer tokenizer, AdamWOptimizer optimizer, JsonObject trainerState)
    {
        var dir = CheckpointOf(step);
        Checkpoint.Save(dir, model, tokenizer, optimizer, trainerState);
        foreach (var old in System.IO.Directory.GetDirectories(Checkpoints, "step-*").OrderByDescending(d => d, StringComparer.Ordinal).Skip(ResumableKept))
            System.IO.Directory.Delete(old, recursive: true);
        return dir;
    }
}
