#!/usr/bin/env bash
# Data-parallel step time, communication and memory per ZeRO stage (bench/dist/RESULTS.md).
# Scaling (default): small shape (hidden 512, 8 layers, heads 8/2, ffn 1376, vocab 32000, seq
# 256), full fine-tuning, 1 rank vs 2 ranks at ZeRO 0-3. MEMORY=1: the Qwen2.5-0.5B shape at
# 1, 2, 4 ranks (ZeRO-3) and Qwen2.5-7B layer shapes with 2 layers on 4 ranks (dp2 x tp2, ZeRO-3).
# Needs `make` first (links build/libcsft.a).
set -eu
cd "$(dirname "$0")/../.."
flags="-O2 -march=native -g -std=c11 -Wall -Wextra -Werror -fopenmp -D_GNU_SOURCE -Isrc $(pkg-config --cflags ompi-c)"
libs="-lcjson -lyaml -ldnnl -lutf8proc -lpcre2-8 -lsnappy -lzstd -lz -lm $(pkg-config --libs ompi-c)"
mkdir -p build/bench
cc $flags -o build/bench/bench_dist bench/dist/bench_dist.c build/libcsft.a $libs
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rows=${ROWS:-1} steps=${STEPS:-4}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc --all) cores"
if [ "${MEMORY:-0}" = 1 ]; then
    ./build/bench/bench_dist --preset qwen2.5-0.5b --seq 64 --steps 1 --zero 3
    for n in 2 4; do
        mpirun -np $n --oversubscribe ./build/bench/bench_dist --preset qwen2.5-0.5b --seq 64 --steps 1 --zero 3
    done
    # Qwen2.5-7B's layer shapes, 2 layers, 4 ranks as data_parallel 2 x model_parallel 2 at ZeRO-3.
    # VOCAB=152064 is the real vocabulary: ~41 GB over the 4 ranks, more than a 24 GiB machine;
    # the default 32000 keeps every decoder-layer shape and fits.
    mpirun -np 4 --oversubscribe ./build/bench/bench_dist --preset qwen2.5-7b --layers 2 --vocab "${VOCAB:-32000}" \
        --tp 2 --seq 64 --steps 1 --zero 3
    exit 0
fi
./build/bench/bench_dist --rows "$rows" --steps "$steps"
for cfg in "--overlap 0" "--overlap 1" "--overlap 1 --zero 1" "--zero 2" "--zero 3"; do
    mpirun -np 2 --bind-to core ./build/bench/bench_dist --rows "$rows" --steps "$steps" $cfg
done
# tensor parallelism: 2 ranks split every layer of one rank's rows (strong scaling: tok/s
# against the 1-rank line), then dp2 x tp2 at ZeRO-3 (4 ranks on this machine's cores)
mpirun -np 2 --bind-to core ./build/bench/bench_dist --rows "$rows" --steps "$steps" --tp 2
mpirun -np 4 --oversubscribe ./build/bench/bench_dist --rows "$rows" --steps "$steps" --tp 2 --zero 3
