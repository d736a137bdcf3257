#!/usr/bin/env bash
# The demo's closing report from its output folder ($1, default demo_out): sample predictions
# and the before/after eval loss and exact match. Separate from demo.sh so tests/test_demo.sh
# can run it on a made-up folder. Never `grep | head` here: under pipefail, head closing the
# pipe early kills grep with SIGPIPE and the demo would end with status 141.
set -euo pipefail
d=${1:-demo_out}
echo "== samples (after LoRA): some right, some wrong"
awk '/"exact_match":true/ && n++ < 4' "$d/after.jsonl"
awk '/"exact_match":false/ && n++ < 2' "$d/after.jsonl"
echo "== summary"
echo "held-out eval loss  before: $(sed -E 's/.*"eval_loss": ([0-9.]+).*/\1/' "$d/eval_before.json")" \
     "  after: $(sed -E 's/.*"eval_loss": ([0-9.]+).*/\1/' "$d/eval_after.json")"
echo "exact match         before: $(grep -o '[0-9]*/[0-9]* ([0-9.]*%)' "$d/score_before.txt")" \
     "  after: $(grep -o '[0-9]*/[0-9]* ([0-9.]*%)' "$d/score_after.txt")"
