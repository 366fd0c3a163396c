// decode_check.cpp — runs the decode kernels of kernels/cuda under cuda_emu.h (on the CPU) against a double-precision
// reference of the CPU backend's rule, and prints the worst differences. Built and run by run.sh; no GPU needed.
#include "cuda_emu.h"
#include "attention.cu"
#include <random>
#include <algorithm>
EMU_REGISTRY_BEGIN
EMU_KERNEL(kv_cache_append)
EMU_KERNEL(attention_decode_nj1)
EMU_KERNEL(attention_decode_nj2)
EMU_KERNEL(attention_decode_merge)
EMU_REGISTRY_END
static void launch(const char* name, dim3 g, dim3 b, std::vector<void*> args)
{
    char err[512];
    if (emu_launch(name, g.x, g.y, g.z, b.x, b.y, b.z, 0, args.data(), err, sizeof err)) { printf("%s\n", err); exit(1); }
}
int main(int argc, char** argv)
{
    int B = 3, C = atoi(argv[1]), H = atoi(argv[2]), maxT = atoi(argv[3]), splits = atoi(argv[4]);
    int hs = C / H, chunk = (maxT + splits - 1) / splits, nj = hs <= 32 ? 1 : 2;
    std::mt19937 rng(2); std::normal_distribution<float> nd(0, 1);
    std::vector<float> qkv(B * 3 * C), kc((long)B * maxT * C), vc((long)B * maxT * C), out(B * C), partO((long)B*H*splits*hs), partML((long)B*H*splits*2);
    for (auto& x : qkv) x = nd(rng); for (auto& x : kc) x = nd(rng); for (auto& x : vc) x = nd(rng);
    std::vector<int> pos = {maxT - 1, 0, maxT / 2};
    DeviceError err{};
    float *pq = qkv.data(), *pk = kc.data(), *pv = vc.data(), *po = out.data(), *ppo = partO.data(), *ppm = partML.data(); int* pp = pos.data(); DeviceError* pe = &err;
    float scale = 1.0f / sqrtf((float)hs);
    launch("kv_cache_append", dim3{(unsigned)B,1,1}, dim3{256,1,1}, {&pk,&pv,&pq,&pp,&B,&C,&maxT,&pe});
    char kn[32]; sprintf(kn, "attention_decode_nj%d", nj);
    launch(kn, dim3{(unsigned)splits,(unsigned)H,(unsigned)B}, dim3{128,1,1}, {&po,&ppo,&ppm,&pq,&pk,&pv,&pp,&C,&H,&maxT,&splits,&chunk,&scale});
    if (splits > 1) launch("attention_decode_merge", dim3{(unsigned)H,(unsigned)B,1}, dim3{128,1,1}, {&po,&ppo,&ppm,&pp,&C,&H,&maxT,&splits});
    double worst = 0;
    for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) {
        int len = pos[b] + 1; std::vector<double> s(len); double mx = -1e300;
        for (int u = 0; u < len; u++) { double d = 0; for (int k = 0; k < hs; k++) d += (double)qkv[b*3*C+h*hs+k] * kc[((long)b*maxT+u)*C+h*hs+k]; s[u] = d*scale; mx = std::max(mx, s[u]); }
        double sum = 0; for (auto& x : s) { x = exp(x - mx); sum += x; }
        for (int k = 0; k < hs; k++) { double a = 0; for (int u = 0; u < len; u++) a += s[u]/sum * vc[((long)b*maxT+u)*C+h*hs+k]; worst = std::max(worst, fabs(a - out[b*C+h*hs+k])); }
    }
    // the appended k must be at pos
    double kerr = 0; for (int b = 0; b < B; b++) for (int c = 0; c < C; c++) kerr = std::max(kerr, (double)fabs(kc[((long)b*maxT+pos[b])*C+c] - qkv[b*3*C+C+c]));
    printf("decode C=%d H=%d maxT=%d splits=%d: max|diff| %.2e, cache write err %.1e, device error %d\n", C, H, maxT, splits, worst, kerr, err.code);
}
