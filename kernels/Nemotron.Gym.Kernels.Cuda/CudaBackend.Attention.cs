namespace Nemotron.Gym.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private const int AttentionTile = 64, AttentionTransposedStride = 72;  // ATT_TILE, ATT_TSTRIDE in attention.cu

    private static int CheckHeads(int channels, int heads, string op)
    {
        if (heads <= 0 || channels % heads != 0)
            throw new ArgumentException($"{op}: {channels} channels do not split into {heads} heads");
        return channels / heads;
    }

    // Dynamic shared memory of the tensor-core kernels (the layouts are listed in attention.cu).
    private static int FlashForwardSharedBytes(int hs) => 2 * (2 * AttentionTile * (hs + 8) + hs * AttentionTransposedStride);

    private static int FlashBackwardSharedBytes(int hs) =>
        2 * (4 * AttentionTile * (hs + 8) + 3 * hs * AttentionTransposedStride + AttentionTile * AttentionTransposedStride) + 2 * AttentionTile * 4;

    /// <summary>
    /// Whether the tensor-core kernels apply: a head size they are instantiated for, bf16 mma (sm_80+), 16-byte
    /// aligned rows for their float4 loads, and the shared memory they need.
    /// </summary>
    private bool UseFlash(int hs, int sharedBytes, params ulong[] aligned16) =>
        hs is 16 or 32 or 64 or 128 && _context.Major >= 8 && sharedBytes <= _context.MaxSharedMemoryPerBlockOptin &&
        aligned16.All(p => p % 16 == 0);

    private static void CheckSimtHeadSize(int hs, string op)
    {
        if (hs > 256) throw new NotSupportedException($"{op}: head size {hs} is above the 256 the CUDA kernels support");
    }

    /// <inheritdoc />
    public void AttentionForward(Tensor output, Tensor logSumExp, Tensor qkv, int batch, int seqLen, int channels, int heads)
    {
        Enter();
        int hs = CheckHeads(channels, heads, "attention");
        long n = (long)batch * seqLen;
        ulong x = Read(qkv, n * 3 * channels, "attention qkv");
        ulong o = Write(output, DType.F32, n * channels, "attention output");
        ulong lse = Write(logSumExp, DType.F32, (long)batch * heads * seqLen, "attention logsumexp");
        if (n == 0) return;
        float scale = 1f / MathF.Sqrt(hs);
        int shared = FlashForwardSharedBytes(hs);
        if (UseFlash(hs, shared, x, o))
            Launch("attention", $"attention_forward_hs{hs}", new Dim3((uint)Ceil(seqLen, AttentionTile), (uint)(batch * heads)), 128, shared,
                new KernelArgs().Ptr(o).Ptr(lse).Ptr(x).I32(seqLen).I32(channels).I32(heads).F32(scale).Ptr(Bf16Alongside(output, n * channels)));
        else
        {
            CheckSimtHeadSize(hs, "attention");
            Launch("attention", "attention_forward_simt", Ceil(n * heads, 4), 128, 0,
                new KernelArgs().Ptr(o).Ptr(lse).Ptr(x).I32(batch).I32(seqLen).I32(channels).I32(heads).F32(scale));
        }
    }

    /// <inheritdoc />
    /// <remarks>The query gradient adds with fp32 atomics across key tiles, so its last bits may differ from run to run.</remarks>
    public void AttentionBackward(Tensor dqkv, Tensor doutput, Tensor qkv, Tensor output, Tensor logSumExp, int batch, int seqLen, int channels, int heads)
    {
        Enter();
        int hs = CheckHeads(channels, heads, "attention backward");
        long n = (long)batch * seqLen;
        ulong x = Read(qkv, n * 3 * channels, "attention qkv");
        ulong o = Read(output, n * channels, "attention output");
        ulong dout = Read(doutput, n * channels, "attention doutput");
        ulong lse = Read(logSumExp, (long)batch * heads * seqLen, "attention logsumexp");
        ulong dx = Write(dqkv, DType.F32, n * 3 * channels, "attention dqkv");
        if (n == 0) return;
        float scale = 1f / MathF.Sqrt(hs);
        // D[b, h, t] = dO·O per row: the softmax backward's correction term.
        ulong dvec = Scratch("attention.D", n * heads * 4);
        Launch("attention", "attention_backward_dot", Ceil(n * heads, 4), 128, 0,
            new KernelArgs().Ptr(dvec).Ptr(dout).Ptr(o).I32(batch).I32(seqLen).I32(channels).I32(heads));
        int shared = FlashBackwardSharedBytes(hs);
        if (UseFlash(hs, shared, x, dout))
            Launch("attention", $"attention_backward_hs{hs}", new Dim3((uint)Ceil(seqLen, AttentionTile), (uint)(batch * heads)), 128, shared,
                new KernelArgs().Ptr(dx).Ptr(dout).Ptr(x).Ptr(lse).Ptr(dvec).I32(seqLen).I32(channels).I32(heads).F32(scale));
        else
        {
            CheckSimtHeadSize(hs, "attention backward");
            Launch("attention", "attention_backward_simt", Ceil(n * heads, 4), 128, 0,
                new KernelArgs().Ptr(dx).Ptr(dout).Ptr(x).Ptr(lse).Ptr(dvec).I32(batch).I32(seqLen).I32(channels).I32(heads).F32(scale));
        }
    }

    /// <inheritdoc />
    public void KvCacheWrite(Tensor keyCache, Tensor valueCache, Tensor qkv, int batch, int seqLen, int channels, int maxSeqLen)
    {
        Enter();
        if (seqLen > maxSeqLen) throw new ArgumentException($"kv cache: {seqLen} tokens do not fit a cache of {maxSeqLen}");
        ulong x = Read(qkv, (long)batch * seqLen * 3 * channels, "kv cache qkv");
        ulong kc = Write(keyCache, DType.F32, (long)batch * maxSeqLen * channels, "kv cache keys");
        ulong vc = Write(valueCache, DType.F32, (long)batch * maxSeqLen * channels, "kv cache values");
        long total = (long)batch * seqLen * channels;
        if (total == 0) return;
        Launch("attention", "kv_cache_write", GridFor(total), Threads, 0,
            new KernelArgs().Ptr(kc).Ptr(vc).Ptr(x).I32(batch).I32(seqLen).I32(channels).I32(maxSeqLen));
    }

    /// <inheritdoc />
    public void AttentionDecode(Tensor output, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor positions, int batch, int channels, int heads, int maxSeqLen)
    {
        Enter();
        int hs = CheckHeads(channels, heads, "attention decode");
        ulong x = Read(qkv, (long)batch * 3 * channels, "decode qkv");
        ulong pos = ReadInts(positions, batch, "decode positions");
        ulong kc = Write(keyCache, DType.F32, (long)batch * maxSeqLen * channels, "decode key cache");
        ulong vc = Write(valueCache, DType.F32, (long)batch * maxSeqLen * channels, "decode value cache");
        ulong o = Write(output, DType.F32, (long)batch * channels, "decode output");
        if (batch == 0) return;
        CheckSimtHeadSize(hs, "attention decode");
        int nj = hs <= 32 ? 1 : hs <= 64 ? 2 : hs <= 128 ? 4 : 8;
        float scale = 1f / MathF.Sqrt(hs);

        Launch("attention", "kv_cache_append", batch, Threads, 0,
            new KernelArgs().Ptr(kc).Ptr(vc).Ptr(x).Ptr(pos).I32(batch).I32(channels).I32(maxSeqLen).Ptr(_deviceError.Pointer));

        // Few (sequence, head) pairs leave most SMs idle: split the keys too (flash-decoding), at least 64 per split.
        int pairs = batch * heads, target = 2 * _context.Multiprocessors;
        int splits = pairs >= target ? 1 : Math.Max(1, Math.Min(Ceil(target, pairs), Ceil(maxSeqLen, 64)));
        int chunk = Ceil(maxSeqLen, splits);
        ulong partO = 0, partML = 0;
        if (splits > 1)
        {
            partO = Scratch("decode.o", (long)pairs * splits * hs * 4);
            partML = Scratch("decode.ml", (long)pairs * splits * 2 * 4);
        }
        Launch("attention", $"attention_decode_nj{nj}", new Dim3((uint)splits, (uint)heads, (uint)batch), 128, 0,
            new KernelArgs().Ptr(o).Ptr(partO).Ptr(partML).Ptr(x).Ptr(kc).Ptr(vc).Ptr(pos)
                .I32(channels).I32(heads).I32(maxSeqLen).I32(splits).I32(chunk).F32(scale));
        if (splits > 1)
            Launch("attention", "attention_decode_merge", new Dim3((uint)heads, (uint)batch), 128, 0,
                new KernelArgs().Ptr(o).Ptr(partO).Ptr(partML).Ptr(pos).I32(channels).I32(heads).I32(maxSeqLen).I32(splits));
    }
}
