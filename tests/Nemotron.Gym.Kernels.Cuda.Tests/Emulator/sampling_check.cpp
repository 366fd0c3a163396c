// sampling_check.cpp — runs the sampling kernels of kernels/cuda under cuda_emu.h (on the CPU) against a double-precision
// reference of the CPU backend's rule, and prints the worst differences. Built and run by run.sh; no GPU needed.
#include "cuda_emu.h"
#include "sampling.cu"
#include <random>
#include <algorithm>
#include <numeric>
EMU_REGISTRY_BEGIN
EMU_KERNEL(sample_tokens)
EMU_REGISTRY_END
// The CPU backend's rule (CpuBackend.SampleTokens), in float as it computes.
static int ref(const float* row, int vocab, float T, int topK, float topP, float u, float* lp)
{
    std::vector<float> sc(vocab), pr(vocab);
    float invT = T == 0 ? 1 : 1 / T;
    for (int j = 0; j < vocab; j++) sc[j] = row[j] * invT;
    float mx = *std::max_element(sc.begin(), sc.end());
    float total = 0; for (int j = 0; j < vocab; j++) { pr[j] = expf(sc[j] - mx); total += pr[j]; }
    float l = mx + logf(total);
    if (T == 0) { int best = std::max_element(sc.begin(), sc.end()) - sc.begin(); *lp = sc[best] - l; return best; }
    int pick;
    if (topK == 0 && topP >= 1) { float target = u * total, cum = 0; pick = vocab - 1; for (int j = 0; j < vocab; j++) { cum += pr[j]; if (cum > target) { pick = j; break; } } }
    else {
        std::vector<int> order(vocab); std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return pr[x] != pr[y] ? pr[x] > pr[y] : x < y; });
        int kept = topK > 0 ? std::min(topK, vocab) : vocab; float km = 0; for (int j = 0; j < kept; j++) km += pr[order[j]];
        if (topP < 1) { float cum = 0; int prefix = kept; for (int j = 0; j < kept; j++) { cum += pr[order[j]]; if (cum >= topP * km) { prefix = j + 1; break; } } kept = prefix; km = cum < topP * km ? km : cum; }
        float target = u * km, acc = 0; pick = order[kept - 1];
        for (int j = 0; j < kept; j++) { acc += pr[order[j]]; if (acc > target) { pick = order[j]; break; } }
    }
    *lp = sc[pick] - l; return pick;
}
int main()
{
    int rows = 24, vocab = 1000, stride = 1024;
    std::mt19937 rng(3); std::normal_distribution<float> nd(0, 3); std::uniform_real_distribution<float> ud(0, 1);
    std::vector<float> logits(rows * stride), us(rows);
    for (auto& x : logits) x = nd(rng); for (auto& x : us) x = ud(rng);
    for (int j = 0; j < 10; j++) logits[5 * stride + 100 + j] = 50;
    struct P { float T; int K; float Pp; } cases[] = {{0, 0, 1}, {1, 0, 1}, {0.7f, 40, 1}, {1, 0, 0.9f}, {1.3f, 50, 0.8f}, {1, 1, 1}, {1, 0, 0.001f}};
    for (auto c : cases) {
        std::vector<int> tok(rows); std::vector<float> lp(rows);
        int* pt = tok.data(); float* pl = lp.data(); float* pz = logits.data(); float* pu = us.data();
        void* args[] = {&pt, &pl, &pz, &rows, &vocab, &stride, &c.T, &c.K, &c.Pp, &pu};
        char err[256];
        if (emu_launch("sample_tokens", rows, 1, 1, 512, 1, 1, 0, args, err, sizeof err)) { printf("%s\n", err); return 1; }
        int same = 0; double lperr = 0;
        for (int r = 0; r < rows; r++) { float l; int t = ref(&logits[r * stride], vocab, c.T, c.K, c.Pp, us[r], &l); if (t == tok[r]) { same++; lperr = std::max(lperr, (double)fabs(l - lp[r])); } }
        printf("T=%.1f K=%d P=%.3f: %d/%d tokens match, max logprob diff %.1e, row 5 -> %d\n", c.T, c.K, c.Pp, same, rows, lperr, tok[5]);
    }
}
