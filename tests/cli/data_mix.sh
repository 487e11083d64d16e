#!/bin/sh
# The data pipeline on the command line: clean -> train-tokenizer -> tokenize
# -> a data.sources mix read by `herd data sample`; and bad input (empty
# files, corrupt rank files, bad shards, bad weights) failing with a message
# that names the file and the field, and a non-zero exit.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP data_mix: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# expect NAME STATUS PATTERN ARGS...: herd ARGS exits STATUS with PATTERN on stderr
expect() {
    name=$1; want=$2; pattern=$3; shift 3
    "$herd" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then fail "$name" "exit $rc, expected $want: $(cat "$tmp/err")"; return; fi
    if ! grep -qF -- "$pattern" "$tmp/err"; then fail "$name" "stderr lacks '$pattern': $(cat "$tmp/err")"; return; fi
    pass "$name"
}

# ---- the pipeline -----------------------------------------------------------
# documents: the licences, one each, plus an exact copy and a near copy of one
for f in /usr/share/common-licenses/*; do [ -f "$f" ] && [ ! -L "$f" ] && { cat "$f"; printf '\0'; }; done >"$tmp/a.docs"
cat /usr/share/common-licenses/Apache-2.0 >>"$tmp/a.docs"; printf '\0' >>"$tmp/a.docs"
sed 's/Apache/Apachee/' /usr/share/common-licenses/Apache-2.0 >>"$tmp/a.docs"
if $herd data clean --report "$tmp/rep.json" --out "$tmp/a.clean" "$tmp/a.docs" >"$tmp/out" 2>"$tmp/err" &&
    grep -q '"step": "exact-dedup", "removed_docs": 1,' "$tmp/rep.json" &&
    grep -q '"step": "minhash-dedup", "removed_docs": [1-9]' "$tmp/rep.json"; then
    pass clean_removes_exact_and_near_copies
else fail clean_removes_exact_and_near_copies "$(cat "$tmp/err" "$tmp/rep.json" 2>/dev/null)"; fi

if $herd data train-tokenizer --vocab-size 600 --out "$tmp/tok.model" "$tmp/a.clean" >"$tmp/out" 2>"$tmp/err" &&
    [ "$(wc -l <"$tmp/tok.model")" -eq 600 ]; then pass train_tokenizer_600
else fail train_tokenizer_600 "$(cat "$tmp/err")"; fi

if $herd data tokenize --tokenizer "$tmp/tok.model" --out "$tmp/a.bin" --val "$tmp/a.val.bin" \
        --val-fraction 0.3 "$tmp/a.clean" >"$tmp/out" 2>"$tmp/err" &&
    $herd data inspect --docs 0 "$tmp/a.bin" >"$tmp/insp" 2>&1 &&
    grep -q 'vocab_size 856, eot_id 601' "$tmp/insp" && grep -q '^text_bytes [1-9]' "$tmp/a.val.bin.meta"; then
    pass tokenize_shards_with_special_ids
else fail tokenize_shards_with_special_ids "$(cat "$tmp/err" "$tmp/insp")"; fi

# the same shard as two sources of a mix, 3:1
cat >"$tmp/mix.yaml" <<YAML
model: {vocab_size: 856}
batch: {ramp: [{after_tokens: 0, batch_tokens: 512, seq_len: 32}]}
data:
  sources:
    - {name: big, path: $tmp/a.bin, val_path: $tmp/a.val.bin, weight: 3}
    - {name: small, path: $tmp/a.bin, weight: 1}
YAML
if $herd data sample --batches 100 "$tmp/mix.yaml" >"$tmp/out" 2>"$tmp/err" &&
    grep -q '^big .* 0.7500$' "$tmp/out" && grep -q '^small .* 0.2500$' "$tmp/out" &&
    grep -q '^validation big' "$tmp/out"; then pass sample_mix_3_to_1
else fail sample_mix_3_to_1 "$(cat "$tmp/out" "$tmp/err")"; fi

# ---- bad input ----------------------------------------------------------------
: >"$tmp/empty"
expect empty_text_train_tokenizer 1 "empty" data train-tokenizer --vocab-size 300 --out "$tmp/x.model" "$tmp/empty"
expect empty_text_tokenize 1 "empty" data tokenize --tokenizer "$tmp/tok.model" --out "$tmp/x.bin" "$tmp/empty"
expect empty_text_clean 1 "empty" data clean --out "$tmp/x.docs" "$tmp/empty"
expect empty_rank_file 1 "$tmp/empty: empty rank file" data tokenize --tokenizer "$tmp/empty" --out "$tmp/x.bin" "$tmp/a.clean"
head -n 100 "$tmp/tok.model" >"$tmp/bad.model"; echo 'not-base64! 100' >>"$tmp/bad.model"
expect corrupt_rank_file_base64 1 "bad.model: line 101: token: not valid base64" data encode --tokenizer "$tmp/bad.model" "$tmp/a.clean"
head -n 100 "$tmp/tok.model" >"$tmp/bad.model"; echo 'QUJD 7' >>"$tmp/bad.model"
expect corrupt_rank_file_rank 1 "line 101: rank: 7 where 100 was expected" data encode --tokenizer "$tmp/bad.model" "$tmp/a.clean"
sed 1d "$tmp/tok.model" >"$tmp/bad.model"
expect corrupt_rank_file_order 1 "line 1: rank: 1 where 0 was expected" data encode --tokenizer "$tmp/bad.model" "$tmp/a.clean"

# shards: a bad magic, and an id >= vocab_size (header: vocab 10, eot 9, 2 uint16 ids: 5, 11)
printf 'NOTASHARD' >"$tmp/magic.bin"; head -c 100 /dev/zero >>"$tmp/magic.bin"
printf 'HERDTOK\000\001\000\000\000\002\000\000\000\012\000\000\000\011\000\000\000\002\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' >"$tmp/id.bin"
head -c 24 /dev/zero >>"$tmp/id.bin"; printf '\005\000\013\000' >>"$tmp/id.bin"
mix() { # mix NAME STATUS PATTERN SOURCES-YAML
    printf 'model: {vocab_size: 856}\nbatch: {ramp: [{after_tokens: 0, batch_tokens: 512, seq_len: 32}]}\ndata:\n  sources: %s\n' "$4" >"$tmp/m.yaml"
    expect "$1" "$2" "$3" data sample --batches 2 "$tmp/m.yaml"
}
mix shard_bad_magic 1 "magic.bin: magic" "[{name: a, path: $tmp/magic.bin, weight: 1}]"
mix shard_id_beyond_vocab 1 "id.bin: tokens: id 11 at index 1 is not below vocab_size 10" "[{name: a, path: $tmp/id.bin, weight: 1}]"
mix weight_negative 1 "weight: -1 is out of range" "[{name: a, path: $tmp/a.bin, weight: 1}, {name: b, path: $tmp/a.bin, weight: -1}]"
mix weights_all_zero 1 "every weight is 0" "[{name: a, path: $tmp/a.bin, weight: 0}, {name: b, path: $tmp/a.bin, weight: 0}]"
mix source_names_twice 1 "both named 'a'" "[{name: a, path: $tmp/a.bin, weight: 1}, {name: a, path: $tmp/a.bin, weight: 1}]"
mix source_name_not_a_field 1 "name 'a\"b': use letters" "[{name: 'a\"b', path: $tmp/a.bin, weight: 1}]"
mix source_missing_shard 1 "nope.bin: file: cannot open" "[{name: a, path: $tmp/nope.bin, weight: 1}]"
[ "$fails" -eq 0 ]
