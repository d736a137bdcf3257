#!/usr/bin/env bash
# End to end, per chat template: the golden conversations (system/user/assistant text only) as
# a ShareGPT dataset are fine-tuned for 2 steps on a tiny random model with that template's
# tokenizer, then `csft data stats --show` (reading the cache the training wrote) must train
# exactly the golden assistant spans, in order. Templates whose tokenizer lives only in
# ../shared (licenses forbid copying) are skipped, and counted as skipped, without it.
set -u
export CSFT_PROGRESS=plain OMP_NUM_THREADS=1 NO_COLOR=1
work=build/tmp_chat_e2e
rm -rf "$work" && mkdir -p "$work"
passed=0 failed=0 skipped=0
S=${CSFT_SHARED_FIXTURES:-../shared/fixtures} # another path (or none) to check the skips
if ! command -v jq > /dev/null; then
    echo "test_chat_e2e.sh: jq not found (scripts/setup.sh installs it): all skipped"
    echo "chat_e2e: 0 passed, 0 failed, 8 skipped"
    exit 0
fi
# the [INST] templates have no tokenizer_config of their own: a folder of links (fixture README)
for t in mistral_legacy mistral_sysprompt llama2_chat; do
    [ -d $S/tokenizer/llama2 ] || break
    mkdir -p "$work/tok_$t"
    ln -sfn "$(realpath $S/tokenizer/llama2/tokenizer.json)" "$(realpath $S/tokenizer/llama2/tokenizer_config.json)" "$work/tok_$t/"
    ln -sfn "$(realpath $S/chat_templates/templates/$t.jinja)" "$work/tok_$t/chat_template.jinja"
done

check() { # $1 template, $2 tokenizer folder, $3 golden file
    local t=$1 tok=$2 golden=$3 w=$work/$1
    if [ ! -f "$tok/tokenizer.json" ] || [ ! -f "$golden" ]; then
        echo "  $t: SKIPPED ($tok or $golden absent: not copied here, see its LICENSE-NOTE.md)"
        skipped=$((skipped + 1))
        return
    fi
    mkdir -p "$w"
    jq -c --arg t "$t" 'select(.template == $t and .add_generation_prompt == false and .error == null
        and .tools == null and .kwargs == {} and (.assistant_spans | length) > 0
        and all(.messages[]; (keys - ["role", "content"]) == [] and (.content | type) == "string"
                and (.role == "user" or .role == "assistant" or .role == "system")))' "$golden" > "$w/lines.jsonl"
    local n
    n=$(wc -l < "$w/lines.jsonl")
    jq -c '{conversations: [.messages[] | {from: ({user: "human", assistant: "gpt", system: "system"}[.role]),
        value: .content}]}' "$w/lines.jsonl" > "$w/train.jsonl"
    jq -r '. as $l | .assistant_spans[] | $l.rendered[.[0]:.[1]] | tojson' "$w/lines.jsonl" |
        sed -E 's/^"[ ]+/"/' > "$w/want.txt"
    ./csft init-model --out "$w/model" --arch llama --tokenizer "$tok" --layers 1 --hidden 32 --ffn 64 \
        --heads 2 --kv-heads 1 --head-dim 16 > "$w/init.log" 2>&1 || { cat "$w/init.log"; }
    cat > "$w/run.yaml" << EOF
run_mode: finetune
seed: 1
output_dir: $w/out
load_checkpoint: $w/model
train_dataset: {data_files: [$w/train.jsonl], tokenizer: $tok, seq_length: 512, packing: false, shuffle: false,
                cache_dir: $w/cache}
runner_config: {epochs: 1, batch_size: 2, max_steps: 2}
optimizer: {learning_rate: 1.0e-3}
save_steps: 1000
EOF
    if ! ./csft finetune --config "$w/run.yaml" > "$w/train.log" 2>&1; then
        tail -5 "$w/train.log"
        echo "  $t: FAIL: finetune"
        failed=$((failed + 1))
        return
    fi
    ./csft data stats --config "$w/run.yaml" --show "$n" > "$w/show.txt" 2>&1
    grep -q "cache *hit" "$w/show.txt" || echo "  $t: note: data stats did not hit the training's cache"
    sed -nE 's/^  trained \[[0-9]+, [0-9]+\): //p' "$w/show.txt" | sed -E 's/^"[ ]+/"/' > "$w/got.txt"
    if [ "$n" -gt 0 ] && cmp -s "$w/want.txt" "$w/got.txt"; then
        echo "  $t: $n conversations, $(wc -l < "$w/want.txt") assistant spans trained exactly"
        passed=$((passed + 1))
    else
        diff "$w/want.txt" "$w/got.txt" | head -10
        echo "  $t: FAIL: trained tokens differ from the golden spans ($n conversations)"
        failed=$((failed + 1))
    fi
}

check qwen3 tests/fixtures/tokenizer/qwen tests/fixtures/chat_templates/golden.jsonl
check llama3 $S/tokenizer/llama3 tests/fixtures/chat_templates/golden.jsonl
check gemma3 $S/tokenizer/gemma3 $S/chat_templates/golden_more.jsonl
check deepseek_v3 $S/tokenizer/deepseek_v3 $S/chat_templates/golden_more.jsonl
check llama3_1 $S/tokenizer/llama3_1 $S/chat_templates/golden_more.jsonl
for t in mistral_legacy mistral_sysprompt llama2_chat; do
    check $t "$work/tok_$t" $S/chat_templates/golden_more.jsonl
done
# train_on_eos: false: the same spans without their end-of-turn token
if [ -f "$work/qwen3/want.txt" ]; then
    ./csft data stats --config "$work/qwen3/run.yaml" --set train_dataset.train_on_eos=false --show 100 \
        > "$work/noeos.txt" 2>&1
    sed -nE 's/^  trained \[[0-9]+, [0-9]+\): //p' "$work/noeos.txt" | sed -E 's/^"[ ]+/"/' > "$work/noeos_got.txt"
    sed -E 's/<\|im_end\|>"$/"/' "$work/qwen3/want.txt" | grep -v '^""$' > "$work/noeos_want.txt"
    if [ -s "$work/noeos_want.txt" ] && cmp -s "$work/noeos_want.txt" "$work/noeos_got.txt"; then
        passed=$((passed + 1))
    else
        diff "$work/noeos_want.txt" "$work/noeos_got.txt" | head -5
        echo "  FAIL: train_on_eos: false"
        failed=$((failed + 1))
    fi
fi
# --show needs a count
./csft data stats --config "$work/qwen3/run.yaml" --show many > "$work/bad.txt" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q -- "--show needs a count" "$work/bad.txt"; then
    passed=$((passed + 1))
else
    echo "  FAIL: data stats --show many: exit $rc"; cat "$work/bad.txt"
    failed=$((failed + 1))
fi
echo "chat_e2e: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
