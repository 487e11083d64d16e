#!/bin/sh
# recipe_passkey.sh — synthetic needle-in-a-haystack: passkey retrieval accuracy of a
# checkpoint at several context lengths (slurm/recipe_eval.sh runs it after each stage).
#
#   sh slurm/recipe_passkey.sh CHECKPOINT CONFIG TOKENIZER OUT.json [TRIALS]
#
# For each length L in 1/8, 1/4, 1/2 and 1 x model.max_seq_len of CONFIG, TRIALS
# prompts (default 4): filler sentences of about L - 32 tokens (2.4 bytes per token assumed:
# the lengths are approximate) with "The pass key is NNNNN. Remember it." at a
# different depth in each, ending "What is the pass key? The pass key is"; greedy
# generation (`herd generate --raw --temperature 0`, 8 new tokens). A trial is right
# when its 5-digit key appears in the output (the keys differ, so one response
# cannot answer another's). Prompts longer than max_seq_len are skipped by herd
# generate and counted in "skipped". Writes
#   {"checkpoint": ..., "trials": T, "lengths": {"128": {"correct": c, "skipped": s, "accuracy": a}, ...}}
set -u
me=recipe_passkey.sh
die() { echo "$me: $*" >&2; exit 1; }
[ $# -ge 4 ] || die "usage: $me CHECKPOINT CONFIG TOKENIZER OUT.json [TRIALS]"
CK=$1; CFG=$2; TOK=$3; OUTJ=$4; TRIALS=${5:-4}
HERD_ROOT=${HERD_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
HERD_BIN=${HERD_BIN:-$HERD_ROOT/build/herd}
[ -d "$CK" ] || die "$CK: checkpoint directory does not exist"
[ -f "$TOK" ] || die "$TOK: tokenizer does not exist (make demo-data)"
maxlen=$("$HERD_BIN" config "$CFG" | awk '$1 == "max_seq_len:" {print $2; exit}')
[ -n "$maxlen" ] || die "$CFG: model.max_seq_len not found"
w=$(mktemp -d) || die "cannot make a temporary directory"
trap 'rm -rf "$w"' EXIT
"$HERD_BIN" ckpt export "$CK" "$w/w.safetensors" >/dev/null || die "$CK: herd ckpt export failed"
filler="The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
res=""
for div in 8 4 2 1; do
    L=$((maxlen / div))
    n_fill=$(( (L - 32) * 12 / 5 / ${#filler} )); [ "$n_fill" -ge 2 ] || n_fill=2
    set --; keys=""
    t=0
    while [ "$t" -lt "$TRIALS" ]; do
        key=$(( 10000 + (L * 7919 + t * 104729) % 90000 ))
        depth=$(( (t * n_fill) / TRIALS ))
        text=$(awk -v n="$n_fill" -v d="$depth" -v f="$filler" -v k="$key" \
            'BEGIN { s = ""; for (i = 0; i < n; i++) { if (i == d) s = s "The pass key is " k ". Remember it. "; s = s f }
                     printf "%sWhat is the pass key? The pass key is", s }')
        set -- "$@" --prompt "$text"
        keys="$keys $key"; t=$((t + 1))
    done
    "$HERD_BIN" generate "$CFG" --tokenizer "$TOK" --weights "$w/w.safetensors" --raw --temperature 0 \
        --max-new 8 "$@" >"$w/out" 2>"$w/err" || die "herd generate failed at length $L: $(tail -n 2 "$w/err")"
    correct=0
    for k in $keys; do grep -q "$k" "$w/out" && correct=$((correct + 1)); done
    skipped=$(sed -n 's/.*: \([0-9]*\) of [0-9]* prompts skipped.*/\1/p' "$w/err"); skipped=${skipped:-0}
    done_n=$((TRIALS - skipped))
    acc=$(awk -v c="$correct" -v n="$done_n" 'BEGIN { printf "%.3f", (n > 0) ? c / n : 0 }')
    res="$res${res:+, }\"$L\": {\"correct\": $correct, \"skipped\": $skipped, \"accuracy\": $acc}"
done
printf '{"checkpoint": "%s", "trials": %d, "lengths": {%s}}\n' "$CK" "$TRIALS" "$res" >"$OUTJ"
cat "$OUTJ"
