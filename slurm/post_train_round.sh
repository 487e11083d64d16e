#!/bin/sh
# One post-training round (Llama 3, section 4): preference annotation of the
# model's samples -> reward model -> rejection sampling -> SFT -> DPO -> model
# averaging, then held-out accuracy of each.
# ROUND=0 is the start of post-training instead: SFT of the pretrained model on
# the SFT data alone (the SFT-only model every later round is compared with).
#
#   sbatch slurm/post_train_round.sh            (a Slurm job; each step an srun)
#   sh slurm/post_train_round.sh                (the same, here, without Slurm)
#
# Inputs (environment; defaults are the demo's):
#   HERD      the herd binary                          build/herd
#   CONFIG    model shape and optimizer                configs/post_demo.yaml
#   TOK       tokenizer rank file                      runs/post_demo/tok.ranks
#   DATA      dir with sft.jsonl (SFT data and the rejection-sampling prompts),
#             pref.jsonl (preference pairs), test.jsonl (held-out, exact answers)
#                                                      runs/post_demo/data
#   MODEL     the model entering the round (weights)   runs/post_demo/sft0.safetensors
#   OUT       this round's directory                   runs/post_demo/round1
#   ROUND     0: SFT only; >= 1: a whole round         1
#   RS_PROMPTS prompts of rejection sampling           $DATA/prompts.jsonl (else sft.jsonl)
#   PREF_QA   questions with reference answers: each round's preference pairs
#             are the model's own samples, annotated by them (herd post annotate)
#                                                      $DATA/pref_questions.jsonl (if there)
#   RM_VAL    pairs the reward model's accuracy is measured on  its training pairs
#   K         samples per prompt                       the config's post.rs_k
#   SFT0_STEPS (round 0) RM_STEPS SFT_STEPS DPO_STEPS  600, 200 300 100
#   RM_LR SFT_LR DPO_LR   learning rates (--lr)        the config's optim.lr
#   SFT0_LR   round 0's SFT learning rate              SFT_LR
#   CONTROL_FROM  a model to continue on the SFT data alone for as many steps as
#             the round's SFT + DPO (the control: does the round beat more SFT?)
#             into OUT/control.safetensors                 (none)
#   NTASKS    ranks of a step whose *_LAUNCH is not set (below)      1
#   ANNOTATE_LAUNCH RM_LAUNCH RS_LAUNCH SFT_LAUNCH DPO_LAUNCH EVAL_LAUNCH
#             how each step runs: "NODES RANKS [KEY=VALUE ...]" (default
#             "0 $NTASKS"). Under Slurm the step is
#             `srun --nodes=NODES --ntasks=RANKS --mpi=pmix` (NODES 0: Slurm's
#             choice), elsewhere `mpirun -n RANKS` when RANKS > 1 (NODES
#             unused); each KEY=VALUE goes to the command as `--set KEY=VALUE`
#             (the layout: parallel.tp=2 ...). Today's post commands are
#             data-parallel over the RANKS (parallel.* is not read by them;
#             batch.micro_batch is the global batch and must be >= RANKS).
#             SFT_LAUNCH is also round 0's and the control's SFT; `average`
#             is one task. The job must hold the largest step: e.g.
#             `sbatch --nodes=4 --ntasks=8 --cpus-per-task=1 ...`
# Outputs in OUT: rm, sft, dpo, model (= the average of sft and dpo) as
# .safetensors, rs.jsonl (the kept samples), eval.tsv (held-out accuracy),
# log.txt. The next round takes MODEL=OUT/model.safetensors;
# slurm/post_train.sh chains N rounds with --dependency=afterok.
#
#SBATCH --job-name=herd-post-round
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
#SBATCH --output=post-round-%j.out
set -eu
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
HERD=${HERD:-build/herd}
CONFIG=${CONFIG:-configs/post_demo.yaml}
TOK=${TOK:-runs/post_demo/tok.ranks}
DATA=${DATA:-runs/post_demo/data}
MODEL=${MODEL:-runs/post_demo/sft0.safetensors}
OUT=${OUT:-runs/post_demo/round1}
ROUND=${ROUND:-1}
RS_PROMPTS=${RS_PROMPTS:-$DATA/prompts.jsonl}
PREF_QA=${PREF_QA:-$DATA/pref_questions.jsonl}
[ -e "$RS_PROMPTS" ] || RS_PROMPTS=$DATA/sft.jsonl
K=${K:-}
NTASKS=${NTASKS:-1}
SFT0_STEPS=${SFT0_STEPS:-600}
RM_STEPS=${RM_STEPS:-200}
SFT_STEPS=${SFT_STEPS:-300}
DPO_STEPS=${DPO_STEPS:-100}
mkdir -p "$OUT"
# a rank's OpenMP / OpenBLAS threads: the CPUs Slurm gave the task, else one (as
# train.sbatch; the post commands do not set them, and more threads than cores,
# spinning, slow a multi-rank step on a small machine many times over)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"
case $NTASKS in ''|*[!0-9]*|0) echo "post_train_round: NTASKS: expected an integer >= 1, got '$NTASKS'" >&2; exit 1 ;; esac
# the launch of step $1 (annotate, rm, rs, sft, dpo, eval): its *_LAUNCH
launch_of() {
    case $1 in
        annotate) l=${ANNOTATE_LAUNCH:-} ;; rm) l=${RM_LAUNCH:-} ;; rs) l=${RS_LAUNCH:-} ;;
        sft) l=${SFT_LAUNCH:-} ;; dpo) l=${DPO_LAUNCH:-} ;; eval) l=${EVAL_LAUNCH:-} ;;
    esac
    echo "${l:-0 $NTASKS}"
}
for s in annotate rm rs sft dpo eval; do
    # shellcheck disable=SC2046
    set -- $(launch_of $s)
    v=$(echo "$s" | tr a-z A-Z)_LAUNCH
    case ${1:-}:${2:-} in *[!0-9:]*|*:|:*) false ;; *) [ "$2" -ge 1 ] ;; esac ||
        { echo "post_train_round: $v '$(launch_of $s)': expected \"NODES RANKS [KEY=VALUE ...]\", RANKS >= 1" >&2; exit 1; }
    shift 2
    for kv in "$@"; do
        case $kv in [a-z]*.[a-z]*=?*) ;; *) echo "post_train_round: $v: '$kv': expected section.key=value" >&2; exit 1 ;; esac
    done
