#!/bin/sh
# make post-seeds: the demo's post-training table over several seeds. Each seed
# is a task instance of its own (scripts/make_post_style_data.sh --seed S: other
# questions, other restated answers, other pairs), round 0 (SFT of the
# pretrained model), round 1 (annotate, RM, rejection sampling, SFT, DPO,
# average) and its control (round 0 + as many SFT steps on the SFT data alone),
# all by slurm/post_train_round.sh; then each model's held-out accuracy as mean
# ± sample standard deviation (and min..max) over the seeds.
#
#   MODEL=runs/recipe-demo/final/model.safetensors sh scripts/post_seeds.sh
#
# SEEDS (1 2 3), OUT (runs/post-seeds), PAR (seeds run at once: 1), QUESTIONS
# (the question set, demo-data --seed: "seed" = each seed its own, or a number
# for one set shared by every seed: default seed), N_PROMPTS (annotation questions
# and rejection-sampling prompts per round: all), RESTATED (the share of restated
# SFT answers, make_post_style_data.sh --restated: 0.5) and the
# variables of slurm/post_train_round.sh (step counts, learning rates, K) with
# configs/recipe/tiny/post/post.env's defaults unless set here. Per seed,
# OUT/sS/round{0,1}/eval.tsv (exact answers) and eval_restated.tsv (the right
# number restated); the table in OUT/table.txt.
set -eu
cd "$(dirname "$0")/.."
export HERD_ROOT="$PWD"   # post.env's paths
export HERD="${HERD:-build/herd}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
MODEL=${MODEL:-runs/recipe-demo/final/model.safetensors}
OUT=${OUT:-runs/post-seeds}
SEEDS=${SEEDS:-1 2 3}
PAR=${PAR:-1}
QUESTIONS=${QUESTIONS:-seed}
N_PROMPTS=${N_PROMPTS:-}
RESTATED=${RESTATED:-0.5}
case $N_PROMPTS in *[!0-9]*|0) echo "post_seeds: N_PROMPTS '$N_PROMPTS': expected a number >= 1 (or empty: all)" >&2; exit 1 ;; esac
[ -s "$MODEL" ] || { echo "post_seeds: $MODEL: not found (MODEL=the pretrained weights)" >&2; exit 1; }
# the demo's settings; a variable already set wins (DATA is each seed's own).
# The steps run here, one rank each, unless a *_LAUNCH says otherwise (post.env's
# "4 8" is the Slurm job's; here it would be mpirun -n 8 on this machine)
for v in ANNOTATE RM RS SFT DPO EVAL; do eval ": \"\${${v}_LAUNCH:=0 1}\""; done
# shellcheck disable=SC1091
set -a; . configs/recipe/tiny/post/post.env; set +a
mkdir -p "$OUT"

# one seed, start to end; its log in OUT/sS/log.txt
one_seed() {
    s=$1; d=$OUT/s$s
    mkdir -p "$d"
    q=$QUESTIONS; [ "$q" = seed ] && q=$s
    # a seed whose round 0 is done goes on from it (same data)
    if [ ! -s "$d/round0/eval.tsv" ]; then
        sh scripts/make_post_style_data.sh --out "$d/data" --seed "$s" --questions "$q" --restated "$RESTATED" >"$d/log.txt" 2>&1
        ROUND=0 DATA=$d/data MODEL=$MODEL OUT=$d/round0 sh slurm/post_train_round.sh >>"$d/log.txt" 2>&1
    fi
    # N_PROMPTS: the first N annotation questions and rejection-sampling prompts
    qa=$d/data/pref_questions.jsonl; rp=$d/data/prompts.jsonl
    if [ -n "$N_PROMPTS" ]; then
        head -n "$N_PROMPTS" "$qa" >"$d/data/pref_questions.$N_PROMPTS.jsonl"; qa=$d/data/pref_questions.$N_PROMPTS.jsonl
        head -n "$N_PROMPTS" "$rp" >"$d/data/prompts.$N_PROMPTS.jsonl"; rp=$d/data/prompts.$N_PROMPTS.jsonl
    fi
    rm -rf "$d/round1"
    ROUND=1 DATA=$d/data MODEL=$d/round0/model.safetensors OUT=$d/round1 RM_VAL=$d/data/pref_val.jsonl \
        PREF_QA=$qa RS_PROMPTS=$rp CONTROL_FROM=$d/round0/model.safetensors sh slurm/post_train_round.sh >>"$d/log.txt" 2>&1
    for r in round0 round1; do
        tail -n +2 "$d/$r/eval.tsv" | while IFS="$(printf '\t')" read -r m _; do
            a=$("$HERD" post eval "$CONFIG" --tokenizer "$TOK" --data "$d/data/test_restated.jsonl" --weights "$m" |
                sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
            printf '%s\t%s\n' "$m" "$a"
        done >"$d/$r/eval_restated.tsv"
    done
}

n=0
for s in $SEEDS; do
    one_seed "$s" &
    n=$((n + 1))
    [ "$n" -lt "$PAR" ] || { wait; n=0; }
done
wait

# the table: one row per model kind, exact (bare) and restated accuracy over the seeds
stat() { awk '{ s += $1; q += $1 * $1; if (NR == 1 || $1 < lo) lo = $1; if (NR == 1 || $1 > hi) hi = $1 }
              END { if (!NR) { printf "-"; exit }
                    m = s / NR; v = NR > 1 ? (q - NR * m * m) / (NR - 1) : 0; if (v < 0) v = 0
                    printf "%.3f ± %.3f (%.3f..%.3f, n %d)", m, sqrt(v), lo, hi, NR }'; }
row() { # row LABEL ROUND FILE-NAME
    ex=$(for s in $SEEDS; do awk -F'\t' -v f="/$2/$3" 'index($1, f) { print $2 }' "$OUT/s$s/$2/eval.tsv"; done | stat)
    re=$(for s in $SEEDS; do awk -F'\t' -v f="/$2/$3" 'index($1, f) { print $2 }' "$OUT/s$s/$2/eval_restated.tsv"; done | stat)
    printf '%-44s %-34s %s\n' "$1" "$ex" "$re"
}
{
    echo "held-out accuracy over seeds $SEEDS: mean ± sd (min..max)"
    printf '%-44s %-34s %s\n' model "exact (the number alone)" "the right number restated"
    row "round 0: SFT only" round0 sft.safetensors
    row "round 1: SFT on rejection samples + SFT data" round1 sft.safetensors
    row "round 1: DPO" round1 dpo.safetensors
    row "round 1: average of SFT and DPO" round1 model.safetensors
    row "control: round 0 + as many SFT steps" round1 control.safetensors
    echo "start: $MODEL; questions: $QUESTIONS; prompts: ${N_PROMPTS:-all}; restated SFT answers: $RESTATED; steps: SFT0 $SFT0_STEPS at $SFT0_LR, RM $RM_STEPS at $RM_LR, SFT $SFT_STEPS at $SFT_LR, DPO $DPO_STEPS at $DPO_LR, K $K"
} | tee "$OUT/table.txt"
