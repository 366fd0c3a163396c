#!/usr/bin/env python3
"""PyTorch peer of `benchmarks cuda` (tests/Nemotron.Gym.Benchmarks/CudaBenchmark.cs): the same models, the same
workloads, the same table, so the two can be read side by side.

Model: the Nemotron.Gym GPT (learned positions, RMSNorm without bias, tanh-GELU MLP, no biases, tied LM head).
Training: bf16 autocast, SDPA (causal), fused AdamW (betas 0.9/0.95, weight decay 0.1), gradient clipping at 1,
random tokens; tokens/s and MFU (the same 6N + 6·L·W·T FLOPs per token as GptConfig.TrainingFlopsPerToken).
Generation: a KV-cache decoding loop, temperature-1 sampling, 16-token prompts and 128 new tokens, batch 1/64/256,
in bf16 weights; at batch 1 the share of the memory-bandwidth bound (bf16 weights + KV cache read per token).
Each runs eager and under torch.compile.

Usage: python3 torch_peer.py [--seconds 20] [--peak-tflops 989] [--bandwidth-gbs 3350] [--no-compile]
                             [--compare cuda-bench.log]
--compare reads the table `benchmarks cuda` printed and adds a table of ratios: ours over eager and over compile.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = [("gpt2-small 12L/768", dict(layers=12, width=768, heads=12, context=1024, vocab=50304), 8),
          ("small 6L/384", dict(layers=6, width=384, heads=6, context=1024, vocab=50304), 16)]
PEAKS = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "A10": 125}


class Block(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.RMSNorm(w, eps=1e-5)
        self.qkv = nn.Linear(w, 3 * w, bias=False)
        self.proj = nn.Linear(w, w, bias=False)
        self.ln2 = nn.RMSNorm(w, eps=1e-5)
        self.fc = nn.Linear(w, 4 * w, bias=False)
        self.fc2 = nn.Linear(4 * w, w, bias=False)

    def attend(self, x, cache=None, pos=None):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            kc, vc = cache  # [b, heads, maxT, hs]
            kc[:, :, pos:pos + t] = k
            vc[:, :, pos:pos + t] = v
            if t == 1:
                y = F.scaled_dot_product_attention(q, kc[:, :, :pos + 1], vc[:, :, :pos + 1])
            else:
                y = F.scaled_dot_product_attention(q, kc[:, :, :pos + t], vc[:, :, :pos + t], is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x, cache=None, pos=None):
        x = x + self.attend(self.ln1(x), cache, pos)
        return x + self.fc2(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, layers, width, heads, context, vocab):
        super().__init__()
        self.cfg = dict(layers=layers, width=width, heads=heads, context=context, vocab=vocab)
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.RMSNorm(width, eps=1e-5)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, caches=None, pos=0):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(pos, pos + t, device=idx.device))
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if caches is None else caches[i], pos)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head


def flops_per_token(cfg, t):
    w, L = cfg["width"], cfg["layers"]
    params = cfg["vocab"] * w + L * (12 * w * w + 2 * w) + w  # without the position table, as GptConfig counts
    return 6.0 * params + 6.0 * L * w * t


def measure_training(cfg, batch, seconds, compiled):
    torch._dynamo.reset()  # each shape compiles afresh, not against the recompile limit of the earlier ones
    torch.manual_seed(1)
    model = Gpt(**cfg).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    fwd = torch.compile(model) if compiled else model
    t = cfg["context"]
    x = torch.randint(0, cfg["vocab"], (batch, t), device="cuda")
    y = (x + 1) % cfg["vocab"]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = fwd(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(3):  # warm-up (and compilation)
        step()
    torch.cuda.synchronize()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        step()
        steps += 1
    torch.cuda.synchronize()
    tps = steps * batch * t / (time.perf_counter() - start)
    return tps, flops_per_token(cfg, t) * tps


@torch.no_grad()
def measure_generation(cfg, batch, compiled, prompt_len=16, new_tokens=128):
    torch._dynamo.reset()
    torch.manual_seed(1)
    model = Gpt(**cfg).cuda().to(torch.bfloat16).eval()
    step_fn = torch.compile(model, dynamic=True) if compiled else model
    L, h, w = cfg["layers"], cfg["heads"], cfg["width"]
    max_t = prompt_len + new_tokens
    prompts = torch.tensor([[(i * 131 + j * 7) % cfg["vocab"] for j in range(prompt_len)] for i in range(batch)], device="cuda")

    def run(n_new):
        caches = [(torch.zeros(batch, h, max_t, w // h, device="cuda", dtype=torch.bfloat16),
                   torch.zeros(batch, h, max_t, w // h, device="cuda", dtype=torch.bfloat16)) for _ in range(L)]
        logits = step_fn(prompts, caches, 0)[:, -1]
        out = []
        for i in range(n_new):
            probs = torch.softmax(logits.float(), dim=-1)
            tok = torch.multinomial(probs, 1)
            out.append(tok)
            if i + 1 < n_new:
                logits = step_fn(tok, caches, prompt_len + i)[:, -1]
        return torch.cat(out, dim=1)

    # Warm-up over every position the timed run visits: SDPA picks (and for cuDNN, builds) a kernel plan per key
    # length, and building those inside the timed loop made the loop look ~50x slower than it is.
    run(new_tokens)
    torch.cuda.synchronize()
    start = time.perf_counter()
    tokens = run(new_tokens)
    torch.cuda.synchronize()
    tps = tokens.numel() / (time.perf_counter() - start)
    return tps, prompt_len + new_tokens / 2.0


def read_ours(path):
    """Rows of the table `benchmarks cuda` printed: (workload, model, batch) -> tokens/s."""
    ours = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 5 and cells[0] in ("train", "generate"):
                ours[(cells[0], cells[1], cells[2])] = float(cells[3].replace(",", ""))
    return ours


def print_ratios(ours, peer):
    print()
    print(f"| {'workload':<8} | {'model':<20} | {'batch':<9} | {'ours':>10} | {'eager':>10} | {'compile':>10} | {'ours/eager':>10} | {'ours/compile':>12} |")
    print(f"|{'-' * 10}|{'-' * 22}|{'-' * 11}|{'-' * 12}|{'-' * 12}|{'-' * 12}|{'-' * 12}|{'-' * 14}|")
    for key, tps in ours.items():
        eager, comp = peer.get(key + ("eager",)), peer.get(key + ("compile",))
        cell = lambda v: f"{v:>10,.0f}" if v else f"{'-':>10}"
        ratio = lambda v: f"{tps / v:.2f}x" if v else "-"
        print(f"| {key[0]:<8} | {key[1]:<20} | {key[2]:<9} | {tps:>10,.0f} | {cell(eager)} | {cell(comp)} | {ratio(eager):>10} | {ratio(comp):>12} |")


def header():
    print(f"| {'workload':<8} | {'model':<20} | {'batch':<9} | {'tokens/s':>12} | {'notes':<32} |")
    print(f"|{'-' * 10}|{'-' * 22}|{'-' * 11}|{'-' * 14}|{'-' * 34}|")


def row(workload, model, batch, tps, notes):
    print(f"| {workload:<8} | {model:<20} | {batch:<9} | {tps:>12,.0f} | {notes:<32} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--peak-tflops", type=float, default=0)
    ap.add_argument("--bandwidth-gbs", type=float, default=0, help="DRAM bandwidth; default from the device's properties")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compare", help="a log of `benchmarks cuda`: print our tokens/s over PyTorch's")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    prop = torch.cuda.get_device_properties(0)
    peak = a.peak_tflops * 1e12 or next((v * 1e12 for k, v in PEAKS.items() if k in prop.name), 0)
    bandwidth = a.bandwidth_gbs * 1e9
    if not bandwidth and getattr(prop, "memory_clock_rate", 0) and getattr(prop, "memory_bus_width", 0):
        bandwidth = 2.0 * prop.memory_clock_rate * 1e3 * prop.memory_bus_width / 8
    print(f"torch {torch.__version__}: {prop.name} ({prop.multi_processor_count} SMs, {prop.total_memory / 2**30:.1f} GiB)")
    print(f"bf16 peak {peak / 1e12:.0f} TFLOP/s" if peak else "bf16 peak unknown (--peak-tflops X)",
          f", memory bandwidth {bandwidth / 1e9:.0f} GB/s" if bandwidth else ", bandwidth unknown (--bandwidth-gbs X)", sep="")
    print()
    ours = read_ours(a.compare) if a.compare else {}
    results = {}
    header()
    for compiled in ([False] if a.no_compile else [False, True]):
        mode = "compile" if compiled else "eager"
        for name, cfg, batch in MODELS:
            tps, flops = measure_training(cfg, batch, a.seconds, compiled)
            results[("train", name, f"{batch}x{cfg['context']}", mode)] = tps
            row("train", name, f"{batch}x{cfg['context']}", tps,
                f"{mode}, MFU {100 * flops / peak:.1f}%" if peak else f"{mode}, {flops / 1e12:.1f} TFLOP/s")
        for name, cfg, _ in MODELS:
            for batch in (1, 64, 256):
                tps, mean_pos = measure_generation(cfg, batch, compiled)
                results[("generate", name, str(batch), mode)] = tps
                note = mode
                if batch == 1 and bandwidth:
                    params = cfg["vocab"] * cfg["width"] + cfg["layers"] * (12 * cfg["width"] ** 2 + 2 * cfg["width"]) + cfg["width"]
                    bytes_per_token = 2.0 * params + 2.0 * cfg["layers"] * cfg["width"] * 2 * mean_pos  # bf16 weights + bf16 KV
                    note += f", {100 * bytes_per_token * tps / bandwidth:.1f}% of bandwidth bound"
                row("generate", name, str(batch), tps, note)
        if ours:
            print_ratios(ours, results)


if __name__ == "__main__":
    main()
