#!/usr/bin/env bash
# Every shipped example config (examples/*.yaml and examples/*/*.yaml) runs to its first optimizer
# step as written, with only a fixture model (tests/fixtures/example_model: tiny, random, with a tokenizer) and
# fixture data of the example's own format substituted via --set: a config key the trainer refuses,
# a dtype it cannot compute in, a bad schedule... fails here. Also the device key on this build.
set -u
passed=0 failed=0
d=build/tmp_examples
rm -rf $d && mkdir -p $d
m=tests/fixtures/example_model
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
data_for() { # fixture data for the example's train_dataset.format
    case $1 in
    text) echo examples/demo/corpus.jsonl ;;
    messages | sharegpt) echo tests/fixtures/datasets/messages.jsonl ;;
    *) echo tests/fixtures/datasets/alpaca.jsonl ;;
    esac
}
n=0
for ex in examples/*.yaml examples/*/*.yaml; do
    [ -f "$ex" ] || continue
    n=$((n + 1))
    name=$(echo "$ex" | tr '/.' '__')
    fmt=$(sed -nE 's/^  format: *([a-z]+).*/\1/p' "$ex" | head -n 1)
    data=$(data_for "${fmt:-auto}")
    sets=(--set load_checkpoint=$m --set output_dir=$d/$name --set "train_dataset.data_files=[$data]"
        --set runner_config.max_steps=1 --set logging_steps=1 --set save_steps=0)
    grep -q '^eval_dataset:' "$ex" && sets+=(--set "eval_dataset.data_files=[$data]")
    grep -q 'adapter_path: *[^ '"'"'"]' "$ex" && sets+=(--set model.model_config.pet_config.adapter_path=)
    ./csft run --config "$ex" "${sets[@]}" > $d/$name.log 2>&1
    rc=$?
    step=$(sed -nE 's/.*"step": *1[,}].*"loss": *([0-9.eE+-]+).*/\1/p' $d/$name/metrics.jsonl 2>/dev/null | head -n 1)
    if [ $rc -eq 0 ] && [ -n "$step" ]; then
        passed=$((passed + 1))
        echo "$ex: step 1 loss $step"
    else
        tail -5 $d/$name.log
        fail "$ex did not reach its first step (exit $rc)"
    fi
done
[ $n -ge 3 ] || fail "only $n example configs found"
# $1: what, $2: extended regex the output must match; the rest: a csft command that must fail so
refused() {
    local what=$1 want=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -qE "$want"; then
        passed=$((passed + 1))
    else
        printf '%s\n' "$out" | tail -3
        fail "$what (exit $rc)"
    fi
}
ex=examples/qwen2_5_7b_lora.yaml
# device: cuda on a build without CUDA (or without a GPU) fails before loading anything, naming the key
refused "--device cuda on this build" \
    'device: cuda: device "cuda": (this csft was built without CUDA|.*no CUDA|.*GPU)' \
    ./csft finetune --config $ex --set load_checkpoint=$m --set output_dir=$d/dev --device cuda
# compute_dtype: bfloat16 on the CPU: a clear error naming both keys, not a failure at model load
refused "compute_dtype bfloat16 on cpu" 'compute_dtype: bfloat16 needs bf16 GEMMs, which only device: cuda has' \
    ./csft finetune --config $ex --set load_checkpoint=$m --set output_dir=$d/dev \
    --set model.model_config.compute_dtype=bfloat16
# an unknown device is refused with the choices
refused "--device tpu" 'expected one of cpu, cuda, cuda-bf16' \
    ./csft eval --model $m --data tests/fixtures/datasets/alpaca.jsonl --device tpu
echo "examples: $passed passed, $failed failed"
[ $failed -eq 0 ]
