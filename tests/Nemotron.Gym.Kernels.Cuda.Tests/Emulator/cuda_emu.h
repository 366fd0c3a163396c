// cuda_emu.h — runs the kernels of kernels/cuda/*.cu on the CPU, so their logic can be tested against the CPU
// backend on machines with no GPU. It is a test tool, not a backend: slow, single OS thread, exact.
//
// g++ compiles a kernel family with this header first (-include cuda_emu.h, NG_EMULATE defined). Each CUDA
// thread of a block is a fiber (ucontext) with its own stack; the fibers of one block run round-robin and switch
// only where CUDA threads synchronize: __syncthreads, __syncwarp, warp shuffles and the warp-wide tensor-core
// instruction (emulated from the PTX fragment layouts in common.cuh). Blocks run one after another, so
// `__shared__` variables become function statics. A barrier that can never complete (threads of a block
// waiting at different barriers) is reported as a deadlock instead of hanging.
//
// Because a fiber runs until it blocks, a kernel that reads shared memory another thread has not yet written
// (a missing barrier) reads stale data here and fails its test, instead of passing by luck of scheduling.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <ucontext.h>

#define NG_EMULATE 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }

inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline float __uint_as_float(unsigned v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int __float_as_int(float f) { int v; std::memcpy(&v, &f, 4); return v; }
inline unsigned __float_as_uint(float f) { unsigned v; std::memcpy(&v, &f, 4); return v; }

namespace emu
{
struct Fiber
{
    ucontext_t ctx;
    dim3 tid;
    int linear = 0;
    bool done = false;
};

struct State
{
    dim3 grid, block, bidx;
    std::vector<Fiber> fibers;
    std::vector<char*> stacks;
    ucontext_t sched;
    Fiber* cur = nullptr;
    int live = 0;                 // fibers of the block not yet finished
    int warpLive[32] = {};
    int barArrived = 0;
    long barGen = 0;
    int warpArrived[32] = {};
    long warpGen[32] = {};
    bool progress = false;
    uint64_t xchg[32][32] = {};
    unsigned mmaA[32][32][4] = {};
    unsigned mmaB[32][32][2] = {};
    std::vector<unsigned char> dynSmem;
    void (*body)(void**) = nullptr;
    void** args = nullptr;
};

inline State& st()
{
    static State s;
    return s;
}

inline void yield()
{
    State& s = st();
    swapcontext(&s.cur->ctx, &s.sched);
}

inline void block_barrier()
{
    State& s = st();
    long gen = s.barGen;
    s.progress = true;
    if (++s.barArrived >= s.live)
    {
        s.barArrived = 0;
        s.barGen++;
        return;
    }
    while (s.barGen == gen) yield();
}

inline void warp_barrier()
{
    State& s = st();
    int w = s.cur->linear >> 5;
    long gen = s.warpGen[w];
    s.progress = true;
    if (++s.warpArrived[w] >= s.warpLive[w])
    {
        s.warpArrived[w] = 0;
        s.warpGen[w]++;
        return;
    }
    while (s.warpGen[w] == gen) yield();
}

inline void require_full_mask(unsigned mask)
{
    if (mask != 0xffffffffu)
    {
        std::fprintf(stderr, "cuda_emu: only full-warp masks are emulated (got 0x%x)\n", mask);
        std::abort();
    }
}

inline void fiber_entry()
{
    State& s = st();
    s.body(s.args);
    s.cur->done = true;
    s.live--;
    s.warpLive[s.cur->linear >> 5]--;
    s.progress = true;
    // A barrier whose last missing member just exited completes now.
    if (s.live > 0 && s.barArrived >= s.live)
    {
        s.barArrived = 0;
        s.barGen++;
    }
    int w = s.cur->linear >> 5;
    if (s.warpLive[w] > 0 && s.warpArrived[w] >= s.warpLive[w])
    {
        s.warpArrived[w] = 0;
        s.warpGen[w]++;
    }
}
}  // namespace emu

#define threadIdx (emu::st().cur->tid)
#define blockIdx (emu::st().bidx)
#define blockDim (emu::st().block)
#define gridDim (emu::st().grid)

inline void __syncthreads() { emu::block_barrier(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::require_full_mask(mask); emu::warp_barrier(); }

template <class T>
inline T emu_exchange(T v, int (*src)(int lane, int arg), int arg)
{
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    emu::State& s = emu::st();
    int lane = s.cur->linear & 31, w = s.cur->linear >> 5;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    s.xchg[w][lane] = bits;
    emu::warp_barrier();
    T r;
    std::memcpy(&r, &s.xchg[w][src(lane, arg) & 31], sizeof(T));
    emu::warp_barrier();
    return r;
}

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32)
{
    emu::require_full_mask(mask);
    if (width != 32) { std::fprintf(stderr, "cuda_emu: shuffle width %d not emulated\n", width); std::abort(); }
    return emu_exchange<T>(v, [](int lane, int m) { return lane ^ m; }, laneMask);
}

template <class T>
inline T __shfl_sync(unsigned mask, T v, int srcLane, int width = 32)
{
    emu::require_full_mask(mask);
    if (width != 32) { std::fprintf(stderr, "cuda_emu: shuffle width %d not emulated\n", width); std::abort(); }
    return emu_exchange<T>(v, [](int, int src) { return src; }, srcLane);
}

inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }
inline double atomicAdd(double* p, double v) { double o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { int o = *p; *p = o + v; return o; }
inline unsigned atomicAdd(unsigned* p, unsigned v) { unsigned o = *p; *p = o + v; return o; }
inline int atomicCAS(int* p, int compare, int v) { int o = *p; if (o == compare) *p = v; return o; }

inline void* emu_dynamic_smem() { return emu::st().dynSmem.data(); }

// The warp-wide mma.sync.m16n8k16 (bf16 in, fp32 accumulate): every lane posts its fragments, the warp meets,
// each lane computes its four outputs from the gathered 16×16 A and 16×8 B, the warp meets again.
inline float emu_bf16(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }
inline void emu_mma_bf16_16816(float* d, const unsigned* a, const unsigned* b)
{
    emu::State& s = emu::st();
    int lane = s.cur->linear & 31, w = s.cur->linear >> 5;
    for (int i = 0; i < 4; i++) s.mmaA[w][lane][i] = a[i];
    s.mmaB[w][lane][0] = b[0];
    s.mmaB[w][lane][1] = b[1];
    emu::warp_barrier();
    float A[16][16], B[16][8];
    for (int L = 0; L < 32; L++)
    {
        int g = L >> 2, t = L & 3;
        const unsigned* ra = s.mmaA[w][L];
        const unsigned* rb = s.mmaB[w][L];
        A[g][2 * t] = emu_bf16(ra[0] & 0xffff); A[g][2 * t + 1] = emu_bf16(ra[0] >> 16);
        A[g + 8][2 * t] = emu_bf16(ra[1] & 0xffff); A[g + 8][2 * t + 1] = emu_bf16(ra[1] >> 16);
        A[g][2 * t + 8] = emu_bf16(ra[2] & 0xffff); A[g][2 * t + 9] = emu_bf16(ra[2] >> 16);
        A[g + 8][2 * t + 8] = emu_bf16(ra[3] & 0xffff); A[g + 8][2 * t + 9] = emu_bf16(ra[3] >> 16);
        B[2 * t][g] = emu_bf16(rb[0] & 0xffff); B[2 * t + 1][g] = emu_bf16(rb[0] >> 16);
        B[2 * t + 8][g] = emu_bf16(rb[1] & 0xffff); B[2 * t + 9][g] = emu_bf16(rb[1] >> 16);
    }
    int g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++)
    {
        int r = g + (i >= 2 ? 8 : 0), c = 2 * t + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 16; k++) acc += A[r][k] * B[k][c];
        d[i] = acc;
    }
    emu::warp_barrier();
}

