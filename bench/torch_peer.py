"""torch_peer: the PyTorch peer of bench_train - a plain Qwen2-style decoder written to match
HF's modeling_qwen2 (eager attention, fp32), trained with AdamW for the same shapes, batch,
sequence and threads. Full fine-tuning or LoRA (r on q,k,v,o, frozen base). Prints one
"key=value" line like bench_train, with blas= the BLAS library torch's GEMMs ran on (read from
/proc/self/maps: openblas, reference, mkl, ...) so bench/run.sh can refuse an unfair peer. Benchmarks only (Debian's python3-torch); never a test."""
import argparse
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, c, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Linear(nn.Module):
    """nn.Linear with an optional LoRA adapter (PEFT semantics, no dropout)."""

    def __init__(self, i, o, bias, r, alpha):
        super().__init__()
        self.base = nn.Linear(i, o, bias=bias)
        nn.init.normal_(self.base.weight, std=0.02)
        if bias:
            nn.init.zeros_(self.base.bias)
        self.r = r
        if r:
            self.a = nn.Parameter(torch.randn(r, i) / math.sqrt(i))
            self.b = nn.Parameter(torch.zeros(o, r))
            self.scaling = alpha / r

    def forward(self, x):
        y = self.base(x)
        if self.r:
            y = y + (x @ self.a.t() @ self.b.t()) * self.scaling
        return y


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, a, r):
        super().__init__()
        c, hs = a.hidden, a.hidden // a.heads
        self.h, self.kvh, self.hs = a.heads, a.kv_heads, hs
        self.q = Linear(c, a.heads * hs, True, r, 32)
        self.k = Linear(c, a.kv_heads * hs, True, r, 32)
        self.v = Linear(c, a.kv_heads * hs, True, r, 32)
        self.o = Linear(a.heads * hs, c, False, r, 32)
        self.gate = Linear(c, a.ffn, False, 0, 0)
        self.up = Linear(c, a.ffn, False, 0, 0)
        self.down = Linear(a.ffn, c, False, 0, 0)
        self.ln1 = RMSNorm(c, 1e-6)
        self.ln2 = RMSNorm(c, 1e-6)

    def forward(self, x, cos, sin, mask):
        b, t, c = x.shape
        h = self.ln1(x)
        q = self.q(h).view(b, t, self.h, self.hs).transpose(1, 2)
        k = self.k(h).view(b, t, self.kvh, self.hs).transpose(1, 2)
        v = self.v(h).view(b, t, self.kvh, self.hs).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.h // self.kvh
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(2, 3)) / math.sqrt(self.hs) + mask
        p = torch.softmax(s, dim=-1, dtype=torch.float32)
        o = (p @ v).transpose(1, 2).reshape(b, t, c if self.h * self.hs == c else self.h * self.hs)
        x = x + self.o(o)
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, a, r):
        super().__init__()
        self.embed = nn.Embedding(a.vocab, a.hidden)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = nn.ModuleList([Layer(a, r) for _ in range(a.layers)])
        self.norm = RMSNorm(a.hidden, 1e-6)
        self.tied = a.tied
        if not a.tied:
            self.lm_head = nn.Linear(a.hidden, a.vocab, bias=False)
            nn.init.normal_(self.lm_head.weight, std=0.02)
        hs = a.hidden // a.heads
        inv = 1.0 / (1e6 ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))
        ang = torch.arange(a.seq, dtype=torch.float32)[:, None] * inv[None, :]
        emb = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", emb.cos()[None, None])
        self.register_buffer("sin", emb.sin()[None, None])
        self.register_buffer("mask", torch.full((a.seq, a.seq), float("-inf")).triu(1)[None, None])

    def forward(self, ids, labels):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, self.mask)
        x = self.norm(x)
        w = self.embed.weight if self.tied else self.lm_head.weight
        logits = x @ w.t()
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def blas_in_use():
    """The BLAS libraries mapped into this process (after the run): kind and real path."""
    import os
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and ("blas" in parts[5].lower() or "mkl" in parts[5].lower()):
                paths.add(os.path.realpath(parts[5]))
    kinds = []
    for p in sorted(paths):
        name = p.lower()
        if "openblas" in name:
            kinds.append("openblas")
        elif "mkl" in name:
            kinds.append("mkl")
        elif "blis" in name:
            kinds.append("blis")
        elif "atlas" in name:
            kinds.append("atlas")
        elif "/blas/" in name or name.endswith("libblas.so.3"):
            kinds.append("reference")
        else:
            kinds.append("other")
    # OpenBLAS's own libblas.so.3 lives under .../openblas-pthread/ (kind openblas); the reference
    # one under .../blas/. Any reference BLAS mapped makes the peer suspect.
    kind = "reference" if "reference" in kinds else (kinds[0] if kinds else "none")
    return kind, ",".join(sorted(paths)) or "none"


def main():
    p = argparse.ArgumentParser()
    for k, d in [("hidden", 512), ("layers", 8), ("heads", 8), ("kv-heads", 2), ("ffn", 1376), ("vocab", 32000),
                 ("batch", 4), ("seq", 256), ("lora", 0), ("warmup", 1), ("steps", 3), ("threads", 2)]:
        p.add_argument("--" + k, type=int, default=d)
    p.add_argument("--tied", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Model(a, a.lora)
    if a.lora:
        for n, prm in m.named_parameters():
            prm.requires_grad = n.endswith(".a") or n.endswith(".b")
    params = [q for q in m.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    total = 0.0
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = m(ids, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        print(f"step {i}: {dt:.3f} s, loss {loss.item():.4f}", file=sys.stderr)
        if i >= a.warmup:
            total += dt
    step_s = total / a.steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kind, paths = blas_in_use()
    print(f"impl=torch step_s={step_s:.4f} tokens_per_s={a.batch * a.seq / step_s:.2f} peak_rss_mib={rss:.1f} "
          f"loss={loss.item():.5f} blas={kind} blas_path={paths} torch={torch.__version__}")


if __name__ == "__main__":
    main()