done
# Under Slurm every step is its own job step, RANKS data-parallel ranks joined
# by PMIx over NODES nodes; elsewhere the commands run directly, or under Open
# MPI's mpirun with RANKS > 1 (the settings of tests/lib/mpi.sh: root allowed,
# more ranks than cores allowed). `run1` is for the steps that are one process
# (average: a file operation).
run() {
    # shellcheck disable=SC2046
    set -- $(launch_of "$1") -- "$@"
    nodes=$1 ranks=$2; shift 2
    sets=""
    while [ "$1" != -- ]; do sets="$sets $1"; shift; done
    shift 2 # '--' and the step name
    for kv in $sets; do set -- "$@" --set "$kv"; done
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        if [ "$nodes" -gt 0 ]; then srun --nodes="$nodes" --ntasks="$ranks" --mpi=pmix "$@"
        else srun --ntasks="$ranks" --mpi=pmix "$@"; fi
    elif [ "$ranks" -gt 1 ]; then
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
            mpirun -n "$ranks" "$@"
    else "$@"; fi
}
run1() {
    if [ -n "${SLURM_JOB_ID:-}" ]; then srun --nodes=1 --ntasks=1 "$@"; else "$@"; fi
}
log() { echo "post_train_round: $*" | tee -a "$OUT/log.txt"; }
for f in "$HERD" "$CONFIG" "$TOK" "$RS_PROMPTS" "$DATA/sft.jsonl" "$DATA/pref.jsonl" "$DATA/test.jsonl" "$MODEL"; do
    [ -e "$f" ] || { echo "post_train_round: $f: not found" >&2; exit 1; }
done
common="--tokenizer $TOK"
lr() { [ -z "$1" ] || echo "--lr $1"; }

