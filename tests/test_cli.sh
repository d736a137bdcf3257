#!/usr/bin/env bash
# The paths users reach through the commands, with numbers checked: csft run / csft train give
# the same trajectory as each other; periodic eval logs the loss csft eval gives on the saved
# model; SIGTERM saves the last state and the run resumes from it; on_nonfinite skip and stop;
# csft predict with sampling (seeded, reproducible, not greedy) and --input-file; save_dtype
# bfloat16 adapters; csft merge keeping a bf16 base's dtype; the adapter_path override note.
set -u
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
d=build/tmp_cli
rm -rf $d && mkdir -p $d
m=tests/fixtures/example_model
alpaca=tests/fixtures/datasets/alpaca.jsonl
common=(--set load_checkpoint=$m --set "train_dataset.data_files=[$alpaca]" --set train_dataset.chat_template=alpaca
    --set train_dataset.seq_length=256 --set logging_steps=1 --set save_steps=0 --set tensorboard=false)
losses() { sed -nE 's/^\{"step":([0-9]+),"epoch":[^,]*,"loss":([^,]*),.*/\1 \2/p' "$1"; }
dtypes() { head -c 4000 "$1" | grep -a -o '"dtype":"[A-Z0-9]*"' | sort -u | tr '\n' ' '; }

# 1. csft train = csft run with run_mode: train (same seed, same steps, same losses)
cat > $d/pre.yaml <<YAML
run_mode: train
load_checkpoint: $m
train_dataset: {data_files: [examples/demo/corpus.jsonl], format: text, seq_length: 64, packing: true}
runner_config: {batch_size: 2, max_steps: 3}
logging_steps: 1
save_steps: 0
YAML
./csft run --config $d/pre.yaml --set output_dir=$d/run > $d/run.log 2>&1 || fail "csft run: $(tail -2 $d/run.log)"
./csft train --config $d/pre.yaml --set run_mode=finetune --set output_dir=$d/train > $d/train.log 2>&1 ||
    fail "csft train: $(tail -2 $d/train.log)"
a=$(losses $d/run/metrics.jsonl) b=$(losses $d/train/metrics.jsonl)
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$(echo "$a" | wc -l)" -eq 3 ] && [ -f $d/run/model.safetensors ]; then ok; else
    fail "csft run vs csft train trajectories: [$a] vs [$b]"; fi
# csft run with run_mode: eval prints the same loss as csft eval
e1=$(./csft run --config $d/pre.yaml --set run_mode=eval --set load_checkpoint=$d/run \
    --set "eval_dataset.data_files=[examples/demo/corpus.jsonl]" --set eval_dataset.format=text \
    --set eval_dataset.seq_length=64 --set eval_dataset.packing=true 2>/dev/null | tail -1)
e2=$(./csft eval --model $d/run --data examples/demo/corpus.jsonl --set eval_dataset.format=text \
    --set eval_dataset.seq_length=64 --set eval_dataset.packing=true 2>/dev/null | tail -1)
if echo "$e1" | grep -q '"eval_loss": [0-9]' && [ "$e1" = "$e2" ]; then ok; else fail "run_mode eval [$e1] vs csft eval [$e2]"; fi

# 2. periodic eval: eval lines at steps 2 and 4; the last equals csft eval of the final model
./csft finetune "${common[@]}" --set output_dir=$d/ev --set runner_config.max_steps=4 --set eval_steps=2 \
    --set "eval_dataset.data_files=[$alpaca]" --set eval_dataset.chat_template=alpaca --set eval_dataset.seq_length=256 \
    --set eval_dataset.packing=false > $d/ev.log 2>&1 || fail "periodic eval run: $(tail -2 $d/ev.log)"
evsteps=$(sed -nE 's/^\{"step":([0-9]+),"eval_loss".*/\1/p' $d/ev/metrics.jsonl | tr '\n' ' ')
last=$(sed -nE 's/^\{"step":4,"eval_loss":([0-9.]+).*/\1/p' $d/ev/metrics.jsonl)
ce=$(./csft eval --model $d/ev --data $alpaca --set eval_dataset.chat_template=alpaca --set eval_dataset.seq_length=256 \
    --set eval_dataset.packing=false 2>/dev/null | sed -nE 's/.*"eval_loss": ([0-9.]+).*/\1/p')
