#!/usr/bin/env bash
# scripts/demo_summary.sh (the end of `make demo`) exits 0 on a large predictions file: the
# `grep | head` it once used died of SIGPIPE under pipefail (make error 141).
set -u
passed=0 failed=0
d=build/tmp_demo
rm -rf $d && mkdir -p $d
for i in $(seq 1 20000); do
    echo "{\"prompt\":\"q$i\",\"prediction\":\"a$i\",\"exact_match\":$([ $((i % 3)) -eq 0 ] && echo false || echo true)}"
done > $d/after.jsonl
echo '{"eval_loss": 2.5, "eval_tokens": 10}' > $d/eval_before.json
echo '{"eval_loss": 1.25, "eval_tokens": 10}' > $d/eval_after.json
echo 'exact match: 3/50 (6.0%)' > $d/score_before.txt
echo 'exact match: 22/50 (44.0%)' > $d/score_after.txt
out=$(bash scripts/demo_summary.sh $d 2>&1); rc=$?
if [ $rc -eq 0 ]; then passed=$((passed + 1)); else echo "FAIL: demo_summary.sh exit $rc"; failed=$((failed + 1)); fi
n_true=$(printf '%s\n' "$out" | grep -c '"exact_match":true')
n_false=$(printf '%s\n' "$out" | grep -c '"exact_match":false')
if [ "$n_true" -eq 4 ] && [ "$n_false" -eq 2 ] &&
    printf '%s\n' "$out" | grep -q 'before: 2.5   after: 1.25' &&
    printf '%s\n' "$out" | grep -q 'before: 3/50 (6.0%)   after: 22/50 (44.0%)'; then
    passed=$((passed + 1))
else
    printf '%s\n' "$out" | tail -12
    echo "FAIL: demo summary content ($n_true right, $n_false wrong samples)"
    failed=$((failed + 1))
fi
rm -rf $d
echo "demo_summary: $passed passed, $failed failed"
[ $failed -eq 0 ]
