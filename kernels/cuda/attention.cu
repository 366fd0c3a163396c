// attention.cu — causal multi-head self-attention: flash-style forward and backward on tensor cores, SIMT
// versions of both for head sizes the tensor-core path does not cover, the KV-cache writer, and the decoding
// kernel against the cache. CPU twins: CpuBackend.AttentionForward / AttentionBackward / KvCacheWrite /
// AttentionDecode.
//
// Layout (all fp32): qkv [B·T, 3C], token-major; for head h, q = qkv[row, h·hs ..], k = qkv[row, C + h·hs ..],
// v = qkv[row, 2C + h·hs ..]. out [B·T, C] (head h in columns h·hs ..). lse [B, H, T]: each query row's natural
// log Σ exp(scale·q·k), kept so the backward pass can rebuild the probabilities without storing any T×T
// matrix. KV caches [B, maxT, C]. dqkv is accumulated into (+=), like every gradient in the backend.
//
// Why it is fast:
// - Forward (FlashAttention-2 scheme): a block of 4 warps owns 64 query rows of one (sequence, head); it walks
//   the 64-key tiles up to the diagonal only (causal: the masked triangle costs nothing), computing S = Q·Kᵀ and
//   O += P·V with bf16 mma.sync tensor-core instructions (fp32 accumulation) and an online softmax kept in
//   registers, so scores never touch device memory. Q lives in registers for the whole walk; K and Vᵀ tiles are
//   staged in shared memory (rows padded by 16 bytes so the fragment loads are bank-conflict free). The
//   probabilities go from the S accumulators straight into the A operand of the P·V product (the accumulator
//   and A-fragment layouts line up), and tiles run from the longest (last rows) first to balance the causal work.
// - Backward: a block owns 64 keys and walks the query tiles from the diagonal down, recomputing Pᵀ from the
//   saved lse, keeping dK and dV in registers for the whole walk (written once, no atomics), and adding each
//   query tile's dQ share with fp32 atomics (dQ is the only operand shared between blocks).
// - Decode: one block per (sequence, head, key split); each warp streams keys with the head's channels spread
//   over its lanes (coalesced 128-byte reads of the cache), an online softmax per warp, merged in shared
//   memory. With few sequences the keys are split across blocks (flash-decoding) and a second kernel merges
//   the splits, so even batch 1 fills the GPU; the cost is then the bandwidth of reading the cache.
#include "common.cuh"

#define ATT_TILE 64      // query rows per forward block, keys per backward block, and the tile size both walk
#define ATT_TSTRIDE 72   // row stride (bf16 elements) of the transposed tiles [hs][64 + 8]

// ---- staging fp32 rows into bf16 tiles ------------------------------------------------------------

// The tensor-core kernels run 128 threads a block. Staging loads a batch of a thread's float4s into registers
// before it converts and stores any of them: with load-convert-store per item, each store (to memory the compiler
// cannot prove apart from the source) waited for its load, so a tile took one global-memory latency per item.
#define ATT_THREADS 128

// s[r][c] = bf16(g[r·gstride + c]) for r < 64, c < HS, rows r >= valid zero; s has row stride HS + 8.
template <int HS>
__device__ __forceinline__ void stage_rows(u16* s, const float* g, i64 gstride, int valid)
{
    constexpr int V4 = HS / 4, SS = HS + 8, ITEMS = ATT_TILE * V4 / ATT_THREADS, BATCH = ITEMS < 8 ? ITEMS : 8;
#pragma unroll
    for (int i0 = 0; i0 < ITEMS; i0 += BATCH)
    {
        float4 v[BATCH];
#pragma unroll
        for (int j = 0; j < BATCH; j++)
        {
            int idx = threadIdx.x + (i0 + j) * ATT_THREADS, r = idx / V4, c = (idx - r * V4) * 4;
            v[j] = r < valid ? *(const float4*)(g + r * gstride + c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int j = 0; j < BATCH; j++)
        {
            int idx = threadIdx.x + (i0 + j) * ATT_THREADS, r = idx / V4, c = (idx - r * V4) * 4;
            *(uint2*)(s + r * SS + c) = make_uint2(pack_bf16x2(v[j].x, v[j].y), pack_bf16x2(v[j].z, v[j].w));
        }
    }
}

// sT[c][r] = bf16(g[r·gstride + c]): the transposed tile, row stride ATT_TSTRIDE. A thread takes two neighbouring
// rows and four columns and packs each column's pair of values into one 32-bit store; the 32 lanes of a warp take
// 32 row pairs of the same columns, so every store instruction writes 32 consecutive words, free of bank
// conflicts (lanes along the columns, with one 16-bit store per value, made 8-way conflicts).
template <int HS>
__device__ __forceinline__ void stage_rows_transposed(u16* sT, const float* g, i64 gstride, int valid)
{
    constexpr int V4 = HS / 4, ITEMS = (ATT_TILE / 2) * V4 / ATT_THREADS, BATCH = ITEMS < 4 ? ITEMS : 4;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int i0 = 0; i0 < ITEMS; i0 += BATCH)
    {
        float4 v0[BATCH], v1[BATCH];
#pragma unroll
        for (int j = 0; j < BATCH; j++)
        {
            int idx = threadIdx.x + (i0 + j) * ATT_THREADS, r = 2 * (idx & 31), c = (idx >> 5) * 4;
            v0[j] = r < valid ? *(const float4*)(g + r * gstride + c) : zero;
            v1[j] = r + 1 < valid ? *(const float4*)(g + (r + 1) * gstride + c) : zero;
        }
#pragma unroll
        for (int j = 0; j < BATCH; j++)
        {
            int idx = threadIdx.x + (i0 + j) * ATT_THREADS, r = 2 * (idx & 31), c = (idx >> 5) * 4;
            *(u32*)(sT + (c + 0) * ATT_TSTRIDE + r) = pack_bf16x2(v0[j].x, v1[j].x);
            *(u32*)(sT + (c + 1) * ATT_TSTRIDE + r) = pack_bf16x2(v0[j].y, v1[j].y);
            *(u32*)(sT + (c + 2) * ATT_TSTRIDE + r) = pack_bf16x2(v0[j].z, v1[j].z);
            *(u32*)(sT + (c + 3) * ATT_TSTRIDE + r) = pack_bf16x2(v0[j].w, v1[j].w);
        }
    }
}

