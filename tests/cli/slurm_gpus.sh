#!/bin/sh
# One GPU per rank on the local Slurm cluster with emulated GPUs (a few
# minutes): `cluster.sh start --gpus 2 4` gives 4 nodes of 2 GPUs (gres.conf,
# the CUDA emulator's 2 devices, the hwloc fixture gpu2.xml whose GPUs have
# their bus ids). Then
#   - an 8-rank job of build/emu/herd (backend cuda) over the 4 nodes with
#     --gpus-per-node=2 trains 2 steps; each rank's start-up line shows its own
#     (node, GPU bus id), and the losses equal backend cpu's (build/herd, the
#     same config, one process) within the emulator's fp32 tolerance (1e-4);
#   - the same 8 ranks through slurm/train.sbatch (run_stage.sh binds each rank
#     with --gpu-bind=single:1) for one step: each rank sees one device, the 8
#     (node, GPU) pairs differ, the loss is backend cpu's, the checkpoint commits;
#   - `herd topo` under --gpus-per-task=1 (Slurm's CUDA_VISIBLE_DEVICES: one
#     device each) shows the same 8 distinct pairs in its table;
#   - a job of two ranks per GPU (2 tasks per node, --gpus-per-node=1) is
#     refused at start-up (exit 2) with the message naming the node, ranks and
#     GPU; through train.sbatch (HERD_GPU_BIND=--gpu-bind=map_gpu:0: both ranks
#     of a node on GPU 0) the driver stops at that refusal, no relaunch.
# Skips only where Slurm is not installed.
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
for b in slurmctld slurmd; do
    [ -x /usr/sbin/$b ] || { skip slurm_gpus "/usr/sbin/$b not installed (scripts/deps.sh)"; exit 0; }
done
command -v srun >/dev/null 2>&1 || { skip slurm_gpus "srun not installed (scripts/deps.sh)"; exit 0; }
for b in build/herd build/emu/herd; do
    [ -x "$b" ] || { fail slurm_gpus "$b not built (make all emu)"; exit 1; }
done
export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-gpus.XXXXXX)
tmp=$(mktemp -d)
cleanup() {
    sh slurm/local/cluster.sh stop >/dev/null 2>&1
    rm -rf "$tmp" "$HERD_SLURM_DIR"
}
trap cleanup EXIT INT TERM

if ! cluster_up --gpus 2 4; then fail cluster_up_gpus "$why"; exit 1; fi
if scontrol show node node3 | grep -q 'Gres=gpu:2' && [ "${HERD_CUDA_EMU_DEVICES:-}" = 2 ] \
   && [ -n "${HWLOC_XMLFILE:-}" ]; then
    pass cluster_nodes_advertise_gpu_2
else
    fail cluster_nodes_advertise_gpu_2 "$(scontrol show node node3 | grep -i gres) emu=${HERD_CUDA_EMU_DEVICES:-} xml=${HWLOC_XMLFILE:-}"
fi

build/herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1 \
    || { fail slurm_gpus "herd data prepare failed"; exit 1; }
cat >"$tmp/cfg.yaml" <<YAML
model:
  preset: tiny
train:
  max_steps: 2
  log_every: 1
  threads: 1
batch:
  micro_batch: 1
  ramp: [{after_tokens: 0, batch_tokens: 512, seq_len: 64}]
checkpoint:
  every: 0
data:
  path: $tmp/train.bin
YAML

# pairs FILE: the "host busid" of each "device: rank" line, one a line
pairs() { sed -n 's/^device: rank [0-9]*: host \([^,]*\),.* GPU [0-9]* (\([0-9a-f:.]*\),.*/\1 \2/p' "$1"; }

# ---- 8 ranks, 4 nodes, 2 GPUs each: one (node, GPU) per rank ----
timeout 300 srun --mpi=pmix -N4 -n8 --ntasks-per-node=2 --gpus-per-node=2 build/emu/herd train "$tmp/cfg.yaml" \
    --set train.backend=cuda --set train.out_dir="$tmp/cuda" >"$tmp/cuda.log" 2>&1
