// convert.cu — fp32 to bf16 (round to nearest even), for the bf16 mirrors of matrix-product operands.
// No CPU twin of its own: the CPU backend multiplies in fp32, and the tests compare the CUDA products,
// which run on these copies, against it with bf16 tolerances.
//
// Layout: dst[i] = bf16(src[i]) for i < n; dst holds 16-bit integers.
//
// Why it is fast: memory-bound; with 16-byte aligned input each thread reads a float4 and writes 8 bytes,
// in a grid-stride loop that fills the GPU. A weight is converted once per optimizer step (its mirror is
// reused until the weight changes), an activation once per write, or never when the kernel that produced it
// wrote its mirror too.
#include "common.cuh"

extern "C" __global__ void f32_to_bf16_kernel(u16* __restrict__ dst, const float* __restrict__ src, i64 n)
{
    i64 stride = (i64)gridDim.x * blockDim.x;
    i64 i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if ((((u64)src) & 15u) == 0 && (((u64)dst) & 7u) == 0)
    {
        i64 n4 = n >> 2;
        for (i64 i = i0; i < n4; i += stride)
        {
            float4 v = ((const float4*)src)[i];
            ((uint2*)dst)[i] = make_uint2(pack_bf16x2(v.x, v.y), pack_bf16x2(v.z, v.w));
        }
        for (i64 i = (n4 << 2) + i0; i < n; i += stride) dst[i] = f32_to_bf16(src[i]);
    }
    else
        for (i64 i = i0; i < n; i += stride) dst[i] = f32_to_bf16(src[i]);
}
