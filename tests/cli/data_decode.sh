#!/bin/sh
# herd data decode gives back the bytes that encode / tokenize read; the
# special tokens' texts come from a family (--specials llama3.1) or a Hugging
# Face tokenizer.json / tokenizer_config.json; bad ids, ranges, families and
# JSON files fail with a message naming the file and the field.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP data_decode: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# expect_error NAME STATUS TEXT ARGS...: herd data ARGS exits with STATUS and
# stderr contains TEXT.
expect_error() {
    name=$1; want=$2; text=$3; shift 3
    $herd data "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then fail "$name" "exit status $rc, expected $want: $(cat "$tmp/err")"; return; fi
    if ! grep -qF -- "$text" "$tmp/err"; then fail "$name" "stderr lacks '$text': $(cat "$tmp/err")"; return; fi
    pass "$name"
}

cat /usr/share/common-licenses/GPL-3 >"$tmp/corpus.txt"
if ! $herd data train-tokenizer --vocab-size 300 --out "$tmp/r.tik" "$tmp/corpus.txt" >"$tmp/log" 2>&1; then
    echo "FAIL data_decode_train: $(cat "$tmp/log")"; exit 1
fi
n=300 # regular tokens; the specials are ids 300..555

# encode then decode: the same bytes (UTF-8, a tab, no final newline)
printf 'Hello,\twörld: 12345 ünïcode — done' >"$tmp/a.txt"
$herd data encode --tokenizer "$tmp/r.tik" "$tmp/a.txt" >"$tmp/a.ids"
$herd data decode --tokenizer "$tmp/r.tik" --ids "$tmp/a.ids" >"$tmp/a.back"
if cmp -s "$tmp/a.txt" "$tmp/a.back"; then pass data_decode_roundtrip_ids
else fail data_decode_roundtrip_ids "$(od -c "$tmp/a.back" | head -3)"; fi
# shellcheck disable=SC2046
$herd data decode --tokenizer "$tmp/r.tik" $(cat "$tmp/a.ids") >"$tmp/a.back2"
if cmp -s "$tmp/a.txt" "$tmp/a.back2"; then pass data_decode_roundtrip_args
else fail data_decode_roundtrip_args "$(od -c "$tmp/a.back2" | head -3)"; fi

# the families' texts: llama3's +8 is reserved, llama3.1's is <|eom_id|>
got=$($herd data decode --tokenizer "$tmp/r.tik" $((n + 8)) $((n + 9)) $((n + 255)))
want='<|reserved_special_token_4|><|eot_id|><|reserved_special_token_250|>'
[ "$got" = "$want" ] && pass data_decode_llama3 || fail data_decode_llama3 "got $got"
got=$($herd data decode --tokenizer "$tmp/r.tik" --specials llama3.1 $((n + 4)) $((n + 5)) $((n + 8)) \
    $((n + 9)) $((n + 10)) $((n + 11)) $((n + 255)))
want='<|finetune_right_pad_id|><|step_id|><|eom_id|><|eot_id|><|python_tag|><|reserved_special_token_2|><|reserved_special_token_246|>'
[ "$got" = "$want" ] && pass data_decode_llama31 || fail data_decode_llama31 "got $got"
printf 'a<|python_tag|>b' >"$tmp/s.txt"
got=$($herd data encode --tokenizer "$tmp/r.tik" --specials llama3.2 --special "$tmp/s.txt")
[ "$got" = "97 $((n + 10)) 98" ] && pass data_encode_llama32_special || fail data_encode_llama32_special "got $got"
got=$($herd data encode --tokenizer "$tmp/r.tik" --special "$tmp/s.txt" | wc -w)
[ "$got" -gt 3 ] && pass data_encode_llama3_no_python_tag || fail data_encode_llama3_no_python_tag "$got ids"

