#!/bin/sh
# herd data: prepare turns text into shards that inspect reads back; a missing,
# short, truncated or foreign shard fails with a message that names the file
# and the field; usage mistakes exit 2.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP data_cli: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# has FILE "PATTERN...": FILE contains every |-separated fixed string of PATTERN
has() {
    file=$1; old_ifs=$IFS; IFS='|'
    for p in $2; do
        if ! grep -qF -- "$p" "$file"; then IFS=$old_ifs; missing=$p; return 1; fi
    done
    IFS=$old_ifs
}

# expect_error NAME STATUS "PATTERN..." ARGS...: herd data ARGS exits with
# STATUS, and stderr contains every pattern.
expect_error() {
    name=$1; want=$2; patterns=$3; shift 3
    $herd data "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then fail "$name" "exit status $rc, expected $want: $(cat "$tmp/err")"; return; fi
    if ! has "$tmp/err" "$patterns"; then fail "$name" "stderr lacks '$missing': $(cat "$tmp/err")"; return; fi
    pass "$name"
}

printf 'Hello, herd.\nA second line.\n' >"$tmp/a.txt"
printf 'Another document,\twith a tab.\n' >"$tmp/b.txt"
printf 'A third one.\n' >"$tmp/c.txt"

# prepare and inspect: 3 documents of 28, 30 and 13 bytes, each with its EOT
if $herd data prepare --out "$tmp/train.bin" "$tmp/a.txt" "$tmp/b.txt" "$tmp/c.txt" \
        >"$tmp/out" 2>"$tmp/err" &&
    has "$tmp/out" "3 documents, 74 tokens" &&
    $herd data inspect "$tmp/train.bin" >"$tmp/inspect" 2>>"$tmp/err" &&
    has "$tmp/inspect" "version 1|dtype_bytes 2 (uint16)|vocab_size 258|eot_id 257|n_tokens 74|n_docs 3" &&
    has "$tmp/inspect" 'doc 0: "Hello, herd.\nA second line.\n" (29 tokens)|doc 1: "Another document,\twith a tab.\n"'; then
    pass data_prepare_inspect
else
    fail data_prepare_inspect "$(cat "$tmp/out" "$tmp/inspect" "$tmp/err" 2>/dev/null)"
fi

# --val: the last document goes to the validation shard
if $herd data prepare --out "$tmp/t.bin" --val "$tmp/v.bin" --val-fraction 0.2 \
        "$tmp/a.txt" "$tmp/b.txt" "$tmp/c.txt" >"$tmp/out" 2>"$tmp/err" &&
    $herd data inspect "$tmp/v.bin" >"$tmp/inspect" 2>>"$tmp/err" &&
    has "$tmp/inspect" 'n_tokens 14, n_docs 1|doc 0: "A third one.\n"'; then
    pass data_prepare_val
else
    fail data_prepare_val "$(cat "$tmp/out" "$tmp/inspect" "$tmp/err" 2>/dev/null)"
fi

# a file over 64 KiB is cut at blank lines into ~16 KiB documents
awk 'BEGIN { for (i = 0; i < 4000; i++) printf "Paragraph %d of a long file.\n\n", i }' >"$tmp/long.txt"
if $herd data prepare --out "$tmp/long.bin" "$tmp/long.txt" >"$tmp/out" 2>"$tmp/err" &&
    $herd data inspect --docs 0 "$tmp/long.bin" >"$tmp/inspect" 2>>"$tmp/err" &&
    docs=$(sed -n 's/.*n_docs \([0-9]*\).*/\1/p' "$tmp/inspect") && [ "$docs" -ge 6 ] && [ "$docs" -le 9 ]; then
    pass data_prepare_splits_long_files
else
    fail data_prepare_splits_long_files "$(cat "$tmp/out" "$tmp/inspect" "$tmp/err" 2>/dev/null)"
fi

# bad shards: the message names the file and the field
expect_error data_inspect_missing 1 "$tmp/nope.bin|file|No such file" inspect "$tmp/nope.bin"
size=$(wc -c <"$tmp/train.bin")
head -c $((size - 10)) "$tmp/train.bin" >"$tmp/truncated.bin"
expect_error data_inspect_truncated 1 "$tmp/truncated.bin|n_tokens|truncated: header says 74 tokens (212 bytes) but the file has 202 bytes" \
    inspect "$tmp/truncated.bin"
head -c 20 "$tmp/train.bin" >"$tmp/short.bin"
expect_error data_inspect_short_header 1 "$tmp/short.bin|header|shorter than the 64-byte header" inspect "$tmp/short.bin"
expect_error data_inspect_text_file 1 "$tmp/a.txt|header" inspect "$tmp/a.txt"  # 28 bytes: no room for a header
head -c 100 /dev/zero >"$tmp/zeros.bin"
expect_error data_inspect_bad_magic 1 "$tmp/zeros.bin|magic|not a herd token shard" inspect "$tmp/zeros.bin"

# input problems and usage
expect_error data_prepare_missing_input 1 "$tmp/nope.txt|cannot open" prepare --out "$tmp/x.bin" "$tmp/nope.txt"
expect_error data_prepare_directory_input 1 "$tmp|cannot read" prepare --out "$tmp/x.bin" "$tmp"
expect_error data_prepare_val_one_document 1 "too few" prepare --out "$tmp/x.bin" --val "$tmp/y.bin" "$tmp/a.txt"
expect_error data_prepare_no_out 2 "--out|usage" prepare "$tmp/a.txt"
expect_error data_prepare_no_files 2 "no input FILE|usage" prepare --out "$tmp/x.bin"
expect_error data_prepare_bad_fraction 2 "--val-fraction" prepare --out "$tmp/x.bin" --val "$tmp/y.bin" --val-fraction 1.5 "$tmp/a.txt"
expect_error data_unknown_subcommand 2 "frobnicate|usage" frobnicate
expect_error data_no_subcommand 2 "usage"
if [ -e "$tmp/x.bin" ] || ls "$tmp" | grep -q '\.tmp\.'; then
    fail data_failures_write_nothing "$(ls "$tmp")"
else
    pass data_failures_write_nothing
fi

# a tokenizer given as a directory: the message names it and says what to give
mkdir "$tmp/tokdir"
expect_error data_encode_tokenizer_dir 1 "$tmp/tokdir: is a directory|rank file" \
    encode --tokenizer "$tmp/tokdir" "$tmp/a.txt"

# a rank file whose token repeats an earlier one: the line of each.
# Lines 1-256 are the 256 bytes (ranks 0-255); line 257 repeats byte 0x41 ('A').
/usr/bin/python3 -c '
import base64, sys
lines = [base64.b64encode(bytes([b])).decode() + " %d" % b for b in range(256)]
lines.append(base64.b64encode(b"A").decode() + " 256")
sys.stdout.write("\n".join(lines) + "\n")' >"$tmp/dup.tiktoken"
expect_error data_tokenizer_repeated_token 1 "dup.tiktoken: line 257: token: rank 256 repeats the bytes of rank 65 (line 66)" \
    encode --tokenizer "$tmp/dup.tiktoken" "$tmp/a.txt"

[ "$fails" -eq 0 ]
