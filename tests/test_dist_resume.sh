#!/usr/bin/env bash
# Checkpoints across process grids (run by tests/run.sh with the test binary folder as $1):
# 3 steps at dp2 ZeRO-3 and at dp2 x tp2 ZeRO-3, then resumed at dp4 ZeRO-1 and at one process
# (and dp3 ZeRO-2), give the losses of an uninterrupted run (within 1e-5); a checkpoint saved at
# one grid, loaded at another and saved again gives a byte-identical HF folder; a damaged newest checkpoint is
# skipped with a warning and the previous one resumed (and one named explicitly is refused);
# SIGTERM on one rank makes every rank stop at the same step with a last-state checkpoint, as
# does SIGTERM to mpirun itself; a rank that fails ends the job with a word from every rank;
# LoRA at dp2 ZeRO-3 (sharded frozen base) checkpoints and resumes on one process. Skips the
# multi-rank parts without mpirun.
set -u
. tests/dist_lib.sh
work=build/tmp_dist_resume
rm -rf "$work" && mkdir -p "$work"
passed=0 failed=0 skipped=0
have_mpi=1
command -v mpirun > /dev/null || have_mpi=0
mpi() { # $1: ranks, then the command
    local n=$1
    shift
    mpirun -np "$n" --oversubscribe -x ASAN_OPTIONS -x CSFT_PROGRESS -x CSFT_TEST_SIGTERM_AT "$@"
}
check() { # $1: description, $2: 1 if it holds
    if [ "$2" -eq 1 ]; then
        passed=$((passed + 1))
    else
        echo "FAIL: $1"
        failed=$((failed + 1))
    fi
}

# the fixture's six rows twice: 12 records, 3 steps of 4 rows per epoch
if ! fixture_records tests/fixtures/hf/qwen2-tiny "$work/six.jsonl"; then
    echo "could not extract the fixture batches"
    echo "dist_resume: 0 passed, 1 failed"
    exit 1
fi
cat "$work/six.jsonl" "$work/six.jsonl" > "$work/rows.jsonl"
write_run_yaml "$work/run.yaml" tests/fixtures/hf/qwen2-tiny "$work/rows.jsonl" 4 2 "save_total_limit: 5"
run() { # $1: ranks (1 = no mpirun), $2: output dir, then --set overrides
    local n=$1 out=$2
    shift 2
    if [ "$n" -eq 1 ]; then
        ./csft finetune --config "$work/run.yaml" --set output_dir="$out" "$@" > "$out.log" 2>&1
    else
        mpi "$n" ./csft finetune --config "$work/run.yaml" --set output_dir="$out" "$@" > "$out.log" 2>&1
    fi
}
resume_from() { # $1: source run, $2: new output dir: a copy of checkpoint-3 and the first 3 metrics lines
    mkdir -p "$2/checkpoints"
    cp -r "$1/checkpoints/checkpoint-3" "$2/checkpoints/"
    head -3 "$1/metrics.jsonl" > "$2/metrics.jsonl"
}

run 1 "$work/one"
check "one process runs 6 steps" "$([ "$(losses "$work/one" | wc -l)" = 6 ] && echo 1 || echo 0)"

