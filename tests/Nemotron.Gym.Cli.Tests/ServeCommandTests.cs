using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>`gym serve` as a user runs it: the real tool over a checkpoint on disk, stopped with Ctrl-C.</summary>
public sealed class ServeCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"gym-serve-cli-{Guid.NewGuid():N}");
    private readonly string _checkpoint;

    public ServeCommandTests()
    {
        _checkpoint = Path.Combine(_dir, "tiny-chat");
        var tokenizer = new ByteTokenizer();
        using var backend = new CpuBackend(1);
        using var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 96, Vocab: tokenizer.VocabSize));
        model.InitializeWeights(1);
        Checkpoint.Save(_checkpoint, model, tokenizer);
    }

    [Fact]
    public async Task ServesChatCompletionsUntilInterrupted()
    {
        using var gym = GymProcess.Start(_dir, "serve", "--checkpoint", _checkpoint, "--port", "0", "--device", "cpu");
        await gym.WaitForAsync("Ctrl-C stops", TimeSpan.FromSeconds(60));
        var url = Regex.Match(gym.Output, @"at (http://127\.0\.0\.1:\d+/)v1").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(url), gym.Output);
        using var http = new HttpClient { BaseAddress = new Uri(url) };

        var models = JsonNode.Parse(await http.GetStringAsync("v1/models"))!;
        Assert.Equal("tiny-chat", (string)models["data"]![0]!["id"]!); // the checkpoint folder's name
        var response = await http.PostAsJsonAsync("v1/chat/completions", new JsonObject
        {
            ["model"] = "tiny-chat", ["max_tokens"] = 5, ["seed"] = 1,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
        });
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.True(response.IsSuccessStatusCode, body.ToJsonString());
        Assert.Equal("chat.completion", (string)body["object"]!);
        Assert.InRange((int)body["usage"]!["completion_tokens"]!, 1, 5);

        gym.Interrupt();
        Assert.True(gym.WaitForExit(TimeSpan.FromSeconds(30)), gym.Output);
        Assert.Equal(0, gym.ExitCode);
    }

    [Fact]
    public void AnyHostButLoopbackNeedsAnApiKey()
    {
        var (code, output) = GymProcess.Run(_dir, "serve", "--checkpoint", _checkpoint, "--host", "0.0.0.0", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("--api-key", output);
        (code, output) = GymProcess.Run(_dir, "serve", "--checkpoint", Path.Combine(_dir, "missing"), "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("missing", output);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }
}