if [ "$evsteps" = "2 4 " ] && [ -n "$last" ] && awk -v a="$last" -v b="$ce" 'BEGIN { exit !(a - b < 1e-5 && b - a < 1e-5) }'; then
    ok; else fail "periodic eval: steps [$evsteps], step-4 eval $last vs csft eval $ce"; fi

# 3. SIGTERM: the last state is saved as a checkpoint and the run resumes from it
./csft finetune "${common[@]}" --set output_dir=$d/sig --set runner_config.max_steps=100000 > $d/sig.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    [ "$(cat $d/sig/metrics.jsonl 2>/dev/null | wc -l)" -ge 3 ] && break
    sleep 0.1
done
kill -TERM $pid
wait $pid
rc=$?
n=$(sed -nE 's/.*stopped by a signal after step ([0-9]+).*/\1/p' $d/sig.log)
if [ $rc -ne 0 ] && [ -n "$n" ] && [ -f $d/sig/checkpoints/checkpoint-$n/trainer_state.json ] &&
    grep -q "saved last-state checkpoint" $d/sig.log; then ok; else fail "SIGTERM: exit $rc, step [$n]: $(tail -3 $d/sig.log)"; fi
if [ -n "$n" ]; then
    ./csft finetune "${common[@]}" --set output_dir=$d/sig --set runner_config.max_steps=$((n + 2)) \
        --set resume_training=true > $d/sig2.log 2>&1
    rc=$?
    steps=$(losses $d/sig/metrics.jsonl | awk '{print $1}' | tail -2 | tr '\n' ' ')
    if [ $rc -eq 0 ] && grep -q "resuming from $d/sig/checkpoints/checkpoint-$n" $d/sig2.log &&
        [ "$steps" = "$((n + 1)) $((n + 2)) " ]; then ok; else fail "resume after SIGTERM: exit $rc, steps [$steps]"; fi
fi

# 4. on_nonfinite: an absurd learning rate makes step 2 non-finite
nf=("${common[@]}" --set runner_config.max_steps=4 --set optimizer.learning_rate=1e30 --set max_grad_norm=0)
./csft finetune "${nf[@]}" --set output_dir=$d/nfstop --set on_nonfinite=stop > $d/nfstop.log 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "step 2: non-finite loss" $d/nfstop.log && [ ! -d $d/nfstop/checkpoints/checkpoint-2 ]; then ok; else
    fail "on_nonfinite stop: exit $rc: $(tail -2 $d/nfstop.log)"; fi
./csft finetune "${nf[@]}" --set output_dir=$d/nfskip --set on_nonfinite=skip > $d/nfskip.log 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c 'skipped: non-finite' $d/nfskip.log)" -eq 3 ] &&
    tail -1 $d/nfskip/metrics.jsonl | grep -q '"skipped_steps":3'; then ok; else
    fail "on_nonfinite skip: exit $rc: $(tail -2 $d/nfskip.log)"; fi

# 5. predict with sampling: the same seed gives the same text, other seeds differ from greedy
gen() { ./csft predict --model $m --chat-template alpaca --prompt "Name a colour." --max-new-tokens 12 "$@" 2>/dev/null; }
greedy=$(gen) s1=$(gen --temperature 0.9 --top-k 40 --top-p 0.95 --set seed=7)
s1b=$(gen --temperature 0.9 --top-k 40 --top-p 0.95 --set seed=7)
differ=0
for s in 1 2 3; do [ "$(gen --temperature 0.9 --top-k 40 --set seed=$s)" != "$greedy" ] && differ=$((differ + 1)); done
if [ -n "$greedy" ] && [ "$s1" = "$s1b" ] && [ $differ -ge 2 ] && [ "$greedy" = "$(gen)" ]; then ok; else
    fail "sampling: greedy [$greedy] seed7 [$s1] / [$s1b], $differ of 3 seeds differ"; fi

# 6. predict --input-file: JSONL records (scored when they carry an output) and plain lines
printf '{"instruction": "Say hi.", "output": "hi"}\n{"prompt": "Count to three."}\nA plain line\n\n' > $d/in.jsonl
./csft predict --model $m --chat-template alpaca --input-file $d/in.jsonl --output-file $d/out.jsonl \
    --max-new-tokens 6 > $d/pred.log 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l < $d/out.jsonl)" -eq 3 ] && head -1 $d/out.jsonl | grep -q '"reference":"hi","exact_match":false' &&
    sed -n 3p $d/out.jsonl | grep -q '"prompt":"A plain line"' && grep -q 'exact match: 0/1 (0.0%)' $d/pred.log; then ok; else
    fail "predict --input-file: exit $rc: $(cat $d/out.jsonl $d/pred.log | tail -5)"; fi
