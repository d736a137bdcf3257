#!/usr/bin/env bash
# bench/run.sh (`make bench`): csft vs a plain PyTorch peer (bench/torch_peer.py) on the same
# Qwen2-style shapes, batch, sequence and threads, in one run; prints tokens/s, the ratio,
# achieved GFLOP/s (model FLOPs incl. attention), % of the measured FP32 peak, peak RSS.
# Env: BENCH_THREADS (2), BENCH_STEPS (3 timed after 1 warmup), BENCH_ONLY (substring of
# the config names to run), BENCH_LONG=1 adds sequence 4096, BENCH_NO_TORCH=1 skips the peer.
# BENCH_PEAK=GF/s overrides the peak measured at start (a busy machine measures it low).
# Rows ending -rc add csft's --recompute, -bf16 its bf16 frozen base; the peer row is shared.
# The peer runs on OpenBLAS (installed here if missing); a peer on any other BLAS (e.g. the
# reference one) gets "unfair" in the ratio column instead of a number.
set -eu
cd "$(dirname "$0")/.."
THREADS=${BENCH_THREADS:-2}
STEPS=${BENCH_STEPS:-3}
export OMP_NUM_THREADS=$THREADS OMP_PROC_BIND=${OMP_PROC_BIND:-close}
bash bench/build.sh

PY=/usr/bin/python3
torch_ok=0
if [ "${BENCH_NO_TORCH:-0}" != 1 ]; then
    if ! $PY -c 'import torch' 2>/dev/null; then
        echo "bench: installing Debian's python3-torch for the peer..." >&2
        (apt-get install -y python3-torch || sudo -n apt-get install -y python3-torch) >/dev/null 2>&1 || true
    fi
    if $PY -c 'import torch' 2>/dev/null; then torch_ok=1; else echo "bench: python3-torch unavailable: skipping the PyTorch peer" >&2; fi
fi
# The peer's GEMMs must run on an optimized BLAS: Debian's torch links libblas.so.3, which on a
# fresh machine is the reference BLAS (~30x slower). Install OpenBLAS and point the peer's
# libblas.so.3 at it (LD_LIBRARY_PATH wins over the alternatives link); the peer reports what it
# ran on (blas=, from /proc/self/maps) and no ratio is printed against anything but OpenBLAS.
OPENBLAS_DIR=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/openblas-pthread
if [ $torch_ok = 1 ] && [ ! -f "$OPENBLAS_DIR/libblas.so.3" ]; then
    echo "bench: installing Debian's libopenblas0-pthread for the peer..." >&2
    (apt-get install -y libopenblas0-pthread || sudo -n apt-get install -y libopenblas0-pthread) >/dev/null 2>&1 || true
fi
if [ -f "$OPENBLAS_DIR/libblas.so.3" ]; then
    PEER_ENV="LD_LIBRARY_PATH=$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} OPENBLAS_NUM_THREADS=$THREADS"
else
    PEER_ENV="OPENBLAS_NUM_THREADS=$THREADS"
    echo "bench: OpenBLAS not found in $OPENBLAS_DIR: the peer will say which BLAS it used" >&2
fi

peak=$(build/bench/fma_peak | sed -E 's/.*peak_gflops=([0-9.]+).*/\1/')
echo "FP32 FMA peak, $THREADS threads: $peak GFLOP/s measured now (bench/fma_peak.c); load: $(uptime | sed 's/.*load/load/')"
if [ -n "${BENCH_PEAK:-}" ]; then peak=$BENCH_PEAK; echo "using BENCH_PEAK=$peak GFLOP/s for % of peak"; fi

# name | model args | batch | seq | lora rank | csft-only options (the peer runs the same model without them)
S="--hidden 512 --layers 8 --heads 8 --kv-heads 2 --ffn 1376 --vocab 32000"
Q="--hidden 896 --layers 24 --heads 14 --kv-heads 2 --ffn 4864 --vocab 151936 --tied"
configs="small-full|$S|4|256|0|
small-lora|$S|4|256|16|
0.5B-full-1024|$Q|1|1024|0|
0.5B-full-1024-rc|$Q|1|1024|0|--recompute
0.5B-lora-1024|$Q|1|1024|16|
0.5B-lora-1024-bf16|$Q|1|1024|16|--bf16-base --recompute"
if [ "${BENCH_LONG:-0}" = 1 ]; then
    configs="$configs
