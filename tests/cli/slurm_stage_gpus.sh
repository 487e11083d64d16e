#!/bin/sh
# slurm_stage_gpus.sh — slurm/train.sbatch on the local cluster with emulated GPUs
# (`cluster.sh start --gpus 2`, 3 nodes; about half a minute): the preflight
# (HERD_PREFLIGHT=1, HERD_CHECK_CMD a script that names node2 slow) runs with the
# training binding, node2 is excluded and the spare takes its place; every rank
# of the preflight and of training sees one GPU, a different one from the other
# rank of its node (Slurm's CUDA_VISIBLE_DEVICES); a job with two ranks per GPU
# stops before any step. The payloads print their binding: no training.
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
grep -q -- 'start \[--gpus N\]' slurm/local/cluster.sh \
    || { skip slurm_stage_gpus "slurm/local/cluster.sh has no --gpus"; exit 0; }
[ -x build/herd ] || { skip slurm_stage_gpus "build/herd not built"; exit 0; }
export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-gpus.XXXXXX)
tmp=$(mktemp -d /tmp/herd-stage-gpus.XXXXXX)
cleanup() { sh slurm/local/cluster.sh stop >/dev/null 2>&1; rm -rf "$tmp" "$HERD_SLURM_DIR"; }
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP PIPE
cluster_up --gpus 2 3 || { skip slurm_stage_gpus "$why"; exit 0; }

# each rank writes "NODE LOCALID CUDA_VISIBLE_DEVICES" to DIR/bind.RANK
cat >"$tmp/check.sh" <<'SH'
#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
echo "$SLURMD_NODENAME $SLURM_LOCALID ${CUDA_VISIBLE_DEVICES:-unset}" >"$out/bind.$SLURM_PROCID"
[ "$SLURM_PROCID" = 0 ] && printf '# slower than the median\nnode2\n' >"$out/slow_nodes"
exit 0
SH
cat >"$tmp/train.sh" <<'SH'
#!/bin/sh
echo "$SLURMD_NODENAME $SLURM_LOCALID ${CUDA_VISIBLE_DEVICES:-unset}" >"$HERD_OUT/bind.$SLURM_PROCID"
SH
chmod +x "$tmp/check.sh" "$tmp/train.sh"

# one_gpu_each DIR RANKS NODES: RANKS files DIR/bind.*, on NODES (space-separated),
# each one GPU, no (node, GPU) twice
one_gpu_each() {
    n=$(cat "$1"/bind.* 2>/dev/null | grep -c .)
    pairs=$(cat "$1"/bind.* 2>/dev/null | awk '{print $1 "/" $3}' | sort -u | grep -c .)
    single=$(cat "$1"/bind.* 2>/dev/null | awk '$3 ~ /^[0-9]$/' | grep -c .)
    on=$(cat "$1"/bind.* 2>/dev/null | awk '{print $1}' | sort -u | tr '\n' ' ' | sed 's/ $//')
    [ "$n" -eq "$2" ] && [ "$pairs" -eq "$2" ] && [ "$single" -eq "$2" ] && [ "$on" = "$3" ]
}

out=$tmp/run
sub=$(HERD_SBATCH_ARGS="--nodes=3 --ntasks-per-node=2 --gpus-per-node=2 --output=$tmp/job.out" \
      HERD_SPARES=1 HERD_PREFLIGHT=1 HERD_CHECK_CMD=$tmp/check.sh HERD_TRAIN_CMD=$tmp/train.sh \
      sh slurm/train.sbatch configs/tiny.yaml --out "$out" 2>&1)
job=$(echo "$sub" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
if [ -z "$job" ]; then fail preflight_and_training_one_gpu_per_rank "not submitted: $sub"
elif ! job_wait "$job" 120; then fail preflight_and_training_one_gpu_per_rank "job $job still queued after 120 s"
elif [ "$(job_state "$job")" != COMPLETED ]; then
    fail preflight_and_training_one_gpu_per_rank "job $job $(job_state "$job"): $(tail -n 5 "$tmp/job.out" 2>/dev/null)"
elif ! one_gpu_each "$out/preflight" 4 "node1 node2"; then
    fail preflight_and_training_one_gpu_per_rank "preflight binding: $(cat "$out"/preflight/bind.* 2>/dev/null | tr '\n' ';')"
elif ! grep -q 'excluding slow nodes (preflight, .*): node2$' "$out/recovery.log" \
     || ! grep -q 'launch on node1,node3 (4 ranks, 2 per node)' "$out/recovery.log"; then
    fail preflight_and_training_one_gpu_per_rank "recovery.log: $(cat "$out/recovery.log")"
elif ! one_gpu_each "$out" 4 "node1 node3"; then
    fail preflight_and_training_one_gpu_per_rank "training binding: $(cat "$out"/bind.* 2>/dev/null | tr '\n' ';')"
else
    pass preflight_and_training_one_gpu_per_rank
    sed 's/^/  /' "$out/recovery.log"
fi

# two ranks per GPU: the driver stops before the step
out=$tmp/shared
sub=$(HERD_SBATCH_ARGS="--nodes=1 --ntasks-per-node=2 --gpus-per-node=1 --output=$tmp/shared.out" \
      HERD_TRAIN_CMD=$tmp/train.sh sh slurm/train.sbatch configs/tiny.yaml --out "$out" 2>&1)
job=$(echo "$sub" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
if [ -n "$job" ] && job_wait "$job" 60 && [ "$(job_state "$job")" = FAILED ] \
   && grep -q '2 ranks per node .* but 1 GPUs per node: two ranks would share a GPU' "$tmp/shared.out" \
   && ! ls "$out"/bind.* >/dev/null 2>&1; then
    pass two_ranks_per_gpu_job_refused
else fail two_ranks_per_gpu_job_refused "job '$job' $(job_state "$job"): $(tail -n 3 "$tmp/shared.out" 2>/dev/null)"; fi
[ "$fails" -eq 0 ]
