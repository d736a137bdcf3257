#!/usr/bin/env bash
# The demo: a small model made here, continued pretraining on a generated corpus, LoRA
# instruction tuning on a shipped dataset, and the before/after comparison. Needs no download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)" csft
export OMP_WAIT_POLICY=passive
rm -rf demo_out
echo "== 1. a random-weight Qwen2-style model with a 4122-token cut of the Qwen tokenizer"
./csft init-model --out demo_out/base --arch qwen2 --hidden 256 --layers 4 --heads 4 --kv-heads 2 --ffn 688 \
    --tokenizer tests/fixtures/tokenizer/qwen --tokenizer-vocab 4096 --seed 1
echo "== 2. continued pretraining on examples/demo/corpus.jsonl"
./csft train --config examples/demo/pretrain.yaml
echo "== 3. before LoRA: the pretrained model on the held-out instructions"
./csft eval --model demo_out/pretrained --data examples/demo/test.jsonl --set eval_dataset.chat_template=alpaca \
    | tee demo_out/eval_before.json
./csft predict --model demo_out/pretrained --chat-template alpaca --max-new-tokens 24 \
    --input-file examples/demo/test.jsonl --output-file demo_out/before.jsonl 2>&1 | tee demo_out/score_before.txt
echo "== 4. LoRA fine-tuning on examples/demo/train.jsonl"
./csft finetune --config examples/demo/lora.yaml
echo "== 5. after LoRA"
./csft eval --model demo_out/pretrained --adapter demo_out/lora --data examples/demo/test.jsonl \
    --set eval_dataset.chat_template=alpaca | tee demo_out/eval_after.json
./csft predict --model demo_out/pretrained --adapter demo_out/lora --chat-template alpaca --max-new-tokens 24 \
    --input-file examples/demo/test.jsonl --output-file demo_out/after.jsonl 2>&1 | tee demo_out/score_after.txt
bash scripts/demo_summary.sh demo_out
echo "merged model: ./csft merge --base demo_out/pretrained --adapter demo_out/lora --out demo_out/merged"
echo "report (open in a browser): demo_out/lora/report.html   (pretraining: demo_out/pretrained/report.html)"
