#!/usr/bin/env bash
# Builds the bench binaries into build/bench (used by run.sh; handy alone).
set -eu
cd "$(dirname "$0")/.."
mkdir -p build/bench
make -s build/libcsft.a
CFLAGS="-O2 -march=native -g -std=c11 -Wall -Wextra -Werror -fopenmp -D_GNU_SOURCE -Isrc"
LIBS="-lcjson -lyaml -ldnnl -lutf8proc -lpcre2-8 -lsnappy -lzstd -lz -lm"
gcc $CFLAGS -o build/bench/bench_train bench/bench_train.c build/libcsft.a $LIBS
gcc -O2 -march=native -ffp-contract=fast -fopenmp -o build/bench/fma_peak bench/fma_peak.c
if [ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ]; then
    gcc -O2 -march=native -fopenmp -o build/bench/gemm_bench bench/gemm_bench.c -ldnnl -lopenblas 2>/dev/null || true
fi
for b in attn_bench bf16_bench report_bench; do
    gcc $CFLAGS -o build/bench/$b bench/$b.c build/libcsft.a $LIBS
done
