// sampling.cu — one token per row of logits, on the GPU, following the CPU backend's rule exactly.
// CPU twin: CpuBackend.SampleTokens (its remarks state the rule).
//
// Layout: logits [rows, stride] fp32 (first `vocab` columns real); uniforms [rows] in [0, 1) from the caller's
// seeded generator; writes tokens [rows] int32 and logProbs [rows] = log p(token) under softmax(logits/T)
// before truncation (T = 1 when greedy).
//
// The rule: greedy takes the first index of the maximum. Without truncation the draw inverts the CDF in index
// order. With top-k or top-p, tokens are ordered by descending probability (ties by ascending index), the first
// K kept, then the shortest prefix whose mass reaches P of the kept mass, and the draw inverts the CDF of the
// kept set in that order.
//
// Why it is fast: one block per row and no sort. Every question "which element of the sorted order first
// brings the running count (or mass) to a threshold" is answered by a radix select over the 32-bit patterns of
// the probabilities (non-negative floats order like their bits): four passes of an 8-bit histogram, each
// narrowing the key, then one scan over the ties at that key in index order. A pass recomputes exp from the
// logits instead of storing probabilities, so a row costs a few reads of its logits (L2-resident) and no
// scratch memory. The untruncated draw is one block-wide prefix sum in index order.
#include "common.cuh"

#define SAMPLE_THREADS 512
#define SAMPLE_WARPS (SAMPLE_THREADS / 32)

struct SampleShared
{
    double hist[SAMPLE_WARPS][256];
    double scan[SAMPLE_THREADS];
    double reduce[32];
    float fmax[32];
    // the result of the last select, visible to the whole block
    int found, digit, index;
    double above, before;
};

// A position in the sorted order: larger key first, then smaller index.
struct SortedPos
{
    u32 key;
    int index;
};

__device__ __forceinline__ bool sorted_at_or_before(u32 key, int index, SortedPos bound)
{
    return key > bound.key || (key == bound.key && index <= bound.index);
}

__device__ __forceinline__ float prob_at(const float* z, int j, float invT, float mx) { return expf(z[j] * invT - mx); }

// Finds the first element e of the sorted order at which the running weight (1 per element, or its probability)
// reaches thr (cum >= thr, or cum > thr when strict). On return sh->found says whether one exists; then
// sh->index is e's index, sh->before the weight of every element before e, and *key e's key.
__device__ void radix_select(SampleShared* sh, const float* z, int vocab, float invT, float mx, bool weighted, double thr, bool strict, u32* key)
{
    int warp = threadIdx.x >> 5;
    u32 prefix = 0, mask = 0;
    double above = 0.0;
    for (int shift = 24; shift >= 0; shift -= 8)
    {
        for (int i = threadIdx.x; i < SAMPLE_WARPS * 256; i += blockDim.x) (&sh->hist[0][0])[i] = 0.0;
        __syncthreads();
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        {
            float p = prob_at(z, j, invT, mx);
            u32 k = __float_as_uint(p);
            if ((k & mask) == prefix) atomicAdd(&sh->hist[warp][(k >> shift) & 255u], weighted ? (double)p : 1.0);
        }
        __syncthreads();
        for (int d = threadIdx.x; d < 256; d += blockDim.x)
        {
            double s = 0.0;
            for (int w = 0; w < SAMPLE_WARPS; w++) s += sh->hist[w][d];
            sh->hist[0][d] = s;
        }
        __syncthreads();
        if (threadIdx.x == 0)
        {
            double cum = above;
            int chosen = -1;
            for (int d = 255; d >= 0; d--)
            {
                double next = cum + sh->hist[0][d];
                if (strict ? next > thr : next >= thr) { chosen = d; break; }
                cum = next;
            }
            sh->found = chosen >= 0;
            sh->digit = chosen;
            sh->above = cum;
        }
        __syncthreads();
        if (!sh->found) return;
        prefix |= (u32)sh->digit << shift;
        mask |= 255u << shift;
        above = sh->above;
        __syncthreads();  // everyone has read sh before the next pass rewrites it
    }
    *key = prefix;

    // Ties at this key, in index order: contiguous chunks per thread, an exclusive scan of the chunk weights,
    // and the one thread whose chunk crosses the threshold walks it.
    int chunk = (vocab + blockDim.x - 1) / blockDim.x;
    int j0 = imin(vocab, threadIdx.x * chunk), j1 = imin(vocab, j0 + chunk);
    double local = 0.0;
    for (int j = j0; j < j1; j++)
    {
        float p = prob_at(z, j, invT, mx);
        if (__float_as_uint(p) == prefix) local += weighted ? (double)p : 1.0;
    }
    sh->scan[threadIdx.x] = local;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        double run = 0.0;
        for (int i = 0; i < (int)blockDim.x; i++)
        {
            double v = sh->scan[i];
            sh->scan[i] = run;
            run += v;
        }
        sh->index = -1;
    }
    __syncthreads();
    double cum = above + sh->scan[threadIdx.x];
    bool crossedBefore = strict ? cum > thr : cum >= thr;
    bool crossedAfter = strict ? cum + local > thr : cum + local >= thr;
    if (!crossedBefore && crossedAfter)
    {
        int pick = -1;
        double before = cum;
        for (int j = j0; j < j1; j++)
        {
            float p = prob_at(z, j, invT, mx);
            if (__float_as_uint(p) != prefix) continue;
            double next = cum + (weighted ? (double)p : 1.0);
            if (strict ? next > thr : next >= thr) { pick = j; before = cum; break; }
            cum = next;
        }
        if (pick < 0)  // rounding between the chunk sum and the walk: the chunk's last tie
            for (int j = j1 - 1; j >= j0; j--)
                if (__float_as_uint(prob_at(z, j, invT, mx)) == prefix) { pick = j; break; }
        sh->index = pick;
        sh->before = before;
    }
    __syncthreads();
    if (threadIdx.x == 0) sh->found = sh->index >= 0;
    __syncthreads();
}

