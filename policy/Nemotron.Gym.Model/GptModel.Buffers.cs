using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Model;

public sealed partial class GptModel
{
    /// <summary>Training and generation keep separate activations, so an RL step does not reallocate.</summary>
    private enum ActivationSet { Train, Generate }

    private Activations Acts(ActivationSet set, int tokens)
    {
        if (_activations.TryGetValue(set, out var a) && a.Capacity >= tokens) return a;
        a?.Dispose();
        // Grow geometrically so slowly rising batch sizes do not reallocate every step.
        int capacity = Math.Max(tokens, a == null ? tokens : Math.Min(2 * a.Capacity, Math.Max(tokens, a.Capacity + a.Capacity / 2)));
        a = new Activations(Backend, Config, capacity);
        _activations[set] = a;
        return a;
    }

    private BackwardScratch Scratch(int tokens)
    {
        if (_scratch != null && _scratch.Capacity >= tokens) return _scratch;
        _scratch?.Dispose();
        _scratch = new BackwardScratch(Backend, Config, tokens);
        return _scratch;
    }

    /// <summary>What one block keeps from its forward pass.</summary>
    private sealed class LayerActivations(IComputeBackend be, GptConfig cfg, int n, int layer) : IDisposable
    {
        private static Tensor F(IComputeBackend be, long len, string name) => be.Allocate(DType.F32, len, name);
        public readonly Tensor Norm1 = F(be, (long)n * cfg.Width, $"h{layer}.ln1");
        public readonly Tensor Rstd1 = F(be, n, $"h{layer}.ln1.rstd");
        public readonly Tensor Qkv = F(be, (long)n * 3 * cfg.Width, $"h{layer}.qkv");
        public readonly Tensor Attn = F(be, (long)n * cfg.Width, $"h{layer}.attn");
        public readonly Tensor LogSumExp = F(be, (long)n * cfg.Heads, $"h{layer}.attn.lse");
        public readonly Tensor Mid = F(be, (long)n * cfg.Width, $"h{layer}.mid");
        public readonly Tensor Norm2 = F(be, (long)n * cfg.Width, $"h{layer}.ln2");
        public readonly Tensor Rstd2 = F(be, n, $"h{layer}.ln2.rstd");
        public readonly Tensor Hidden = F(be, (long)n * 4 * cfg.Width, $"h{layer}.fc");
        public readonly Tensor HiddenGelu = F(be, (long)n * 4 * cfg.Width, $"h{layer}.fc.gelu");
        public readonly Tensor Out = F(be, (long)n * cfg.Width, $"h{layer}.out");

        public void Dispose()
        {
            foreach (var t in new[] { Norm1, Rstd1, Qkv, Attn, LogSumExp, Mid, Norm2, Rstd2, Hidden, HiddenGelu, Out }) t.Dispose();
        }
    }

    /// <summary>Activations for up to <see cref="Capacity"/> tokens.</summary>
    private sealed class Activations : IDisposable
    {
        public Activations(IComputeBackend be, GptConfig cfg, int capacity)
        {
            Capacity = capacity;
            long n = capacity;
            Tokens = be.Allocate(DType.I32, n, "tokens");
            Positions = be.Allocate(DType.I32, n, "positions");
            Targets = be.Allocate(DType.I32, n, "targets");
            Encoded = be.Allocate(DType.F32, n * cfg.Width, "encoded");
            Layers = Enumerable.Range(0, cfg.Layers).Select(l => new LayerActivations(be, cfg, capacity, l)).ToArray();
            FinalNorm = be.Allocate(DType.F32, n * cfg.Width, "ln_f");
            FinalRstd = be.Allocate(DType.F32, n, "ln_f.rstd");
            Logits = be.Allocate(DType.F32, n * cfg.PaddedVocab, "logits");
            LogProbs = be.Allocate(DType.F32, n, "logprobs");
            LogSumExp = be.Allocate(DType.F32, n, "logits.lse");
            Entropy = be.Allocate(DType.F32, n, "entropy");
        }

        public int Capacity { get; }
        public Tensor Tokens, Positions, Targets, Encoded, FinalNorm, FinalRstd, Logits, LogProbs, LogSumExp, Entropy;
        public LayerActivations[] Layers;

        public void Dispose()
        {
            foreach (var l in Layers) l.Dispose();
            foreach (var t in new[] { Tokens, Positions, Targets, Encoded, FinalNorm, FinalRstd, Logits, LogProbs, LogSumExp, Entropy }) t.Dispose();
        }
    }

    /// <summary>Gradient buffers for activations, reused by every block of the backward pass.</summary>
    private sealed class BackwardScratch : IDisposable
    {
        public BackwardScratch(IComputeBackend be, GptConfig cfg, int capacity)
        {
            Capacity = capacity;
            long n = capacity, c = cfg.Width;
            Weights = be.Allocate(DType.F32, n, "loss.weights");
            Logits = be.Allocate(DType.F32, n * cfg.PaddedVocab, "dlogits");
            Norm = be.Allocate(DType.F32, n * c, "dnorm");
            Residual = be.Allocate(DType.F32, n * c, "dresidual");
            Attn = be.Allocate(DType.F32, n * c, "dattn");
            Qkv = be.Allocate(DType.F32, n * 3 * c, "dqkv");
            Hidden = be.Allocate(DType.F32, n * 4 * c, "dfc");
            Hidden2 = be.Allocate(DType.F32, n * 4 * c, "dfc.gelu");
        }

        public int Capacity { get; }
        public Tensor Weights, Logits, Norm, Residual, Attn, Qkv, Hidden, Hidden2;

        public void Dispose()
        {
            foreach (var t in new[] { Weights, Logits, Norm, Residual, Attn, Qkv, Hidden, Hidden2 }) t.Dispose();
        }
    }
}
