#!/bin/sh
# recipe_passkey.sh — synthetic needle-in-a-haystack: passkey retrieval accuracy of a
# checkpoint over a grid of context lengths x depths of the key (the Llama 3 paper's
# "needle in a haystack" grid; slurm/recipe_eval.sh runs it after each stage).
#
#   sh slurm/recipe_passkey.sh CHECKPOINT CONFIG TOKENIZER OUT.json [TRIALS]
#
# Lengths L: 1/8, 1/4, 1/2 and 1 x model.max_seq_len of CONFIG. Depths: 0, 25, 50,
# 75 and 100 % of the haystack. TRIALS prompts per length (default 50, rounded up to
# a multiple of the 5 depths), an equal share at each depth: filler sentences ("The
# grass is green. ..."), "The pass key is NNNNN. Remember it." before the filler unit
# at that depth, ending "What is the pass key? The pass key is". The number of filler
# units is computed from the tokenizer (the prompt's token count is measured with
# `herd data encode` for one and two units), so every prompt has at most L - 8 tokens
# and the 8 generated tokens fit in L. Greedy generation (`herd generate --raw
# --temperature 0`, 8 new tokens). A trial is right when its 5-digit key appears in
# the output (the keys of one length all differ, so one response cannot answer
# another's). Keys have five different digits, as in the training documents
# (herd data passkey). Chance is below 10^-4 (a given 5-digit string in 8 random tokens).
# Prompts longer than max_seq_len are skipped by herd generate and counted in
# "skipped". Writes
#   {"checkpoint": ..., "trials": T, "depths": [0, 25, 50, 75, 100],
#    "lengths": {"128": {"correct": c, "skipped": s, "accuracy": a, "tokens": n,
#                        "by_depth": {"0": {"correct": c, "trials": t, "accuracy": a}, ...}}, ...}}
# ("tokens": the longest prompt plus the generated tokens).
set -u
me=recipe_passkey.sh
die() { echo "$me: $*" >&2; exit 1; }
[ $# -ge 4 ] || die "usage: $me CHECKPOINT CONFIG TOKENIZER OUT.json [TRIALS]"
CK=$1; CFG=$2; TOK=$3; OUTJ=$4; TRIALS=${5:-50}
case $TRIALS in ''|*[!0-9]*) die "TRIALS: expected a positive integer, got '$TRIALS'" ;; esac
[ "$TRIALS" -ge 1 ] || die "TRIALS: expected a positive integer, got '$TRIALS'"
DEPTHS="0 25 50 75 100"; ND=5; NEW=8
PER=$(( (TRIALS + ND - 1) / ND )); TRIALS=$((PER * ND))
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
# prompt N_UNITS DEPTH_UNIT KEY: the haystack of N_UNITS filler units, the key before unit DEPTH_UNIT
prompt() {
    awk -v n="$1" -v d="$2" -v f="$filler" -v k="$3" \
        'BEGIN { s = ""; for (i = 0; i <= n; i++) { if (i == d) s = s "The pass key is " k ". Remember it. "; if (i < n) s = s f }
                 printf "%sWhat is the pass key? The pass key is", s }'
}
# distinct_key I: the I-th five-digit key of different digits, as herd_passkey_key
# (src/data/passkey.c) makes the training documents' keys
distinct_key() {
    awk -v i="$1" 'BEGIN { split("9 9 8 7 6", r, " "); k = ""
        for (p = 1; p <= 5; p++) { pick = i % r[p]; i = int(i / r[p])
            for (d = (p == 1); ; d++) if (!(d in u) && pick-- == 0) break
            u[d] = 1; k = k d }
        print k }'
}
ntok() { "$HERD_BIN" data encode --tokenizer "$TOK" "$1" | wc -w; }
prompt 1 0 12345 >"$w/p1"; prompt 2 0 12345 >"$w/p2"
t1=$(ntok "$w/p1") && t2=$(ntok "$w/p2") || die "$TOK: herd data encode failed"
unit=$((t2 - t1)); base=$((t1 - unit + 1)) # + 1: the BOS token of --raw
[ "$unit" -gt 0 ] || die "$TOK: a filler unit encodes to $unit tokens"
res=""
for div in 8 4 2 1; do
    L=$((maxlen / div))
    n_fill=$(( (L - NEW - base) / unit )); [ "$n_fill" -ge 1 ] || n_fill=1
    set --; keys=""
    t=0
    for dp in $DEPTHS; do
        du=$(( (dp * n_fill + 50) / 100 )); j=0
        while [ "$j" -lt "$PER" ]; do
            key=$(distinct_key $(( (L * 7919 + t * 104729) % 27216 )))
            set -- "$@" --prompt "$(prompt "$n_fill" "$du" "$key")"
            keys="$keys $dp:$key"; t=$((t + 1)); j=$((j + 1))
        done
    done
    "$HERD_BIN" generate "$CFG" --tokenizer "$TOK" --weights "$w/w.safetensors" --raw --temperature 0 \
        --max-new "$NEW" "$@" >"$w/out" 2>"$w/err" || die "herd generate failed at length $L: $(tail -n 2 "$w/err")"
    skipped=$(sed -n 's/.*: \([0-9]*\) of [0-9]* prompts skipped.*/\1/p' "$w/err"); skipped=${skipped:-0}
    cell=$(for dk in $keys; do
        if grep -q "${dk#*:}" "$w/out"; then echo "${dk%%:*} 1"; else echo "${dk%%:*} 0"; fi
    done | awk -v per="$PER" -v depths="$DEPTHS" '
        { c[$1] += $2; all += $2 }
        END { n = split(depths, d, " "); s = ""
              for (i = 1; i <= n; i++)
                  s = s sprintf("%s\"%s\": {\"correct\": %d, \"trials\": %d, \"accuracy\": %.3f}",
                                i > 1 ? ", " : "", d[i], c[d[i]], per, c[d[i]] / per)
              printf "%d|%s", all, s }')
    correct=${cell%%|*}
    done_n=$((TRIALS - skipped))
    acc=$(awk -v c="$correct" -v n="$done_n" 'BEGIN { printf "%.3f", (n > 0) ? c / n : 0 }')
    res="$res${res:+, }\"$L\": {\"correct\": $correct, \"skipped\": $skipped, \"accuracy\": $acc, \"tokens\": $((base + n_fill * unit + NEW)), \"by_depth\": {${cell#*|}}}"
done
printf '{"checkpoint": "%s", "trials": %d, "depths": [%s], "lengths": {%s}}\n' "$CK" "$TRIALS" \
    "$(echo $DEPTHS | sed 's/ /, /g')" "$res" >"$OUTJ"
cat "$OUTJ"