if [ $have_mpi -eq 1 ]; then
    # $1: source run, $2: its description; then "ranks batch zero model_parallel" grids: resumed
    # there, the losses of an uninterrupted run
    resume_at() {
        local src=$1 what=$2 grid n b z t out ok
        shift 2
        for grid in "$@"; do
            set -- $grid
            n=$1 b=$2 z=$3 t=$4
            out="$work/${src}_resume_${n}_${z}_$t"
            resume_from "$work/$src" "$out"
            run "$n" "$out" --set runner_config.batch_size="$b" --set parallel_config.zero_stage="$z" \
                --set parallel_config.model_parallel="$t" --set resume_training=true
            ok=0
            [ "$(losses "$out" | wc -l)" = 6 ] && same_losses "$work/one" "$out" 6 && ok=1
            [ $ok -eq 1 ] || { tail -5 "$out.log"; show_losses "$work/one" "$out"; }
            check "checkpoint-3 of $what resumed at $n rank(s), model_parallel $t, ZeRO-$z: the losses of an uninterrupted run" $ok
        done
    }
    # $1: source run, $2: its description; then "ranks zero model_parallel" grids: loaded there and
    # saved again (no step), the HF folder is byte-identical to the source's checkpoint
    save_again_at() {
        local src=$1 what=$2 grid n z t out ok f
        shift 2
        for grid in "$@"; do
            set -- $grid
            n=$1 z=$2 t=$3
            out="$work/${src}_again_${n}_${z}_$t"
            resume_from "$work/$src" "$out"
            run "$n" "$out" --set runner_config.batch_size=$((4 * t / n > 0 ? 4 * t / n : 1)) \
                --set parallel_config.zero_stage="$z" --set parallel_config.model_parallel="$t" \
                --set resume_training=true --set runner_config.max_steps=3
            ok=0
            for f in model.safetensors config.json; do
                cmp -s "$work/$src/checkpoints/checkpoint-3/$f" "$out/$f" && ok=$((ok + 1))
            done
            [ $ok -eq 2 ] && ok=1 || { ok=0; tail -5 "$out.log"; }
            check "$what checkpoint loaded at $n rank(s) model_parallel $t ZeRO-$z and saved again: byte-identical HF folder" $ok
        done
    }
    for src in z3 tpz3; do
        what="dp2 ZeRO-3" grid="--set parallel_config.zero_stage=3" n=2
        [ $src = tpz3 ] && what="dp2 x tp2 ZeRO-3" grid="$grid --set parallel_config.model_parallel=2" n=4
        run $n "$work/$src" --set runner_config.batch_size=2 $grid --set runner_config.max_steps=3
        ok=0
        [ -f "$work/$src/checkpoints/checkpoint-3/trainer_state.json" ] && same_losses "$work/one" "$work/$src" 3 && ok=1
        [ $ok -eq 1 ] || tail -5 "$work/$src.log"
        check "$what: 3 steps equal one process, checkpoint-3 written" $ok
    done
    # (4 rows do not split over 3 ranks: dp3 is checked by byte identity)
    resume_at z3 "dp2 ZeRO-3" "4 1 1 1" "1 4 0 1"
    save_again_at z3 "dp2 ZeRO-3" "4 1 1" "3 3 1" "2 2 1" "1 0 1"
    # from data_parallel 2 x model_parallel 2 at ZeRO-3: every rank wrote its shard of its
    # tensor-parallel slices where they lie in the whole tensors (nothing gathered)
    resume_at tpz3 "dp2 x tp2 ZeRO-3" "4 1 1 1" "1 4 0 1"
    save_again_at tpz3 "dp2 x tp2 ZeRO-3" "4 1 1" "4 3 2" "2 0 2" "1 0 1"
    # its optimizer state and weights are the one-process layout: a one-process save of the same
    # step holds the same tensor names and shapes
    ok=0
    h() { head -c "$((8 + $(head -c 8 "$1" | od -An -tu8)))" "$1" | tail -c +9 | tr ',' '\n' | grep -v data_offsets | sort; }
    for f in model.safetensors optimizer.safetensors; do
        [ "$(h "$work/tpz3/checkpoints/checkpoint-3/$f")" = "$(h "$work/one/checkpoints/checkpoint-3/$f")" ] && ok=$((ok + 1))
    done
    [ $ok -eq 2 ] && ok=1 || ok=0
    check "dp2 x tp2 ZeRO-3 checkpoint: the one-process tensor names, shapes and dtypes" $ok

    # periodic eval at ZeRO-3: every rank takes part in the gathers; rank 0 reports one process's loss
    ev="--set eval_dataset.data_files=[$work/six.jsonl] --set eval_dataset.format=tokenized --set eval_steps=3"
    run 1 "$work/eval_one" $ev
    run 2 "$work/eval_z3" $ev --set runner_config.batch_size=2 --set parallel_config.zero_stage=3
    ok=0
    a=$(grep "eval at step" "$work/eval_one.log") b=$(grep "eval at step" "$work/eval_z3.log")
    [ -n "$a" ] && [ "$(echo "$a" | wc -l)" = 2 ] && [ "$a" = "$b" ] && ok=1
    [ $ok -eq 1 ] || { echo "$a"; echo "$b"; tail -3 "$work/eval_z3.log"; }
    check "periodic eval at dp2 ZeRO-3 reports the one-process eval loss" $ok

    # load_best_at_end at ZeRO-3 (alone and with model_parallel 2): each rank reads its shard of the
    # best checkpoint; the final model is that checkpoint's (an eval set whose loss rises from step 1)
    awk 'BEGIN { for (i = 0; i < 2; i++) { s = ""; for (j = 0; j < 32; j++) s = s (j ? "," : "") 3 + (j + i) % 2
        printf "{\"input_ids\": [%s], \"labels\": [%s]}\n", s, s } }' > "$work/rising.jsonl"
    best="--set eval_dataset.data_files=[$work/rising.jsonl] --set eval_dataset.format=tokenized --set eval_steps=1"
    best="$best --set save_best=true --set load_best_at_end=true --set save_steps=1 --set save_total_limit=1"
    for grid in "2 1" "4 2"; do
        set -- $grid
        out="$work/best_${1}_$2"
        run "$1" "$out" $best --set runner_config.batch_size=$((4 * $2 / $1)) --set parallel_config.zero_stage=3 \
            --set parallel_config.model_parallel="$2"
        ok=0
        grep -q "load_best_at_end: the final model is .*checkpoint-1 " "$out.log" &&
            cmp -s "$out/model.safetensors" "$out/checkpoints/checkpoint-1/model.safetensors" &&
            ! cmp -s "$out/model.safetensors" "$out/checkpoints/checkpoint-6/model.safetensors" && ok=1
        [ $ok -eq 1 ] || tail -5 "$out.log"
        check "load_best_at_end at $1 ranks, model_parallel $2, ZeRO-3: the final model is the best checkpoint's" $ok
    done

    # LoRA: dp2 ZeRO-3 (frozen base sharded) saves an adapter and moments; resumed on one process
    lora="--set model.model_config.pet_config.pet_type=lora"
    run 1 "$work/lora_one" $lora
    run 2 "$work/lora_z3" $lora --set runner_config.batch_size=2 --set parallel_config.zero_stage=3 \
        --set runner_config.max_steps=3
    resume_from "$work/lora_z3" "$work/lora_resumed"
    run 1 "$work/lora_resumed" $lora --set resume_training=true
    ok=0
    [ "$(losses "$work/lora_one" | wc -l)" = 6 ] && same_losses "$work/lora_one" "$work/lora_z3" 3 &&
        [ "$(losses "$work/lora_resumed" | wc -l)" = 6 ] && same_losses "$work/lora_one" "$work/lora_resumed" 6 &&
        [ -f "$work/lora_resumed/adapter_model.safetensors" ] && ok=1
    [ $ok -eq 1 ] || { tail -5 "$work/lora_z3.log" "$work/lora_resumed.log"; }
    check "LoRA at dp2 ZeRO-3: 3 steps equal one process; its checkpoint resumes on one process" $ok
    run 4 "$work/lora_tpz3" $lora --set runner_config.batch_size=2 --set parallel_config.model_parallel=2 \
        --set parallel_config.zero_stage=3 --set runner_config.max_steps=3
    resume_from "$work/lora_tpz3" "$work/lora_tpz3_resumed"
    run 1 "$work/lora_tpz3_resumed" $lora --set resume_training=true
    ok=0
    same_losses "$work/lora_one" "$work/lora_tpz3" 3 && [ "$(losses "$work/lora_tpz3_resumed" | wc -l)" = 6 ] &&
        same_losses "$work/lora_one" "$work/lora_tpz3_resumed" 6 && ok=1
    [ $ok -eq 1 ] || { tail -5 "$work/lora_tpz3.log" "$work/lora_tpz3_resumed.log"; }
    check "LoRA at dp2 x tp2 ZeRO-3: 3 steps equal one process; its checkpoint resumes on one process" $ok