__device__ __forceinline__ u32 ld32(const u16* p) { return *(const u32*)p; }

// The A fragment of a 16×16 tile stored row-major at s (row stride ss, in bf16 elements), rows r0..r0+15,
// columns c0..c0+15; g = lane/4, t = lane%4.
__device__ __forceinline__ void load_a(u32* a, const u16* s, int ss, int r0, int c0, int g, int t)
{
    a[0] = ld32(s + (r0 + g) * ss + c0 + 2 * t);
    a[1] = ld32(s + (r0 + g + 8) * ss + c0 + 2 * t);
    a[2] = ld32(s + (r0 + g) * ss + c0 + 2 * t + 8);
    a[3] = ld32(s + (r0 + g + 8) * ss + c0 + 2 * t + 8);
}

// The B fragment of a 16(k)×8(n) tile whose transpose is stored row-major at s: B[k][n] = s[n0 + n][k0 + k].
__device__ __forceinline__ void load_b(u32* b, const u16* s, int ss, int n0, int k0, int g, int t)
{
    b[0] = ld32(s + (n0 + g) * ss + k0 + 2 * t);
    b[1] = ld32(s + (n0 + g) * ss + k0 + 2 * t + 8);
}

// Shared memory (bytes) of the tensor-core kernels; the host computes the same figures (CudaBackend.Attention).
//   forward:  sQ, sK [64][HS+8], sVt [HS][72]                                             (bf16)
//   backward: sK, sV, sQ, sdO [64][HS+8]; sKt, sQt, sdOt [HS][72]; sdS [64][72] (bf16); sL, sD [64] (fp32)

// ---- forward, tensor cores -------------------------------------------------------------------------

