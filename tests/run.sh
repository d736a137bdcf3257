#!/usr/bin/env bash
# Runs every test binary in $1, every tests/test_*.sh script (given $1; e.g. the mpirun tests)
# and the fixture checks, sums the "N passed, N failed[, N skipped]" lines, and ends with the total.
# Exit status is non-zero if anything failed or a binary crashed.
set -u
dir=$1
passed=0 failed=0 skipped=0 status=0
for t in "$dir"/test_* tests/test_*.sh; do
    case $t in
    *.sh) [ -f "$t" ] || continue; out=$(bash "$t" "$dir" 2>&1); rc=$? ;;
    *) [ -x "$t" ] || continue; out=$("$t" 2>&1); rc=$? ;;
    esac
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' | tail -1)
    if [ -z "$line" ] || [ $rc -ne 0 ]; then
        printf '%s\n' "$out" | tail -40
    fi
    if [ -z "$line" ]; then
        echo "$(basename "$t"): crashed or printed no summary (exit $rc)"
        failed=$((failed + 1)); status=1; continue
    fi
    echo "$line"
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed(, .*)?$/\1/')
    s=0; case $line in *skipped) s=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped$/\1/') ;; esac
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    [ $rc -ne 0 ] && status=1
done
# csft reference-check on every fixture model shipped with the tests.
for fx in tests/fixtures/hf/*/; do
    [ -f "$fx/reference.json" ] || continue
    if ./csft reference-check "$fx" > /tmp/csft_refcheck.$$ 2>&1; then
        passed=$((passed + 1)); echo "reference-check $fx: ok"
    else
        failed=$((failed + 1)); status=1; echo "reference-check $fx: FAILED"; cat /tmp/csft_refcheck.$$
    fi
    rm -f /tmp/csft_refcheck.$$
done
echo "total: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || status=1
exit $status
