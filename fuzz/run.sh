#!/usr/bin/env bash
# Runs the libFuzzer harnesses (make fuzz builds them into build-fuzz/fuzz/).
#   fuzz/run.sh [-t SECONDS] [-j] [TARGET...]
# For each target (default: all): first replays every kept crash input under
# tests/fuzz/regress/<target>/ (each must now run clean), then fuzzes for SECONDS (default 30)
# from its seed corpus: fuzz/seeds/<target>/ plus the fixture files listed below, and a working
# corpus in build-fuzz/corpus/<target>/ that grows across runs. A crash, timeout (10 s per
# input), leak or out-of-memory (3 GiB RSS, 2 GiB per allocation) fails the run; the input is
# left in build-fuzz/crashes/<target>/ (add it to tests/fuzz/regress/<target>/ once fixed).
# Every run appends "date target seconds executions result" to build-fuzz/fuzz-log.tsv.
# One fuzzer process at a time; NICE=19 runs it niced. CI=true (what .ci/run sets): a fixed,
# run per target (seed 1, a fixed number of inputs, from the seeds alone).
set -uo pipefail
cd "$(dirname "$0")/.."
secs=30
while [ $# -gt 0 ]; do
    case $1 in
    -t) secs=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) break ;;
    esac
done
all="json parquet arrow safetensors st_index config_json tokenizer_json vocab_merges tokenizer_config jinja yaml
     token_cache train_state mindrecord ckpt"
targets=${*:-$all}
fx=tests/fixtures
seed_files() { # fixture files that are seeds as they are
    case $1 in
    json) ls $fx/datasets/*.json $fx/datasets/*.jsonl $fx/arrow_types/types.jsonl ;;
    parquet) find $fx/datasets -name '*.parquet' -size -48k ;;
    arrow) ls $fx/arrow_types/*.arrow $fx/arrow_types/*.feather; find $fx/datasets -name '*.arrow' ;;
    safetensors) find $fx/hf -path '*lora_adapter*' -name '*.safetensors' ;;
    config_json) ls $fx/hf/*/config.json ;;
    tokenizer_config) ls $fx/chat_templates/*tokenizer_config.json $fx/tokenizer/qwen/tokenizer_config.json ;;
    jinja) ls $fx/chat_templates/*.jinja ;;
    yaml) ls examples/*.yaml $fx/config/*.yaml ;;
    mindrecord) find $fx/mindspore/mindrecord -type f ! -name '*.db' ! -name '*.jsonl' ;;
    ckpt) ls $fx/mindspore/ckpt/*.ckpt ;;
    esac 2> /dev/null
}
max_len() {
    case $1 in
    parquet) echo 49152 ;; mindrecord) echo 131072 ;; arrow | json | safetensors | st_index | token_cache | ckpt) echo 16384 ;;
    tokenizer_json | vocab_merges) echo 12288 ;; *) echo 8192 ;;
    esac
}
ci_runs() { # inputs per target under CI: about 30 s each on a loaded 2-core machine
    case $1 in
    train_state) echo 4000000 ;; jinja) echo 300000 ;;
    safetensors | config_json | tokenizer_config | ckpt) echo 60000 ;;
    parquet | arrow | st_index) echo 35000 ;; json | token_cache) echo 20000 ;;
    tokenizer_json | mindrecord) echo 15000 ;; vocab_merges) echo 10000 ;; yaml) echo 3500 ;; *) echo 10000 ;;
    esac
}
export OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
nice_cmd=""
[ -n "${NICE:-}" ] && nice_cmd="nice -n $NICE"
status=0
for t in $targets; do
    bin=build-fuzz/fuzz/fuzz_$t
    [ -x "$bin" ] || { echo "fuzz $t: $bin missing (run make fuzz)"; status=1; continue; }
    # 1. kept crash inputs: each must run clean now
    reg=tests/fuzz/regress/$t
    nreg=0
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        nreg=$(ls "$reg" | wc -l)
        if ! $nice_cmd "$bin" -timeout=10 -rss_limit_mb=3072 -malloc_limit_mb=2048 "$reg"/* > build-fuzz/regress_$t.log 2>&1; then
            tail -30 build-fuzz/regress_$t.log
            echo "fuzz $t: a kept crash input under $reg fails again"
            status=1
            continue
        fi
    fi
    # 2. fuzz from the seeds
    corpus=build-fuzz/corpus/$t seeds=build-fuzz/seeds/$t crashes=build-fuzz/crashes/$t
    # CI starts from the seeds alone (a fresh corpus each run), so CI=true here replays it exactly
    [ -n "${CI:-}" ] && corpus=build-fuzz/ci/corpus/$t seeds=build-fuzz/ci/seeds/$t && rm -rf "$corpus"
    rm -rf "$seeds" && mkdir -p "$corpus" "$seeds" "$crashes"
    [ -d fuzz/seeds/$t ] && cp fuzz/seeds/$t/* "$seeds"/
    for f in $(seed_files "$t"); do cp "$f" "$seeds/$(echo "$f" | tr / _)"; done
    log=build-fuzz/fuzz_$t.log
    # CI: libFuzzer's seed 1 and a fixed number of inputs (about 30 s on a 2-core machine) from
    # the seeds alone, capped at 4 x SECONDS: `CI=true bash fuzz/run.sh` here is CI's run (close,
    # not bit for bit: libFuzzer also learns from addresses and temporary file names).
    limit_opt="-max_total_time=$secs"
    [ -n "${CI:-}" ] && limit_opt="-seed=1 -runs=$(ci_runs "$t") -max_total_time=$((4 * secs))"
    $nice_cmd "$bin" $limit_opt -timeout=10 -rss_limit_mb=3072 -malloc_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "$seeds" > "$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    took=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | awk '{print $5}')
    result=ok
    if [ $rc -ne 0 ]; then
        result="FAILED ($(grep -m1 -oE 'ERROR: [A-Za-z]+: [a-z-]+|ERROR: libFuzzer: [a-z-]+|runtime error: .*' "$log" | head -1))"
        status=1
        grep -E -A25 'ERROR|runtime error' "$log" | head -50
        echo "  input kept in $crashes/"
    fi
    echo "fuzz $t: ${execs:-?} executions in ${took:-?} s, $nreg kept inputs replayed: $result"
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "${took:-$secs}" "${execs:-0}" "$result" >> build-fuzz/fuzz-log.tsv
done
exit $status
