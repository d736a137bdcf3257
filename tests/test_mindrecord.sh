#!/usr/bin/env bash
# MindRecord through the commands a user runs: `csft data cat` on the MindSpore-written files
# (v2 shard group, v3) and the MindFormers-shaped files (mf/) against their expected rows;
# shard groups, folders, missing shards, encrypted and truncated files; `csft data stats` on the
# SFT schemas (trained-token counts from the fixture README).
set -u
passed=0 failed=0
fx=tests/fixtures/mindspore
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { if eval "$2"; then ok; else bad "$1"; fi; }

# mf/: every row exactly as the expected JSONL (written with Python's ", " / ": " separators)
for d in qwen2_qa llama_qa wiki; do
    sed 's/, /,/g; s/": /":/g' $fx/mindrecord/mf/$d/$d.mindrecord.jsonl > "$tmp/$d.want"
    check "data cat mf/$d (file)" "./csft data cat $fx/mindrecord/mf/$d/$d.mindrecord | cmp -s - $tmp/$d.want"
    check "data cat mf/$d (folder)" "./csft data cat $fx/mindrecord/mf/$d | cmp -s - $tmp/$d.want"
done
# v2: one file names its group of four; the folder gives the same 16 rows
for s in 0 2; do
    check "data cat v2 aclImdb.mindrecord$s" "./csft data cat $fx/mindrecord/v2/aclImdb.mindrecord$s | cmp -s - $fx/expected/aclImdb.jsonl"
done
check "data cat v2 folder" "./csft data cat $fx/mindrecord/v2 | cmp -s - $fx/expected/aclImdb.jsonl"
# v3: rows the fixture README spells out, and the row counts
./csft data cat $fx/mindrecord/v3/testdata > "$tmp/testdata.out"
check "testdata row 0" "head -1 $tmp/testdata.out | cmp -s - $fx/expected/testdata_rows.jsonl"
check "testdata 60 rows, 20 n" "[ \$(wc -l < $tmp/testdata.out) = 60 ] && [ \$(grep -c '\"attribute\":\"n\"' $tmp/testdata.out) = 20 ]"
row59=$(sed -n 60p "$tmp/testdata.out")
for kv in '"attribute":"e"' '"first_id":40,' '"second_id":210,' '"third_id":110,' '"type":0,' '"weight":1.0}' \
    '"edge_feature_2":[4.0]' '"edge_feature_index":[1,2]' '"node_feature_index":[-1]'; do
    check "testdata row 59 has $kv" "[[ \$row59 == *'$kv'* ]]"
done
./csft data cat $fx/mindrecord/v3/sns > "$tmp/sns.out"
check "sns rows 0 and 152" "sed -n '1p;153p' $tmp/sns.out | cmp -s - $fx/expected/sns_rows.jsonl"
check "sns 153 rows, 33 n" "[ \$(wc -l < $tmp/sns.out) = 153 ] && [ \$(grep -c '\"attribute\":\"n\"' $tmp/sns.out) = 33 ]"
check "data cat --offset/--limit" "[ \"\$(./csft data cat --offset 59 --limit 5 $fx/mindrecord/v3/testdata)\" = '$row59' ]"

# errors: a missing shard, an encrypted file, a truncated file, a folder without data files
mkdir "$tmp/one" && cp $fx/mindrecord/v2/aclImdb.mindrecord0 "$tmp/one/"
out=$(./csft data cat "$tmp/one/aclImdb.mindrecord0" 2>&1); rc=$?
check "missing shard refused" "[ \$rc = 1 ] && [[ \$out == *'aclImdb.mindrecord1'*'missing'* ]]"
check "a folder reads only the files it holds" "[ \$(./csft data cat $tmp/one | wc -l) = 4 ]"
{ head -c 100 $fx/mindrecord/v3/sns; printf '\0\0\0\0AES-GCMENCRYPT'; } > "$tmp/enc.mindrecord"
out=$(./csft data cat "$tmp/enc.mindrecord" 2>&1); rc=$?
check "encrypted file refused" "[ \$rc = 1 ] && [[ \$out == *'enc.mindrecord: encrypted MindRecord'* ]]"
head -c 50000 $fx/mindrecord/v3/sns > "$tmp/cut.mindrecord"
out=$(./csft data cat "$tmp/cut.mindrecord" 2>&1); rc=$?
check "truncated file refused" "[ \$rc = 1 ] && [[ \$out == *'cut.mindrecord: page 1 (RAW_DATA'*'past the end'* ]]"
mkdir "$tmp/empty"
out=$(./csft data stats --config /dev/null --set load_checkpoint=$tmp --set train_dataset.data_files=[$tmp/empty] \
    --set train_dataset.format=tokenized 2>&1); rc=$?