// Σ of p over the elements at or before `bound` in the sorted order.
__device__ double mass_through(SampleShared* sh, const float* z, int vocab, float invT, float mx, SortedPos bound)
{
    double acc = 0.0;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
    {
        float p = prob_at(z, j, invT, mx);
        if (sorted_at_or_before(__float_as_uint(p), j, bound)) acc += (double)p;
    }
    return block_sum_d(acc, sh->reduce);
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_tokens(int* __restrict__ tokens, float* __restrict__ logProbs,
    const float* __restrict__ logits, int rows, int vocab, int stride, float temperature, int topK, float topP,
    const float* __restrict__ uniforms)
{
    __shared__ SampleShared sh;
    int row = blockIdx.x;
    if (row >= rows) return;
    const float* z = logits + (i64)row * stride;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    if (temperature == 0.0f)
    {
        // First index of the maximum: each thread scans increasing indices and keeps strictly larger values.
        float bv = -ng_inf();
        int bi = vocab;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        {
            float v = z[j];
            if (v > bv || bi == vocab) { bv = v; bi = j; }
        }
        for (int o = 16; o > 0; o >>= 1)
        {
            float ov = __shfl_xor_sync(NG_FULL_MASK, bv, o);
            int oi = __shfl_xor_sync(NG_FULL_MASK, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
        }
        __shared__ float wv[SAMPLE_WARPS];
        __shared__ int wi[SAMPLE_WARPS];
        __shared__ int best;
        if (lane == 0) { wv[warp] = bv; wi[warp] = bi; }
        __syncthreads();
        if (threadIdx.x == 0)
        {
            float v = wv[0];
            int i = wi[0];
            for (int w = 1; w < SAMPLE_WARPS; w++)
                if (wv[w] > v || (wv[w] == v && wi[w] < i)) { v = wv[w]; i = wi[w]; }
            best = i;
        }
        __syncthreads();
        float mx = z[best];
        double acc = 0.0;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) acc += (double)expf(z[j] - mx);
        double total = block_sum_d(acc, sh.reduce);
        if (threadIdx.x == 0)
        {
            tokens[row] = best;
            logProbs[row] = -logf((float)total);  // z[best] − (max + log Σ)
        }
        return;
    }

    float invT = 1.0f / temperature;
    float localMax = -ng_inf();
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) localMax = fmaxf(localMax, z[j] * invT);
    float mx = block_max(localMax, sh.fmax);
    double acc = 0.0;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) acc += (double)prob_at(z, j, invT, mx);
    double total = block_sum_d(acc, sh.reduce);
    float lse = mx + logf((float)total);
    float u = uniforms[row];
    __shared__ int pick;

    if (topK == 0 && topP >= 1.0f)
    {
        // Inverse CDF in index order: the first j whose running sum exceeds u·total.
        double target = (double)(u * (float)total);
        int chunk = (vocab + blockDim.x - 1) / blockDim.x;
        int j0 = imin(vocab, threadIdx.x * chunk), j1 = imin(vocab, j0 + chunk);
        double local = 0.0;
        for (int j = j0; j < j1; j++) local += (double)prob_at(z, j, invT, mx);
        sh.scan[threadIdx.x] = local;
        __syncthreads();
        if (threadIdx.x == 0)
        {
            double run = 0.0;
            for (int i = 0; i < (int)blockDim.x; i++)
            {
                double v = sh.scan[i];
                sh.scan[i] = run;
                run += v;
            }
            pick = vocab - 1;  // when rounding leaves the target unreached, as the CPU does
        }
        __syncthreads();
        double cum = sh.scan[threadIdx.x];
        if (cum <= target && cum + local > target)
        {
            int found = j1 - 1;
            for (int j = j0; j < j1; j++)
            {
                cum += (double)prob_at(z, j, invT, mx);
                if (cum > target) { found = j; break; }
            }
            pick = found;
        }
        __syncthreads();
    }
    else
    {
        SortedPos bound;
        bound.key = 0u;  // everything: the smallest key, any index
        bound.index = 0x7fffffff;
        bool boundIsAll = true;
        double kept = total;
        u32 key;
        if (topK > 0 && topK < vocab)
        {
            radix_select(&sh, z, vocab, invT, mx, false, (double)topK, false, &key);
            bound.key = key;
            bound.index = sh.index;
            boundIsAll = false;
            kept = mass_through(&sh, z, vocab, invT, mx, bound);
        }
        if (topP < 1.0f)
        {
            radix_select(&sh, z, vocab, invT, mx, true, (double)topP * kept, false, &key);
            if (sh.found && sorted_at_or_before(key, sh.index, bound))
            {
                bound.key = key;
                bound.index = sh.index;
                boundIsAll = false;
                kept = sh.before + (double)prob_at(z, sh.index, invT, mx);
            }
        }
        radix_select(&sh, z, vocab, invT, mx, true, (double)u * kept, true, &key);
        bool ok = sh.found && sorted_at_or_before(key, sh.index, bound);
        int chosen = sh.index;
        if (!ok)
        {
            // The target was not reached inside the kept set (rounding): its last element, as the CPU does.
            if (boundIsAll)
            {
                radix_select(&sh, z, vocab, invT, mx, false, (double)vocab, false, &key);
                chosen = sh.index;
            }
            else
                chosen = bound.index;
        }
        if (threadIdx.x == 0) pick = chosen;
        __syncthreads();
    }
    if (threadIdx.x == 0)
    {
        tokens[row] = pick;
        logProbs[row] = z[pick] * invT - lse;
    }
}