# a tokenizer_config.json (added_tokens_decoder, eos_token) and a tokenizer.json (added_tokens)
/usr/bin/python3 - "$tmp" "$n" <<'EOF'
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
names = {n + k: "<|reserved_special_token_%d|>" % k for k in range(256)}
names[n] = "<|begin_of_text|>"; names[n + 1] = "<|end_of_text|>"; names[n + 9] = "<|eot_id|>"
names[n + 7] = "<|my_tool|>"
dec = {str(i): {"content": t, "special": True} for i, t in names.items()}
json.dump({"added_tokens_decoder": dec, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
          open(tmp + "/tokenizer_config.json", "w"))
json.dump({"added_tokens": [{"id": i, "content": t} for i, t in names.items()]},
          open(tmp + "/tokenizer.json", "w"))
bad = dict(dec); del bad[str(n + 17)]
json.dump({"added_tokens_decoder": bad}, open(tmp + "/missing.json", "w"))
bad = dict(dec); bad[str(n - 1)] = {"content": "<|x|>"}
json.dump({"added_tokens_decoder": bad}, open(tmp + "/low.json", "w"))
bad = dict(dec); bad[str(n + 3)] = {"content": "<|eot_id|>"}
json.dump({"added_tokens_decoder": bad}, open(tmp + "/twice.json", "w"))
json.dump({"added_tokens_decoder": dec, "eos_token": "<|nope|>"}, open(tmp + "/eos.json", "w"))
json.dump({"added_tokens": [{"content": "<|x|>"}]}, open(tmp + "/noid.json", "w"))
json.dump({"vocab": {}}, open(tmp + "/none.json", "w"))
EOF
for f in tokenizer_config.json tokenizer.json; do
    got=$($herd data decode --tokenizer "$tmp/r.tik" --specials "$tmp/$f" $((n + 7)) $((n + 9)))
    [ "$got" = '<|my_tool|><|eot_id|>' ] && pass "data_decode_$f" || fail "data_decode_$f" "got $got"
done
printf '<|my_tool|>' >"$tmp/t.txt"
got=$($herd data encode --tokenizer "$tmp/r.tik" --specials "$tmp/tokenizer.json" --special "$tmp/t.txt")
[ "$got" = "$((n + 7))" ] && pass data_encode_json_special || fail data_encode_json_special "got $got"

# token shards: tokenize, then decode the whole shard or a range
printf 'first doc\0second doc' >"$tmp/docs.txt"
$herd data tokenize --tokenizer "$tmp/r.tik" --out "$tmp/s.bin" "$tmp/docs.txt" >/dev/null 2>&1
got=$($herd data decode --tokenizer "$tmp/r.tik" --shard "$tmp/s.bin")
[ "$got" = 'first doc<|end_of_text|>second doc<|end_of_text|>' ] && pass data_decode_shard ||
    fail data_decode_shard "got $got"
got=$($herd data decode --tokenizer "$tmp/r.tik" --shard "$tmp/s.bin" --start 0 --count 1)
[ -n "$got" ] && [ "$got" != 'first doc<|end_of_text|>second doc<|end_of_text|>' ] &&
    pass data_decode_shard_range || fail data_decode_shard_range "got $got"

expect_error data_decode_bad_id 1 'argument: id 0: "12x" is not a token id' decode --tokenizer "$tmp/r.tik" 12x
expect_error data_decode_big_id 1 "id 556 at index 1 is not below vocab_size 556" \
    decode --tokenizer "$tmp/r.tik" 5 556
printf '1 2\n3 -4\n' >"$tmp/bad.ids"
expect_error data_decode_bad_ids_file 1 "$tmp/bad.ids: id 3: \"-4\" is not a token id" \
    decode --tokenizer "$tmp/r.tik" --ids "$tmp/bad.ids"
expect_error data_decode_range 1 "--start 0 --count 1000 is outside the shard" \
    decode --tokenizer "$tmp/r.tik" --shard "$tmp/s.bin" --count 1000
expect_error data_decode_two_ways 2 "give the ids one way" \
    decode --tokenizer "$tmp/r.tik" --ids "$tmp/a.ids" 5
expect_error data_decode_no_tokenizer 2 "--tokenizer RANKS is required" decode 5
expect_error data_specials_family 1 'specials "llama4": not a tokenizer family' \
    decode --tokenizer "$tmp/r.tik" --specials llama4 5
expect_error data_specials_missing 1 "missing.json: added_tokens_decoder: no token with id $((n + 17))" \
    decode --tokenizer "$tmp/r.tik" --specials "$tmp/missing.json" 5
expect_error data_specials_low 1 "low.json: added_tokens_decoder.\"$((n - 1))\": id $((n - 1)) is not a special-token id" \
    decode --tokenizer "$tmp/r.tik" --specials "$tmp/low.json" 5
expect_error data_specials_twice 1 'twice.json: added_tokens_decoder."' \
    decode --tokenizer "$tmp/r.tik" --specials "$tmp/twice.json" 5
expect_error data_specials_eos 1 'eos.json: eos_token: "<|nope|>" is not one of the special tokens' \
    decode --tokenizer "$tmp/r.tik" --specials "$tmp/eos.json" 5
expect_error data_specials_noid 1 'noid.json: added_tokens[0]: no numeric "id"' \
    encode --tokenizer "$tmp/r.tik" --specials "$tmp/noid.json" "$tmp/a.txt"
expect_error data_specials_none 1 'none.json: neither added_tokens' \
    tokenize --tokenizer "$tmp/r.tik" --specials "$tmp/none.json" --out "$tmp/x.bin" "$tmp/a.txt"
expect_error data_specials_absent 1 "$tmp/nofile.json" \
    decode --tokenizer "$tmp/r.tik" --specials "$tmp/nofile.json" 5
[ ! -e "$tmp/x.bin" ] && pass data_specials_none_no_shard || fail data_specials_none_no_shard "x.bin written"

[ "$fails" -eq 0 ] || exit 1
