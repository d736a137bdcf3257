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
    --set train_dataset.seq_length=512 --set "train_dataset.data_files=[$1]" 2>&1; }
out=$(stats $fx/mindrecord/mf/llama_qa)
check "llama_qa: labels trained tokens 2094" "[[ \$out == *'trained tokens'*' 2094 '* ]] && [[ \$out == *'tokens '*' 15400'* ]]"
out=$(stats $fx/mindrecord/mf/qwen2_qa/qwen2_qa.mindrecord)
# every non-pad token after the first (the first pad included), minus the two cut rows' last two
check "qwen2_qa: target_ids trained tokens 3502" "[[ \$out == *'trained tokens'*' 3502 '* ]] && [[ \$out == *'truncated'*' 2 '* ]]"
echo "mindrecord_cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
