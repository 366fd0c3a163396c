using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Model.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ckpt-" + Guid.NewGuid().ToString("N"));
    private readonly CpuBackend _be = new(1);
    private readonly ByteTokenizer _tok = new();
    private GptConfig Config => new(Layers: 2, Width: 16, Heads: 2, Context: 16, Vocab: _tok.VocabSize);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    [Fact]
    public void RoundTripsWeightsOptimizerAndState()
    {
        using var model = new GptModel(_be, Config);
        model.InitializeWeights(3);
        using var opt = new AdamWOptimizer(model, new AdamWSettings());
        model.ZeroGradients();
        model.Forward(TokenBatch.FromSequences([[1, 2, 3, 4]], 0));
        model.Backward([0.3f, 0.3f, 0.4f]);
        opt.Update(1e-2f);
        var path = Path.Combine(_dir, "c1");
        Checkpoint.Save(path, model, _tok, opt, new System.Text.Json.Nodes.JsonObject { ["step"] = 7 });

        var (loaded, tok) = Checkpoint.Load(path, _be);
        using (loaded)
        {
            Assert.Equal(model.DownloadParameters(), loaded.DownloadParameters());
            Assert.Equal(_tok.VocabSize, tok.VocabSize);
            using var opt2 = new AdamWOptimizer(loaded, new AdamWSettings());
            var state = Checkpoint.LoadTrainingState(path, opt2);
            Assert.Equal(7, state!["step"]!.GetValue<int>());
            Assert.Equal(1, opt2.Step);
            Assert.Equal(opt.DownloadState().M, opt2.DownloadState().M);
            Assert.Equal(opt.DownloadState().V, opt2.DownloadState().V);
        }

        // The weights file is a safetensors file with one named tensor per parameter.
        var (tensors, meta) = SafeTensors.Read(Path.Combine(path, Checkpoint.ModelFile));
        Assert.Equal(model.Layout.Slots.Count, tensors.Count);
        Assert.Equal([Config.PaddedVocab, 16], tensors["wte"].Shape);
        Assert.Equal("pt", meta["format"]);
    }

    [Fact]
    public void ACorruptFileIsRefusedByName()
    {
        using var model = new GptModel(_be, Config);
        model.InitializeWeights(1);
        var path = Path.Combine(_dir, "c2");
        Checkpoint.Save(path, model, _tok);
        var file = Path.Combine(path, Checkpoint.ModelFile);
        var bytes = File.ReadAllBytes(file);
        bytes[^5] ^= 0x40;
        File.WriteAllBytes(file, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, _be));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public void AMismatchedShapeIsRefusedWithBothShapes()
    {
        using var model = new GptModel(_be, Config);
        var path = Path.Combine(_dir, "c3");
        Checkpoint.Save(path, model, _tok);
        using var other = new GptModel(_be, Config with { Layers = 3 });
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadWeights(path, other));
        Assert.Contains("2 layers", e.Message);
        Assert.Contains("3 layers", e.Message);
    }

    [Fact]
    public void AnIncompleteFolderIsNotACheckpoint()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "half"));
        File.WriteAllText(Path.Combine(_dir, "half", Checkpoint.ConfigFile), "{}");
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Verify(Path.Combine(_dir, "half")));
        Assert.Contains("manifest.json", e.Message);
    }

    [Fact]
    public void SavingOverAnExistingCheckpointReplacesItWhole()
    {
        using var model = new GptModel(_be, Config);
        model.InitializeWeights(1);
        var path = Path.Combine(_dir, "c4");
        Checkpoint.Save(path, model, _tok);
        model.InitializeWeights(2);
        Checkpoint.Save(path, model, _tok);
        using var loaded = Checkpoint.Load(path, _be).Model;
        Assert.Equal(model.DownloadParameters(), loaded.DownloadParameters());
        Assert.Single(Directory.GetDirectories(_dir)); // no temporary folders left behind
    }
}
