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
# for one set shared by every seed: default seed), RESTATED (the share of restated
# SFT answers, make_post_style_data.sh --restated: 0.5) and the
# variables of slurm/post_train_round.sh (step counts, learning rates, K,
# N_PROMPTS) with configs/recipe/tiny/post/post.env's defaults unless set here
# (the seeds here run outside Slurm; `make demo` runs the same rounds as jobs,
# RUN/post/seedS). Per seed,
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
RESTATED=${RESTATED:-0.5}
[ -s "$MODEL" ] || { echo "post_seeds: $MODEL: not found (MODEL=the pretrained weights)" >&2; exit 1; }
# the demo's settings; a variable already set wins (DATA is each seed's own).
# The steps run here, one rank each, unless a *_LAUNCH says otherwise (post.env's
# "2 2" is the Slurm job's; here it would be mpirun -n 2)
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
    rm -rf "$d/round1"
    ROUND=1 DATA=$d/data MODEL=$d/round0/model.safetensors OUT=$d/round1 \
        CONTROL_FROM=$d/round0/model.safetensors sh slurm/post_train_round.sh >>"$d/log.txt" 2>&1
    for r in round0 round1; do
        {   printf 'model\taccuracy\n'   # eval.tsv's header: slurm/post_table.sh reads both alike
            tail -n +2 "$d/$r/eval.tsv" | while IFS="$(printf '\t')" read -r m _; do
                a=$("$HERD" post eval "$CONFIG" --tokenizer "$TOK" --data "$d/data/test_restated.jsonl" --weights "$m" |
                    sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
                printf '%s\t%s\n' "$m" "$a"
            done
        } >"$d/$r/eval_restated.tsv"
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
{
    # shellcheck disable=SC2046
    sh slurm/post_table.sh $(for s in $SEEDS; do echo "$OUT/s$s"; done)
    echo "start: $MODEL; questions: $QUESTIONS; prompts: ${N_PROMPTS:-all}; restated SFT answers: $RESTATED; steps: SFT0 $SFT0_STEPS at $SFT0_LR, RM $RM_STEPS at $RM_LR, SFT $SFT_STEPS at $SFT_LR, DPO $DPO_STEPS at $DPO_LR, K $K"
} | tee "$OUT/table.txt"
