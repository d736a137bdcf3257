#!/usr/bin/env bash
# What HF's trainers leave beside a saved model, checked: a model card (README.md: base model,
# method, data, hyper-parameters, final losses equal to the last logged ones) and the chat
# template used in training, saved where transformers reads it (chat_template.jinja when the
# tokenizer has one, else tokenizer_config.json); the Alpaca prompt (no template) adds none.
set -u
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
d=build/tmp_hf_files
rm -rf $d && mkdir -p $d
m=tests/fixtures/example_model
msgs=tests/fixtures/datasets/messages.jsonl
printf '{%% for m in messages %%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%% endfor %%}{%% if add_generation_prompt %%}<|im_start|>assistant\n{%% endif %%}' > $d/t.jinja
common=(--set "train_dataset.data_files=[$msgs]" --set train_dataset.seq_length=256 --set runner_config.max_steps=2
    --set logging_steps=1 --set save_steps=0 --set tensorboard=false)

# 1. LoRA with a template file, periodic eval: the card and chat_template.jinja (the model has one)
./csft finetune "${common[@]}" --set load_checkpoint=$m --set output_dir=$d/lora --set train_dataset.chat_template=$d/t.jinja \
    --set model.model_config.pet_config.pet_type=lora --set model.model_config.pet_config.lora_rank=4 \
    --set "eval_dataset.data_files=[$msgs]" --set eval_dataset.chat_template=$d/t.jinja --set eval_dataset.seq_length=256 \
    > $d/lora.log 2>&1 || fail "lora run: $(tail -2 $d/lora.log)"
card=$d/lora/README.md
loss=$(sed -nE 's/^\{"step":2,"epoch":[^,]*,"loss":([0-9.]+).*/\1/p' $d/lora/metrics.jsonl)
eval=$(sed -nE 's/^\{"step":2,"eval_loss":([0-9.]+).*/\1/p' $d/lora/metrics.jsonl)
want_loss=$(awk -v x="$loss" 'BEGIN { printf "%.4f", x }') want_eval=$(awk -v x="$eval" 'BEGIN { printf "%.4f", x }')
if [ -f $card ] && head -1 $card | grep -q '^---$' && grep -q "^base_model: \"$m\"$" $card &&
    grep -q '^library_name: peft$' $card && grep -q 'LoRA: r 4, lora_alpha 16' $card && grep -q "^- \`$msgs\`$" $card &&
    grep -q "final training loss: $want_loss (step 2)" $card && grep -q "final eval loss: $want_eval" $card &&
    grep -q '| learning_rate | ' $card && grep -q "chat template $d/t.jinja" $card; then ok; else
    fail "LoRA model card (loss $want_loss, eval $want_eval):"; cat $card 2>/dev/null | head -40; fi
if cmp -s $d/t.jinja $d/lora/chat_template.jinja; then ok; else fail "chat_template.jinja is not the template trained with"; fi

# 2. full fine-tuning, chatml, a tokenizer without chat_template.jinja: tokenizer_config.json gets it
cp -r $m $d/model && rm $d/model/chat_template.jinja
./csft finetune "${common[@]}" --set load_checkpoint=$d/model --set output_dir=$d/full --set train_dataset.chat_template=chatml \
    > $d/full.log 2>&1 || fail "full run: $(tail -2 $d/full.log)"
if grep -qF '"chat_template":	"{%- for message in messages %}\n    {{- '"'"'<|im_start|>'"'"' + message.role' $d/full/tokenizer_config.json &&
    [ ! -f $d/full/chat_template.jinja ] && grep -q '^library_name: transformers$' $d/full/README.md &&
    grep -q 'Full fine-tuning' $d/full/README.md && grep -q '"eos_token"' $d/full/tokenizer_config.json; then ok; else
    fail "full: chat template in tokenizer_config.json / card"; grep -c chat_template $d/full/tokenizer_config.json; fi

# 3. the Alpaca prompt is not a chat template: the tokenizer files stay as they were
./csft finetune "${common[@]}" --set load_checkpoint=$d/model --set output_dir=$d/alp --set train_dataset.chat_template=alpaca \
    --set "train_dataset.data_files=[tests/fixtures/datasets/alpaca.jsonl]" > $d/alp.log 2>&1 || fail "alpaca run: $(tail -2 $d/alp.log)"
if cmp -s $d/model/tokenizer_config.json $d/alp/tokenizer_config.json && grep -q 'chat template alpaca' $d/alp/README.md; then ok; else
    fail "alpaca run changed tokenizer_config.json"; fi

echo "hf_files: $passed passed, $failed failed"
[ $failed -eq 0 ]
