#!/usr/bin/env bash
# MindSpore .ckpt through the commands a user runs: `csft convert` .ckpt -> HF -> .ckpt is
# byte-identical to the fixture; the HF folder it writes holds the HF fixture's exact tensors;
# (reference-check --weights on it passes); `csft reference-check --weights X.ckpt` passes on the qwen2-tiny reference; a training-state
# .ckpt converts (optimizer moments skipped and counted); encrypted and truncated files and bad
# usage are refused with their messages.
set -u
passed=0 failed=0
T=build/tmp_ckpt_cli
rm -rf $T && mkdir -p $T
CK=tests/fixtures/mindspore/ckpt
HF=tests/fixtures/hf/qwen2-tiny
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
expect_ok() { # description, command...
    local what=$1
    shift
    if out=$("$@" 2>&1); then ok; else printf '%s\n' "$out" | tail -5; bad "$what"; fi
}
expect_fail() { # description, message substring, command...
    local what=$1 msg=$2
    shift 2
    if out=$("$@" 2>&1); then bad "$what (succeeded)"; elif printf '%s' "$out" | grep -qF -- "$msg"; then ok; else
        printf '%s\n' "$out" | tail -3
        bad "$what (message lacks '$msg')"
    fi
}
expect_ok "ckpt -> HF" ./csft convert $CK/qwen2-tiny.ckpt $T/hf --config $HF/config.json
expect_ok "HF -> ckpt" ./csft convert $T/hf $T/rt.ckpt
if cmp -s $T/rt.ckpt $CK/qwen2-tiny.ckpt; then ok; else bad "ckpt -> HF -> ckpt is not byte-identical"; fi
expect_ok "reference-check with the .ckpt" ./csft reference-check --weights $CK/qwen2-tiny.ckpt $HF
expect_ok "reference-check with the converted folder" ./csft reference-check --weights $T/hf $HF
# bf16 + crc + sliced -> HF bf16 -> ckpt bf16 with crc: same values (one slice, so not the same bytes)
expect_ok "bf16 ckpt -> HF" ./csft convert $CK/qwen2-tiny-bf16-crc.ckpt $T/hf16 --config $HF/config.json
grep -qE '"torch_dtype":[[:space:]]*"bfloat16"' $T/hf16/config.json && ok || bad "bf16 folder config"
expect_ok "HF bf16 -> ckpt --crc" ./csft convert $T/hf16 $T/rt16.ckpt --crc
expect_ok "bf16 round trip converts again" ./csft convert $T/rt16.ckpt $T/hf16b --config $HF/config.json
if cmp -s $T/hf16/model.safetensors $T/hf16b/model.safetensors; then ok; else bad "bf16 round trip changed values"; fi
out=$(./csft convert $CK/qwen2-tiny-train.ckpt $T/hftrain --config $HF/config.json 2>&1)
printf '%s' "$out" | grep -q "skipped 60 entries that are not model weights" && ok || { echo "$out"; bad "train ckpt skip count"; }
# config.json beside the file / rank_0 folder layout
mkdir -p $T/run/rank_0 && cp $CK/qwen2-tiny.ckpt $T/run/rank_0/qwen2_rank_0-1_2.ckpt && cp $HF/config.json $T/run/
expect_ok "rank_0 folder -> HF" ./csft convert $T/run $T/hf_run
if cmp -s $T/hf_run/model.safetensors $T/hf/model.safetensors; then ok; else bad "rank_0 folder conversion differs"; fi
cp $CK/qwen2-tiny.ckpt $T/run/rank_0/qwen2_rank_0-1_4.ckpt
expect_fail "two ckpts, no meta.json" "no meta.json naming the last one" ./csft convert $T/run $T/x
echo '{"last_epoch":1,"last_step":4,"last_ckpt_file":"qwen2_rank_0-1_4.ckpt"}' > $T/run/rank_0/meta.json
expect_ok "meta.json picks the file" ./csft convert $T/run $T/hf_meta
# rank_0 of a distributed save (only part of the model): the message says so
mkdir -p $T/split/rank_0 $T/split/rank_1 && cp $CK/edge-cases.ckpt $T/split/rank_0/x_rank_0-1_1.ckpt && cp $HF/config.json $T/split/
expect_fail "partial rank_0" "rank_0 of a distributed save holds only its part of the model" ./csft convert $T/split $T/x
expect_fail "encrypted" "the checkpoint is encrypted (AES-GCM" ./csft convert $CK/qwen2-tiny-encrypted.ckpt $T/x --config $HF/config.json
expect_fail "truncated" "truncated: entry 11" ./csft convert $CK/qwen2-tiny-truncated.ckpt $T/x --config $HF/config.json
expect_fail "no shape" "holds no model shape" ./csft convert $CK/qwen2-tiny.ckpt $T/x
expect_fail "HF -> non-ckpt name" "DST must be a .ckpt file name" ./csft convert $HF $T/out_dir
expect_fail "bad dtype" "--dtype: expected float32" ./csft convert $HF $T/x.ckpt --dtype int8
expect_fail "missing source" "neither a .ckpt file" ./csft convert $T/nope $T/x.ckpt
echo "ckpt_cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