# held-out accuracy of each model given, into OUT/eval.tsv
evaluate() {
    printf 'model\taccuracy\n' >"$OUT/eval.tsv"
    for m in "$@"; do
        acc=$(run eval "$HERD" post eval "$CONFIG" $common --data "$DATA/test.jsonl" --weights "$m" |
              sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
        [ -n "$acc" ] || { echo "post_train_round: $m: evaluation failed" >&2; exit 1; }
        printf '%s\t%s\n' "$m" "$acc" >>"$OUT/eval.tsv"
    done
    log "held-out accuracy:"
    tee -a "$OUT/log.txt" <"$OUT/eval.tsv"
}

if [ "$ROUND" = 0 ]; then
    log "round 0 (SFT only) $OUT from $MODEL (sft launch, NODES RANKS [LAYOUT]: $(launch_of sft))"
    run sft "$HERD" post sft "$CONFIG" $common --data "$DATA/sft.jsonl" --weights "$MODEL" \
        --out "$OUT/sft.safetensors" --steps "$SFT0_STEPS" $(lr "${SFT0_LR:-${SFT_LR:-}}") >>"$OUT/log.txt"
    cp "$OUT/sft.safetensors" "$OUT/model.safetensors"
    evaluate "$MODEL" "$OUT/sft.safetensors"
    exit 0
fi

log "round $ROUND: $OUT from $MODEL (launches, NODES RANKS [LAYOUT]: annotate $(launch_of annotate), rm $(launch_of rm), rs $(launch_of rs), sft $(launch_of sft), dpo $(launch_of dpo), eval $(launch_of eval))"
# the round's preference data: pairs on MODEL's own samples, annotated by the
# reference answers of PREF_QA (the paper annotates the latest model's samples each
# round), with the fixed pairs of DATA/pref.jsonl for the reward model
pref=$DATA/pref.jsonl; rm_pref=$DATA/pref.jsonl
if [ -e "$PREF_QA" ]; then
    log "1/6 preference pairs on the model's samples of $PREF_QA (annotated by the reference answers)"
    run annotate "$HERD" post annotate "$CONFIG" $common --data "$PREF_QA" --weights "$MODEL" ${K:+--k $K} \
        --seed "$ROUND" --out "$OUT/pref.jsonl" >>"$OUT/log.txt"
    pref=$OUT/pref.jsonl; rm_pref=$OUT/rm_pref.jsonl
    cat "$DATA/pref.jsonl" "$OUT/pref.jsonl" >"$rm_pref"
fi
log "2/6 reward model on $rm_pref"
run rm "$HERD" post rm "$CONFIG" $common --data "$rm_pref" --weights "$MODEL" \
    --out "$OUT/rm.safetensors" --steps "$RM_STEPS" --val "${RM_VAL:-$rm_pref}" $(lr "${RM_LR:-}") >>"$OUT/log.txt"
log "3/6 rejection sampling: ${K:-post.rs_k} samples per prompt of $RS_PROMPTS, best by the reward model"
run rs "$HERD" post rs "$CONFIG" $common --prompts "$RS_PROMPTS" --weights "$MODEL" \
    --rm "$OUT/rm.safetensors" ${K:+--k $K} --seed "$ROUND" --out "$OUT/rs.jsonl" --pairs "$OUT/rs_pairs.jsonl" >>"$OUT/log.txt"
log "4/6 SFT on the kept samples + the SFT data"
cat "$DATA/sft.jsonl" "$OUT/rs.jsonl" >"$OUT/sft_mix.jsonl"
run sft "$HERD" post sft "$CONFIG" $common --data "$OUT/sft_mix.jsonl" --weights "$MODEL" \
    --out "$OUT/sft.safetensors" --steps "$SFT_STEPS" $(lr "${SFT_LR:-}") >>"$OUT/log.txt"
log "5/6 DPO on $pref (the config's post.dpo_beta, post.dpo_nll_coef) from the round's SFT model"
run dpo "$HERD" post dpo "$CONFIG" $common --data "$pref" --weights "$OUT/sft.safetensors" \
    --out "$OUT/dpo.safetensors" --steps "$DPO_STEPS" $(lr "${DPO_LR:-}") >>"$OUT/log.txt"
log "6/6 average of the SFT and DPO models"
run1 "$HERD" post average "$CONFIG" $common --out "$OUT/model.safetensors" \
    "$OUT/sft.safetensors" "$OUT/dpo.safetensors" >>"$OUT/log.txt"
control=""
if [ -n "${CONTROL_FROM:-}" ]; then
    log "control: $CONTROL_FROM on the SFT data alone for $((SFT_STEPS + DPO_STEPS)) steps"
    run sft "$HERD" post sft "$CONFIG" $common --data "$DATA/sft.jsonl" --weights "$CONTROL_FROM" \
        --out "$OUT/control.safetensors" --steps "$((SFT_STEPS + DPO_STEPS))" $(lr "${SFT_LR:-}") >>"$OUT/log.txt"
    control=$OUT/control.safetensors
fi
evaluate "$MODEL" "$OUT/sft.safetensors" "$OUT/dpo.safetensors" "$OUT/model.safetensors" $control
