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
    skipped=2
    grep -v '"template": "llama3"' tests/fixtures/chat_templates/golden.jsonl > build/golden_no_llama3.jsonl
    run "chat template golden (qwen3, alpaca)" ./csft tokenize --tokenizer qwen3=$qwen --tokenizer alpaca=$qwen \
        --check build/golden_no_llama3.jsonl
fi
if [ $skipped -gt 0 ]; then
    echo "cli_goldens: $passed passed, $failed failed, $skipped skipped"
else
    echo "cli_goldens: $passed passed, $failed failed"
fi
[ $failed -eq 0 ]
