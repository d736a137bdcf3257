# Sourced by the multi-rank CLI tests (test_dist_cli.sh, test_tp_cli.sh, test_dist_resume.sh):
# the environment for mpirun as root, a fixture's batches as tokenized records, a run config,
# and loss comparisons between runs.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 CSFT_PROGRESS=plain
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

# $1: fixture model folder, $2: output JSONL: the three batches (B=2) of its reference.json as
# six tokenized records, in order. Fails unless there are six.
fixture_records() {
    local ref=$1/reference.json key
    for key in batches_input_ids batches_labels; do
        sed -E "s/.*\"$key\": \[(\[\[[^\"]*\]\])\].*/\1/" "$ref" | sed -e 's/\], *\[/\n/g' | tr -d '[] ' > "$2.$key"
    done
    paste -d'|' "$2.batches_input_ids" "$2.batches_labels" |
        awk -F'|' '{printf "{\"input_ids\": [%s], \"labels\": [%s]}\n", $1, $2}' > "$2"
    rm -f "$2.batches_input_ids" "$2.batches_labels"
    [ "$(wc -l < "$2")" = 6 ]
}

# $1: config path, $2: model folder, $3: data file, $4: batch_size, $5: epochs, then extra lines.
write_run_yaml() {
    local out=$1 model=$2 data=$3 batch=$4 epochs=$5
    shift 5
    cat > "$out" << YAML
run_mode: finetune
seed: 1
load_checkpoint: $model
train_dataset: {data_files: [$data], format: tokenized, shuffle: false, packing: false, seq_length: 64}
runner_config: {epochs: $epochs, batch_size: $batch}
optimizer: {learning_rate: 1.0e-3, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.1}
lr_schedule: {type: cosine, warmup_steps: 2}
max_grad_norm: 1.0
logging_steps: 1
save_steps: 3
tensorboard: false
YAML
    local line
    for line in "$@"; do echo "$line" >> "$out"; done
}

# "step loss" per logged step of a run folder.
losses() { sed -E 's/.*"step":([0-9]+),.*"loss":([-0-9.e+]+).*/\1 \2/' "$1/metrics.jsonl" 2> /dev/null; }
# $1 $2: runs; $2's losses equal $1's at the same steps (relative 1e-5), at least $3 (6) of them.
same_losses() {
    join <(losses "$1" | sort -k1,1) <(losses "$2" | sort -k1,1) | awk -v want="${3:-6}" '
        { d = ($2 - $3) / $2; if (d < 0) d = -d; if (d > m) m = d; n++ }
        END { exit !(n >= want && m <= 1e-5) }'
}
# the losses of runs $1 and $2 side by side (after a failed comparison)
show_losses() { join -a1 -a2 <(losses "$1" | sort -k1,1) <(losses "$2" | sort -k1,1) | sort -n; }