check "empty folder refused" "[ $rc = 1 ]"

# data stats: the SFT schemas as training sees them (numbers from the fixture README)
stats() { ./csft data stats --config /dev/null --set load_checkpoint=$tmp --set train_dataset.format=tokenized \
    --set train_dataset.seq_length=512 --set "train_dataset.data_files=[$1]" "${@:2}" 2>&1; }
out=$(stats $fx/mindrecord/mf/llama_qa)
check "llama_qa: labels trained tokens 2094" "[[ \$out == *'trained tokens'*' 2094 '* ]] && [[ \$out == *'tokens '*' 15400'* ]]"
out=$(stats $fx/mindrecord/mf/qwen2_qa/qwen2_qa.mindrecord)
# every non-pad token after the first (the first pad included), minus the two cut rows' last two
check "qwen2_qa: target_ids trained tokens 3502" "[[ \$out == *'trained tokens'*' 3502 '* ]] && [[ \$out == *'truncated'*' 2 '* ]]"

# the writer: the fixtures' rows, written in the same write calls, give the same bytes
mkdir "$tmp/w"
conv() { ./csft data convert --to mindrecord "$@" 2> "$tmp/conv.err" || cat "$tmp/conv.err"; }
conv --rows-per-write all --out "$tmp/w/testdata" $fx/mindrecord/v3/testdata
conv --rows-per-write all --out "$tmp/w/sns" $fx/mindrecord/v3/sns
conv --rows-per-write all --shards 4 --out "$tmp/w/aclImdb.mindrecord" $fx/mindrecord/v2/aclImdb.mindrecord1
for d in qwen2_qa llama_qa wiki; do conv --out "$tmp/w/$d.mindrecord" $fx/mindrecord/mf/$d; done
for f in v3/testdata v3/sns v2/aclImdb.mindrecord0 v2/aclImdb.mindrecord1 v2/aclImdb.mindrecord2 v2/aclImdb.mindrecord3 \
    mf/qwen2_qa/qwen2_qa.mindrecord mf/llama_qa/llama_qa.mindrecord mf/wiki/wiki.mindrecord; do
    check "convert reproduces $f byte for byte" "cmp -s $tmp/w/\$(basename $f) $fx/mindrecord/$f"
    # the .db: same rows (testdata.db's weight_0 is NUMERIC in the old build, REAL now: 1 vs 1.0)
    q='select * from SHARD_NAME; select * from INDEXES order by ROW_ID'
    check "convert writes the .db rows of $f" \
        "[ \"\$(sqlite3 $tmp/w/\$(basename $f).db \"$q\" | sed 's/\\.0\$//')\" = \"\$(sqlite3 $fx/mindrecord/$f.db \"$q\")\" ]"
done
# from JSON Lines with --schema: the expected rows of llama_qa give its bytes again
echo '{"input_ids":{"type":"int32","shape":[-1]},"labels":{"type":"int32","shape":[-1]}}' > "$tmp/schema.json"
mkdir "$tmp/j"
conv --schema "$tmp/schema.json" --desc qa --header-size 16384 --page-size 32768 \
    --out "$tmp/j/llama_qa.mindrecord" $fx/mindrecord/mf/llama_qa/llama_qa.mindrecord.jsonl
check "convert JSONL + --schema = llama_qa bytes" "cmp -s $tmp/j/llama_qa.mindrecord $fx/mindrecord/mf/llama_qa/llama_qa.mindrecord"
# round trips with an inferred schema (strings, int64, float32 lists, nested shapes, bytes) over 3 shards
./csft data cat $fx/mindrecord/v3/sns > "$tmp/sns.jsonl"
conv --shards 3 --rows-per-write all --header-size 16384 --page-size 32768 --out "$tmp/j/rt.mindrecord" "$tmp/sns.jsonl"
check "JSONL -> 3 shards -> data cat reads back identically" "./csft data cat $tmp/j/rt.mindrecord1 | cmp -s - $tmp/sns.jsonl"
check "3 shards named rt.mindrecord0..2" "[ -f $tmp/j/rt.mindrecord0 ] && [ -f $tmp/j/rt.mindrecord2.db ] && [ ! -f $tmp/j/rt.mindrecord3 ]"
printf '{"a":"x","b":[[1,2],[3,4]],"c":{"$bytes":"AAEC"},"d":[0.5,-0.25],"e":7,"f":2.5}\n' > "$tmp/small.jsonl"
conv --version 2.0 --no-db --header-size 16384 --page-size 32768 --out "$tmp/j/small" "$tmp/small.jsonl"
check "inferred schema round trip (v2.0, no .db)" "./csft data cat $tmp/j/small | cmp -s - $tmp/small.jsonl && [ ! -f $tmp/j/small.db ]"
out=$(./csft data convert --to mindrecord --out "$tmp/j/x" 2>&1); rc=$?
check "convert without input is a usage error" "[ \$rc = 2 ] && [[ \$out == *'--config'* ]]"
out=$(./csft data convert --to mindrecord --schema "$tmp/schema.json" --out "$tmp/j/bad" "$tmp/small.jsonl" 2>&1); rc=$?
check "convert refuses columns outside the schema" "[ \$rc = 1 ] && [[ \$out == *'small.jsonl: row 0: column \"a\" is not in the MindRecord schema'* ]]"
# --config: the configured dataset, tokenized, as MindFormers input_ids + labels; trains the same tokens
conv --header-size 16384 --page-size 1048576 --out "$tmp/j/tok.mindrecord" --config /dev/null --set load_checkpoint=$tmp \
    --set train_dataset.format=tokenized --set train_dataset.seq_length=512 --set "train_dataset.data_files=[$fx/mindrecord/mf/qwen2_qa]"