rc=$?
pairs "$tmp/cuda.log" >"$tmp/pairs"
n=$(wc -l <"$tmp/pairs"); distinct=$(sort -u "$tmp/pairs" | wc -l); nodes=$(cut -d' ' -f1 "$tmp/pairs" | sort -u | wc -l)
if [ "$rc" -eq 0 ] && [ "$n" -eq 8 ] && [ "$distinct" -eq 8 ] && [ "$nodes" -eq 4 ] \
   && [ "$(cut -d' ' -f2 "$tmp/pairs" | sort -u | tr '\n' ' ')" = "0000:11:00.0 0000:91:00.0 " ]; then
    pass emu_cuda_8_ranks_own_node_gpu
else
    fail emu_cuda_8_ranks_own_node_gpu "rc $rc, $n start-up lines, $distinct distinct (node, GPU), $nodes nodes: $(grep -E '^device:|herd:|cuda-emu|rror' "$tmp/cuda.log" | head -n 12)"
fi

build/herd train "$tmp/cfg.yaml" --set train.backend=cpu --set train.out_dir="$tmp/cpu" >"$tmp/cpu.log" 2>&1 \
    || fail cpu_reference "$(tail -n 3 "$tmp/cpu.log")"
if [ -f "$tmp/cuda/metrics.jsonl" ] && [ -f "$tmp/cpu/metrics.jsonl" ]; then
    sed 's/.*"loss":\([^,}]*\).*/\1/' "$tmp/cuda/metrics.jsonl" >"$tmp/a"
    sed 's/.*"loss":\([^,}]*\).*/\1/' "$tmp/cpu/metrics.jsonl" >"$tmp/b"
    paste "$tmp/a" "$tmp/b" | awk '
        { d = $1 - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > w) w = r; n++
          s = s sprintf(" %s/%s", $1, $2) }
        END { if (n == 2 && w <= 1e-4) printf "PASS emu_cuda_8_ranks_loss_equals_cpu (losses cuda/cpu%s; largest rel diff %.2e)\n", s, w
              else printf "FAIL emu_cuda_8_ranks_loss_equals_cpu: %d steps, losses cuda/cpu%s, largest rel diff %.2e > 1e-4\n", n, s, w }'
else
    fail emu_cuda_8_ranks_loss_equals_cpu "no metrics.jsonl (cuda: $(ls "$tmp/cuda" 2>&1 | head -c 200))"
fi

# ---- the stage driver's binding and the trainer's choice together ----
# slurm/train.sbatch (run_stage.sh: srun --gpu-bind=single:1 in a job with GPUs)
# runs build/emu/herd for one step: every rank sees one device, and the 8
# (node, GPU) pairs differ; the step commits its checkpoint.
out=$tmp/stage
sub=$(HERD_BIN=$PWD/build/emu/herd \
      HERD_SBATCH_ARGS="--nodes=4 --ntasks-per-node=2 --gpus-per-node=2 --output=$tmp/stage.log" \
      sh slurm/train.sbatch "$tmp/cfg.yaml" --out "$out" --set train.backend=cuda \
      --set train.max_steps=1 --set checkpoint.every=1 2>&1)
job=$(echo "$sub" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
if [ -z "$job" ]; then fail stage_driver_binding_meets_device_choice "not submitted: $sub"
elif ! job_wait "$job" 300; then fail stage_driver_binding_meets_device_choice "job $job still in the queue after 300 s"
else
    pairs "$tmp/stage.log" >"$tmp/spairs"
    n=$(wc -l <"$tmp/spairs"); distinct=$(sort -u "$tmp/spairs" | wc -l)
    only=$(grep -c '^device: rank .*, the only visible device)' "$tmp/stage.log")
    buses=$(cut -d' ' -f2 "$tmp/spairs" | sort -u | tr '\n' ' ')
    # step 1's loss against backend cpu's (the reference run above), within 1e-4
    loss=$(sed -n '1s/.*"loss":\([^,}]*\).*/\1/p' "$out/metrics.jsonl" 2>/dev/null)
    ref=$(sed -n '1s/.*"loss":\([^,}]*\).*/\1/p' "$tmp/cpu/metrics.jsonl" 2>/dev/null)
    if [ "$(job_state "$job")" = COMPLETED ] && [ "$n" -eq 8 ] && [ "$distinct" -eq 8 ] && [ "$only" -eq 8 ] \
       && [ "$(cut -d' ' -f1 "$tmp/spairs" | sort -u | wc -l)" -eq 4 ] && [ "$buses" = "0000:11:00.0 0000:91:00.0 " ] \
       && grep -q 'stage finished (step exit 0)' "$out/recovery.log" \
       && [ -f "$out/checkpoints/step_00000001/MANIFEST" ] \
       && awk -v a="${loss:-x}" -v b="${ref:-x}" 'BEGIN { d = a - b; if (d < 0) d = -d
              exit !(a ~ /^[0-9.e+-]+$/ && b ~ /^[0-9.e+-]+$/ && b != 0 && d / (b < 0 ? -b : b) <= 1e-4) }'; then
        pass "stage_driver_binding_meets_device_choice (step 1 loss $loss, cpu $ref)"
    else
        fail stage_driver_binding_meets_device_choice "job $job $(job_state "$job"): $n start-up lines, $distinct distinct (node, GPU), $only with one visible device, GPUs $buses, loss '$loss' cpu '$ref'; $(ls "$out/checkpoints" 2>&1 | head -c 100); $(grep -E '^device:|herd|rror' "$tmp/stage.log" | head -n 12)"
    fi
