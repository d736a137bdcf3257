#!/usr/bin/env bash
# MindRecord benchmark: the 40 rows of tests/fixtures/mindspore/mindrecord/mf/qwen2_qa (3 int32
# arrays of 513 ids each) replicated to N rows (default 10,000), then timed: `csft data convert
# --to mindrecord` (JSONL -> .mindrecord + .db, default 16 MiB header / 32 MiB pages, one row per
# write call as MindFormers does), `csft data cat` (MindRecord -> JSONL to /dev/null) and
# `csft data stats` (read + the target_ids rule, as training sees it).
# Usage: bash bench/mindrecord/run.sh [N_ROWS]   (from the repo root, after `make`)
set -euo pipefail
n=${1:-10000}
tmp=${TMPDIR:-/tmp}/csft_bench_mindrecord
rm -rf "$tmp" && mkdir -p "$tmp"
./csft data cat tests/fixtures/mindspore/mindrecord/mf/qwen2_qa > "$tmp/one.jsonl"
{ for ((i = 0; i < n / 40; i++)); do cat "$tmp/one.jsonl"; done; head -n $((n % 40)) "$tmp/one.jsonl"; } > "$tmp/rows.jsonl"
TIMEFORMAT='%R s wall, %U s user, %S s sys' # CPU time too: the wall clock of a shared machine varies
echo "rows: $n ($(du -h "$tmp/rows.jsonl" | cut -f1) of JSONL)"
echo -n "convert: "
{ time ./csft data convert --to mindrecord --out "$tmp/rows.mindrecord" "$tmp/rows.jsonl" 2>/dev/null; } 2>&1
echo "on disk: $(du -h "$tmp/rows.mindrecord" | cut -f1) (apparent $(du -h --apparent-size "$tmp/rows.mindrecord" | cut -f1), sparse)"
echo -n "data cat: "
{ time ./csft data cat "$tmp/rows.mindrecord" > /dev/null; } 2>&1
echo -n "data stats: "
{ time ./csft data stats --config /dev/null --set load_checkpoint="$tmp" --set train_dataset.format=tokenized \
    --set train_dataset.seq_length=512 --set "train_dataset.data_files=[$tmp/rows.mindrecord]" > /dev/null; } 2>&1
rm -rf "$tmp"
