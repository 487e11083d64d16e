#!/bin/sh
# recipe_eval.sh — evaluation after a stage of the recipe (slurm/pipeline.sh runs it as
# a job after each stage; it also runs outside Slurm).
#
#   sh slurm/recipe_eval.sh STAGE_DIR SHORT_CONFIG [TOKENIZER]
#
# Writes STAGE_DIR/eval.json: the validation loss and bits per byte per source of the
# stage's newest complete checkpoint, at the SHORT context of SHORT_CONFIG (the first
# stage's config: the paper's check that long-context training did not hurt short
# contexts). How: the checkpoint is copied into STAGE_DIR/eval-short/checkpoints and
# `herd train SHORT_CONFIG` resumes it for exactly one step with the learning rate 0
# (optim.lr = min_lr = 0, no annealing: AdamW's update and decoupled weight decay are
# both multiplied by the lr, so the parameters do not move) and train.eval_every 1, so
# that the trainer's own per-source validation (the same windows every time) runs on
# the checkpoint's parameters at the short sequence length, on one rank.
# Then STAGE_DIR/passkey.json: passkey retrieval accuracy at 1/8 .. 1 x max_seq_len
# (slurm/recipe_passkey.sh), with TOKENIZER, default tokenizer.model next to the
# first data source of SHORT_CONFIG (data/demo-mix/ for the tiny recipe); skipped,
# with a message, when there is none. HERD_PASSKEY=0 skips it.
# Exit 1 with a message naming the file when something is missing.
#SBATCH --nodes=1
#SBATCH --ntasks=1
set -u
me=recipe_eval.sh
die() { echo "$me: $*" >&2; exit 1; }
[ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $me STAGE_DIR SHORT_CONFIG [TOKENIZER]"
STAGE=$1; CFG=$2; TOK=${3:-}
HERD_ROOT=${HERD_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
HERD_BIN=${HERD_BIN:-$HERD_ROOT/build/herd}
[ -x "$HERD_BIN" ] || die "$HERD_BIN: herd binary not found (set HERD_BIN)"
[ -f "$CFG" ] || die "$CFG: short-context config does not exist"
ck=""
for d in $(ls -d "$STAGE"/checkpoints/step_* 2>/dev/null | grep -E '/step_[0-9]+$' | sort -r); do
    [ -f "$d/MANIFEST" ] && { ck=$d; break; }
done
[ -n "$ck" ] || die "$STAGE/checkpoints: no complete checkpoint (step_*/MANIFEST) to evaluate"
step=$(basename "$ck" | sed 's/^step_0*//'); [ -n "$step" ] || step=0
ev=$STAGE/eval-short
rm -rf "$ev" && mkdir -p "$ev/checkpoints" && cp -a "$ck" "$ev/checkpoints/" || die "$ev: cannot copy $ck"
# the sequence length of the short config (its ramp: one length; the eval uses the
# entry in force at the checkpoint's tokens, the last one here)
seq=$("$HERD_BIN" config "$CFG" | awk '/after_tokens:/ && /seq_len:/ {sub(/.*seq_len: */, ""); sub(/[^0-9].*/, ""); s = $0} END {print s}')
[ -n "$seq" ] || die "$CFG: batch.ramp: no seq_len found"
cd "$HERD_ROOT" || die "$HERD_ROOT: cannot enter"
run="$HERD_BIN train $CFG --set train.out_dir=$ev --set train.max_steps=$((step + 1)) --set train.max_tokens=0
     --set schedule.anneal_tokens=0 --set optim.lr=0 --set optim.min_lr=0 --set train.eval_every=1
     --set train.eval_batches=8 --set checkpoint.every=0 --set parallel.dp=1 --set parallel.cp=1
     --set parallel.tp=1 --set parallel.pp=1"
if [ -n "${SLURM_JOB_ID:-}" ]; then
    # shellcheck disable=SC2086
    srun --mpi=pmix -n1 $run >"$ev/train.log" 2>&1 || { tail -n 5 "$ev/train.log" >&2; die "$ev/train.log: evaluation run failed"; }
else
    # shellcheck disable=SC2086
    $run >"$ev/train.log" 2>&1 || { tail -n 5 "$ev/train.log" >&2; die "$ev/train.log: evaluation run failed"; }
fi
m=$ev/metrics.jsonl
grep -q '"val_source"' "$m" 2>/dev/null || die "$m: no per-source validation lines (does the config have data.sources with val_path?)"
# {"step":S,"val_source":"general","val_loss":L,"val_bpb":B,...} lines of the evaluated step
val=$(grep '"val_source"' "$m" | grep "\"step\":$((step + 1))[,}]" | awk '
    { src = $0; sub(/.*"val_source":"/, "", src); sub(/".*/, "", src)
      l = $0; sub(/.*"val_loss":/, "", l); sub(/[,}].*/, "", l)
      b = $0; sub(/.*"val_bpb":/, "", b); sub(/[,}].*/, "", b)
      printf "%s\"%s\": {\"loss\": %s, \"bpb\": %s}", (n++ ? ", " : ""), src, l, b }')
[ -n "$val" ] || die "$m: no validation lines at step $((step + 1))"
printf '{"stage": "%s", "checkpoint": "%s", "step": %s, "seq_len": %s, "val": {%s}}\n' \
    "$(basename "$STAGE")" "$ck" "$step" "$seq" "$val" >"$STAGE/eval.json.tmp" && mv "$STAGE/eval.json.tmp" "$STAGE/eval.json"
cat "$STAGE/eval.json"
rm -rf "$ev/checkpoints"

[ "${HERD_PASSKEY:-1}" = 1 ] || exit 0
if [ -z "$TOK" ]; then
    src=$("$HERD_BIN" config "$CFG" | sed -n 's/.* path: "\{0,1\}\([^",]*\)"\{0,1\},.*/\1/p' | head -n 1)
    [ -n "$src" ] && TOK=$(dirname "$src")/tokenizer.model
fi
if [ -z "$TOK" ] || [ ! -f "$TOK" ]; then
    echo "$me: ${TOK:-tokenizer}: no tokenizer: passkey evaluation skipped" >&2; exit 0
fi
sh "$HERD_ROOT/slurm/recipe_passkey.sh" "$ck" "$CFG" "$TOK" "$STAGE/passkey.json"
