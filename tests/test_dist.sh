#!/usr/bin/env bash
# Data-parallel tests under mpirun (run by tests/run.sh with the test binary folder as $1):
# 2, 3 and 4 ranks with a share of the batch each against 1 process with all of it, at every
# ZeRO stage (build/tests/test_dist), and a rank that fails (or is killed) must end the job
# with a message on every rank. Skips without mpirun.
set -u
dir=${1:-build/tests}
if ! command -v mpirun > /dev/null; then
    echo "test_dist.sh: mpirun not found: MPI tests skipped"
    echo "dist_mpirun: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# Under make test-asan: OpenMPI never frees its plugins' allocations (and unloads the plugins,
# so no suppression can name them). Leaks in our code are checked by the plain test_dist run.
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
mpi="mpirun -np 2 --oversubscribe -x ASAN_OPTIONS"
passed=0 failed=0

# parity at dp2, dp3 (uneven shards) and dp4, every ZeRO stage, full and LoRA
for np in 2 3 4; do
    out=$(timeout 400 mpirun -np $np --oversubscribe -x ASAN_OPTIONS "$dir/test_dist" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^dist_mpi: [0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ $rc -eq 0 ] && printf "%s\n" "$line" | grep -q " 0 failed$"; then
        passed=$((passed + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
    else
        printf '%s\n' "$out" | tail -40
        echo "mpirun -np $np test_dist: FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
done

out=$(timeout 120 $mpi "$dir/test_dist" --abort-test 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q 'csft rank 1/2: error: deliberate failure of rank 1' &&
    printf '%s\n' "$out" | grep -q 'csft rank 0/2: stopped by the launcher: another rank failed'; then
    passed=$((passed + 1))
else
    printf '%s\n' "$out" | tail -20
    echo "mpirun -np 2 test_dist --abort-test: expected a failing job with a message from both ranks (exit $rc)"
    failed=$((failed + 1))
fi
out=$(timeout 120 $mpi "$dir/test_dist" --die-test 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q 'csft rank 0/2: stopped by the launcher: another rank failed'; then
    passed=$((passed + 1))
else
    printf '%s\n' "$out" | tail -20
    echo "mpirun -np 2 test_dist --die-test: expected a failing job with a message from rank 0 (exit $rc)"
    failed=$((failed + 1))
fi
echo "dist_mpirun: $passed passed, $failed failed"
[ $failed -eq 0 ]
