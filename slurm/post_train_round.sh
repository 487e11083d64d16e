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
#   N_PROMPTS the first N of PREF_QA and of RS_PROMPTS only    (all)
#   SEED      the run's seed: train.seed of sft / rm / dpo, and annotation's and
#             rejection sampling's seed 100 x SEED + ROUND  (none: the config's
#             train.seed; sampling seed ROUND)
#   RM_VAL    held-out preference pairs: the reward model's pairwise accuracy on
#             them goes to the log (herd post rm-eval)     $DATA/pref_val.jsonl (if there)
#   SFT0_STEPS (round 0) RM_STEPS SFT_STEPS DPO_STEPS  600, 200 300 100
#   RM_LR SFT_LR DPO_LR   peak learning rates          the config's optim.lr
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
#             (the layout: parallel.tp=2 ...). sft, rm and dpo run on the
#             trainer (`herd train` with post.objective: TP x CP x PP over
#             the RANKS, FSDP over the rest; batch.micro_batch per DP rank is
#             chosen from the layout unless given), then one task of
#             `herd ckpt export`; annotate, rs and eval take parallel.tp
#             (TP replicas, data-parallel over the rest). SFT_LAUNCH is also
#             round 0's and the control's SFT; `average` is one task. The job
#             must hold the largest step: e.g.
#             `sbatch --nodes=4 --ntasks=8 --cpus-per-task=1 ...`
# Outputs in OUT: rm, sft, dpo, model (= the average of sft and dpo) as
# .safetensors, rs.jsonl (the kept samples), eval.tsv (held-out accuracy),
# log.txt, and each trainer run (rm.run, sft.run, dpo.run, control.run: its
# checkpoints, metrics.jsonl, DPO's dpo_reference.bin; a run already there is
# resumed, so a requeued job goes on and a new round wants a new OUT). The
# next round takes MODEL=OUT/model.safetensors; slurm/post_train.sh chains N
# rounds with --dependency=afterok.
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
SEED=${SEED:-}
RM_VAL=${RM_VAL:-$DATA/pref_val.jsonl}
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
case ${N_PROMPTS:-1} in *[!0-9]*|0) echo "post_train_round: N_PROMPTS '$N_PROMPTS': expected a number >= 1 (or empty: all)" >&2; exit 1 ;; esac
case $SEED in *[!0-9]*) echo "post_train_round: SEED: expected an integer >= 0, got '$SEED'" >&2; exit 1 ;; esac
sample_seed=$ROUND; [ -n "$SEED" ] && sample_seed=$((100 * SEED + ROUND))
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
# N_PROMPTS: the round's own shorter copies of the question and prompt files
if [ -n "${N_PROMPTS:-}" ] && [ "$ROUND" != 0 ]; then
    [ -e "$PREF_QA" ] && head -n "$N_PROMPTS" "$PREF_QA" >"$OUT/pref_questions.jsonl" && PREF_QA=$OUT/pref_questions.jsonl
    head -n "$N_PROMPTS" "$RS_PROMPTS" >"$OUT/prompts.jsonl" && RS_PROMPTS=$OUT/prompts.jsonl
fi

# sft, rm and dpo are `herd train` with post.objective on the step's layout
# (FSDP over the data-parallel ranks), then `herd ckpt export` of the last
# checkpoint to the weights file the next steps read. The settings of `herd
# post`: STEPS steps at LR (default optim.lr), a warm-up of
# min(schedule.warmup_steps, STEPS / 10), the cosine to optim.min_lr (scaled
# by LR / optim.lr) at the last step; a step's global batch is the config's
# batch.micro_batch packed rows (sft) or pairs of two rows (rm, dpo) of
# model.max_seq_len tokens.
resolved=$("$HERD" config "$CONFIG") || { echo "post_train_round: $CONFIG: herd config failed" >&2; exit 1; }
cfg_value() { # cfg_value SECTION KEY: CONFIG's resolved value
    echo "$resolved" | awk -v s="$1:" -v k="$2:" '/^[a-z]/ { in_s = $1 == s } in_s && $1 == k { print $2; exit }'
}
base_lr=$(cfg_value optim lr); base_min_lr=$(cfg_value optim min_lr); base_warmup=$(cfg_value schedule warmup_steps)
base_rows=$(cfg_value batch micro_batch); row_len=$(cfg_value model max_seq_len)
for v in "$base_lr" "$base_min_lr" "$base_warmup" "$base_rows" "$row_len"; do
    [ -n "$v" ] || { echo "post_train_round: $CONFIG: cannot read optim.lr, optim.min_lr, schedule.warmup_steps, batch.micro_batch or model.max_seq_len (herd config)" >&2; exit 1; }
