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

    /// <summary>The resolved config of the run, written when it starts.</summary>
    public string ConfigRecord => Path.Combine(Directory, "config.yaml");

    /// <summary>
    /// The newest resumable checkpoint that is whole: listed in its manifest with matching checksums and a readable
    /// trainer state with a step. A damaged newer one is skipped (with a warning through <paramref name="warn"/>) in
    /// favour of the one before it, so one bad write costs the steps since that one instead of the run. Null: none.
    /// </summary>
    public string? LatestCheckpoint(Action<string>? warn = null) => LatestValid(warn)?.Directory;

    /// <summary>The step of the newest whole resumable checkpoint (0: none); the same choice as <see cref="LatestCheckpoint"/>.</summary>
    public int ResumeStep() => LatestValid(null)?.Step ?? 0;

    private (string Directory, int Step)? LatestValid(Action<string>? warn)
    {
        if (!System.IO.Directory.Exists(Checkpoints)) return null;
        foreach (var dir in System.IO.Directory.GetDirectories(Checkpoints, "step-*").OrderByDescending(d => d, StringComparer.Ordinal))
        {
            try
            {
                Checkpoint.Verify(dir);
                var statePath = Path.Combine(dir, Checkpoint.StateFile);
                if (!File.Exists(statePath)) throw new InvalidDataException($"checkpoint {dir}: {Checkpoint.StateFile} is missing (not resumable)");
                var step = Checkpoint.ReadJson(statePath)["step"] is JsonValue v && v.TryGetValue(out int s) && s >= 0
                    ? s : throw new InvalidDataException($"{statePath}: 'step' is missing or not a non-negative integer");
                return (dir, step);
            }
            catch (InvalidDataException e)
            {
                warn?.Invoke($"warning: skipping damaged checkpoint {dir} ({e.Message}); falling back to the one before it");
            }
        }
        return null;
    }

    /// <summary>
    /// Removes what an interrupted checkpoint write leaves behind: the temporary folders a save renames into place
    /// (<c>.step-N.tmp-*</c>, <c>.final.tmp-*</c>). A run folder has one writer, so any such folder at start is
    /// an orphan. Returns the folders removed.
    /// </summary>
    public IReadOnlyList<string> RemoveInterruptedSaves()
    {
        var removed = new List<string>();
        foreach (var parent in new[] { Directory, Checkpoints })
        {
            if (!System.IO.Directory.Exists(parent)) continue;
            foreach (var d in System.IO.Directory.GetDirectories(parent, ".*.tmp-*"))
            {
                System.IO.Directory.Delete(d, recursive: true);
                removed.Add(d);
            }
        }
        return removed;
    }

    /// <summary>
    /// Cuts metrics.jsonl back to the lines of steps up to <paramref name="step"/> (all of them go when it is
    /// negative: a fresh start), so steps redone after a resume appear once. A line torn by a kill (not JSON, or with
    /// no step) is dropped too. The file is rewritten through a temporary file and a rename.
    /// </summary>
    public void TruncateMetricsAfter(int step)
    {
        if (!File.Exists(Metrics)) return;
        var kept = new List<string>();
        foreach (var line in File.ReadLines(Metrics))
        {
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (System.Text.Json.JsonException) { continue; }
            if (node is JsonObject o && o["step"] is JsonValue v && v.TryGetValue(out int s) && s <= step) kept.Add(line);
        }
        var temp = Metrics + ".tmp";
        File.WriteAllLines(temp, kept);
        File.Move(temp, Metrics, overwrite: true);
    }

    /// <summary>
    /// Deletes what a run has written into the folder (checkpoints, final/, best/, metrics.jsonl, config.yaml), for
    /// a new run in the same folder. Stores and run state beside them are the caller's to reset.
    /// </summary>
    public void Discard()
    {
        foreach (var d in new[] { Checkpoints, Final, Best })
            if (System.IO.Directory.Exists(d)) System.IO.Directory.Delete(d, recursive: true);
        foreach (var f in new[] { Metrics, ConfigRecord })
            if (File.Exists(f)) File.Delete(f);
        RemoveInterruptedSaves();
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
