#!/usr/bin/env bash
# CUDA benchmark: csft vs Hugging Face transformers + PEFT on the same card, on the issue's shapes
# (Qwen2.5-0.5B full and LoRA r=16 at 8x2048; Qwen2.5-7B LoRA r=16 with gradient checkpointing at
# 2x2048 and 1x8192). Builds csft with CUDA=1, runs each case on both sides, appends one JSON line
# per run to bench/cuda/results/<card>_<commit>.jsonl and prints tokens/s, memory and the speedup
# (target: csft >= 1.3x the peer with no more memory).
#   CASES="q05_full q05_lora q7_lora_b2 q7_lora_8k"  cases to run (default all)
#   SIDES="hf csft"   STEPS=10  WARMUP=3  DEVICE=cuda-bf16 (csft backend)  PEER_ARGS=--pure-bf16
#   QUICK=1           2 steps, 1 warmup (a smoke run that fits a short GPU session)
set -euo pipefail
cd "$(dirname "$0")/../.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
CASES=${CASES:-"q05_full q05_lora q7_lora_b2 q7_lora_8k"}
SIDES=${SIDES:-"hf csft"}
STEPS=${STEPS:-10} WARMUP=${WARMUP:-3} DEVICE=${DEVICE:-cuda-bf16} PEER_ARGS=${PEER_ARGS:-}
if [ "${QUICK:-0}" = 1 ]; then STEPS=2 WARMUP=1; fi

make -j"$(nproc)" CUDA=1 csft >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -Isrc -I"$CUDA_HOME/include" bench/cuda/bench_train.c build-cuda/libcsft.a \
    -lcjson -lyaml -ldnnl -lutf8proc -lpcre2-8 -lsnappy -lzstd -lz -lm \
    -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lcublas -lcudart -lstdc++ -o build-cuda/bench_train

card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')
commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)
mkdir -p bench/cuda/results
out=bench/cuda/results/${card}_${commit}.jsonl
echo "card $card, commit $commit -> $out"

# case -> config, batch, seq, lora rank, peer gradient checkpointing
spec() {
    case $1 in
    q05_full) echo "qwen2.5-0.5b 8 2048 0 0" ;;
    q05_lora) echo "qwen2.5-0.5b 8 2048 16 0" ;;
    q7_lora_b2) echo "qwen2.5-7b 2 2048 16 1" ;;
    q7_lora_8k) echo "qwen2.5-7b 1 8192 16 1" ;;
    *) echo "unknown case $1" >&2; exit 2 ;;
    esac
}

for c in $CASES; do
    read -r cfg B T R ckpt <<<"$(spec "$c")"
    conf=bench/cuda/configs/$cfg/config.json
    for side in $SIDES; do
        echo "== $c ($side): $cfg B=$B T=$T lora=$R"
        if [ "$side" = hf ]; then
            extra=""; [ "$ckpt" = 1 ] && extra="--grad-ckpt"
            line=$(python3 bench/cuda/hf_peer.py --config "bench/cuda/configs/$cfg" --case "$c" --lora "$R" \
                --batch "$B" --seq "$T" --steps "$STEPS" --warmup "$WARMUP" $extra $PEER_ARGS | tail -1) || line=""
        else
            line=$(build-cuda/bench_train --config "$conf" --case "$c" --device "$DEVICE" --lora "$R" \
                --batch "$B" --seq "$T" --steps "$STEPS" --warmup "$WARMUP" | tail -1) || line=""
        fi
        [ -n "$line" ] || line="{\"impl\": \"$side\", \"case\": \"$c\", \"failed\": true}"
        echo "$line" | sed "s/^{/{\"card\": \"$card\", \"commit\": \"$commit\", /" | tee -a "$out"
    done
done

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
last = {}
for r in rows:
    last[(r["case"], r["impl"])] = r
print(f"{'case':12} {'hf tok/s':>10} {'hf GiB':>7} {'csft tok/s':>11} {'csft GiB':>8} {'speedup':>8}  target 1.3x")
for case in sorted({c for c, _ in last}):
    h, c = last.get((case, "hf"), {}), last.get((case, "csft"), {})
    ht, ct = h.get("tokens_per_s"), c.get("tokens_per_s")
    hm, cm = h.get("peak_gib"), c.get("mem_used_gib")
    sp = ct / ht if ht and ct else None
    ok = sp is not None and sp >= 1.3 and hm is not None and cm is not None and cm <= hm
    f = lambda x, w, p=1: f"{x:{w}.{p}f}" if isinstance(x, (int, float)) else f"{'-':>{w}}"
    print(f"{case:12} {f(ht,10)} {f(hm,7,2)} {f(ct,11)} {f(cm,8,2)} {f(sp,8,2)}  {'ok' if ok else 'not met'}")
PY
