#!/bin/sh
# recipe_average.sh — the final model of the recipe: the element-wise mean of the
# annealing stage's checkpoints (the paper averages the models of annealing), as a
# Slurm job after the annealing stage (slurm/pipeline.sh), or by hand.
#
#   sh slurm/recipe_average.sh ANNEAL_DIR PREV_STAGE_DIR FINAL_DIR
#
# Averages every complete checkpoint ANNEAL_DIR/checkpoints/step_N with N greater
# than the newest complete checkpoint of PREV_STAGE_DIR (the one the annealing stage
# started from, copied in by --init-from, is not an annealing checkpoint) into
# FINAL_DIR/step_M (M the newest averaged step) with `herd ckpt average`, exports it
# to FINAL_DIR/model.safetensors (`herd ckpt export`) and writes
# FINAL_DIR/average.json: the averaged checkpoints and the outputs.
#SBATCH --nodes=1
#SBATCH --ntasks=1
set -u
me=recipe_average.sh
die() { echo "$me: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: $me ANNEAL_DIR PREV_STAGE_DIR FINAL_DIR"
A=$1; P=$2; F=$3
HERD_ROOT=${HERD_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
HERD_BIN=${HERD_BIN:-$HERD_ROOT/build/herd}
[ -x "$HERD_BIN" ] || die "$HERD_BIN: herd binary not found (set HERD_BIN)"
complete() { for d in $(ls -d "$1"/checkpoints/step_* 2>/dev/null | grep -E '/step_[0-9]+$' | sort); do
                 [ -f "$d/MANIFEST" ] && echo "$d"; done; }
stepof() { basename "$1" | sed 's/^step_0*//;s/^$/0/'; }
from=-1
if [ "$P" != "$A" ]; then
    p=$(complete "$P" | tail -n 1)
    [ -n "$p" ] && from=$(stepof "$p")
fi
ins=""; n=0; lastck=""
for d in $(complete "$A"); do
    [ "$(stepof "$d")" -gt "$from" ] || continue
    ins="$ins $d"; n=$((n + 1)); lastck=$d
done
[ "$n" -ge 1 ] || die "$A/checkpoints: no complete checkpoint after step $from to average"
mkdir -p "$F" || die "$F: cannot create"
out=$F/$(basename "$lastck")
rm -rf "$out"
# shellcheck disable=SC2086
"$HERD_BIN" ckpt average "$out" $ins || die "$out: herd ckpt average failed"
"$HERD_BIN" ckpt export "$out" "$F/model.safetensors" || die "$F/model.safetensors: herd ckpt export failed"
list=$(for d in $ins; do printf '"%s",' "$d"; done | sed 's/,$//')
printf '{"averaged": %d, "after_step": %s, "checkpoints": [%s], "checkpoint": "%s", "safetensors": "%s"}\n' \
    "$n" "$from" "$list" "$out" "$F/model.safetensors" >"$F/average.json"
cat "$F/average.json"
