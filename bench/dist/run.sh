#!/usr/bin/env bash
# Scaling of data-parallel training, 2 ranks vs 1 (each 1 OpenMP thread), small shape
# (hidden 512, 8 layers, heads 8/2, ffn 1376, vocab 32000, seq 256), full fine-tuning.
# Needs `make` first (links build/libcsft.a). Results are recorded in bench/dist/RESULTS.md.
set -eu
cd "$(dirname "$0")/../.."
flags="-O2 -march=native -g -std=c11 -Wall -Wextra -Werror -fopenmp -D_GNU_SOURCE -Isrc $(pkg-config --cflags ompi-c)"
libs="-lcjson -lyaml -ldnnl -lutf8proc -lpcre2-8 -lsnappy -lzstd -lz -lm $(pkg-config --libs ompi-c)"
mkdir -p build/bench
cc $flags -o build/bench/bench_dist bench/dist/bench_dist.c build/libcsft.a $libs
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rows=${ROWS:-1} steps=${STEPS:-4}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc --all) cores"
./build/bench/bench_dist --rows "$rows" --steps "$steps"
for cfg in "--overlap 0" "--overlap 1" "--overlap 1 --zero 1"; do
    mpirun -np 2 --bind-to core ./build/bench/bench_dist --rows "$rows" --steps "$steps" $cfg
done