0.5B-full-4096-rc|$Q|1|4096|0|--recompute
0.5B-lora-4096|$Q|1|4096|16|"
fi

# Model FLOPs of one training step: forward 2*N*(linear params + lm head) + causal attention
# 4*N*H*HS*(T+1)/2 per layer; full = 3x forward; LoRA = 2x the frozen linears (no weight
# gradients) + 3x attention + the adapters' 6*N*R*(in+out).
flops() { # args: hidden layers heads kvh ffn vocab B T R
    awk -v C="$1" -v L="$2" -v H="$3" -v KVH="$4" -v F="$5" -v V="$6" -v B="$7" -v T="$8" -v R="$9" 'BEGIN {
        HS = C / H; N = B * T
        lin = L * (C * H * HS + 2 * C * KVH * HS + H * HS * C + 3 * C * F) + C * V
        att = L * 4 * H * HS * (T + 1) / 2
        if (R == 0) f = 3 * (2 * N * lin + N * att)
        else f = 2 * 2 * N * lin + 3 * N * att + 6 * N * R * L * ((C + H * HS) + 2 * (C + KVH * HS) + (H * HS + C))
        printf "%.6e", f }'
}
arg() { echo "$1" | sed -E "s/.*--$2 ([0-9]+).*/\1/"; }

printf '\n%-20s %10s %10s %7s %9s %9s %8s %9s %9s %6s\n' config csft_tok/s torch_tok/s ratio csft_GF/s torch_GF/s csft_%pk csft_MiB torch_MiB mem_%
# Rows whose model, batch and sequence match the previous row reuse its peer measurement.
prev_key="" t=""
echo "$configs" | while IFS='|' read -r name margs B T R extra; do
    case "$name" in *${BENCH_ONLY:-}*) ;; *) continue ;; esac
    lora=""; [ "$R" != 0 ] && lora="--lora $R"
    c=$(build/bench/bench_train $margs --batch "$B" --seq "$T" $lora $extra --steps "$STEPS" 2>/dev/null | grep impl= || echo "impl=csft failed")
    key="$margs|$B|$T|$R"
    if [ "$key" != "$prev_key" ]; then
        t="impl=torch step_s=0 tokens_per_s=0 peak_rss_mib=0"
        if [ $torch_ok = 1 ]; then
            t=$(env $PEER_ENV $PY bench/torch_peer.py $margs --batch "$B" --seq "$T" --lora "$R" --steps "$STEPS" \
                --threads "$THREADS" 2>/dev/null | grep impl= || echo "$t")
            blas=$(echo "$t" | sed -nE 's/.*blas=([a-z]+) blas_path=([^ ]*).*/\1 (\2)/p')
            [ -n "$blas" ] && echo "  peer $name: torch $(echo "$t" | sed -nE 's/.*torch=([^ ]+).*/\1/p') on BLAS: $blas" >&2
        fi
        prev_key=$key
    fi
    f=$(flops "$(arg "$margs" hidden)" "$(arg "$margs" layers)" "$(arg "$margs" heads)" "$(arg "$margs" kv-heads)" \
        "$(arg "$margs" ffn)" "$(arg "$margs" vocab)" "$B" "$T" "$R")
    awk -v name="$name" -v c="$c" -v t="$t" -v f="$f" -v peak="$peak" 'function get(s, k,   a) {
            match(s, k "=[0-9.]+"); return substr(s, RSTART + length(k) + 1, RLENGTH - length(k) - 1) + 0 }
        BEGIN {
            cs = get(c, "step_s"); ts = get(t, "step_s")
            cg = cs > 0 ? f / cs / 1e9 : 0; tg = ts > 0 ? f / ts / 1e9 : 0
            ct = get(c, "tokens_per_s"); tt = get(t, "tokens_per_s")
            fair = t ~ /blas=openblas /
            r = (tt > 0 && ct > 0 && fair) ? sprintf("%.2fx", ct / tt) : (tt > 0 && !fair ? "unfair" : "-")
            cm = get(c, "peak_rss_mib"); tm = get(t, "peak_rss_mib")
            mr = (tm > 0) ? sprintf("%.0f%%", 100 * cm / tm) : "-"
            printf("%-20s %10.1f %10.1f %7s %9.1f %9.1f %7.1f%% %9.0f %9.0f %6s\n", name, ct, tt, r, cg, tg, 100 * cg / peak,
                cm, tm, mr) }'
done
