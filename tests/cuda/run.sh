#!/usr/bin/env bash
# make test-cuda: runs the CUDA parity binary ($1); when it found a device, also runs
# `csft reference-check --device cuda` (fp32 GEMMs) on every fixture model. Without a GPU both
# skip with a message and exit 0. Exit status is non-zero if anything failed.
set -u
out=$("$1" 2>&1); rc=$?
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -q '^cuda_parity: skipped'; then
    echo "test-cuda: skipped (no CUDA device): reference-check --device cuda not run"
    exit 0
fi
status=$rc
for fx in tests/fixtures/hf/*/; do
    [ -f "$fx/reference.json" ] || continue
    if ./csft reference-check --device cuda "$fx" > /tmp/csft_cuda_refcheck.$$ 2>&1; then
        echo "reference-check --device cuda $fx: ok"
    else
        status=1; echo "reference-check --device cuda $fx: FAILED"; cat /tmp/csft_cuda_refcheck.$$
    fi
    rm -f /tmp/csft_cuda_refcheck.$$
done
[ $status -eq 0 ] && echo "test-cuda: passed" || echo "test-cuda: FAILED"
exit $status