else
    echo "test_dist_resume.sh: mpirun not found: multi-rank resume checks skipped"
    skipped=$((skipped + 20))
fi

# damaged newest checkpoint: skipped with a warning, the previous one resumed
out="$work/damaged"
mkdir -p "$out/checkpoints"
cp -r "$work/one/checkpoints/checkpoint-3" "$work/one/checkpoints/checkpoint-6" "$out/checkpoints/"
head -3 "$work/one/metrics.jsonl" > "$out/metrics.jsonl"
f="$out/checkpoints/checkpoint-6/model.safetensors"
printf '\x55' | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") / 2)) conv=notrunc status=none
cp -r "$out/checkpoints/checkpoint-6" "$work/damaged-6" # the run below replaces it
run 1 "$out" --set resume_training=true
ok=0
grep -q "checkpoint-6 is damaged: model.safetensors: bytes .* do not match their checksum" "$out.log" &&
    grep -q "falling back to the previous checkpoint" "$out.log" && grep -q "resuming from .*checkpoint-3" "$out.log" &&
    same_losses "$work/one" "$out" 6 && ok=1
[ $ok -eq 1 ] || tail -8 "$out.log"
check "a damaged newest checkpoint is skipped with a warning and the previous one resumed" $ok
out2="$work/damaged_explicit"
mkdir -p "$out2"
run 1 "$out2" --set resume_training=true --set resume_from_checkpoint="$work/damaged-6"
ok=0
rc_line=$(grep -c "damaged-6 is damaged" "$out2.log")
[ "$rc_line" -ge 1 ] && [ ! -f "$out2/model.safetensors" ] && ok=1
[ $ok -eq 1 ] || tail -5 "$out2.log"
check "a damaged checkpoint named by resume_from_checkpoint is refused" $ok
out3="$work/all_damaged"
mkdir -p "$out3/checkpoints"
cp -r "$work/damaged-6" "$out3/checkpoints/checkpoint-6"
run 1 "$out3" --set resume_training=true
ok=0
grep -q "every checkpoint in .* is damaged" "$out3.log" && [ ! -f "$out3/model.safetensors" ] && ok=1
[ $ok -eq 1 ] || tail -5 "$out3.log"
check "when every checkpoint is damaged, resume stops with an error (no fresh start)" $ok