namespace emu
{
template <class F>
struct Invoker;
template <class... A>
struct Invoker<void (*)(A...)>
{
    template <void (*K)(A...), size_t... I>
    static void callImpl(void** args, std::index_sequence<I...>)
    {
        K(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
    }
    template <void (*K)(A...)>
    static void call(void** args) { callImpl<K>(args, std::index_sequence_for<A...>{}); }
};

struct KernelEntry
{
    const char* name;
    void (*invoke)(void**);
};

constexpr size_t kStackBytes = 256 * 1024;

// Runs every block of the grid; returns an empty string, or what went wrong.
inline std::string run(void (*body)(void**), dim3 grid, dim3 block, unsigned smem, void** args)
{
    State& s = st();
    int n = (int)(block.x * block.y * block.z);
    if (n <= 0 || n > 1024 || n % 32 != 0) return "block of " + std::to_string(n) + " threads: the emulator needs a positive multiple of 32, at most 1024";
    s.grid = grid;
    s.block = block;
    s.body = body;
    s.args = args;
    s.dynSmem.assign(smem + 16, 0xCD);  // poisoned: unwritten shared memory is noticed
    while ((int)s.stacks.size() < n) s.stacks.push_back((char*)std::malloc(kStackBytes));
    s.fibers.assign(n, Fiber());
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++)
            {
                s.bidx = dim3{bx, by, bz};
                s.live = n;
                s.barArrived = 0;
                for (int w = 0; w < 32; w++) { s.warpLive[w] = w < n / 32 ? 32 : 0; s.warpArrived[w] = 0; }
                for (int i = 0; i < n; i++)
                {
                    Fiber& f = s.fibers[i];
                    f.done = false;
                    f.linear = i;
                    f.tid = dim3{(unsigned)(i % block.x), (unsigned)((i / block.x) % block.y), (unsigned)(i / (block.x * block.y))};
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = s.stacks[i];
                    f.ctx.uc_stack.ss_size = kStackBytes;
                    f.ctx.uc_link = &s.sched;
                    makecontext(&f.ctx, fiber_entry, 0);
                }
                while (s.live > 0)
                {
                    s.progress = false;
                    for (int i = 0; i < n; i++)
                    {
                        if (s.fibers[i].done) continue;
                        s.cur = &s.fibers[i];
                        swapcontext(&s.sched, &s.fibers[i].ctx);
                    }
                    if (!s.progress && s.live > 0)
                        return "deadlock in block (" + std::to_string(bx) + "," + std::to_string(by) + "," + std::to_string(bz) +
                               "): " + std::to_string(s.live) + " threads wait at barriers that cannot complete";
                }
            }
    return "";
}
}  // namespace emu

#define EMU_REGISTRY_BEGIN static const emu::KernelEntry emu_kernels[] = {
#define EMU_KERNEL(name) {#name, &emu::Invoker<decltype(&name)>::template call<&name>},
#define EMU_REGISTRY_END                                                                                               \
    }                                                                                                                  \
    ;                                                                                                                  \
    extern "C" int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,     \
        unsigned bz, unsigned smem, void** args, char* error, int errorLength)                                         \
    {                                                                                                                  \
        for (const auto& k : emu_kernels)                                                                              \
            if (std::strcmp(k.name, name) == 0)                                                                        \
            {                                                                                                          \
                std::string e = emu::run(k.invoke, dim3{gx, gy, gz}, dim3{bx, by, bz}, smem, args);                   \
                if (e.empty()) return 0;                                                                               \
                std::snprintf(error, errorLength, "%s: %s", name, e.c_str());                                          \
                return 2;                                                                                              \
            }                                                                                                          \
        std::snprintf(error, errorLength, "no kernel named %s in this module", name);                                  \
        return 1;                                                                                                      \
    }
