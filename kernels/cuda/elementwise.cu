// elementwise.cu — add, scale, sum of squares, GELU (tanh) forward and backward, and the beta-scaling a
// matrix product with k = 0 reduces to. CPU twins: CpuBackend.Add/Scale/SumOfSquares/GeluForward/GeluBackward.
//
// Layout: flat fp32 arrays of n elements (n may exceed 2^31). Optional `out_bf16` arguments receive a
// bf16 copy of what was written, for tensors the backend keeps a bf16 mirror of (matrix-product operands);
// null means none.
//
// Why it is fast: these are memory-bound, so each thread moves 16 bytes per access (float4) when every
// pointer is 16-byte aligned, loads are issued before use in a grid-stride loop sized to fill the GPU,
// and the sum of squares reduces in registers and shared memory with one partial per block, then one
// tiny block sums the partials (deterministic: no atomics).
#include "common.cuh"

__device__ __forceinline__ bool aligned16(const void* p) { return (((u64)p) & 15u) == 0; }

extern "C" __global__ void add_f32(float* out, const float* a, const float* b, i64 n)  // out may alias a or b
{
    i64 stride = (i64)gridDim.x * blockDim.x;
    i64 i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (aligned16(out) && aligned16(a) && aligned16(b))
    {
        i64 n4 = n >> 2;
        for (i64 i = i0; i < n4; i += stride)
        {
            float4 x = ((const float4*)a)[i], y = ((const float4*)b)[i];
            ((float4*)out)[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
        }
        for (i64 i = (n4 << 2) + i0; i < n; i += stride) out[i] = a[i] + b[i];
    }
    else
        for (i64 i = i0; i < n; i += stride) out[i] = a[i] + b[i];
}

extern "C" __global__ void scale_f32(float* __restrict__ x, float s, i64 n)
{
    i64 stride = (i64)gridDim.x * blockDim.x;
    i64 i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (aligned16(x))
    {
        i64 n4 = n >> 2;
        for (i64 i = i0; i < n4; i += stride)
        {
            float4 v = ((float4*)x)[i];
            ((float4*)x)[i] = make_float4(v.x * s, v.y * s, v.z * s, v.w * s);
        }
        for (i64 i = (n4 << 2) + i0; i < n; i += stride) x[i] *= s;
    }
    else
        for (i64 i = i0; i < n; i += stride) x[i] *= s;
}

// C = beta·C for `batch` dense m×n matrices, matrix i at c + i·strideC; beta = 0 writes zeros (even over NaN).
extern "C" __global__ void scale_matrices(float* c, i64 elements, i64 strideC, int batch, float beta)
{
    i64 stride = (i64)gridDim.x * blockDim.x;
    for (int bi = 0; bi < batch; bi++)
    {
        float* m = c + (i64)bi * strideC;
        for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < elements; i += stride)
            m[i] = beta == 0.0f ? 0.0f : m[i] * beta;
    }
}

// Σ x² in double: one partial per block into partials[blockIdx.x].
extern "C" __global__ void sum_squares_partial(const float* __restrict__ x, i64 n, double* __restrict__ partials)
{
    __shared__ double scratch[32];
    double acc = 0.0;
    i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    {
        double v = x[i];
        acc += v * v;
    }
    double total = block_sum_d(acc, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// out[0] = Σ partials[0..count) in a fixed order (one block).
extern "C" __global__ void sum_partials(const double* __restrict__ partials, int count, double* __restrict__ out)
{
    __shared__ double scratch[32];
    double acc = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
    double total = block_sum_d(acc, scratch);
    if (threadIdx.x == 0) out[0] = total;
}

#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)
#define GELU_CUBE 0.044715f

__device__ __forceinline__ float gelu(float x)
{
    float u = tanhf(GELU_SCALE * (x + GELU_CUBE * x * x * x));
    return 0.5f * x * (1.0f + u);
}

__device__ __forceinline__ float gelu_grad(float x)
{
    float x2 = x * x;
    float t = tanhf(GELU_SCALE * x * (1.0f + GELU_CUBE * x2));
    return 0.5f * (1.0f + t) + 0.5f * GELU_SCALE * x * (1.0f - t * t) * (1.0f + 3.0f * GELU_CUBE * x2);
}

extern "C" __global__ void gelu_forward(float* __restrict__ out, const float* __restrict__ in, i64 n, u16* __restrict__ out_bf16)
{
    i64 stride = (i64)gridDim.x * blockDim.x;
    i64 i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (aligned16(out) && aligned16(in) && (out_bf16 == 0 || (((u64)out_bf16) & 7u) == 0))
    {
        i64 n4 = n >> 2;
        for (i64 i = i0; i < n4; i += stride)
        {
            float4 x = ((const float4*)in)[i];
            float4 y = make_float4(gelu(x.x), gelu(x.y), gelu(x.z), gelu(x.w));
            ((float4*)out)[i] = y;
            if (out_bf16) ((uint2*)out_bf16)[i] = make_uint2(pack_bf16x2(y.x, y.y), pack_bf16x2(y.z, y.w));
        }
        for (i64 i = (n4 << 2) + i0; i < n; i += stride)
        {
            float y = gelu(in[i]);
            out[i] = y;
            if (out_bf16) out_bf16[i] = f32_to_bf16(y);
        }
    }
    else
        for (i64 i = i0; i < n; i += stride)
        {
            float y = gelu(in[i]);
            out[i] = y;
            if (out_bf16) out_bf16[i] = f32_to_bf16(y);
        }
}

// dinput += gelu'(input) · doutput
extern "C" __global__ void gelu_backward(float* dinput, const float* __restrict__ doutput, const float* __restrict__ input, i64 n, u16* __restrict__ dinput_bf16)
{
    i64 stride = (i64)gridDim.x * blockDim.x;
    i64 i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (aligned16(dinput) && aligned16(doutput) && aligned16(input) && (dinput_bf16 == 0 || (((u64)dinput_bf16) & 7u) == 0))
    {
        i64 n4 = n >> 2;
        for (i64 i = i0; i < n4; i += stride)
        {
            float4 x = ((const float4*)input)[i], dy = ((const float4*)doutput)[i], dx = ((float4*)dinput)[i];
            dx.x += gelu_grad(x.x) * dy.x;
            dx.y += gelu_grad(x.y) * dy.y;
            dx.z += gelu_grad(x.z) * dy.z;
            dx.w += gelu_grad(x.w) * dy.w;
            ((float4*)dinput)[i] = dx;
            if (dinput_bf16) ((uint2*)dinput_bf16)[i] = make_uint2(pack_bf16x2(dx.x, dx.y), pack_bf16x2(dx.z, dx.w));
        }
        for (i64 i = (n4 << 2) + i0; i < n; i += stride)
        {
            float v = dinput[i] + gelu_grad(input[i]) * doutput[i];
            dinput[i] = v;
            if (dinput_bf16) dinput_bf16[i] = f32_to_bf16(v);
        }
    }
    else
        for (i64 i = i0; i < n; i += stride)
        {
            float v = dinput[i] + gelu_grad(input[i]) * doutput[i];
            dinput[i] = v;
            if (dinput_bf16) dinput_bf16[i] = f32_to_bf16(v);
        }
}
