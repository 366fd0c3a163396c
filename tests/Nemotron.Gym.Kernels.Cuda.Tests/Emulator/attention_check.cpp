// attention_check.cpp — runs the attention kernels of kernels/cuda under cuda_emu.h (on the CPU) against a double-precision
// reference of the CPU backend's rule, and prints the worst differences. Built and run by run.sh; no GPU needed.
#include "cuda_emu.h"
#include "attention.cu"
#include <random>
#include <algorithm>
EMU_REGISTRY_BEGIN
EMU_KERNEL(attention_forward_hs16)
EMU_KERNEL(attention_forward_hs32)
EMU_KERNEL(attention_forward_hs64)
EMU_KERNEL(attention_forward_hs128)
EMU_KERNEL(attention_backward_hs16)
EMU_KERNEL(attention_backward_hs32)
EMU_KERNEL(attention_backward_hs64)
EMU_KERNEL(attention_backward_hs128)
EMU_KERNEL(attention_backward_dot)
EMU_KERNEL(attention_forward_simt)
EMU_KERNEL(attention_backward_simt)
EMU_KERNEL(kv_cache_append)
EMU_KERNEL(attention_decode_nj1)
EMU_KERNEL(attention_decode_nj2)
EMU_KERNEL(attention_decode_merge)
EMU_REGISTRY_END

static void launch(const char* name, dim3 g, dim3 b, unsigned smem, std::vector<void*> args)
{
    char err[512];
    int r = emu_launch(name, g.x, g.y, g.z, b.x, b.y, b.z, smem, args.data(), err, sizeof err);
    if (r) { printf("launch %s: %s\n", name, err); exit(1); }
}