if [ $have_mpi -eq 1 ]; then
    # SIGTERM on rank 1 only, after step 2: every rank stops after step 3, with one last-state checkpoint
    out="$work/sigterm"
    CSFT_TEST_SIGTERM_AT=1:2 run 2 "$out" --set runner_config.batch_size=2 --set parallel_config.zero_stage=3 \
        --set save_steps=0
    rc=$?
    ok=0
    [ $rc -ne 0 ] && [ -f "$out/checkpoints/checkpoint-3/trainer_state.json" ] &&
        grep -q "csft rank 1/2: stopped by the launcher (signal)" "$out.log" &&
        grep -q "saved last-state checkpoint" "$out.log" && grep -q "stopped by a signal after step 3" "$out.log" &&
        [ "$(ls "$out/checkpoints")" = checkpoint-3 ] && ok=1
    [ $ok -eq 1 ] || tail -8 "$out.log"
    check "SIGTERM on one rank: every rank stops after the same step with a last-state checkpoint" $ok
    run 2 "$out" --set runner_config.batch_size=2 --set parallel_config.zero_stage=1 --set resume_training=true
    ok=0
    [ "$(losses "$out" | wc -l)" = 6 ] && same_losses "$work/one" "$out" 6 && ok=1
    [ $ok -eq 1 ] || tail -5 "$out.log"
    check "the last-state checkpoint resumes to the losses of an uninterrupted run" $ok

    # a rank that fails mid-run ends the job, with a word from every rank
    out="$work/fail"
    CSFT_TEST_FAIL_AT=1:2 mpirun -np 2 --oversubscribe -x CSFT_TEST_FAIL_AT -x ASAN_OPTIONS ./csft finetune \
        --config "$work/run.yaml" --set output_dir="$out" --set runner_config.batch_size=2 > "$out.log" 2>&1
    rc=$?
    ok=0
    [ $rc -ne 0 ] && grep -q "csft rank 1/2: error: deliberate failure of rank 1 after step 2" "$out.log" &&
        grep -q "csft rank 0/2: stopped by the launcher" "$out.log" && ok=1
    [ $ok -eq 1 ] || tail -8 "$out.log"
    check "a failing rank ends the job with a message on every rank" $ok

    # SIGTERM to mpirun (Ctrl-C, a scheduler's cancel): Open MPI 4.1 sends the ranks SIGCONT,
    # then SIGTERM odls_base_sigkill_timeout seconds later and SIGKILL as long again after
    # that, time for the last-state save (mpirun forwards no output once it is aborting)
    out="$work/cancel"
    mkdir -p "$out"
    mpirun -np 2 --oversubscribe -x ASAN_OPTIONS -x CSFT_PROGRESS --mca odls_base_sigkill_timeout 4 ./csft finetune \
        --config "$work/run.yaml" --set output_dir="$out" --set runner_config.batch_size=2 \
        --set runner_config.epochs=100000 --set save_steps=0 > "$out.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        [ "$( (wc -l < "$out/metrics.jsonl") 2> /dev/null || echo 0)" -ge 2 ] && break
        sleep 0.1
    done
    kill -TERM $pid
    wait $pid
    ok=0
    last=$(ls "$out/checkpoints" 2> /dev/null | sed 's/checkpoint-//' | sort -n | tail -1)
    [ -n "$last" ] && [ "$last" -ge 2 ] && grep -q "\"step\": $last," "$out/checkpoints/checkpoint-$last/trainer_state.json" &&
        [ "$(ls "$out/checkpoints" | wc -l)" = 1 ] && ok=1
    [ $ok -eq 1 ] || tail -8 "$out.log"
    check "SIGTERM to mpirun: one last-state checkpoint is written" $ok
else
    skipped=$((skipped + 4))
fi

[ $skipped -gt 0 ] && echo "test_dist_resume.sh: $skipped checks skipped (no mpirun)"
echo "dist_resume: $passed passed, $failed failed"
[ $failed -eq 0 ]
