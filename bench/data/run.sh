#!/usr/bin/env bash
# Data pipeline benchmark (issue 4): 52,000 Alpaca records (tests/fixtures/datasets/alpaca.jsonl
# replicated) read, rendered with the Alpaca prompt, tokenized with the Qwen tokenizer, masked
# and packed into 2048-token rows, via `csft data stats`; then the same with the cache warm.
# Usage: bash bench/data/run.sh [N_RECORDS]   (from the repo root, after `make`)
set -euo pipefail
n=${1:-52000}
tmp=${TMPDIR:-/tmp}/csft_bench_data
rm -rf "$tmp" && mkdir -p "$tmp"
src=tests/fixtures/datasets/alpaca.jsonl
rows=$(wc -l < "$src")
# Replicate the fixture rows to exactly n records (whole copies, then the first rows).
{ for ((i = 0; i < n / rows; i++)); do cat "$src"; done; head -n $((n % rows)) "$src"; } > "$tmp/alpaca52k.jsonl"
cat > "$tmp/run.yaml" <<YAML
load_checkpoint: tests/fixtures/tokenizer/qwen
train_dataset:
  data_files: [$tmp/alpaca52k.jsonl]
  chat_template: alpaca
  seq_length: 2048
  packing: true
  shuffle: true
  cache_dir: $tmp/cache
YAML
echo "records: $(wc -l < "$tmp/alpaca52k.jsonl"), $(du -h "$tmp/alpaca52k.jsonl" | cut -f1); cores: $(nproc)"
t() { local s e; s=$(date +%s.%N); "$@" > "$tmp/out.txt"; e=$(date +%s.%N); echo "$e - $s" | bc; }
cold=$(t ./csft data stats --config "$tmp/run.yaml")
cat "$tmp/out.txt"
warm=$(t ./csft data stats --config "$tmp/run.yaml")
grep -E "cache|time" "$tmp/out.txt"
echo "cold (read + template + tokenize + mask + pack + write cache): ${cold} s wall"
echo "cached rerun (mmap + pack):                                 ${warm} s wall"