template <int HS>
__device__ __forceinline__ void flash_forward(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ qkv,
    int T, int C, int H, float scale, u16* __restrict__ out_bf16)
{
    constexpr int SS = HS + 8, KSTEPS = HS / 16, DT = HS / 8;
    NG_DYNAMIC_SMEM(u16, smem);
    u16* sQ = smem;
    u16* sK = smem + ATT_TILE * SS;
    u16* sVt = smem + 2 * ATT_TILE * SS;

    int qtile = gridDim.x - 1 - blockIdx.x;  // longest rows first
    int b = blockIdx.y / H, h = blockIdx.y - b * H;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    i64 C3 = 3 * (i64)C;
    const float* base = qkv + (i64)b * T * C3 + h * HS;
    int q0 = qtile * ATT_TILE;

    stage_rows<HS>(sQ, base + q0 * C3, C3, T - q0);
    __syncthreads();
    u32 qf[KSTEPS][4];
#pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) load_a(qf[ks], sQ, SS, warp * 16, ks * 16, g, t);

    float o[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -ng_inf(), m1 = -ng_inf(), l0 = 0.0f, l1 = 0.0f;
    const float sl2 = scale * NG_LOG2E;
    const int qa = q0 + warp * 16 + g, qb = qa + 8;  // the two query rows this thread holds

    for (int kt = 0; kt <= qtile; kt++)
    {
        int k0 = kt * ATT_TILE;
        __syncthreads();  // the previous tile is fully consumed
        stage_rows<HS>(sK, base + C + k0 * C3, C3, T - k0);
        stage_rows_transposed<HS>(sVt, base + 2 * C + k0 * C3, C3, T - k0);
        __syncthreads();

        float s[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++)
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
            {
                u32 bf[2];
                load_b(bf, sK, SS, nt * 8, ks * 16, g, t);
                mma_bf16_16816(s[nt], qf[ks], bf);
            }

        // Scale into the log2 domain, mask the future, and take each row's max over the tile.
        float mx0 = -ng_inf(), mx1 = -ng_inf();
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++)
            {
                int key = k0 + nt * 8 + 2 * t + (i & 1);
                int q = i < 2 ? qa : qb;
                float x = (key > q || key >= T) ? -ng_inf() : s[nt][i] * sl2;
                s[nt][i] = x;
                if (i < 2) mx0 = fmaxf(mx0, x); else mx1 = fmaxf(mx1, x);
            }
        // The four threads of a group (same g) share rows.
        mx0 = fmaxf(mx0, __shfl_xor_sync(NG_FULL_MASK, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(NG_FULL_MASK, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(NG_FULL_MASK, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(NG_FULL_MASK, mx1, 2));
        float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
        float z0 = n0 == -ng_inf() ? 0.0f : n0, z1 = n1 == -ng_inf() ? 0.0f : n1;  // rows masked so far
        float a0 = exp2f(m0 - z0), a1 = exp2f(m1 - z1);
        m0 = n0;
        m1 = n1;
        l0 *= a0;
        l1 *= a1;
#pragma unroll
        for (int i = 0; i < DT; i++)
        {
            o[i][0] *= a0; o[i][1] *= a0;
            o[i][2] *= a1; o[i][3] *= a1;
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
        {
            s[nt][0] = exp2f(s[nt][0] - z0);
            s[nt][1] = exp2f(s[nt][1] - z0);
            s[nt][2] = exp2f(s[nt][2] - z1);
            s[nt][3] = exp2f(s[nt][3] - z1);
            l0 += s[nt][0] + s[nt][1];
            l1 += s[nt][2] + s[nt][3];
        }

        // O += P·V: the S accumulators of key tiles 2j and 2j+1 are the A fragment of keys 16j..16j+15.
#pragma unroll
        for (int j = 0; j < 4; j++)
        {
            u32 pa[4];
            pa[0] = pack_bf16x2(s[2 * j][0], s[2 * j][1]);
            pa[1] = pack_bf16x2(s[2 * j][2], s[2 * j][3]);
            pa[2] = pack_bf16x2(s[2 * j + 1][0], s[2 * j + 1][1]);
            pa[3] = pack_bf16x2(s[2 * j + 1][2], s[2 * j + 1][3]);
#pragma unroll
            for (int dt = 0; dt < DT; dt++)
            {
                u32 bf[2];
                load_b(bf, sVt, ATT_TSTRIDE, dt * 8, j * 16, g, t);
                mma_bf16_16816(o[dt], pa, bf);
            }
        }
    }

    // Each thread summed only its own columns of l; add the group's four.
    l0 += __shfl_xor_sync(NG_FULL_MASK, l0, 1);
    l0 += __shfl_xor_sync(NG_FULL_MASK, l0, 2);
    l1 += __shfl_xor_sync(NG_FULL_MASK, l1, 1);
    l1 += __shfl_xor_sync(NG_FULL_MASK, l1, 2);
    float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    if (qa < T)
    {
        float* orow = out + ((i64)b * T + qa) * C + h * HS + 2 * t;
        u16* brow = out_bf16 ? out_bf16 + ((i64)b * T + qa) * C + h * HS + 2 * t : 0;
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
        {
            float x = o[dt][0] * inv0, y = o[dt][1] * inv0;
            *(float2*)(orow + dt * 8) = make_float2(x, y);
            if (brow) *(u32*)(brow + dt * 8) = pack_bf16x2(x, y);
        }
        if (t == 0) lse[((i64)b * H + h) * T + qa] = m0 * NG_LN2 + logf(l0);
    }
    if (qb < T)
    {
        float* orow = out + ((i64)b * T + qb) * C + h * HS + 2 * t;
        u16* brow = out_bf16 ? out_bf16 + ((i64)b * T + qb) * C + h * HS + 2 * t : 0;
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
        {
            float x = o[dt][2] * inv1, y = o[dt][3] * inv1;
            *(float2*)(orow + dt * 8) = make_float2(x, y);
            if (brow) *(u32*)(brow + dt * 8) = pack_bf16x2(x, y);
        }
        if (t == 0) lse[((i64)b * H + h) * T + qb] = m1 * NG_LN2 + logf(l1);
    }
}

// grid (ceil(T/64), B·H), 128 threads, dynamic shared memory 2·(2·64·(HS+8) + HS·72) bytes.
#define FLASH_FORWARD(HS)                                                                                          \
    extern "C" __global__ void __launch_bounds__(128) attention_forward_hs##HS(float* out, float* lse, const float* qkv, \
        int T, int C, int H, float scale, u16* out_bf16)                                                           \
    {                                                                                                              \
        flash_forward<HS>(out, lse, qkv, T, C, H, scale, out_bf16);                                                \
    }
FLASH_FORWARD(16)
FLASH_FORWARD(32)
FLASH_FORWARD(64)
FLASH_FORWARD(128)

// ---- backward, tensor cores ------------------------------------------------------------------------

// Dvec[b, h, t] = Σ_d dout[b·T + t, h·hs + d] · out[b·T + t, h·hs + d]: one warp per (row, head).
extern "C" __global__ void attention_backward_dot(float* __restrict__ Dvec, const float* __restrict__ dout, const float* __restrict__ out,
    int B, int T, int C, int H)
{
    int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
    i64 idx = (i64)blockIdx.x * warps + (threadIdx.x >> 5);
    if (idx >= (i64)B * T * H) return;
    int h = (int)(idx % H);
    i64 row = idx / H;
    int hs = C / H;
    const float* a = dout + row * C + h * hs;
    const float* o = out + row * C + h * hs;
    float acc = 0.0f;
    for (int d = lane; d < hs; d += 32) acc += a[d] * o[d];
    acc = warp_sum(acc);
    if (lane == 0)
    {
        i64 b = row / T, tt = row - b * T;
        Dvec[(b * H + h) * T + tt] = acc;
    }
}

template <int HS>
__device__ __forceinline__ void flash_backward(float* __restrict__ dqkv, const float* __restrict__ dout, const float* __restrict__ qkv,
    const float* __restrict__ lse, const float* __restrict__ Dvec, int T, int C, int H, float scale)
{
    constexpr int SS = HS + 8, KSTEPS = HS / 16, DT = HS / 8;
    NG_DYNAMIC_SMEM(u16, smem);
    u16* sK = smem;
    u16* sV = sK + ATT_TILE * SS;
    u16* sQ = sV + ATT_TILE * SS;
    u16* sdO = sQ + ATT_TILE * SS;
    u16* sKt = sdO + ATT_TILE * SS;
    u16* sQt = sKt + HS * ATT_TSTRIDE;
    u16* sdOt = sQt + HS * ATT_TSTRIDE;
    u16* sdS = sdOt + HS * ATT_TSTRIDE;
    float* sL = (float*)(sdS + ATT_TILE * ATT_TSTRIDE);
    float* sD = sL + ATT_TILE;

    int kt = blockIdx.x;
    int b = blockIdx.y / H, h = blockIdx.y - b * H;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    i64 C3 = 3 * (i64)C;
    const float* base = qkv + (i64)b * T * C3 + h * HS;
    const float* dbase = dout + (i64)b * T * C + h * HS;
    const float* lrow = lse + ((i64)b * H + h) * T;
    const float* drow = Dvec + ((i64)b * H + h) * T;
    int k0 = kt * ATT_TILE;
    const float sl2 = scale * NG_LOG2E;

    stage_rows<HS>(sK, base + C + k0 * C3, C3, T - k0);
    stage_rows<HS>(sV, base + 2 * C + k0 * C3, C3, T - k0);
    stage_rows_transposed<HS>(sKt, base + C + k0 * C3, C3, T - k0);

    float dk[DT][4], dv[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++)
        for (int j = 0; j < 4; j++) dk[i][j] = dv[i][j] = 0.0f;
    const int kr = warp * 16;  // this warp's 16 keys within the tile: rows kr + g and kr + g + 8
    int qtiles = (T + ATT_TILE - 1) / ATT_TILE;

    for (int qt = kt; qt < qtiles; qt++)
    {
        int q0 = qt * ATT_TILE;
        __syncthreads();  // the previous query tile is fully consumed (and the key tiles are staged)
        stage_rows<HS>(sQ, base + q0 * C3, C3, T - q0);
        stage_rows_transposed<HS>(sQt, base + q0 * C3, C3, T - q0);
        stage_rows<HS>(sdO, dbase + q0 * (i64)C, C, T - q0);
        stage_rows_transposed<HS>(sdOt, dbase + q0 * (i64)C, C, T - q0);
        for (int i = threadIdx.x; i < ATT_TILE; i += blockDim.x)
        {
            int q = q0 + i;
            sL[i] = q < T ? lrow[q] * NG_LOG2E : 0.0f;
            sD[i] = q < T ? drow[q] : 0.0f;
        }
        __syncthreads();

        // Sᵀ = K·Qᵀ (rows: this warp's keys; columns: the tile's 64 queries), then Pᵀ.
        float st[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) st[nt][0] = st[nt][1] = st[nt][2] = st[nt][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++)
        {
            u32 af[4];
            load_a(af, sK, SS, kr, ks * 16, g, t);
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
            {
                u32 bf[2];
                load_b(bf, sQ, SS, nt * 8, ks * 16, g, t);
                mma_bf16_16816(st[nt], af, bf);
            }
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++)
            {
                int key = k0 + kr + g + (i >= 2 ? 8 : 0);
                int qi = nt * 8 + 2 * t + (i & 1), q = q0 + qi;
                st[nt][i] = (key > q || q >= T) ? 0.0f : exp2f(st[nt][i] * sl2 - sL[qi]);
            }

        // dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ ⊙ (dPᵀ − D).
        float dpt[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) dpt[nt][0] = dpt[nt][1] = dpt[nt][2] = dpt[nt][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++)
        {
            u32 af[4];
            load_a(af, sV, SS, kr, ks * 16, g, t);
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
            {
                u32 bf[2];
                load_b(bf, sdO, SS, nt * 8, ks * 16, g, t);
                mma_bf16_16816(dpt[nt], af, bf);
            }
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) dpt[nt][i] = st[nt][i] * (dpt[nt][i] - sD[nt * 8 + 2 * t + (i & 1)]);

        // dV += Pᵀ·dO and dK += dSᵀ·Q (scaled at the end), the accumulators becoming A fragments directly.
#pragma unroll
        for (int j = 0; j < 4; j++)
        {
            u32 pa[4], sa[4];
            pa[0] = pack_bf16x2(st[2 * j][0], st[2 * j][1]);
            pa[1] = pack_bf16x2(st[2 * j][2], st[2 * j][3]);
            pa[2] = pack_bf16x2(st[2 * j + 1][0], st[2 * j + 1][1]);
            pa[3] = pack_bf16x2(st[2 * j + 1][2], st[2 * j + 1][3]);
            sa[0] = pack_bf16x2(dpt[2 * j][0], dpt[2 * j][1]);
            sa[1] = pack_bf16x2(dpt[2 * j][2], dpt[2 * j][3]);
            sa[2] = pack_bf16x2(dpt[2 * j + 1][0], dpt[2 * j + 1][1]);
            sa[3] = pack_bf16x2(dpt[2 * j + 1][2], dpt[2 * j + 1][3]);
#pragma unroll
            for (int dt = 0; dt < DT; dt++)
            {
                u32 bf[2];
                load_b(bf, sdOt, ATT_TSTRIDE, dt * 8, j * 16, g, t);
                mma_bf16_16816(dv[dt], pa, bf);
                load_b(bf, sQt, ATT_TSTRIDE, dt * 8, j * 16, g, t);
                mma_bf16_16816(dk[dt], sa, bf);
            }
        }

        // dQ = dS·K needs dS with queries as rows: store dSᵀ transposed, then each warp takes 16 queries.
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                sdS[(nt * 8 + 2 * t + (i & 1)) * ATT_TSTRIDE + kr + g + (i >= 2 ? 8 : 0)] = f32_to_bf16(dpt[nt][i]);
        __syncthreads();
        const int qr = warp * 16;
        float dq[DT][4];
#pragma unroll
        for (int i = 0; i < DT; i++) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < 4; ks++)
        {
            u32 af[4];
            load_a(af, sdS, ATT_TSTRIDE, qr, ks * 16, g, t);
#pragma unroll
            for (int dt = 0; dt < DT; dt++)
            {
                u32 bf[2];
                load_b(bf, sKt, ATT_TSTRIDE, dt * 8, ks * 16, g, t);
                mma_bf16_16816(dq[dt], af, bf);
            }
        }
        int qa = q0 + qr + g, qb = qa + 8;
        if (qa < T)
        {
            float* p = dqkv + ((i64)b * T + qa) * C3 + h * HS + 2 * t;
#pragma unroll
            for (int dt = 0; dt < DT; dt++)
            {
                atomicAdd(p + dt * 8, dq[dt][0] * scale);
                atomicAdd(p + dt * 8 + 1, dq[dt][1] * scale);
            }
        }
        if (qb < T)
        {
            float* p = dqkv + ((i64)b * T + qb) * C3 + h * HS + 2 * t;
#pragma unroll
            for (int dt = 0; dt < DT; dt++)
            {
                atomicAdd(p + dt * 8, dq[dt][2] * scale);
                atomicAdd(p + dt * 8 + 1, dq[dt][3] * scale);
            }
        }
    }

    // This block alone owns these keys' dK and dV: plain read-modify-write.
    int ka = k0 + kr + g, kb = ka + 8;
    if (ka < T)
    {
        float* pk = dqkv + ((i64)b * T + ka) * C3 + C + h * HS + 2 * t;
        float* pv = pk + C;
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
        {
            pk[dt * 8] += dk[dt][0] * scale;
            pk[dt * 8 + 1] += dk[dt][1] * scale;
            pv[dt * 8] += dv[dt][0];
            pv[dt * 8 + 1] += dv[dt][1];
        }
    }
    if (kb < T)
    {
        float* pk = dqkv + ((i64)b * T + kb) * C3 + C + h * HS + 2 * t;
        float* pv = pk + C;
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
        {
            pk[dt * 8] += dk[dt][2] * scale;
            pk[dt * 8 + 1] += dk[dt][3] * scale;
            pv[dt * 8] += dv[dt][2];
            pv[dt * 8 + 1] += dv[dt][3];
        }
    }
}

// grid (ceil(T/64), B·H), 128 threads, dynamic shared memory 2·(4·64·(HS+8) + 3·HS·72 + 64·72) + 2·64·4 bytes.
#define FLASH_BACKWARD(HS)                                                                                              \
    extern "C" __global__ void __launch_bounds__(128) attention_backward_hs##HS(float* dqkv, const float* dout, const float* qkv, \
        const float* lse, const float* Dvec, int T, int C, int H, float scale)                                          \
    {                                                                                                                   \
        flash_backward<HS>(dqkv, dout, qkv, lse, Dvec, T, C, H, scale);                                                 \
    }
FLASH_BACKWARD(16)
FLASH_BACKWARD(32)
FLASH_BACKWARD(64)
FLASH_BACKWARD(128)

// ---- SIMT forward and backward (any head size up to 256) ------------------------------------------

// One warp per query row (b, h, t). Keys go 32 at a time, one per lane; the output channels d = lane + 32j.
extern "C" __global__ void attention_forward_simt(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ qkv,
    int B, int T, int C, int H, float scale)
{
    __shared__ float sq[4][256];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    i64 idx = (i64)blockIdx.x * 4 + warp;
    if (idx >= (i64)B * H * T) return;
    int tq = (int)(idx % T);
    i64 bh = idx / T;
    int b = (int)(bh / H), h = (int)(bh % H), hs = C / H;
    i64 C3 = 3 * (i64)C;
    const float* rowBase = qkv + (i64)b * T * C3 + h * hs;
    for (int d = lane; d < hs; d += 32) sq[warp][d] = rowBase[tq * C3 + d];
    __syncwarp();
    float acc[8];
    for (int j = 0; j < 8; j++) acc[j] = 0.0f;
    float m = -ng_inf(), l = 0.0f;
    for (int s0 = 0; s0 <= tq; s0 += 32)
    {
        int s = s0 + lane;
        float score = -ng_inf();
        if (s <= tq)
        {
            const float* k = rowBase + s * C3 + C;
            float dot = 0.0f;
            for (int d = 0; d < hs; d++) dot += sq[warp][d] * k[d];
            score = dot * scale;
        }
        float mn = fmaxf(m, warp_max(score));
        float p = s <= tq ? expf(score - mn) : 0.0f;
        float alpha = expf(m - mn);  // m = −inf on the first chunk: 0
        l = l * alpha + warp_sum(p);
        for (int j = 0; j < 8; j++) acc[j] *= alpha;
        m = mn;
        int count = imin(32, tq - s0 + 1);
        for (int j = 0; j < count; j++)
        {
            float pj = __shfl_sync(NG_FULL_MASK, p, j);
            const float* v = rowBase + (s0 + j) * C3 + 2 * C;
            for (int jj = 0; jj < 8; jj++)
            {
                int d = lane + 32 * jj;
                if (d < hs) acc[jj] += pj * v[d];
            }
        }
    }
    float* o = out + ((i64)b * T + tq) * C + h * hs;
    for (int jj = 0; jj < 8; jj++)
    {
        int d = lane + 32 * jj;
        if (d < hs) o[d] = acc[jj] / l;
    }
    if (lane == 0) lse[((i64)b * H + h) * T + tq] = m + logf(l);
}

// One warp per query row: dq for that row directly; dk and dv of every key it attends to by atomics.
extern "C" __global__ void attention_backward_simt(float* dqkv, const float* __restrict__ dout, const float* __restrict__ qkv,
    const float* __restrict__ lse, const float* __restrict__ Dvec, int B, int T, int C, int H, float scale)
{
    __shared__ float sq[4][256];
    __shared__ float sdo[4][256];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    i64 idx = (i64)blockIdx.x * 4 + warp;
    if (idx >= (i64)B * H * T) return;
    int tq = (int)(idx % T);
    i64 bh = idx / T;
    int b = (int)(bh / H), h = (int)(bh % H), hs = C / H;
    i64 C3 = 3 * (i64)C;
    const float* rowBase = qkv + (i64)b * T * C3 + h * hs;
    float* dBase = dqkv + (i64)b * T * C3 + h * hs;
    const float* dO = dout + ((i64)b * T + tq) * C + h * hs;
    for (int d = lane; d < hs; d += 32)
    {
        sq[warp][d] = rowBase[tq * C3 + d];
        sdo[warp][d] = dO[d];
    }
    __syncwarp();
    float L = lse[((i64)b * H + h) * T + tq], D = Dvec[((i64)b * H + h) * T + tq];
    float dq[8];
    for (int j = 0; j < 8; j++) dq[j] = 0.0f;
    for (int s0 = 0; s0 <= tq; s0 += 32)
    {
        int s = s0 + lane;
        float p = 0.0f, ds = 0.0f;
        if (s <= tq)
        {
            const float* k = rowBase + s * C3 + C;
            const float* v = rowBase + s * C3 + 2 * C;
            float qk = 0.0f, dp = 0.0f;
            for (int d = 0; d < hs; d++)
            {
                qk += sq[warp][d] * k[d];
                dp += sdo[warp][d] * v[d];
            }
            p = expf(qk * scale - L);
            ds = p * (dp - D) * scale;
        }
        int count = imin(32, tq - s0 + 1);
        for (int j = 0; j < count; j++)
        {
            float pj = __shfl_sync(NG_FULL_MASK, p, j);
            float dsj = __shfl_sync(NG_FULL_MASK, ds, j);
            const float* k = rowBase + (s0 + j) * C3 + C;
            float* dk = dBase + (s0 + j) * C3 + C;
            float* dv = dk + C;
            for (int jj = 0; jj < 8; jj++)
            {
                int d = lane + 32 * jj;
                if (d < hs)
                {
                    dq[jj] += dsj * k[d];
                    atomicAdd(dk + d, dsj * sq[warp][d]);
                    atomicAdd(dv + d, pj * sdo[warp][d]);
                }
            }
        }
    }
    float* dqRow = dBase + tq * C3;
    for (int jj = 0; jj < 8; jj++)
    {
        int d = lane + 32 * jj;
        if (d < hs) dqRow[d] += dq[jj];
    }
}

// ---- KV cache ---------------------------------------------------------------------------------------

// cache[b, t, :] = k (v) of qkv[b·T + t] for t < T.
extern "C" __global__ void kv_cache_write(float* __restrict__ kc, float* __restrict__ vc, const float* __restrict__ qkv, int B, int T, int C, int maxT)
{
    i64 total = (i64)B * T * C, stride = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride)
    {
        i64 bt = i / C;
        int c = (int)(i - bt * C);
        i64 b = bt / T, tt = bt - b * T;
        i64 dst = (b * maxT + tt) * C + c;
        kc[dst] = qkv[bt * 3 * C + C + c];
        vc[dst] = qkv[bt * 3 * C + 2 * C + c];
    }
}

