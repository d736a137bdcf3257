#!/usr/bin/env python3
"""The peer side of the CUDA benchmark (bench/cuda/run.sh): Hugging Face transformers + PEFT on a
random-init model of a config.json's shape, bf16 (autocast over fp32 master weights by default, as
the HF Trainer's bf16=True; --pure-bf16 keeps the weights in bf16), SDPA attention, fused AdamW,
gradient clipping 1.0, optional LoRA r on q,k,v,o and gradient checkpointing. Prints one JSON line:
tokens/s and torch's peak allocated memory."""
import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--case", default="run")
    ap.add_argument("--lora", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--grad-ckpt", action="store_true")
    ap.add_argument("--pure-bf16", action="store_true")
    a = ap.parse_args()

    torch.manual_seed(0)
    cfg = AutoConfig.from_pretrained(a.config)
    dtype = torch.bfloat16 if a.pure_bf16 else torch.float32
    model = AutoModelForCausalLM.from_config(cfg, torch_dtype=dtype, attn_implementation="sdpa").cuda()
    if a.grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if a.lora:
        from peft import LoraConfig, get_peft_model

        if a.grad_ckpt:
            model.enable_input_require_grads()
        model = get_peft_model(model, LoraConfig(r=a.lora, lora_alpha=2 * a.lora, lora_dropout=0.0,
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                                 task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=not a.pure_bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": "hf", "case": a.case, "batch": a.batch, "seq": a.seq, "lora_rank": a.lora,
                      "steps": a.steps, "tokens_per_s": round(a.batch * a.seq * a.steps / secs, 1),
                      "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                      "final_loss": round(loss.item(), 4), "torch": torch.__version__,
                      "pure_bf16": a.pure_bf16, "grad_ckpt": a.grad_ckpt}))


if __name__ == "__main__":
    main()