done
# the micro-batch of ROWS rows a step on step STEP's launch: a DP rank's rows
# in pp micro-batches (the fewest the pipeline takes), even for pairs (a
# pair's rows share a micro-batch); a batch.micro_batch of the launch wins
micro_of() { # micro_of STEP ROWS PAIRS(0|1)
    rows=$2 pairs=$3
    # shellcheck disable=SC2046
    set -- $(launch_of "$1")
    ranks=$2; shift 2
    tp=1 pp=1 cp=1
    for kv in "$@"; do
        case $kv in parallel.tp=[1-9]*) tp=${kv#*=} ;; parallel.pp=[1-9]*) pp=${kv#*=} ;; parallel.cp=[1-9]*) cp=${kv#*=} ;; esac
    done
    case $tp$pp$cp in *[!0-9]*) tp=1 pp=1 cp=1 ;; esac
    dp=$((ranks / (tp * pp * cp))); [ "$dp" -ge 1 ] || dp=1
    mb=$((rows / (dp * pp)))
    while [ "$mb" -gt 1 ] && { [ $((rows % (dp * mb))) -ne 0 ] || [ $((pairs * (mb % 2))) -ne 0 ]; }; do mb=$((mb - 1)); done
    [ "$mb" -ge 1 ] || mb=1
    echo "$mb"
}
# train_step STEP OBJECTIVE DATA WEIGHTS NAME STEPS [LR]: OUT/NAME.safetensors
# from the run in OUT/NAME.run (resumed there if a checkpoint is: a requeued job
# goes on; a new round wants a new OUT)
train_step() {
    step=$1 obj=$2 data=$3 w=$4 name=$5 steps=$6 slr=${7:-$base_lr}
    pairs=1; [ "$obj" = sft ] && pairs=0
    rows=$((base_rows * (pairs + 1)))
    warm=$((steps / 10)); [ "$base_warmup" -lt "$warm" ] && warm=$base_warmup
    min_lr=$(awk -v a="$slr" -v lo="$base_min_lr" -v b="$base_lr" 'BEGIN { printf "%.9g", (b > 0 ? a * lo / b : 0) }')
    run "$step" "$HERD" train "$CONFIG" --set post.objective="$obj" --set post.data="$data" --set post.tokenizer="$TOK" \
        --set train.init_from="$w" --set train.out_dir="$OUT/$name.run" --set train.max_steps="$steps" \
        --set checkpoint.every="$steps" --set optim.lr="$slr" --set optim.min_lr="$min_lr" \
        --set schedule.warmup_steps="$warm" --set schedule.decay_steps=$((steps - 1)) \
        --set "batch.ramp=[{after_tokens: 0, batch_tokens: $((rows * row_len)), seq_len: $row_len}]" \
        --set batch.micro_batch="$(micro_of "$step" "$rows" "$pairs")" ${SEED:+--set train.seed=$SEED} >>"$OUT/log.txt"
    run1 "$HERD" ckpt export "$OUT/$name.run/checkpoints/step_$(printf %08d "$steps")" "$OUT/$name.safetensors" >>"$OUT/log.txt"
}

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
    log "round 0 (SFT only) $OUT from $MODEL, data $DATA (sft launch, NODES RANKS [LAYOUT]: $(launch_of sft))"
    train_step sft sft "$DATA/sft.jsonl" "$MODEL" sft "$SFT0_STEPS" "${SFT0_LR:-${SFT_LR:-}}"
    cp "$OUT/sft.safetensors" "$OUT/model.safetensors"
    evaluate "$MODEL" "$OUT/sft.safetensors"
    exit 0