// The new token's k and v at cache[b, positions[b]]; one block per row. A position outside the cache is
// reported and its row skipped (the attention kernel skips it too).
extern "C" __global__ void kv_cache_append(float* __restrict__ kc, float* __restrict__ vc, const float* __restrict__ qkv, const int* __restrict__ positions,
    int B, int C, int maxT, DeviceError* err)
{
    int b = blockIdx.x;
    if (b >= B) return;
    int pos = positions[b];
    if (pos < 0 || pos >= maxT)
    {
        if (threadIdx.x == 0) report_error(err, NG_ERR_CACHE_POS, b, pos, maxT);
        return;
    }
    i64 dst = ((i64)b * maxT + pos) * C;
    const float* src = qkv + (i64)b * 3 * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
    {
        kc[dst + c] = src[C + c];
        vc[dst + c] = src[2 * C + c];
    }
}

// ---- decode: one query per sequence against its cache --------------------------------------------------

// grid (splits, H, B), 128 threads. Split s covers keys [s·chunk, min((s+1)·chunk, pos + 1)). With one split the
// result goes to out directly; otherwise (unnormalized sum, max, Σ) partials go to partO / partML for the merge.
template <int NJ>
__device__ __forceinline__ void decode_attention(float* __restrict__ out, float* __restrict__ partO, float* __restrict__ partML,
    const float* __restrict__ qkv, const float* __restrict__ kc, const float* __restrict__ vc, const int* __restrict__ positions,
    int C, int H, int maxT, int splits, int chunk, float scale)
{
    __shared__ float sm[4], sl[4];
    __shared__ float sacc[4][NJ * 32];
    int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, hs = C / H;
    int pos = positions[b];
    if (pos < 0 || pos >= maxT) return;  // reported by kv_cache_append
    int s0 = split * chunk, s1 = imin(pos + 1, s0 + chunk);
    const float sl2 = scale * NG_LOG2E;
    float q[NJ], acc[NJ];
    const float* qp = qkv + (i64)b * 3 * C + h * hs;
#pragma unroll
    for (int j = 0; j < NJ; j++)
    {
        int d = lane + 32 * j;
        q[j] = d < hs ? qp[d] * sl2 : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -ng_inf(), l = 0.0f;
    const float* kBase = kc + (i64)b * maxT * C + h * hs;
    const float* vBase = vc + (i64)b * maxT * C + h * hs;
    for (int s = s0 + warp; s < s1; s += 4)
    {
        const float* k = kBase + (i64)s * C;
        const float* v = vBase + (i64)s * C;
        float dot = 0.0f, vv[NJ];
#pragma unroll
        for (int j = 0; j < NJ; j++)
        {
            int d = lane + 32 * j;
            dot += d < hs ? q[j] * k[d] : 0.0f;
            vv[j] = d < hs ? v[d] : 0.0f;
        }
        dot = warp_sum(dot);
        if (dot > m)
        {
            float c = exp2f(m - dot);
            l = l * c + 1.0f;
#pragma unroll
            for (int j = 0; j < NJ; j++) acc[j] = acc[j] * c + vv[j];
            m = dot;
        }
        else
        {
            float p = exp2f(dot - m);
            l += p;
#pragma unroll
            for (int j = 0; j < NJ; j++) acc[j] += p * vv[j];
        }
    }
    if (lane == 0) { sm[warp] = m; sl[warp] = l; }
#pragma unroll
    for (int j = 0; j < NJ; j++) sacc[warp][lane + 32 * j] = acc[j];
    __syncthreads();
    float mt = fmaxf(fmaxf(sm[0], sm[1]), fmaxf(sm[2], sm[3]));
    float w[4], lt = 0.0f;
    for (int i = 0; i < 4; i++)
    {
        w[i] = mt == -ng_inf() ? 0.0f : exp2f(sm[i] - mt);
        lt += sl[i] * w[i];
    }
    for (int d = threadIdx.x; d < hs; d += blockDim.x)
    {
        float a = sacc[0][d] * w[0] + sacc[1][d] * w[1] + sacc[2][d] * w[2] + sacc[3][d] * w[3];
        if (splits == 1)
            out[(i64)b * C + h * hs + d] = a / lt;
        else
            partO[(((i64)b * H + h) * splits + split) * hs + d] = a;
    }
    if (splits > 1 && threadIdx.x == 0)
    {
        i64 pi = (((i64)b * H + h) * splits + split) * 2;
        partML[pi] = mt;
        partML[pi + 1] = lt;
    }
}

#define DECODE(NJ)                                                                                                    \
    extern "C" __global__ void __launch_bounds__(128) attention_decode_nj##NJ(float* out, float* partO, float* partML,  \
        const float* qkv, const float* kc, const float* vc, const int* positions, int C, int H, int maxT, int splits,    \
        int chunk, float scale)                                                                                         \
    {                                                                                                                   \
        decode_attention<NJ>(out, partO, partML, qkv, kc, vc, positions, C, H, maxT, splits, chunk, scale);             \
    }
