// softmax_xent.cu — fused log-softmax + target gather (+ entropy), and its backward pass.
// CPU twins: CpuBackend.SoftmaxCrossEntropyForward / SoftmaxCrossEntropyBackward.
//
// Layout: logits [n, stride] fp32, of which the first `vocab` columns are real; targets [n] int32 (−1 = none).
//   forward:  lse[i] = log Σ_j exp(z_ij);  logProbs[i] = z[i, t_i] − lse[i] (0 when t_i < 0);
//             entropy[i] = lse[i] − Σ_j p_ij·z_ij (when `entropy` is not null)
//   backward: dlogits[i, j] = w_i·(p_ij − [j = t_i]) for j < vocab, 0 for padding columns and for rows with
//             t_i < 0 or w_i = 0. It overwrites, and writes the bf16 mirror too when `dlogits_bf16` is given.
//
// Why it is fast: one block per row and ONE pass over the row in the forward direction: each thread keeps an
// online (max, Σe, Σe·z) triple, rescaling when its max grows, and the block merges the triples; nothing of
// size vocab is stored. The backward pass reads each logit once and writes each gradient once, float4-wide
// when the row is 16-byte aligned.
#include "common.cuh"

struct SoftmaxState { float m, s, t; };  // running max, Σ exp(z − m), Σ exp(z − m)·z

__device__ __forceinline__ void softmax_add(SoftmaxState& a, float z)
{
    if (z > a.m)
    {
        float c = expf(a.m - z);  // a.m = −inf gives 0
        a.s = a.s * c + 1.0f;
        a.t = a.t * c + z;
        a.m = z;
    }
    else if (z != -ng_inf())  // a masked logit adds nothing (and −inf − −inf would be NaN)
    {
        float e = expf(z - a.m);
        a.s += e;
        a.t += e * z;
    }
}

__device__ __forceinline__ SoftmaxState softmax_merge(SoftmaxState a, SoftmaxState b)
{
    if (b.m == -ng_inf()) return a;
    if (a.m == -ng_inf()) return b;
    float m = fmaxf(a.m, b.m);
    float ca = expf(a.m - m), cb = expf(b.m - m);
    SoftmaxState r;
    r.m = m;
    r.s = a.s * ca + b.s * cb;
    r.t = a.t * ca + b.t * cb;
    return r;
}

extern "C" __global__ void softmax_xent_forward(float* __restrict__ logProbs, float* __restrict__ logSumExp, float* __restrict__ entropy,
    const float* __restrict__ logits, const int* __restrict__ targets, int n, int vocab, int stride, DeviceError* err)
{
    __shared__ SoftmaxState states[32];
    int row = blockIdx.x;
    if (row >= n) return;
    const float* z = logits + (i64)row * stride;
    SoftmaxState st;
    st.m = -ng_inf(); st.s = 0.0f; st.t = 0.0f;
    int start = 0;
    if ((((u64)z) & 15u) == 0)
    {
        int v4 = vocab >> 2;
        for (int i = threadIdx.x; i < v4; i += blockDim.x)
        {
            float4 q = ((const float4*)z)[i];
            softmax_add(st, q.x); softmax_add(st, q.y); softmax_add(st, q.z); softmax_add(st, q.w);
        }
        start = v4 << 2;
    }
    for (int j = start + threadIdx.x; j < vocab; j += blockDim.x) softmax_add(st, z[j]);

    // Merge: within the warp by shuffles, then across warps through shared memory.
    for (int o = 16; o > 0; o >>= 1)
    {
        SoftmaxState other;
        other.m = __shfl_xor_sync(NG_FULL_MASK, st.m, o);
        other.s = __shfl_xor_sync(NG_FULL_MASK, st.s, o);
        other.t = __shfl_xor_sync(NG_FULL_MASK, st.t, o);
        st = softmax_merge(st, other);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) states[warp] = st;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        SoftmaxState total = states[0];
        for (int w = 1; w < (int)(blockDim.x >> 5); w++) total = softmax_merge(total, states[w]);
        float lse = total.m + logf(total.s);
        logSumExp[row] = lse;
        int t = targets[row];
        if (t >= vocab)
        {
            report_error(err, NG_ERR_TARGET, row, t, vocab);
            logProbs[row] = 0.0f;
        }
        else
            logProbs[row] = t < 0 ? 0.0f : z[t] - lse;
        if (entropy) entropy[row] = lse - total.t / total.s;
    }
}

extern "C" __global__ void softmax_xent_backward(float* __restrict__ dlogits, const float* __restrict__ logits, const float* __restrict__ logSumExp,
    const int* __restrict__ targets, const float* __restrict__ lossWeights, int n, int vocab, int stride, u16* __restrict__ dlogits_bf16)
{
    int row = blockIdx.x;
    if (row >= n) return;
    int t = targets[row];
    float w = lossWeights[row];
    float* d = dlogits + (i64)row * stride;
    u16* db = dlogits_bf16 ? dlogits_bf16 + (i64)row * stride : 0;
    if (t < 0 || t >= vocab || w == 0.0f)
    {
        for (int j = threadIdx.x; j < stride; j += blockDim.x)
        {
            d[j] = 0.0f;
            if (db) db[j] = 0;
        }
        return;
    }
    const float* z = logits + (i64)row * stride;
    float lse = logSumExp[row];
    int start = 0;
    if ((((u64)z) & 15u) == 0 && (((u64)d) & 15u) == 0 && (db == 0 || (((u64)db) & 7u) == 0))
    {
        int v4 = vocab >> 2;
        for (int i = threadIdx.x; i < v4; i += blockDim.x)
        {
            float4 q = ((const float4*)z)[i];
            int j = i << 2;
            float4 r;
            r.x = (expf(q.x - lse) - (j == t ? 1.0f : 0.0f)) * w;
            r.y = (expf(q.y - lse) - (j + 1 == t ? 1.0f : 0.0f)) * w;
            r.z = (expf(q.z - lse) - (j + 2 == t ? 1.0f : 0.0f)) * w;
            r.w = (expf(q.w - lse) - (j + 3 == t ? 1.0f : 0.0f)) * w;
            ((float4*)d)[i] = r;
            if (db) ((uint2*)db)[i] = make_uint2(pack_bf16x2(r.x, r.y), pack_bf16x2(r.z, r.w));
        }
        start = v4 << 2;
    }
    for (int j = start + threadIdx.x; j < stride; j += blockDim.x)
    {
        float r = j < vocab ? (expf(z[j] - lse) - (j == t ? 1.0f : 0.0f)) * w : 0.0f;
        d[j] = r;
        if (db) db[j] = f32_to_bf16(r);
    }
}
