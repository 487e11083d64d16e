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
#   K         samples per prompt                       the config's post.rs_k
#   SFT0_STEPS (round 0) RM_STEPS SFT_STEPS DPO_STEPS  600, 200 300 100
#   RM_LR SFT_LR DPO_LR   learning rates (--lr)        the config's optim.lr
#   SFT0_LR   round 0's SFT learning rate              SFT_LR
#   CONTROL_FROM  a model to continue on the SFT data alone for as many steps as
#             the round's SFT + DPO (the control: does the round beat more SFT?)
#             into OUT/control.safetensors                 (none)
#   NTASKS    ranks of each data-parallel step (rm, rs, sft, dpo, eval): 1
#             under Slurm `srun --ntasks=$NTASKS --mpi=pmix`, without Slurm
#             `mpirun -n $NTASKS` when NTASKS > 1; batch.micro_batch of CONFIG
#             is the global batch and must be >= NTASKS (set --ntasks of the
#             job to at least NTASKS: `sbatch --ntasks=4 ...`)
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
case $NTASKS in ''|*[!0-9]*|0) echo "post_train_round: NTASKS: expected an integer >= 1, got '$NTASKS'" >&2; exit 1 ;; esac
# under Slurm every step is its own job step, NTASKS data-parallel ranks
# joined by PMIx; elsewhere the commands run directly, or under Open MPI's
# mpirun with NTASKS > 1 (the settings of tests/lib/mpi.sh: root allowed, more
# ranks than cores allowed). `run1` is for the steps that are one process
# (average: a file operation).
run() {
    if [ -n "${SLURM_JOB_ID:-}" ]; then srun --ntasks="$NTASKS" --mpi=pmix "$@"
    elif [ "$NTASKS" -gt 1 ]; then
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
            mpirun -n "$NTASKS" "$@"
    else "$@"; fi
}
run1() {
    if [ -n "${SLURM_JOB_ID:-}" ]; then srun --ntasks=1 "$@"; else "$@"; fi
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
        acc=$(run "$HERD" post eval "$CONFIG" $common --data "$DATA/test.jsonl" --weights "$m" |
              sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
        [ -n "$acc" ] || { echo "post_train_round: $m: evaluation failed" >&2; exit 1; }
        printf '%s\t%s\n' "$m" "$acc" >>"$OUT/eval.tsv"
    done
    log "held-out accuracy:"
    tee -a "$OUT/log.txt" <"$OUT/eval.tsv"
}

if [ "$ROUND" = 0 ]; then
    log "round 0 (SFT only) $OUT from $MODEL"
    run "$HERD" post sft "$CONFIG" $common --data "$DATA/sft.jsonl" --weights "$MODEL" \
        --out "$OUT/sft.safetensors" --steps "$SFT0_STEPS" $(lr "${SFT0_LR:-${SFT_LR:-}}") >>"$OUT/log.txt"
    cp "$OUT/sft.safetensors" "$OUT/model.safetensors"
    evaluate "$MODEL" "$OUT/sft.safetensors"
    exit 0
fi

log "round $ROUND: $OUT from $MODEL ($NTASKS data-parallel ranks per step)"
# the round's preference data: pairs on MODEL's own samples, annotated by the
# reference answers of PREF_QA (the paper annotates the latest model's samples each
# round), with the fixed pairs of DATA/pref.jsonl for the reward model
pref=$DATA/pref.jsonl; rm_pref=$DATA/pref.jsonl
if [ -e "$PREF_QA" ]; then
    log "1/6 preference pairs on the model's samples of $PREF_QA (annotated by the reference answers)"
    run "$HERD" post annotate "$CONFIG" $common --data "$PREF_QA" --weights "$MODEL" ${K:+--k $K} \
        --seed "$ROUND" --out "$OUT/pref.jsonl" >>"$OUT/log.txt"
    pref=$OUT/pref.jsonl; rm_pref=$OUT/rm_pref.jsonl
    cat "$DATA/pref.jsonl" "$OUT/pref.jsonl" >"$rm_pref"
fi
log "2/6 reward model on $rm_pref"
run "$HERD" post rm "$CONFIG" $common --data "$rm_pref" --weights "$MODEL" \
    --out "$OUT/rm.safetensors" --steps "$RM_STEPS" --val "$rm_pref" $(lr "${RM_LR:-}") >>"$OUT/log.txt"
log "3/6 rejection sampling: ${K:-post.rs_k} samples per prompt of $RS_PROMPTS, best by the reward model"
run "$HERD" post rs "$CONFIG" $common --prompts "$RS_PROMPTS" --weights "$MODEL" \
    --rm "$OUT/rm.safetensors" ${K:+--k $K} --seed "$ROUND" --out "$OUT/rs.jsonl" --pairs "$OUT/rs_pairs.jsonl" >>"$OUT/log.txt"
log "4/6 SFT on the kept samples + the SFT data"
cat "$DATA/sft.jsonl" "$OUT/rs.jsonl" >"$OUT/sft_mix.jsonl"
run "$HERD" post sft "$CONFIG" $common --data "$OUT/sft_mix.jsonl" --weights "$MODEL" \
    --out "$OUT/sft.safetensors" --steps "$SFT_STEPS" $(lr "${SFT_LR:-}") >>"$OUT/log.txt"
log "5/6 DPO on $pref (the config's post.dpo_beta, post.dpo_nll_coef) from the round's SFT model"
run "$HERD" post dpo "$CONFIG" $common --data "$pref" --weights "$OUT/sft.safetensors" \
    --out "$OUT/dpo.safetensors" --steps "$DPO_STEPS" $(lr "${DPO_LR:-}") >>"$OUT/log.txt"
log "6/6 average of the SFT and DPO models"
run1 "$HERD" post average "$CONFIG" $common --out "$OUT/model.safetensors" \
    "$OUT/sft.safetensors" "$OUT/dpo.safetensors" >>"$OUT/log.txt"
control=""
if [ -n "${CONTROL_FROM:-}" ]; then
    log "control: $CONTROL_FROM on the SFT data alone for $((SFT_STEPS + DPO_STEPS)) steps"
    run "$HERD" post sft "$CONFIG" $common --data "$DATA/sft.jsonl" --weights "$CONTROL_FROM" \
        --out "$OUT/control.safetensors" --steps "$((SFT_STEPS + DPO_STEPS))" $(lr "${SFT_LR:-}") >>"$OUT/log.txt"
    control=$OUT/control.safetensors
fi
evaluate "$MODEL" "$OUT/sft.safetensors" "$OUT/dpo.safetensors" "$OUT/model.safetensors" $control
