#!/bin/sh
# post_table.sh — post-training's held-out accuracy over seeds: one row per
# model of the rounds (pretrained, round 0's SFT, each later round's SFT, DPO,
# average and control), mean ± sample standard deviation (min..max, n) over the
# seed directories given, then each round's gain over its control per seed.
#
#   sh slurm/post_table.sh SEED_DIR...      (each holds round0/, round1/, ...)
#
# A round's eval.tsv (slurm/post_train_round.sh) gives the "exact" column;
# where every seed has roundR/eval_restated.tsv (scripts/post_seeds.sh: the
# right number, restated) a second column shows it. The reward model's
# accuracy on held-out pairs comes from each round's log.txt where it is there.
set -eu
[ $# -ge 1 ] || { echo "usage: post_table.sh SEED_DIR..." >&2; exit 2; }
for d in "$@"; do
    [ -f "$d/round0/eval.tsv" ] || { echo "post_table.sh: $d/round0/eval.tsv: not found (no finished round 0)" >&2; exit 1; }
done

# mean ± sd (min..max, n) of the numbers on stdin, one a line
stat() { awk '{ s += $1; q += $1 * $1; if (NR == 1 || $1 < lo) lo = $1; if (NR == 1 || $1 > hi) hi = $1 }
              END { if (!NR) { printf "-"; exit }
                    m = s / NR; v = NR > 1 ? (q - NR * m * m) / (NR - 1) : 0; if (v < 0) v = 0
                    printf "%.3f ± %.3f (%.3f..%.3f, n %d)", m, sqrt(v), lo, hi, NR }'; }
# acc SEED_DIR ROUND FILE-NAME TSV: the accuracy of ROUND's model FILE-NAME in TSV
acc() { [ -f "$1/$2/$4" ] && awk -F'\t' -v f="/$2/$3" 'NR > 1 && index($1, f) { print $2 }' "$1/$2/$4"; }
# the pretrained model: round 0's first line
pre() { [ -f "$1/round0/$2" ] && awk -F'\t' 'NR == 2 { print $2 }' "$1/round0/$2"; }
restated=1
for d in "$@"; do [ -f "$d/round0/eval_restated.tsv" ] || restated=0; done
rounds=$(ls -d "$1"/round* | sed 's|.*/round||' | sort -n)

row() { # row LABEL ROUND FILE-NAME (ROUND "": the pretrained model)
    col() { for d in $seed_dirs; do if [ -n "$2" ]; then acc "$d" "$2" "$3" "$1"; else pre "$d" "$1"; fi; done | stat; }
    ex=$(col eval.tsv "$2" "$3")
    [ "$ex" = - ] && return 0
    if [ "$restated" = 1 ]; then printf '  %-52s %-36s %s\n' "$1" "$ex" "$(col eval_restated.tsv "$2" "$3")"
    else printf '  %-52s %s\n' "$1" "$ex"; fi
}
seed_dirs="$*"
echo "held-out exact-answer accuracy over $# seed(s): mean ± sd (min..max, n)"
if [ "$restated" = 1 ]; then printf '  %-52s %-36s %s\n' model "exact (the number alone)" "the right number, restated"
else printf '  %-52s %s\n' model "exact (the number alone)"; fi
row "pretrained (the recipe's final model)" "" ""
for r in $rounds; do
    if [ "$r" = 0 ]; then row "round 0: SFT only" round0 sft.safetensors; continue; fi
    row "round $r: SFT on rejection samples + SFT data" "round$r" sft.safetensors
    row "round $r: DPO on the round's annotated pairs" "round$r" dpo.safetensors
    row "round $r: average of SFT and DPO (the round's model)" "round$r" model.safetensors
    row "round $r control: SFT data only, as many steps" "round$r" control.safetensors
done
# each round's gain over its control, seed by seed; the reward model's held-out accuracy
for r in $rounds; do
    [ "$r" = 0 ] && continue
    gains=""; rm=""
    for d in "$@"; do
        m=$(acc "$d" "round$r" model.safetensors eval.tsv); c=$(acc "$d" "round$r" control.safetensors eval.tsv)
        [ -n "$m" ] && [ -n "$c" ] && gains="$gains $(awk -v m="$m" -v c="$c" 'BEGIN { printf "%.3f", m - c }')"
        a=$(sed -n 's/.*reward model on the held-out pairs: .* accuracy \([0-9.]*\) .*/\1/p' "$d/round$r/log.txt" 2>/dev/null | tail -n 1)
        rm="$rm ${a:--}"
    done
    [ -n "$gains" ] || continue
    echo "  round $r - control, per seed:$gains; mean ± sd $(echo "$gains" | tr ' ' '\n' | grep . | stat)"
    echo "$rm" | grep -q '[0-9]' && echo "  round $r reward model, pairwise accuracy on held-out pairs, per seed:$rm"
done
exit 0
