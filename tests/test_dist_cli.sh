#!/usr/bin/env bash
# The training command under mpirun (run by tests/run.sh with the test binary folder as $1):
# `mpirun -np 2 csft finetune` with batch 1 per rank gives the same losses as one process with
# batch 2 (the qwen2-tiny fixture batches as tokenized records) at ZeRO stages 0-3; a
# checkpoint written by 2 ZeRO-1 ranks resumes on 1 process with the same losses; a world
# size that does not match data_parallel fails clearly. Skips without mpirun.
set -u
if ! command -v mpirun > /dev/null; then
    echo "test_dist_cli.sh: mpirun not found: MPI tests skipped"
    echo "dist_cli: 0 passed, 0 failed"
    exit 0
fi
. tests/dist_lib.sh
mpi="mpirun -np 2 --oversubscribe -x ASAN_OPTIONS -x CSFT_PROGRESS"
work=build/tmp_dist_cli
rm -rf "$work" && mkdir -p "$work"
passed=0 failed=0

# reference.json's three batches (B=2 each) as six JSONL records, in order
if ! fixture_records tests/fixtures/hf/qwen2-tiny "$work/batches.jsonl"; then
    echo "could not extract the fixture batches"
    echo "dist_cli: 0 passed, 1 failed"
    exit 1
fi
write_run_yaml "$work/run.yaml" tests/fixtures/hf/qwen2-tiny "$work/batches.jsonl" 1 2
check() { # $1: description, $2: exit status of the run, $3: 1 if the extra condition holds
    if [ "$2" -eq 0 ] && [ "$3" -eq 1 ]; then
        passed=$((passed + 1))
    else
        echo "FAIL: $1 (exit $2)"
        failed=$((failed + 1))
    fi
}

./csft finetune --config "$work/run.yaml" --set output_dir=$work/one --set runner_config.batch_size=2 \
    > "$work/one.log" 2>&1
for zero in 0 1 2 3; do
    $mpi ./csft finetune --config "$work/run.yaml" --set output_dir=$work/two_$zero \
        --set parallel_config.zero_stage=$zero > "$work/two_$zero.log" 2>&1
    rc=$?
    ok=0
    same_losses "$work/one" "$work/two_$zero" && ok=1
    [ $ok -eq 1 ] || { tail -5 "$work/two_$zero.log"; show_losses "$work/one" "$work/two_$zero"; }
    check "mpirun -np 2 csft finetune, zero_stage $zero, equals one process with twice the batch" $rc $ok
done

mkdir -p "$work/resumed/checkpoints"
cp -r "$work/two_1/checkpoints/checkpoint-3" "$work/resumed/checkpoints/" && cp "$work/two_1/metrics.jsonl" "$work/resumed/"
./csft finetune --config "$work/run.yaml" --set output_dir=$work/resumed --set runner_config.batch_size=2 \
    --set resume_training=true > "$work/resumed.log" 2>&1
rc=$?
ok=0
same_losses "$work/one" "$work/resumed" && ok=1
[ $ok -eq 1 ] || tail -5 "$work/resumed.log"
check "a 2-rank ZeRO-1 checkpoint resumes on 1 process with the same losses" $rc $ok

$mpi ./csft finetune --config "$work/run.yaml" --set output_dir=$work/bad --set parallel_config.data_parallel=4 \
    > "$work/bad.log" 2>&1
rc=$?
ok=0
[ $rc -ne 0 ] && grep -q 'data_parallel is 4 but the job runs 2 ranks' "$work/bad.log" && ok=1
[ $ok -eq 1 ] || tail -5 "$work/bad.log"
check "data_parallel 4 on 2 ranks fails with a clear message" 0 $ok

# the process grid: a product that is not the world size names both; pipeline_stage is refused
bad_grid() { # $1: description, $2: expected message, then --set overrides
    local what=$1 want=$2
    shift 2
    $mpi ./csft finetune --config "$work/run.yaml" --set output_dir=$work/bad "$@" > "$work/bad.log" 2>&1
    local rc=$? ok=0
    [ $rc -ne 0 ] && grep -q "$want" "$work/bad.log" && ok=1
    [ $ok -eq 1 ] || tail -5 "$work/bad.log"
    check "$what" 0 $ok
}
bad_grid "data_parallel 2 x model_parallel 2 on 2 ranks fails naming both" \
    'data_parallel 2 x model_parallel 2 = 4 ranks, but the job runs 2 ranks' \
    --set parallel_config.data_parallel=2 --set parallel_config.model_parallel=2
bad_grid "model_parallel 3 on 2 ranks fails clearly" 'model_parallel is 3 but the job runs 2 ranks' \
    --set parallel_config.model_parallel=3
bad_grid "pipeline_stage 2 is refused" 'pipeline_stage: 2 is not supported yet' --set parallel_config.pipeline_stage=2

echo "dist_cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
