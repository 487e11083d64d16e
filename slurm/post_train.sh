#!/bin/sh
# N post-training rounds as a chain of Slurm jobs: round r starts from round
# r-1's averaged model (--dependency=afterok), as the recipe's pipeline does
# after pretraining.
#
#   N=3 MODEL=runs/post_demo/sft0.safetensors sh slurm/post_train.sh
#   LOCAL=1 ...   runs the rounds one after the other here, without Slurm
# Other variables pass through to slurm/post_train_round.sh (its *_LAUNCH:
# one per step); POST_SBATCH: sbatch options of each round's job, e.g.
# "--nodes=4 --ntasks=8 --cpus-per-task=1" for steps at "4 8".
set -eu
cd "$(dirname "$0")/.."
N=${N:-2}
BASE=${BASE:-runs/post_demo}
MODEL=${MODEL:-$BASE/sft0.safetensors}
dep=""
r=1
while [ "$r" -le "$N" ]; do
    out="$BASE/round$r"
    if [ -n "${LOCAL:-}" ]; then
        ROUND=$r MODEL="$MODEL" OUT="$out" sh slurm/post_train_round.sh
    else
        # shellcheck disable=SC2086
        id=$(ROUND=$r MODEL="$MODEL" OUT="$out" sbatch --parsable --export=ALL ${POST_SBATCH:-} ${dep:+--dependency=afterok:$dep} \
             slurm/post_train_round.sh)
        echo "round $r: job $id${dep:+ (after $dep)}"
        dep=$id
    fi
    MODEL="$out/model.safetensors"
    r=$((r + 1))
done
