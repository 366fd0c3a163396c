using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Sampling;

namespace Nemotron.Gym.Kernels.Cuda.Tests;

/// <summary>
/// The whole model on both backends: the same seed gives the same loss curve over 20 optimizer steps (to the drift
/// that bf16 products allow), and a trained model's greedy generations are the same tokens.
/// </summary>
[Collection("gpu")]
[Trait("Category", "Gpu")]
public sealed class TrainingParityTests(GpuFixture fx)
{
    // Head size 16 and 32-token rows: the tensor-core attention kernels and a partial tile both run.
    private static readonly GptConfig Config = new(Layers: 2, Width: 64, Heads: 4, Context: 48, Vocab: 67);

    /// <summary>A learnable stream: each row counts up from its own start, modulo 61.</summary>
    private static TokenBatch CountingBatch(int rows, int seqLen, int seed)
    {
        var rng = new Random(seed);
        var tokens = new int[rows * seqLen];
        var targets = new int[rows * seqLen];
        for (int r = 0; r < rows; r++)
        {
            int start = rng.Next(61);
            for (int t = 0; t < seqLen; t++)
            {
                tokens[r * seqLen + t] = (start + t) % 61;
                targets[r * seqLen + t] = (start + t + 1) % 61;
            }
        }
        return new TokenBatch(rows, seqLen, tokens, targets);
    }

    private static double[] Train(GptModel model, int steps, float learningRate)
    {
        using var opt = new AdamWOptimizer(model, new AdamWSettings());
        var losses = new double[steps];
        for (int s = 0; s < steps; s++)
        {
            var batch = CountingBatch(4, 32, s);
            var weights = Enumerable.Repeat(1f / batch.Count, batch.Count).ToArray();
            model.ZeroGradients();
            var result = model.Forward(batch);
            losses[s] = -result.LogProbs.Average();
            model.Backward(weights);
            model.ClipGradients(1f);
            opt.Update(learningRate);
        }
        return losses;
    }

    [Fact]
    public void Twenty_training_steps_give_the_cpu_loss_curve()
    {
        var gpu = fx.Require();
        using var cpuModel = new GptModel(fx.Cpu, Config);
        using var gpuModel = new GptModel(gpu, Config);
        cpuModel.InitializeWeights(42);
        gpuModel.InitializeWeights(42);
        Assert.Equal(cpuModel.DownloadParameters(), gpuModel.DownloadParameters());

        var cpu = Train(cpuModel, 20, 3e-3f);
        var cuda = Train(gpuModel, 20, 3e-3f);
        var table = string.Join("\n", cpu.Zip(cuda).Select((p, i) => $"step {i + 1,2}: cpu {p.First:F4}  cuda {p.Second:F4}"));
        TestContext.Current.TestOutputHelper?.WriteLine(table);
        for (int i = 0; i < cpu.Length; i++)
            Assert.True(Math.Abs(cpu[i] - cuda[i]) <= 0.01 + 0.01 * cpu[i], $"losses part at step {i + 1}:\n{table}");
        Assert.True(cuda[^1] < cuda[0] - 0.5, $"the CUDA model did not learn:\n{table}");
    }

    [Fact]
    public void A_trained_model_generates_the_same_greedy_tokens()
    {
        var gpu = fx.Require();
        using var cpuModel = new GptModel(fx.Cpu, Config);
        cpuModel.InitializeWeights(7);
        // Train on the CPU until the next token is obvious, so bf16 rounding cannot flip an arg-max.
        var losses = Train(cpuModel, 150, 1e-2f);
        Assert.True(losses[^1] < 0.2, $"the reference model did not learn to count (loss {losses[^1]:F3})");
        using var gpuModel = new GptModel(gpu, Config);
        gpuModel.UploadParameters(cpuModel.DownloadParameters());

        var prompts = new List<int[]> { new[] { 3, 4, 5 }, new[] { 40, 41, 42, 43, 44 }, new[] { 59, 60 }, new[] { 10 } };
        var options = new GenerationOptions(16, SamplingParams.Greedy, Seed: 1, StopTokens: []);
        using var cpuSampler = new Sampler(cpuModel);
        using var gpuSampler = new Sampler(gpuModel);
        var expected = cpuSampler.Generate(prompts, options, TestContext.Current.CancellationToken);
        var actual = gpuSampler.Generate(prompts, options, TestContext.Current.CancellationToken);
        for (int i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(expected[i].Tokens, actual[i].Tokens);
            Host.Close(expected[i].LogProbs, actual[i].LogProbs, 2e-2, 0, $"greedy logprobs of prompt {i}");
        }
    }
}
