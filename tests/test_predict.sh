#!/usr/bin/env bash
# csft predict and chat templates as documented: a "messages" record of --input-file goes through
# the chat template (its output equals predicting the rendered conversation as a raw prompt);
# batched file input (several prompts per forward pass) gives the same tokens as one at a time,
# greedy and sampled; the terminal chat keeps the conversation; a chat template given as a file
# sees the tokenizer's eos_token.
set -u
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
d=build/tmp_predict
rm -rf $d && mkdir -p $d
m=tests/fixtures/example_model
samp=(--temperature 1.0 --top-k 100 --set seed=11 --max-new-tokens 10)
field() { sed -n "${2}p" "$1" | sed -E 's/.*"output":"(([^"\\]|\\.)*)".*/\1/'; }

# 1. a messages record: rendered with the template (not sent as raw JSON); the last assistant
#    message is the reference
conv='[{"role":"system","content":"Be brief."},{"role":"user","content":"Name a fruit."}]'
printf '{"messages": [{"role":"system","content":"Be brief."},{"role":"user","content":"Name a fruit."},{"role":"assistant","content":"Apple"}]}\n' > $d/msgs.jsonl
./csft predict --model $m --input-file $d/msgs.jsonl --output-file $d/msgs_out.jsonl "${samp[@]}" > $d/msgs.log 2>&1 ||
    fail "messages input: $(tail -2 $d/msgs.log)"
./csft template --template $m --messages "$conv" --add-generation-prompt > $d/rendered.txt 2> $d/tmpl.log || fail "csft template"
# the rendering as a raw prompt, in a JSONL record (JSON-escaped here)
c=$(sed -e 's/\\/\\\\/g; s/"/\\"/g' $d/rendered.txt | awk 'BEGIN { ORS = "" } { print (NR > 1 ? "\\n" : "") $0 } END { print "\\n" }')
printf '{"prompt": "%s"}\n' "$c" > $d/rawin.jsonl
CSFT_RAW_PROMPT=1 ./csft predict --model $m --input-file $d/rawin.jsonl "${samp[@]}" --output-file $d/raw.jsonl > /dev/null 2>&1
raw=$(field $d/raw.jsonl 1)
got=$(field $d/msgs_out.jsonl 1)
if [ -s $d/rendered.txt ] && grep -q '<|im_start|>assistant' $d/rendered.txt && [ -n "$got" ] &&
    [ "$raw" = "$got" ] && grep -q '"prompt":"<|im_start|>system\\nBe brief.<|im_end|>\\n<|im_start|>user' $d/raw.jsonl &&
    grep -q '"messages":\[{"role":"system"' $d/msgs_out.jsonl && grep -q '"reference":"Apple","exact_match":false' $d/msgs_out.jsonl &&
    ! grep -q '"prompt":"{' $d/msgs_out.jsonl && grep -q 'exact match: 0/1' $d/msgs.log; then ok; else
    fail "messages record: output [$got] vs raw rendered prompt [$raw]: $(cat $d/msgs_out.jsonl)"; fi

# 2. batching: 7 prompts in batches of 3 = one at a time (greedy and sampled)
{
    for q in "Say hi." "Count to five." "What is two plus two?" "Name a colour." "Spell cat." "Hello" "Why?"; do
        printf '{"prompt": "%s"}\n' "$q"
    done
} > $d/many.jsonl
for mode in greedy sampled; do
    args=(--max-new-tokens 10)
    [ $mode = sampled ] && args=("${samp[@]}")
    ./csft predict --model $m --input-file $d/many.jsonl --batch-size 3 "${args[@]}" --output-file $d/b3.jsonl > /dev/null 2>&1
    ./csft predict --model $m --input-file $d/many.jsonl --batch-size 1 "${args[@]}" --output-file $d/b1.jsonl > /dev/null 2>&1
    if [ "$(wc -l < $d/b3.jsonl)" -eq 7 ] && cmp -s $d/b1.jsonl $d/b3.jsonl &&
        [ "$(sed -E 's/.*"output":"(.*)"}$/\1/' $d/b1.jsonl | sort -u | wc -l)" -ge 2 -o $mode = greedy ]; then ok; else
        fail "batched ($mode) differs from one at a time:"; diff $d/b1.jsonl $d/b3.jsonl | head -6; fi
done

# 3. the terminal chat keeps the conversation in the prompt; /reset forgets it
printf 'Hello there\nAnd again\n/reset\nAnd again\n' | ./csft predict --model $m --max-new-tokens 4 > $d/chat.out 2> $d/chat.err
n1=$(sed -nE 's/.*\(1 turns, ([0-9]+) prompt tokens\)$/\1/p' $d/chat.err | head -1)
n2=$(sed -nE 's/.*\(2 turns, ([0-9]+) prompt tokens\)$/\1/p' $d/chat.err | head -1)
n3=$(sed -nE 's/.*\(1 turns, ([0-9]+) prompt tokens\)$/\1/p' $d/chat.err | sed -n 2p)
# turn 2's prompt holds turn 1 (its prompt, the answer, the new line); after /reset it is alone again
if [ -n "$n1" ] && [ -n "$n2" ] && [ -n "$n3" ] && [ "$n2" -gt $((n1 + n3 - 4)) ] && [ "$n3" -lt "$n2" ] &&
    grep -q "conversation forgotten" $d/chat.err; then ok; else
    fail "chat history: turn prompts [$n1] [$n2] [$n3]: $(cat $d/chat.err)"; fi

# 4. a chat template file sees the tokenizer's eos_token (rendering {{ eos_token }} = writing it)
printf '{%% for m in messages %%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{{ eos_token }}\n{%% endfor %%}{%% if add_generation_prompt %%}<|im_start|>assistant\n{%% endif %%}' > $d/var.jinja
sed 's/{{ eos_token }}/<|endoftext|>/' $d/var.jinja > $d/lit.jinja
toks() {
    ./csft data stats --set load_checkpoint=$m --set "train_dataset.data_files=[tests/fixtures/datasets/messages.jsonl]" \
        --set train_dataset.chat_template=$1 --set train_dataset.seq_length=2048 2>&1 | sed -nE 's/^  tokens +([0-9]+)$/\1/p'
}
a=$(toks $d/var.jinja) b=$(toks $d/lit.jinja)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok; else fail "template file eos_token: $a tokens vs $b with the literal token"; fi

echo "predict: $passed passed, $failed failed"
[ $failed -eq 0 ]