out=$(stats "$tmp/j/tok.mindrecord")
check "convert --config keeps the 3502 trained tokens" "[[ \$out == *'trained tokens'*' 3502 '* ]]"
check "convert --config rows are seq_length+1 long" "[ \$(./csft data cat --limit 1 $tmp/j/tok.mindrecord | grep -o , | wc -l) = 1025 ]"

# the tokenized cache: a second run reads it back (same counts)
cstats() { stats "$fx/mindrecord/mf/qwen2_qa/qwen2_qa.mindrecord" --set "train_dataset.cache_dir=$tmp/cache"; }
out1=$(cstats); out2=$(cstats)
check "cache_dir: miss then hit, same trained tokens" \
    "[[ \$out1 == *'miss, written'*' 3502 '* ]] && [[ \$out2 == *'cache '*'hit'*' 3502 '* ]]"
# many pages: 3,060 rows with raw fields in 32 KiB pages (several raw pages, groups shifted to new
# raw pages, many blob pages), written one row per call, 7 per call, and all at once: read back whole
for i in $(seq 20); do cat "$tmp/sns.jsonl"; done > "$tmp/many.jsonl"
for rpw in 1 7 all; do
    conv --rows-per-write $rpw --header-size 65536 --page-size 32768 \
        --out "$tmp/j/many$rpw" $fx/mindrecord/v3/sns "$tmp/many.jsonl"
    check "many pages (rows per write $rpw) read back" \
        "{ cat $tmp/sns.jsonl $tmp/many.jsonl; } | cmp -s - <(./csft data cat $tmp/j/many$rpw)"
done
check "many pages: several raw pages" "[ \$(head -c 70000 $tmp/j/many1 | grep -ao RAW_DATA | wc -l) -ge 4 ]"

# training from MindRecord = training from the same rows as JSONL (the qwen2-tiny reference batches)
ref=tests/fixtures/hf/qwen2-tiny/reference.json
rows() { sed -E "s/.*\"$1\": \[(\[\[[^\"]*\]\])\].*/\1/" "$ref" | sed -e 's/\], *\[/\n/g' | tr -d '[] '; }
paste -d'|' <(rows batches_input_ids) <(rows batches_labels) |
    awk -F'|' '{printf "{\"input_ids\": [%s], \"labels\": [%s]}\n", $1, $2}' > "$tmp/batches.jsonl"
mkdir "$tmp/mr"
conv --schema "$tmp/schema.json" --header-size 16384 --page-size 32768 --out "$tmp/mr/b.mindrecord" "$tmp/batches.jsonl"
train() { # $1: data_files entry, $2: output dir
    ./csft finetune --config /dev/null --set load_checkpoint=tests/fixtures/hf/qwen2-tiny --set seed=1 \
        --set "train_dataset.data_files=[$1]" --set train_dataset.format=tokenized --set train_dataset.shuffle=false \
        --set train_dataset.seq_length=64 --set runner_config.batch_size=2 --set runner_config.epochs=1 \
        --set optimizer.learning_rate=1.0e-3 --set logging_steps=1 --set tensorboard=false --set output_dir=$2 > $2.log 2>&1
}
train "$tmp/batches.jsonl" "$tmp/t_jsonl"
train "$tmp/mr" "$tmp/t_mr"
losses() { sed -E 's/.*"loss":([-0-9.e+]+).*/\1/' "$1/metrics.jsonl" 2> /dev/null; }
check "finetune on a MindRecord folder = on the same JSONL rows (3 steps, same losses)" \
    "[ \$(losses $tmp/t_mr | wc -l) = 3 ] && [ \"\$(losses $tmp/t_mr)\" = \"\$(losses $tmp/t_jsonl)\" ]"
echo "mindrecord_cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
