using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Model.Checkpoints;

/// <summary>
/// A checkpoint is a folder: model.safetensors (weights by name), config.json (model shape),
/// tokenizer.json, optimizer.safetensors and trainer_state.json when saved for resuming, and
/// manifest.json with the SHA-256 of every other file. Saving writes a temporary folder and renames it
/// into place, so an interrupted save never damages the previous checkpoint. Loading verifies the
/// checksums and the shapes, and refuses a corrupt or mismatched checkpoint with a reason.
/// </summary>
public static class Checkpoint
{
    /// <summary>Files of a checkpoint folder.</summary>
    public const string ModelFile = "model.safetensors", ConfigFile = "config.json", TokenizerFile = "tokenizer.json",
        OptimizerFile = "optimizer.safetensors", StateFile = "trainer_state.json", ManifestFile = "manifest.json";

    /// <summary>Saves the model (and optimizer and trainer state, when given) into <paramref name="directory"/>.</summary>
    public static void Save(string directory, GptModel model, ITokenizer tokenizer, AdamWOptimizer? optimizer = null, JsonObject? trainerState = null)
    {
        directory = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(directory)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(directory)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var weights = model.DownloadParameters();
            SafeTensors.Write(Path.Combine(temp, ModelFile), Split(model.Layout, weights, ""),
                new Dictionary<string, string> { ["format"] = "pt", ["producer"] = "nemotron-gym" });
            WriteJson(Path.Combine(temp, ConfigFile), model.Config.ToJson());
            WriteJson(Path.Combine(temp, TokenizerFile), tokenizer.ToJson());
            if (optimizer != null)
            {
                var (m, v) = optimizer.DownloadState();
                SafeTensors.Write(Path.Combine(temp, OptimizerFile), Split(model.Layout, m, "adam_m.").Concat(Split(model.Layout, v, "adam_v.")),
                    new Dictionary<string, string> { ["step"] = optimizer.Step.ToString() });
            }
            if (trainerState != null) WriteJson(Path.Combine(temp, StateFile), trainerState);
            var manifest = new JsonObject();
            foreach (var f in Directory.GetFiles(temp).OrderBy(f => f, StringComparer.Ordinal))
                manifest[Path.GetFileName(f)] = new JsonObject { ["sha256"] = Sha256(f), ["bytes"] = new FileInfo(f).Length };
            WriteJson(Path.Combine(temp, ManifestFile), new JsonObject { ["files"] = manifest });

            // Swap into place: the old copy (if any) is removed only once the new one is complete.
            string? old = null;
            if (Directory.Exists(directory))
            {
                old = temp + ".old";
                Directory.Move(directory, old);
            }
            Directory.Move(temp, directory);
            if (old != null) Directory.Delete(old, recursive: true);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private static IEnumerable<NamedTensor> Split(ParameterLayout layout, float[] flat, string prefix) =>
        layout.Slots.Select(s => new NamedTensor(prefix + s.Name, s.Shape, flat.AsSpan((int)s.Offset, (int)s.Length).ToArray()));

    /// <summary>Checks the manifest; throws naming the first file that is missing or altered.</summary>
    public static void Verify(string directory)
    {
        if (!Directory.Exists(directory)) throw new InvalidDataException($"checkpoint {directory}: folder not found");
        var manifestPath = Path.Combine(directory, ManifestFile);
        if (!File.Exists(manifestPath)) throw new InvalidDataException($"checkpoint {directory}: {ManifestFile} is missing (incomplete or not a checkpoint)");
        var files = ReadJson(manifestPath)["files"] as JsonObject ?? throw new InvalidDataException($"{manifestPath}: no 'files'");
        foreach (var required in new[] { ModelFile, ConfigFile, TokenizerFile })
            if (!files.ContainsKey(required)) throw new InvalidDataException($"checkpoint {directory}: manifest does not list {required}");
        foreach (var (name, info) in files)
        {
            // Entries are files of this folder: a name with a path in it ("../../etc/shadow") is never opened.
            if (name.Length == 0 || name != Path.GetFileName(name) || name is "." or "..")
                throw new InvalidDataException($"{manifestPath}: entry '{name}' is not a file name inside the checkpoint folder");
            var path = Path.Combine(directory, name);
            if (!File.Exists(path)) throw new InvalidDataException($"checkpoint {directory}: {name} is missing");
            string want = info is JsonObject o && o["sha256"] is JsonValue v && v.TryGetValue(out string? sha) ? sha
                : throw new InvalidDataException($"{manifestPath}: files.{name}.sha256 is missing or not a string");
            if (Sha256(path) != want)
                throw new InvalidDataException($"checkpoint {directory}: {name} does not match its checksum (the file is corrupt or was modified)");
        }
    }

    /// <summary>Reads config.json and tokenizer.json (after verifying the checksums).</summary>
    public static (GptConfig Config, ITokenizer Tokenizer) ReadHeader(string directory)
    {
        Verify(directory);
        var cfgPath = Path.Combine(directory, ConfigFile);
        var config = GptConfig.FromJson(ReadJson(cfgPath), cfgPath);
        var tokenizer = TokenizerFactory.Load(Path.Combine(directory, TokenizerFile));
        if (tokenizer.VocabSize != config.Vocab)
            throw new InvalidDataException($"checkpoint {directory}: tokenizer has {tokenizer.VocabSize} ids but the model vocabulary is {config.Vocab}");
        return (config, tokenizer);
    }

    /// <summary>Loads the weights into <paramref name="model"/>, whose shape must match the checkpoint's.</summary>
    public static void LoadWeights(string directory, GptModel model)
    {
        var (config, _) = ReadHeader(directory);
        if (config != model.Config)
            throw new InvalidDataException($"checkpoint {directory}: its model is {Describe(config)} but {Describe(model.Config)} was expected");
        var path = Path.Combine(directory, ModelFile);
        var (tensors, _) = SafeTensors.Read(path);
        // A NaN or infinite weight (a diverged run, a bad conversion) would generate garbage with no error: refused here.
        foreach (var t in tensors.Values)
        {
            int bad = Array.FindIndex(t.Data, x => !float.IsFinite(x));
            if (bad >= 0)
                throw new InvalidDataException($"{path}: tensor '{t.Name}' holds {t.Data[bad]} at element {bad}; a model's weights must be finite (did training diverge? use an earlier checkpoint)");
        }
        model.UploadParameters(Join(model.Layout, tensors, "", path));
    }

    /// <summary>Loads a model and its tokenizer onto a backend.</summary>
    public static (GptModel Model, ITokenizer Tokenizer) Load(string directory, Kernels.IComputeBackend backend)
    {
        var (config, tokenizer) = ReadHeader(directory);
        var model = new GptModel(backend, config);
        try { LoadWeights(directory, model); }
        catch { model.Dispose(); throw; }
        return (model, tokenizer);
    }

    /// <summary>Restores optimizer moments and step; returns the trainer state (or null when not saved).</summary>
    public static JsonObject? LoadTrainingState(string directory, AdamWOptimizer optimizer)
    {
        var optPath = Path.Combine(directory, OptimizerFile);
        if (!File.Exists(optPath)) throw new InvalidDataException($"checkpoint {directory}: no optimizer state to resume from");
        var (tensors, meta) = SafeTensors.Read(optPath);
        var m = Join(optimizer.Layout, tensors, "adam_m.", optPath);
        var v = Join(optimizer.Layout, tensors, "adam_v.", optPath);
        if (!meta.TryGetValue("step", out var stepText) || !int.TryParse(stepText, out int step))
            throw new InvalidDataException($"{optPath}: metadata has no integer 'step'");
        optimizer.UploadState(m, v, step);
        var statePath = Path.Combine(directory, StateFile);
        return File.Exists(statePath) ? ReadJson(statePath) : null;
    }

    private static float[] Join(ParameterLayout layout, Dictionary<string, NamedTensor> tensors, string prefix, string path)
    {
        var flat = new float[layout.Total];
        foreach (var s in layout.Slots)
        {
            if (!tensors.TryGetValue(prefix + s.Name, out var t))
                throw new InvalidDataException($"{path}: tensor '{prefix + s.Name}' is missing");
            if (!t.Shape.SequenceEqual(s.Shape))
                throw new InvalidDataException($"{path}: tensor '{prefix + s.Name}' has shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", s.Shape)}]");
            t.Data.CopyTo(flat, s.Offset);
        }
        return flat;
    }

    private static string Describe(GptConfig c) => $"{c.Layers} layers × {c.Width} wide, {c.Heads} heads, context {c.Context}, vocabulary {c.Vocab}";

    private static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    private static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(JsonText.Indented));

    /// <summary>Reads a JSON object file, with the path in errors.</summary>
    public static JsonObject ReadJson(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: expected a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }
}
