// common.cuh — what every kernel family shares: integer and bf16 types, bf16 conversion, warp and
// block reductions, the tensor-core instruction, and the device-side error record.
//
// It is passed to NVRTC as an in-memory header (#include "common.cuh"), and to g++ by the CPU emulator
// the tests use (NG_EMULATE defined, cuda_emu.h included first), so it avoids every header of the CUDA
// toolkit: Debian's NVRTC 11.2, which CI uses to prove the kernels compile, ships no cuda_bf16.h. bf16
// values are therefore plain 16-bit integers (the top half of an fp32), converted here.
#pragma once

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;
typedef long long i64;

#define NG_FULL_MASK 0xffffffffu
#define NG_LOG2E 1.4426950408889634f
#define NG_LN2 0.6931471805599453f

// Dynamic shared memory of a kernel, as `type* name` (its size is the launch's shared-memory argument).
#ifdef NG_EMULATE
#define NG_DYNAMIC_SMEM(type, name) type* name = (type*)emu_dynamic_smem()
#else
#define NG_DYNAMIC_SMEM(type, name) extern __shared__ __align__(16) unsigned char ng_smem_raw[]; type* name = (type*)ng_smem_raw
#endif

__device__ __forceinline__ float ng_inf() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ i64 lmin(i64 a, i64 b) { return a < b ? a : b; }

// ---- bf16 ---------------------------------------------------------------------------------------

// Round to nearest, ties to even; NaN stays NaN (quiet).
__device__ __forceinline__ u16 f32_to_bf16(float f)
{
    u32 x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (u16)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (u16)(x >> 16);
}

__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((u32)h) << 16); }

// Two floats to a bf16 pair: lo in bits 0..15, hi in bits 16..31 (the order mma fragments expect).
__device__ __forceinline__ u32 pack_bf16x2(float lo, float hi)
{
#if !defined(NG_EMULATE) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (u32)f32_to_bf16(lo) | ((u32)f32_to_bf16(hi) << 16);
#endif
}

// ---- reductions ---------------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(NG_FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(NG_FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(NG_FULL_MASK, v, o));
    return v;
}

// Sum over the block; every thread gets the total. `scratch` holds 32 doubles; blockDim.x is a multiple of 32.
__device__ __forceinline__ double block_sum_d(double v, double* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double t = lane < warps ? scratch[lane] : 0.0;
    return warp_sum_d(t);
}

__device__ __forceinline__ float block_max(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < warps ? scratch[lane] : -ng_inf();
    return warp_max(t);
}

// ---- tensor cores -------------------------------------------------------------------------------

// d = a·b + d for one 16×8×16 tile: a is 16×16 bf16 (row-major fragment, 4 registers), b is 16×8 bf16
// (column fragment, 2 registers), d is 16×8 fp32 (4 registers). With g = lane/4 and t = lane%4:
//   a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..2t+1], a[2] = A[g][2t+8..2t+9], a[3] = A[g+8][2t+8..2t+9]
//   b[0] = B[2t..2t+1][g], b[1] = B[2t+8..2t+9][g]
//   d[0..1] = D[g][2t..2t+1], d[2..3] = D[g+8][2t..2t+1]
// (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type".)
__device__ __forceinline__ void mma_bf16_16816(float* d, const u32* a, const u32* b)
{
#ifdef NG_EMULATE
    emu_mma_bf16_16816(d, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// ---- errors the host reports at its next synchronization ----------------------------------------

// One record in device memory. The first kernel that finds a bad index claims it (code 0 -> its code);
// the host copies it back when it synchronizes and throws with the details.
struct DeviceError
{
    int code;
    int row;
    i64 value;
    i64 limit;
};

#define NG_ERR_TOKEN 1      // embedding: token id outside the vocabulary
#define NG_ERR_POSITION 2   // embedding: position outside the position table
#define NG_ERR_TARGET 3     // cross-entropy: target >= vocabulary
#define NG_ERR_CACHE_POS 4  // decode: position outside the KV cache

__device__ __forceinline__ void report_error(DeviceError* e, int code, int row, i64 value, i64 limit)
{
    if (atomicCAS(&e->code, 0, code) == 0)
    {
        e->row = row;
        e->value = value;
        e->limit = limit;
    }
}
