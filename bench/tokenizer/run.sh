#!/usr/bin/env bash
# Tokenizer benchmark: csft vs Hugging Face tokenizers (npm "tokenizers", the Rust library's
# official Node binding) in the same run, on the same ~8 MB mixed-text corpus, one core each
# (documents encoded one after another). Reports load time, MB/s of each, the ratio, and whether
# both produced identical ids (hash of every id). Usage: bench/tokenizer/run.sh [TOKENIZER_DIR...]
# (default: the Qwen fixture, plus Llama 3, Gemma 3 and DeepSeek-V3 from ../shared when present).
# Needs node + npm.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${CSFT_BENCH_DIR:-/tmp/csft-bench-tok}
mb=${CORPUS_MB:-8}
mkdir -p "$work"
cd "$root"
make -s build/libcsft.a
cc -O2 -march=native -std=c11 -D_GNU_SOURCE -Isrc bench/tokenizer/bench_tokenizer.c build/libcsft.a \
    -o "$work/bench_tokenizer" -lcjson -lutf8proc -lpcre2-8 -lm -fopenmp
if [ ! -d "$work/node_modules/tokenizers" ]; then
    (cd "$work" && npm install --no-audit --no-fund --silent tokenizers >/dev/null 2>&1) ||
        echo "npm install tokenizers failed: HF numbers will be missing" >&2
fi
corpus="$work/corpus.jsonl"
[ -s "$corpus" ] || node bench/tokenizer/make_corpus.js "$corpus" "$mb"

dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
    dirs=(tests/fixtures/tokenizer/qwen)
    for t in llama3 gemma3 deepseek_v3; do # Meta / Google / DeepSeek files: read in ../shared only
        [ -f ../shared/fixtures/tokenizer/$t/tokenizer.json ] && dirs+=(../shared/fixtures/tokenizer/$t)
    done
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for d in "${dirs[@]}"; do
    echo "== $d"
    ours=$("$work/bench_tokenizer" "$d" "$corpus" 3)
    echo "$ours"
    hf=""
    if [ -d "$work/node_modules/tokenizers" ]; then
        hf=$(NODE_PATH="$work/node_modules" node bench/tokenizer/bench_hf.js "$d/tokenizer.json" "$corpus" 2)
        echo "$hf"
    fi
    node -e '
        const a = JSON.parse(process.argv[1]), b = process.argv[2] ? JSON.parse(process.argv[2]) : null;
        let s = `csft ${a.mb_per_s} MB/s wall, ${a.mb_per_s_cpu} MB/s per CPU-second (load ${a.load_s} s wall, ${a.load_cpu_s} s CPU)`;
        if (b) s += `\nHF   ${b.mb_per_s} MB/s wall, ${b.mb_per_s_cpu} MB/s per CPU-second (load ${b.load_s} s)` +
            `\nratio ${(a.mb_per_s / b.mb_per_s).toFixed(1)}x wall, ${(a.mb_per_s_cpu / b.mb_per_s_cpu).toFixed(1)}x CPU; ` +
            `ids ${a.hash === b.hash && a.ids === b.ids ? "identical" : "DIFFER"} (${a.ids} ids)`;
        console.log(s);' "$ours" "$hf"
done