DECODE(1)
DECODE(2)
DECODE(4)
DECODE(8)

// Merges the splits of attention_decode: grid (H, B), threads over the head's channels.
extern "C" __global__ void attention_decode_merge(float* __restrict__ out, const float* __restrict__ partO, const float* __restrict__ partML,
    const int* __restrict__ positions, int C, int H, int maxT, int splits)
{
    int h = blockIdx.x, b = blockIdx.y, hs = C / H;
    int pos = positions[b];
    if (pos < 0 || pos >= maxT) return;
    const float* ml = partML + ((i64)b * H + h) * splits * 2;
    float mt = -ng_inf();
    for (int s = 0; s < splits; s++) mt = fmaxf(mt, ml[2 * s]);
    float lt = 0.0f;
    for (int s = 0; s < splits; s++) lt += ml[2 * s] == -ng_inf() ? 0.0f : ml[2 * s + 1] * exp2f(ml[2 * s] - mt);
    for (int d = threadIdx.x; d < hs; d += blockDim.x)
    {
        float a = 0.0f;
        for (int s = 0; s < splits; s++)
            if (ml[2 * s] != -ng_inf()) a += partO[(((i64)b * H + h) * splits + s) * hs + d] * exp2f(ml[2 * s] - mt);
        out[(i64)b * C + h * hs + d] = a / lt;
    }
}
