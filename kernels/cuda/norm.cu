// norm.cu — RMSNorm forward and backward. CPU twins: CpuBackend.RmsNormForward / RmsNormBackward.
//
// Layout: input/output [n, C] row-major fp32, weight [C], rstd [n] (kept from the forward pass).
//   forward:  rstd[i] = 1/sqrt(mean_j x[i,j]² + eps);  y[i,j] = x[i,j]·w[j]·rstd[i]
//   backward: dx[i,j] += r·w_j·dy_j − x_j·r³/C·Σ_k dy_k·w_k·x_k ;  dw[j] += Σ_i dy[i,j]·x[i,j]·r[i]
//
// Why it is fast: one warp per row, so the row's statistics reduce with shuffles and no block barrier; the
// second read of the row hits L1/L2. The weight gradient is a column sum over rows: a grid of
// (channel block, row chunk) threads each walks its chunk down one column (coalesced across the warp) into a
// partial, and a second kernel adds the partials in a fixed order (deterministic, no atomics).
#include "common.cuh"

extern "C" __global__ void rmsnorm_forward(float* __restrict__ out, float* __restrict__ rstd, const float* __restrict__ in,
    const float* __restrict__ weight, int n, int C, float eps, u16* __restrict__ out_bf16)
{
    int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
    int row = blockIdx.x * warps + (threadIdx.x >> 5);
    if (row >= n) return;
    const float* x = in + (i64)row * C;
    float ss = 0.0f;
    for (int j = lane; j < C; j += 32)
    {
        float v = x[j];
        ss += v * v;
    }
    ss = warp_sum(ss);
    float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (lane == 0) rstd[row] = r;
    float* y = out + (i64)row * C;
    u16* yb = out_bf16 ? out_bf16 + (i64)row * C : 0;
    for (int j = lane; j < C; j += 32)
    {
        float v = x[j] * weight[j] * r;
        y[j] = v;
        if (yb) yb[j] = f32_to_bf16(v);
    }
}

// The input-gradient half of the backward pass (dinput +=), one warp per row.
extern "C" __global__ void rmsnorm_backward_input(float* dinput, const float* __restrict__ doutput, const float* __restrict__ in,
    const float* __restrict__ weight, const float* __restrict__ rstd, int n, int C, u16* __restrict__ dinput_bf16)
{
    int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
    int row = blockIdx.x * warps + (threadIdx.x >> 5);
    if (row >= n) return;
    const float* x = in + (i64)row * C;
    const float* dy = doutput + (i64)row * C;
    float dot = 0.0f;
    for (int j = lane; j < C; j += 32) dot += dy[j] * weight[j] * x[j];
    dot = warp_sum(dot);
    float r = rstd[row];
    float coef = -dot * r * r * r / (float)C;
    float* dx = dinput + (i64)row * C;
    u16* dxb = dinput_bf16 ? dinput_bf16 + (i64)row * C : 0;
    for (int j = lane; j < C; j += 32)
    {
        float v = dx[j] + dy[j] * weight[j] * r + x[j] * coef;
        dx[j] = v;
        if (dxb) dxb[j] = f32_to_bf16(v);
    }
}

// partials[chunk, j] = Σ_{i in chunk} dy[i,j]·x[i,j]·rstd[i]; grid (ceil(C/blockDim), chunks).
extern "C" __global__ void rmsnorm_backward_weight_partial(float* __restrict__ partials, const float* __restrict__ doutput,
    const float* __restrict__ in, const float* __restrict__ rstd, int n, int C, int rowsPerChunk)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    int r0 = blockIdx.y * rowsPerChunk, r1 = imin(n, r0 + rowsPerChunk);
    float acc = 0.0f;
    for (int i = r0; i < r1; i++)
        acc += doutput[(i64)i * C + j] * in[(i64)i * C + j] * rstd[i];
    partials[(i64)blockIdx.y * C + j] = acc;
}

// out[j] += Σ_c partials[c, j] over `chunks` rows of partials, in order.
extern "C" __global__ void column_sum_add(float* __restrict__ out, const float* __restrict__ partials, int chunks, int C)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    float acc = 0.0f;
    for (int c = 0; c < chunks; c++) acc += partials[(i64)c * C + j];
    out[j] += acc;
}