fi

log "round $ROUND: $OUT from $MODEL, data $DATA (launches, NODES RANKS [LAYOUT]: annotate $(launch_of annotate), rm $(launch_of rm), rs $(launch_of rs), sft $(launch_of sft), dpo $(launch_of dpo), eval $(launch_of eval))"
# the round's preference data: pairs on MODEL's own samples, annotated by the
# reference answers of PREF_QA (the paper annotates the latest model's samples each
# round), with the fixed pairs of DATA/pref.jsonl for the reward model
pref=$DATA/pref.jsonl; rm_pref=$DATA/pref.jsonl
if [ -e "$PREF_QA" ]; then
    log "1/6 preference pairs on the model's samples of $PREF_QA (annotated by the reference answers)"
    run annotate "$HERD" post annotate "$CONFIG" $common --data "$PREF_QA" --weights "$MODEL" ${K:+--k $K} \
        --seed "$sample_seed" --out "$OUT/pref.jsonl" >>"$OUT/log.txt"
    pref=$OUT/pref.jsonl; rm_pref=$OUT/rm_pref.jsonl
    cat "$DATA/pref.jsonl" "$OUT/pref.jsonl" >"$rm_pref"
fi
log "2/6 reward model on $rm_pref"
train_step rm rm "$rm_pref" "$MODEL" rm "$RM_STEPS" "${RM_LR:-}"
if [ -e "$RM_VAL" ]; then
    run1 "$HERD" post rm-eval "$CONFIG" $common --data "$RM_VAL" --weights "$OUT/rm.safetensors" >"$OUT/rm_val.txt"
    log "reward model on the held-out pairs: $(sed -n 's/^herd post rm-eval: \(.*: loss .* pairs\)$/\1/p' "$OUT/rm_val.txt")"
fi
log "3/6 rejection sampling: ${K:-post.rs_k} samples per prompt of $RS_PROMPTS, best by the reward model"
run rs "$HERD" post rs "$CONFIG" $common --prompts "$RS_PROMPTS" --weights "$MODEL" \
    --rm "$OUT/rm.safetensors" ${K:+--k $K} --seed "$sample_seed" --out "$OUT/rs.jsonl" --pairs "$OUT/rs_pairs.jsonl" >>"$OUT/log.txt"
log "4/6 SFT on the kept samples + the SFT data"
cat "$DATA/sft.jsonl" "$OUT/rs.jsonl" >"$OUT/sft_mix.jsonl"
train_step sft sft "$OUT/sft_mix.jsonl" "$MODEL" sft "$SFT_STEPS" "${SFT_LR:-}"
log "5/6 DPO on $pref (the config's post.dpo_beta, post.dpo_nll_coef) from the round's SFT model"
train_step dpo dpo "$pref" "$OUT/sft.safetensors" dpo "$DPO_STEPS" "${DPO_LR:-}"
log "6/6 average of the SFT and DPO models"
run1 "$HERD" post average "$CONFIG" $common --out "$OUT/model.safetensors" \
    "$OUT/sft.safetensors" "$OUT/dpo.safetensors" >>"$OUT/log.txt"
control=""
if [ -n "${CONTROL_FROM:-}" ]; then
    log "control: $CONTROL_FROM on the SFT data alone for $((SFT_STEPS + DPO_STEPS)) steps"
    train_step sft sft "$DATA/sft.jsonl" "$CONTROL_FROM" control "$((SFT_STEPS + DPO_STEPS))" "${SFT_LR:-}"
    control=$OUT/control.safetensors
fi
evaluate "$MODEL" "$OUT/sft.safetensors" "$OUT/dpo.safetensors" "$OUT/model.safetensors" $control