fi

# ---- herd topo with one GPU per task: Slurm's CUDA_VISIBLE_DEVICES decides ----
timeout 120 srun --mpi=pmix -N4 -n8 --gpus-per-task=1 build/emu/herd topo >"$tmp/topo.log" 2>&1
rc=$?
pairs "$tmp/topo.log" >"$tmp/tpairs"
if [ "$rc" -eq 0 ] && [ "$(wc -l <"$tmp/tpairs")" -eq 8 ] && [ "$(sort -u "$tmp/tpairs" | wc -l)" -eq 8 ] \
   && grep -q 'the only visible device' "$tmp/topo.log"; then
    pass topo_gpus_per_task_table
else
    fail topo_gpus_per_task_table "rc $rc: $(grep -E 'device|GPU|herd' "$tmp/topo.log" | head -n 12)"
fi

# ---- two ranks per GPU: refused, naming node, ranks and GPU ----
# (Slurm picks any 2 free nodes: those of the job before may still be completing)
t0=$(date +%s)
timeout 120 srun --mpi=pmix -N2 -n4 --ntasks-per-node=2 --gpus-per-node=1 build/emu/herd train "$tmp/cfg.yaml" \
    --set train.backend=cuda --set train.out_dir="$tmp/shared" >"$tmp/shared.log" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "parallel.share_gpu': node node[1-4]: ranks [0-9]* and [0-9]* both use GPU 0000:[19]1:00.0" "$tmp/shared.log" \
   && ! grep -q '^step' "$tmp/shared.log"; then
    pass two_ranks_per_gpu_refused
else
    fail two_ranks_per_gpu_refused "rc $rc (want 2) after $(( $(date +%s) - t0 )) s: $(grep -E 'herd|step' "$tmp/shared.log" | head -n 6)"
fi

# ---- the stage driver does not relaunch a binding that gives two ranks one GPU ----
out=$tmp/stage_shared
sub=$(HERD_BIN=$PWD/build/emu/herd HERD_GPU_BIND=--gpu-bind=map_gpu:0 \
      HERD_SBATCH_ARGS="--nodes=2 --ntasks-per-node=2 --gpus-per-node=2 --output=$tmp/stage_shared.log" \
      sh slurm/train.sbatch "$tmp/cfg.yaml" --out "$out" --set train.backend=cuda 2>&1)
job=$(echo "$sub" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
if [ -n "$job" ] && job_wait "$job" 120 && [ "$(job_state "$job")" = FAILED ] \
   && grep -q "both use GPU 0000:11:00.0 .*CUDA_VISIBLE_DEVICES=0)" "$tmp/stage_shared.log" \
   && grep -q 'the step refused its input (exit 2, usage): not restarting' "$out/recovery.log" \
   && ! grep -q 'restart 1/' "$out/recovery.log" && ! grep -q '^step' "$tmp/stage_shared.log"; then
    pass stage_driver_no_relaunch_of_shared_gpu
else
    fail stage_driver_no_relaunch_of_shared_gpu "job '$job' $(job_state "$job"): $(cat "$out/recovery.log" 2>/dev/null | cut -c1-200)"
fi
[ "$fails" -eq 0 ]
