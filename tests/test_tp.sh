#!/usr/bin/env bash
# Tensor-parallel tests under mpirun (run by tests/run.sh with the test binary folder as $1):
# tp2 (key/value heads split), tp4 (the fixtures' 2 key/value heads replicated on 2 ranks each)
# and dp2 x tp2, each against one process with the whole global batch (build/tests/test_tp).
# Skips without mpirun.
set -u
dir=${1:-build/tests}
if ! command -v mpirun > /dev/null; then
    echo "test_tp.sh: mpirun not found: MPI tests skipped"
    echo "tp_mpirun: 0 passed, 0 failed"
    exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
passed=0 failed=0
for grid in "2 2" "4 4" "4 2"; do
    set -- $grid
    np=$1 tp=$2
    out=$(timeout 600 mpirun -np "$np" --oversubscribe -x ASAN_OPTIONS "$dir/test_tp" --tp "$tp" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^tp_mpi_[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)
    printf '%s\n' "$out" | grep -E '^  ' || true
    if [ $rc -eq 0 ] && printf "%s\n" "$line" | grep -q " 0 failed$"; then
        passed=$((passed + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
    else
        printf '%s\n' "$out" | tail -40
        echo "mpirun -np $np test_tp --tp $tp: FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
done
echo "tp_mpirun: $passed passed, $failed failed"
[ $failed -eq 0 ]