# each record's output equals predicting that prompt alone
one=$(./csft predict --model $m --chat-template alpaca --prompt "Count to three." --max-new-tokens 6 2>/dev/null)
two=$(sed -n 2p $d/out.jsonl | sed -E 's/.*"output":"(.*)"\}$/\1/')
if [ -n "$one" ] && [ "$(printf '%s' "$one" | sed 's/"/\\"/g')" = "$two" ]; then ok; else fail "file record [$two] vs --prompt [$one]"; fi

# 7. save_dtype: bfloat16 writes a bf16 adapter; checkpoints stay float32 for exact resume
./csft finetune "${common[@]}" --set output_dir=$d/bf --set runner_config.max_steps=1 --set save_dtype=bfloat16 \
    --set model.model_config.pet_config.pet_type=lora > $d/bf.log 2>&1 || fail "bf16 adapter run: $(tail -2 $d/bf.log)"
if [ "$(dtypes $d/bf/adapter_model.safetensors)" = '"dtype":"BF16" ' ] &&
    [ "$(dtypes $d/bf/checkpoints/checkpoint-1/adapter_model.safetensors)" = '"dtype":"F32" ' ]; then ok; else
    fail "save_dtype bfloat16 adapter: [$(dtypes $d/bf/adapter_model.safetensors)]"; fi

# 8. csft merge keeps a bf16 base in bf16 (PEFT), --dtype float32 when asked
mb=tests/fixtures/hf/mistral-tiny-bf16-sharded
./csft merge --base $mb --adapter $mb/lora_adapter --out $d/merged > $d/merge.log 2>&1 || fail "merge: $(cat $d/merge.log)"
./csft merge --base $mb --adapter $mb/lora_adapter --out $d/merged32 --dtype float32 > /dev/null 2>&1 || fail "merge f32"
if [ "$(dtypes $d/merged/model.safetensors)" = '"dtype":"BF16" ' ] && grep -q '"dtype": "bfloat16"' $d/merged/config.json &&
    [ "$(dtypes $d/merged32/model.safetensors)" = '"dtype":"F32" ' ] && grep -q '"dtype": "float32"' $d/merged32/config.json; then
    ok; else fail "merge dtype: [$(dtypes $d/merged/model.safetensors)] [$(dtypes $d/merged32/model.safetensors)]"; fi

# 9. adapter_path with another rank than the YAML: said, not silent
./csft finetune "${common[@]}" --set output_dir=$d/ov --set runner_config.max_steps=1 \
    --set model.model_config.pet_config.pet_type=lora --set model.model_config.pet_config.lora_rank=16 \
    --set model.model_config.pet_config.adapter_path=$d/bf/checkpoints/checkpoint-1 > $d/ov.log 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "adapter_config.json sets r=8, .*override the config's lora_rank=16" $d/ov.log; then ok; else
    fail "adapter_path override note: exit $rc: $(grep -i note $d/ov.log; tail -2 $d/ov.log)"; fi

# 10. a LoRA regex selecting layer 0 only: checkpoint, resume, merge of csft's own adapter
re='.*layers\.0\..*(q_proj|v_proj)'
lr=("${common[@]}" --set model.model_config.pet_config.pet_type=lora --set "model.model_config.pet_config.target_modules=$re")
(CSFT_TEST_KILL_AFTER_STEP=1 exec ./csft finetune "${lr[@]}" --set output_dir=$d/re --set runner_config.max_steps=2 \
    --set save_steps=1 > $d/re.log 2>&1) 2> /dev/null
./csft finetune "${lr[@]}" --set output_dir=$d/re --set runner_config.max_steps=2 --set resume_training=true > $d/re2.log 2>&1
rc=$?
./csft merge --base $m --adapter $d/re --out $d/re_merged > $d/re3.log 2>&1
rc3=$?
if [ $rc -eq 0 ] && [ $rc3 -eq 0 ] && grep -qF '"target_modules":	".*layers\\.0\\..*(q_proj|v_proj)"' $d/re/adapter_config.json; then ok; else
    fail "regex adapter resume/merge: exit $rc/$rc3: $(tail -2 $d/re2.log $d/re3.log)"; fi

echo "cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
