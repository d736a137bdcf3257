#!/usr/bin/env bash
# A long local campaign: rotates through the harnesses, SECONDS each per round, ROUNDS rounds,
# one niced fuzzer process at a time (fuzz/run.sh with NICE=19). Per-target totals:
#   awk -F'\t' '{t[$2]+=$3; e[$2]+=$4} END {for (k in t) print k, t[k], e[k]}' build-fuzz/fuzz-log.tsv
#   fuzz/campaign.sh [SECONDS] [ROUNDS] [TARGET...]
set -u
cd "$(dirname "$0")/.."
secs=${1:-300} rounds=${2:-1000}
shift 2 2> /dev/null || shift $#
for r in $(seq "$rounds"); do
    [ -f build-fuzz/STOP ] && break
    NICE=19 bash fuzz/run.sh -t "$secs" "$@"
done
