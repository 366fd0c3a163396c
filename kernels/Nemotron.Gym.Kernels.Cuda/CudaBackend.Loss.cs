namespace Nemotron.Gym.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private const int SampleThreads = 512;  // SAMPLE_THREADS in sampling.cu: the kernel's shared arrays assume it

    private static void CheckVocab(int vocab, int stride, string op)
    {
        if (vocab <= 0 || stride < vocab) throw new ArgumentException($"{op}: vocabulary {vocab} with row stride {stride}");
    }

    private static int RowThreads(int vocab) => vocab >= 8192 ? 512 : vocab >= 1024 ? 256 : 128;

    /// <inheritdoc />
    public void SoftmaxCrossEntropyForward(Tensor logProbs, Tensor logSumExp, Tensor? entropy, Tensor logits, Tensor targets, int n, int vocab, int stride)
    {
        Enter();
        CheckVocab(vocab, stride, "cross-entropy");
        ulong z = Read(logits, (long)(n - 1) * stride + vocab, "cross-entropy logits");
        ulong tg = ReadInts(targets, n, "cross-entropy targets");
        ulong lp = Write(logProbs, DType.F32, n, "cross-entropy logprobs");
        ulong lse = Write(logSumExp, DType.F32, n, "cross-entropy logsumexp");
        ulong ent = entropy == null ? 0 : Write(entropy, DType.F32, n, "cross-entropy entropy");
        if (n <= 0) return;
        Launch("softmax_xent", "softmax_xent_forward", n, RowThreads(vocab), 0,
            new KernelArgs().Ptr(lp).Ptr(lse).Ptr(ent).Ptr(z).Ptr(tg).I32(n).I32(vocab).I32(stride).Ptr(_deviceError.Pointer));
    }

    /// <inheritdoc />
    public void SoftmaxCrossEntropyBackward(Tensor dlogits, Tensor logits, Tensor logSumExp, Tensor targets, Tensor lossWeights, int n, int vocab, int stride)
    {
        Enter();
        CheckVocab(vocab, stride, "cross-entropy backward");
        ulong z = Read(logits, (long)(n - 1) * stride + vocab, "cross-entropy logits");
        ulong lse = Read(logSumExp, n, "cross-entropy logsumexp");
        ulong tg = ReadInts(targets, n, "cross-entropy targets");
        ulong w = Read(lossWeights, n, "cross-entropy loss weights");
        ulong dz = Write(dlogits, DType.F32, (long)(n - 1) * stride + vocab, "cross-entropy dlogits");
        if (n <= 0) return;
        Launch("softmax_xent", "softmax_xent_backward", n, RowThreads(vocab), 0,
            new KernelArgs().Ptr(dz).Ptr(z).Ptr(lse).Ptr(tg).Ptr(w).I32(n).I32(vocab).I32(stride).Ptr(0));
    }

    /// <inheritdoc />
    /// <remarks>Follows the rule stated on <see cref="Cpu.CpuBackend.SampleTokens"/>; sums run in double here, so a
    /// draw within rounding of a boundary between two tokens may pick the neighbour.</remarks>
    public void SampleTokens(Tensor tokens, Tensor logProbs, Tensor logits, int rows, int vocab, int stride, SamplingParams sampling, ReadOnlySpan<float> uniforms)
    {
        Enter();
        sampling.Validate();
        CheckVocab(vocab, stride, "sample");
        if (uniforms.Length < rows) throw new ArgumentException($"sample: {uniforms.Length} uniforms for {rows} rows");
        ulong z = Read(logits, (long)(rows - 1) * stride + vocab, "sample logits");
        ulong tok = Write(tokens, DType.I32, rows, "sample tokens");
        ulong lp = Write(logProbs, DType.F32, rows, "sample logprobs");
        if (rows <= 0) return;
        ulong u = Scratch("sample.uniforms", (long)rows * 4);
        _scratch["sample.uniforms"].CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(uniforms[..rows]), 0, _stream);
        Launch("sampling", "sample_tokens", rows, SampleThreads, 0, new KernelArgs().Ptr(tok).Ptr(lp).Ptr(z).I32(rows).I32(vocab).I32(stride)
            .F32(sampling.Temperature).I32(sampling.TopK).F32(sampling.TopP).Ptr(u));
    }
}
