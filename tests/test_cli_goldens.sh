#!/usr/bin/env bash
# The golden checks through the command a user runs: `csft tokenize --check` on the tokenizer
# goldens and on the chat-template goldens (rendering, assistant spans, ids). The Llama 3 files
# are read from ../shared (their license forbids copying them here) and skipped without it.
set -u
passed=0 failed=0 skipped=0
run() { # $1: description; the rest: the command
    local what=$1
    shift
    if out=$("$@" 2>&1) && printf '%s\n' "$out" | grep -qE '^[0-9]+ passed, 0 failed$'; then
        passed=$((passed + 1))
    else
        printf '%s\n' "$out" | tail -5
        echo "FAIL: $what"
        failed=$((failed + 1))
    fi
}
qwen=tests/fixtures/tokenizer/qwen
run "qwen tokenizer golden" ./csft tokenize --tokenizer $qwen --check tests/fixtures/tokenizer/qwen.jsonl
llama=../shared/fixtures/tokenizer/llama3
if [ -d "$llama" ]; then
    run "llama3 tokenizer golden" ./csft tokenize --tokenizer $llama --check ../shared/fixtures/tokenizer/golden/llama3.jsonl
    run "chat template golden" ./csft tokenize --tokenizer qwen3=$qwen --tokenizer alpaca=$qwen --tokenizer llama3=$llama \
        --check tests/fixtures/chat_templates/golden.jsonl
else
    echo "SKIP: test_cli_goldens.sh: $llama absent: Llama 3 tokenizer golden and chat-template lines skipped"
    skipped=$((skipped + 2))
    grep -v '"template": "llama3"' tests/fixtures/chat_templates/golden.jsonl > build/golden_no_llama3.jsonl
    run "chat template golden (qwen3, alpaca)" ./csft tokenize --tokenizer qwen3=$qwen --tokenizer alpaca=$qwen \
        --check build/golden_no_llama3.jsonl
fi
# Gemma 3 and DeepSeek-V3 tokenizers (NUL lines included), and the chat templates of
# golden_more.jsonl; their files stay in ../shared (Gemma / DeepSeek / Meta licenses).
S=${CSFT_SHARED_FIXTURES:-../shared/fixtures} # another path (or none) to check the skips
for t in gemma3 deepseek_v3; do
    if [ -f $S/tokenizer/$t/tokenizer.json ]; then
        run "$t tokenizer golden" ./csft tokenize --tokenizer $S/tokenizer/$t --check $S/tokenizer/golden/$t.jsonl
    else
        echo "test_cli_goldens.sh: $S/tokenizer/$t absent: $t tokenizer golden SKIPPED"
        skipped=$((skipped + 1))
    fi
done
if [ -f $S/chat_templates/golden_more.jsonl ] && [ -d $S/tokenizer/gemma3 ] && [ -d $S/tokenizer/deepseek_v3 ] &&
    [ -d $S/tokenizer/llama3_1 ] && [ -d $S/tokenizer/llama2 ]; then
    D=build/tmp_cli_goldens
    rm -rf $D
    for t in mistral_legacy mistral_sysprompt llama2_chat; do
        mkdir -p $D/$t
        ln -sfn "$(realpath $S/tokenizer/llama2/tokenizer.json)" "$(realpath $S/tokenizer/llama2/tokenizer_config.json)" $D/$t/
        ln -sfn "$(realpath $S/chat_templates/templates/$t.jinja)" $D/$t/chat_template.jinja
    done
    run "chat template golden_more" ./csft tokenize --tokenizer gemma3=$S/tokenizer/gemma3 \
        --tokenizer deepseek_v3=$S/tokenizer/deepseek_v3 --tokenizer llama3_1=$S/tokenizer/llama3_1 \
        --tokenizer mistral_legacy=$D/mistral_legacy --tokenizer mistral_sysprompt=$D/mistral_sysprompt \
        --tokenizer llama2_chat=$D/llama2_chat --check $S/chat_templates/golden_more.jsonl
else
    echo "test_cli_goldens.sh: $S (golden_more.jsonl and its tokenizers) absent: SKIPPED"
    skipped=$((skipped + 1))
fi
# U+0000 in a dataset: read, rendered and tokenized as the NUL character
printf '{"text": "a\\u0000b"}\n' > build/tmp_nul.jsonl
run "NUL in data cat" bash -c './csft data cat build/tmp_nul.jsonl | grep -qF "a\\u0000b" && echo "1 passed, 0 failed"'
if [ $skipped -gt 0 ]; then
    echo "cli_goldens: $passed passed, $failed failed, $skipped skipped"
else
    echo "cli_goldens: $passed passed, $failed failed"
fi
[ $failed -eq 0 ]
