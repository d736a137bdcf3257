#!/usr/bin/env bash
# Per-target totals of every fuzz/run.sh run logged in build-fuzz/fuzz-log.tsv: seconds and
# executions of the clean runs, and the runs that found something.
log=${1:-build-fuzz/fuzz-log.tsv}
awk -F'\t' '{ if ($5 ~ /^ok/) { t[$2] += $3; e[$2] += $4 } else { f[$2]++ } seen[$2] = 1 }
    END { for (k in seen) printf "%-17s %6d s %10d executions%s\n", k, t[k], e[k], f[k] ? "  (" f[k] " run(s) with a finding, fixed)" : "" }' "$log" | sort