int main(int argc, char** argv)
{
    int B = atoi(argv[1]), T = atoi(argv[2]), C = atoi(argv[3]), H = atoi(argv[4]);
    int hs = C / H; long n = (long)B * T;
    std::mt19937 rng(1); std::normal_distribution<float> nd(0, 1);
    std::vector<float> qkv(n * 3 * C), dout(n * C);
    for (auto& x : qkv) x = nd(rng); for (auto& x : dout) x = nd(rng);
    float scale = 1.0f / sqrtf((float)hs);
    // reference (double)
    std::vector<double> O(n * C), L((long)B * H * T), dQKV(n * 3 * C, 0.0);
    for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) for (int t = 0; t < T; t++) {
        std::vector<double> s(t + 1); double mx = -1e300;
        for (int u = 0; u <= t; u++) { double d = 0; for (int k = 0; k < hs; k++) d += (double)qkv[(b*T+t)*3*C + h*hs+k] * qkv[(b*T+u)*3*C + C + h*hs+k]; s[u] = d * scale; mx = std::max(mx, s[u]); }
        double sum = 0; for (auto& x : s) { x = exp(x - mx); sum += x; }
        L[((long)b*H+h)*T+t] = mx + log(sum);
        for (int k = 0; k < hs; k++) { double a = 0; for (int u = 0; u <= t; u++) a += s[u]/sum * qkv[(b*T+u)*3*C + 2*C + h*hs+k]; O[(b*T+t)*C + h*hs+k] = a; }
        // backward
        std::vector<double> dp(t + 1); double D = 0;
        for (int k = 0; k < hs; k++) D += dout[(b*T+t)*C+h*hs+k] * O[(b*T+t)*C+h*hs+k];
        for (int u = 0; u <= t; u++) { double d = 0; for (int k = 0; k < hs; k++) d += (double)dout[(b*T+t)*C+h*hs+k] * qkv[(b*T+u)*3*C+2*C+h*hs+k]; dp[u] = d; }
        for (int u = 0; u <= t; u++) {
            double p = s[u] / sum, ds = p * (dp[u] - D) * scale;
            for (int k = 0; k < hs; k++) {
                dQKV[(b*T+t)*3*C + h*hs+k] += ds * qkv[(b*T+u)*3*C + C + h*hs+k];
                dQKV[(b*T+u)*3*C + C + h*hs+k] += ds * qkv[(b*T+t)*3*C + h*hs+k];
                dQKV[(b*T+u)*3*C + 2*C + h*hs+k] += p * dout[(b*T+t)*C+h*hs+k];
            }
        }
    }
    auto cmp = [](const char* what, const std::vector<float>& a, const std::vector<double>& e) {
        double mx = 0, worst = 0; for (auto v : e) mx = std::max(mx, fabs(v));
        for (size_t i = 0; i < a.size(); i++) worst = std::max(worst, fabs(a[i] - e[i]));
        printf("%-28s max|ref| %8.4f  max|diff| %9.2e  rel-to-max %9.2e\n", what, mx, worst, worst / mx);
    };
    for (int mode = 0; mode < 2; mode++) {
        bool tc = mode == 0;
        if (tc && hs != 16 && hs != 32 && hs != 64 && hs != 128) continue;
        std::vector<float> out(n * C), lse((long)B*H*T), dq(n * 3 * C, 0.f), Dv((long)B*H*T);
        float *po = out.data(), *pl = lse.data(), *px = qkv.data(), *pd = dout.data(), *pdq = dq.data(), *pD = Dv.data();
        unsigned short* nb = nullptr; int Bi=B, Ti=T, Ci=C, Hi=H;
        char fn[64], bn[64]; sprintf(fn, "attention_forward_hs%d", hs); sprintf(bn, "attention_backward_hs%d", hs);
        if (tc) {
            unsigned sm = 2 * (2 * 64 * (hs + 8) + hs * 72);
            launch(fn, dim3{(unsigned)((T+63)/64), (unsigned)(B*H), 1}, dim3{128,1,1}, sm, {&po,&pl,&px,&Ti,&Ci,&Hi,&scale,&nb});
        } else
            launch("attention_forward_simt", dim3{(unsigned)((n*H+3)/4),1,1}, dim3{128,1,1}, 0, {&po,&pl,&px,&Bi,&Ti,&Ci,&Hi,&scale});
        launch("attention_backward_dot", dim3{(unsigned)((n*H+3)/4),1,1}, dim3{128,1,1}, 0, {&pD,&pd,&po,&Bi,&Ti,&Ci,&Hi});
        if (tc) {
            unsigned sm = 2 * (4 * 64 * (hs + 8) + 3 * hs * 72 + 64 * 72) + 2 * 64 * 4;
            launch(bn, dim3{(unsigned)((T+63)/64), (unsigned)(B*H), 1}, dim3{128,1,1}, sm, {&pdq,&pd,&px,&pl,&pD,&Ti,&Ci,&Hi,&scale});
        } else
            launch("attention_backward_simt", dim3{(unsigned)((n*H+3)/4),1,1}, dim3{128,1,1}, 0, {&pdq,&pd,&px,&pl,&pD,&Bi,&Ti,&Ci,&Hi,&scale});
        printf("%s B=%d T=%d C=%d H=%d\n", tc ? "tensor-core" : "simt", B, T, C, H);
        cmp("  out", out, O); cmp("  lse", lse, L);
        std::vector<float> dqq(dq.begin(), dq.end());
        std::vector<double> e1, e2, e3; std::vector<float> a1, a2, a3;
        for (long r = 0; r < n; r++) for (int c = 0; c < C; c++) { a1.push_back(dq[r*3*C+c]); e1.push_back(dQKV[r*3*C+c]); a2.push_back(dq[r*3*C+C+c]); e2.push_back(dQKV[r*3*C+C+c]); a3.push_back(dq[r*3*C+2*C+c]); e3.push_back(dQKV[r*3*C+2*C+c]); }
        cmp("  dq", a1, e1); cmp("  dk", a2, e2); cmp("  dv", a3, e3);
    }
    return 0;
}
