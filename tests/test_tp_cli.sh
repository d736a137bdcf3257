#!/usr/bin/env bash
# `csft finetune` with parallel_config.model_parallel under mpirun (run by tests/run.sh):
# model_parallel 2 (full fine-tuning and LoRA) and data_parallel 2 x model_parallel 2 (ZeRO 0-3) give the
# losses of one process with the same global batch; a tensor-parallel checkpoint (every rank
# writes its slices into the one-process layout) resumes on one process, and a one-process checkpoint resumes under
# model_parallel 2, with the same losses; a model that cannot be split 3 ways fails naming the
# sizes and the allowed values. Skips without mpirun.
set -u
if ! command -v mpirun > /dev/null; then
    echo "test_tp_cli.sh: mpirun not found: MPI tests skipped"
    echo "tp_cli: 0 passed, 0 failed"
    exit 0
fi
. tests/dist_lib.sh
mpi="mpirun --oversubscribe -x ASAN_OPTIONS -x CSFT_PROGRESS"
work=build/tmp_tp_cli
rm -rf "$work" && mkdir -p "$work"
passed=0 failed=0

if ! fixture_records tests/fixtures/hf/llama-tiny "$work/batches.jsonl"; then
    echo "could not extract the fixture batches"
    echo "tp_cli: 0 passed, 1 failed"
    exit 1
fi
write_run_yaml "$work/run.yaml" tests/fixtures/hf/llama-tiny "$work/batches.jsonl" 2 2
lora="--set model.model_config.pet_config.pet_type=lora --set model.model_config.pet_config.lora_rank=4"
lora="$lora --set model.model_config.pet_config.target_modules=[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]"
check() { # $1: description, $2: exit status, $3: 1 if the extra condition holds
    if [ "$2" -eq 0 ] && [ "$3" -eq 1 ]; then
        passed=$((passed + 1))
    else
        echo "FAIL: $1 (exit $2)"
        failed=$((failed + 1))
    fi
}
# $1: description, $2: reference run, $3: run dir, $4: launcher + its options, then --set overrides
run_same() {
    local what=$1 one=$2 out=$3 launch=$4
    shift 4
    $launch ./csft finetune --config "$work/run.yaml" --set output_dir=$out "$@" > "$out.log" 2>&1
    local rc=$? ok=0
    same_losses "$one" "$out" && ok=1
    [ $ok -eq 1 ] || { tail -5 "$out.log"; show_losses "$one" "$out"; }
    check "$what" $rc $ok
}

./csft finetune --config "$work/run.yaml" --set output_dir=$work/one > "$work/one.log" 2>&1 || tail -5 "$work/one.log"
./csft finetune --config "$work/run.yaml" --set output_dir=$work/one_lora $lora > "$work/one_lora.log" 2>&1 ||
    tail -5 "$work/one_lora.log"
run_same "model_parallel 2 equals one process (full fine-tuning)" $work/one $work/tp2 "$mpi -np 2" \
    --set parallel_config.model_parallel=2
run_same "model_parallel 2 equals one process (LoRA)" $work/one_lora $work/tp2_lora "$mpi -np 2" \
    --set parallel_config.model_parallel=2 $lora
run_same "data_parallel 2 x model_parallel 2 with batch 1 equals one process with batch 2" $work/one $work/dp2tp2 \
    "$mpi -np 4" --set parallel_config.model_parallel=2 --set runner_config.batch_size=1
run_same "data_parallel 2 x model_parallel 2 with ZeRO-1 equals one process" $work/one $work/dp2tp2_zero1 \
    "$mpi -np 4" --set parallel_config.model_parallel=2 --set runner_config.batch_size=1 \
    --set parallel_config.zero_stage=1
run_same "data_parallel 2 x model_parallel 2 with ZeRO-2 equals one process" $work/one $work/dp2tp2_zero2 \
    "$mpi -np 4" --set parallel_config.model_parallel=2 --set runner_config.batch_size=1 \
    --set parallel_config.zero_stage=2
run_same "data_parallel 2 x model_parallel 2 with ZeRO-3 equals one process" $work/one $work/dp2tp2_zero3 \
    "$mpi -np 4" --set parallel_config.model_parallel=2 --set runner_config.batch_size=1 \
    --set parallel_config.zero_stage=3
run_same "data_parallel 2 x model_parallel 2 with ZeRO-3 equals one process (LoRA)" $work/one_lora \
    $work/dp2tp2_zero3_lora "$mpi -np 4" --set parallel_config.model_parallel=2 --set runner_config.batch_size=1 \
    --set parallel_config.zero_stage=3 $lora
# the final folders hold the same tensors (names, shapes, dtypes: the header) as one process's
for d in tp2 tp2_lora; do
    f=model.safetensors o=one
    [ $d = tp2_lora ] && f=adapter_model.safetensors o=one_lora
    ok=0
    [ -f "$work/$d/$f" ] && [ "$(head -c 8 "$work/$d/$f" | od -An -tu8)" = "$(head -c 8 "$work/$o/$f" | od -An -tu8)" ] &&
        cmp -s <(head -c 4096 "$work/$d/$f" | strings | head -1) <(head -c 4096 "$work/$o/$f" | strings | head -1) && ok=1
    check "$d: final $f has one process's header" 0 $ok
done

# checkpoints: tp2 -> one process, one process -> tp2
for from in tp2 one; do
    to=one launch="" set=""
    [ $from = one ] && to=tp2 launch="$mpi -np 2" set="--set parallel_config.model_parallel=2"
    mkdir -p "$work/resume_$from/checkpoints"
    cp -r "$work/$from/checkpoints/checkpoint-3" "$work/resume_$from/checkpoints/" && cp "$work/$from/metrics.jsonl" "$work/resume_$from/"
    run_same "a checkpoint of $from resumes on $to with the same losses" $work/one $work/resume_$from "$launch" \
        --set resume_training=true $set
done

$mpi -np 3 ./csft finetune --config "$work/run.yaml" --set output_dir=$work/bad --set parallel_config.model_parallel=3 \
    > "$work/bad.log" 2>&1
rc=$? ok=0
[ $rc -ne 0 ] && grep -q 'model_parallel 3 cannot split this model: num_attention_heads 4, intermediate_size 176 and vocab_size 512 must be multiples of it and num_key_value_heads 2 a multiple or a divisor of it; allowed model_parallel: 1, 2, 4' "$work/bad.log" && ok=1
[ $ok -eq 1 ] || tail -5 "$work/bad.log"
check "model_parallel 3 fails naming the sizes and the allowed values" 0 $ok


echo "tp_cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
