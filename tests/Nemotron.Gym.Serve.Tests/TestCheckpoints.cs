using Nemotron.Gym.Conversation;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Chat;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Serve;

namespace Nemotron.Gym.Serve.Tests;

/// <summary>
/// Tiny checkpoints written to a temporary folder and loaded back the way `gym serve` loads them, and a
/// server over each.
/// </summary>
internal static class TestCheckpoints
{
    public static readonly ByteTokenizer Tokenizer = new();

    /// <summary>A small random model with a peaked distribution, so sampled text depends on the seed.</summary>
    public static string Random(int seed, int layers = 2, int width = 32, int context = 160)
    {
        var cfg = new GptConfig(Layers: layers, Width: width, Heads: 2, Context: context, Vocab: Tokenizer.VocabSize);
        using var model = new GptModel(new CpuBackend(1), cfg);
        model.InitializeWeights(seed);
        var p = model.DownloadParameters();
        for (int i = 0; i < p.Length; i++) if (p[i] != 1f) p[i] *= 8f;
        model.UploadParameters(p);
        return Save(model);
    }

    /// <summary>
    /// A model that answers <paramref name="conversation"/> with <paramref name="response"/> (special tokens
    /// written as their strings), by construction rather than training: every block's matrices are zero, so
    /// the residual stream is the embedding wte[token] + wpe[position]; the token table is a small multiple
    /// of the identity and position p's embedding points, with a large weight, at the token meant to follow
    /// position p. The tied LM head then scores that token about 34 nats above any other, at any
    /// temperature up to 1. After the response every position points at 'z'.
    /// </summary>
    public static string Scripted(ChatTranscript conversation, string response, int layers = 1, int context = 256)
    {
        var template = new ChatTemplate(Tokenizer);
        var prompt = template.RenderGenerationPrompt(conversation);
        var script = EncodeWithSpecials(response);
        if (prompt.Length + script.Count > context) throw new ArgumentException("scripted conversation does not fit the context");
        var cfg = new GptConfig(Layers: layers, Width: 288, Heads: 4, Context: context, Vocab: Tokenizer.VocabSize);
        using var model = new GptModel(new CpuBackend(1), cfg);
        var p = new float[model.Layout.Total];
        int c = cfg.Width;
        const float tokenScale = 2f, positionScale = 100f;
        for (int j = 0; j < cfg.Vocab; j++) p[model.Layout.TokenTable.Offset + (long)j * c + j] = tokenScale;
        for (int pos = 0; pos < context; pos++)
        {
            int k = pos - (prompt.Length - 1);
            int next = k >= 0 && k < script.Count ? script[k] : 'z';
            p[model.Layout.PositionTable.Offset + (long)pos * c + next] = positionScale;
        }
        foreach (var layer in model.Layout.Layers)
            foreach (var norm in new[] { layer.Norm1, layer.Norm2 })
                Array.Fill(p, 1f, (int)norm.Offset, (int)norm.Length);
        Array.Fill(p, 1f, (int)model.Layout.FinalNorm.Offset, (int)model.Layout.FinalNorm.Length);
        model.UploadParameters(p);
        return Save(model);
    }

    /// <summary>Text to token ids, with the chat format's special-token strings turned into their ids.</summary>
    public static List<int> EncodeWithSpecials(string text)
    {
        var ids = new List<int>();
        int pos = 0;
        while (pos < text.Length)
        {
            int next = -1, id = 0;
            string name = "";
            foreach (var n in SpecialTokens.Names)
            {
                int at = text.IndexOf(n, pos, StringComparison.Ordinal);
                if (at >= 0 && (next < 0 || at < next)) { next = at; name = n; Tokenizer.Specials.TryGetId(n, out id); }
            }
            if (next < 0) { Tokenizer.EncodeTo(text[pos..], ids); break; }
            Tokenizer.EncodeTo(text[pos..next], ids);
            ids.Add(id);
            pos = next + name.Length;
        }
        return ids;
    }

    private static string Save(GptModel model)
    {
        var dir = Path.Combine(Path.GetTempPath(), "gym-serve-tests", Guid.NewGuid().ToString("N"), "tiny");
        Checkpoint.Save(dir, model, Tokenizer);
        return dir;
    }
}

/// <summary>A running server over a checkpoint, loaded as `gym serve` loads it; disposing stops it and deletes the checkpoint.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly string _checkpoint;

    private TestServer(string checkpoint, GptModel model, ITokenizer tokenizer, ServeHost host)
    {
        _checkpoint = checkpoint;
        Model = model;
        Tokenizer = tokenizer;
        Host = host;
    }

    public GptModel Model { get; }
    public ITokenizer Tokenizer { get; }
    public ServeHost Host { get; }
    public Uri V1 => new(Host.BaseAddress, "v1");

    public static async Task<TestServer> StartAsync(string checkpoint, ServeOptions? options = null)
    {
        var (model, tokenizer) = Checkpoint.Load(checkpoint, new CpuBackend(2));
        var host = await ServeHost.StartAsync(model, tokenizer, (options ?? new ServeOptions()) with { Port = 0, ModelName = "tiny" });
        return new TestServer(checkpoint, model, tokenizer, host);
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        var backend = Model.Backend;
        Model.Dispose();
        backend.Dispose();
        Directory.Delete(Path.GetDirectoryName(_checkpoint)!, recursive: true);
    }
}
