#!/bin/sh
# slurm_stage_files.sh — the 8B, 70B and 405B stage files against a Slurm that
# declares their size (seconds): a slurmctld (no slurmd) whose slurm.conf has
# 2048 nodes of 8 GPUs and 96 cores, asked by `slurm/pipeline.sh --test-only`
# (sbatch --test-only with each stage's #SBATCH lines) whether it would run each
# stage; the same controller refuses a stage one node, one GPU or one core too
# big, so "accepted" means something. The nodes are State=CLOUD (powered down,
# resumed on demand): Slurm 22.05 refuses any request for nodes that never
# registered (State=UNKNOWN), and a powered-down node is its way of counting a
# node that is not running. Also: each stage's nodes x GPUs per node is its
# layout (tp·cp·pp·dp), and run_stage.sh's training and preflight srun lines
# carry the binding that gives each rank one GPU.
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
HERD=build/herd

# ---- without Slurm: the layout of every stage, and the srun lines ----
for f in configs/recipe/8b/*.yaml configs/recipe/70b/*.yaml configs/recipe/405b/*.yaml; do
    nodes=$(sed -n 's/^#SBATCH --nodes=\([0-9]*\)$/\1/p' "$f")
    gpn=$(sed -n 's/^#SBATCH --gpus-per-node=\([0-9]*\)$/\1/p' "$f")
    tpn=$(sed -n 's/^#SBATCH --ntasks-per-node=\([0-9]*\)$/\1/p' "$f")
    cpt=$(sed -n 's/^#SBATCH --cpus-per-task=\([0-9]*\)$/\1/p' "$f")
    prod=$("$HERD" config "$f" 2>/dev/null | awk '/^parallel:/ {p = 1; next} /^[^ ]/ {p = 0}
        p && ($1 == "tp:" || $1 == "cp:" || $1 == "pp:" || $1 == "dp:") {n = (n ? n : 1) * $2} END {print n + 0}')
    if [ -z "$nodes" ] || [ -z "$gpn" ] || [ "$tpn" != "$gpn" ] || [ -z "$cpt" ]; then
        fail "stage_request_$f" "nodes '$nodes', gpus-per-node '$gpn', ntasks-per-node '$tpn', cpus-per-task '$cpt': want one task per GPU and cores per task"
    elif [ $((nodes * gpn)) -ne "$prod" ]; then
        fail "stage_request_$f" "$nodes nodes x $gpn GPUs = $((nodes * gpn)), the layout tp·cp·pp·dp = $prod"
    else n_ok=$(( ${n_ok:-0} + 1 )); fi
done
[ "${n_ok:-0}" -eq 24 ] && pass stage_files_one_rank_per_gpu_and_layout_size

# every srun that starts ranks (training, per-rank training, preflight) carries
# $STEP_BIND, and $STEP_BIND is one GPU per rank when the job has GPUs
sruns=$(grep -c '^[^#]*srun --mpi=pmix' slurm/run_stage.sh)
bound=$(grep '^[^#]*srun --mpi=pmix' slurm/run_stage.sh | grep -c ' \$STEP_BIND')
if [ "$sruns" -lt 3 ] || [ "$sruns" -ne "$bound" ]; then
    fail run_stage_sruns_bind_one_gpu "$bound of $sruns 'srun --mpi=pmix' lines carry \$STEP_BIND"
elif ! grep -q 'STEP_BIND="\$STEP_BIND --gpu-bind=single:1"' slurm/run_stage.sh \
     || ! grep -q 'STEP_BIND="--cpus-per-task=\$SLURM_CPUS_PER_TASK"' slurm/run_stage.sh; then
    fail run_stage_sruns_bind_one_gpu "STEP_BIND is not --gpu-bind=single:1 / --cpus-per-task in slurm/run_stage.sh"
else pass run_stage_sruns_bind_one_gpu; fi

# ---- a controller that declares 2048 GPU nodes ----
[ "$(id -u)" -eq 0 ] || { skip stage_files_accepted_by_slurm "needs root (the controller runs as SlurmUser=root)"; [ "$fails" -eq 0 ]; exit $?; }
for b in slurmctld munged; do
    [ -x /usr/sbin/$b ] || { skip stage_files_accepted_by_slurm "/usr/sbin/$b not installed (scripts/deps.sh)"; [ "$fails" -eq 0 ]; exit $?; }
done
export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-big.XXXXXX)
D=$HERD_SLURM_DIR
stop_all() {
    for f in "$D/run/slurmctld.pid" "$D/munge/munged.pid"; do
        p=$(cat "$f" 2>/dev/null) || continue
        kill -TERM "$p" 2>/dev/null
        t=0; while kill -0 "$p" 2>/dev/null && [ "$t" -lt 40 ]; do sleep 0.25; t=$((t + 1)); done
        kill -KILL "$p" 2>/dev/null
    done
    # slurmscriptd and anything else the controller forked: by its marker, by PID
    left=$(own_procs)
    [ -n "$left" ] && kill -KILL $left 2>/dev/null
    rm -rf "$D"
}
trap stop_all EXIT INT TERM
port=${STAGE_FILES_PORT:-$(free_port_base)} || { skip stage_files_accepted_by_slurm "no free port"; [ "$fails" -eq 0 ]; exit $?; }
mkdir -p "$D/etc" "$D/state" "$D/log" "$D/run" "$D/munge" && chmod 0700 "$D/munge"
cat >"$D/etc/slurm.conf" <<CONF
ClusterName=herdbig
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge.socket
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmctldLogFile=$D/log/slurmctld.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
GresTypes=gpu
# powered-down nodes that Slurm would resume on demand: never contacted here
SuspendProgram=/bin/true
ResumeProgram=/bin/true
SuspendTime=600
NodeName=gpu[0001-2048] NodeHostname=localhost NodeAddr=127.0.0.1 Sockets=2 CoresPerSocket=48 ThreadsPerCore=1 RealMemory=1000000 Gres=gpu:8 State=CLOUD
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP AllowGroups=root
CONF
export SLURM_CONF=$D/etc/slurm.conf
mungekey --create --force --keyfile="$D/etc/munge.key" >/dev/null 2>&1 \
    && env "HERD_SLURM_CLUSTER=$D" /usr/sbin/munged --force --socket="$D/munge.socket" --key-file="$D/etc/munge.key" \
        --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed" \
    || { fail stage_files_accepted_by_slurm "munged did not start"; exit 1; }
env "HERD_SLURM_CLUSTER=$D" /usr/sbin/slurmctld -i \
    || { fail stage_files_accepted_by_slurm "slurmctld did not start: $(tail -n 3 "$D/log/slurmctld.log" 2>/dev/null)"; exit 1; }
t=0
until scontrol ping 2>/dev/null | grep -q 'is UP'; do
    t=$((t + 1)); [ "$t" -lt 40 ] || { fail stage_files_accepted_by_slurm "slurmctld not answering: $(tail -n 3 "$D/log/slurmctld.log")"; exit 1; }
    sleep 0.25
done
# CLOUD nodes are hidden from `scontrol show node`; the partition counts them
# (their GPUs: the --gpus-per-node=9 refusal below)
tres=$(scontrol show partition gpu 2>/dev/null | grep -o 'TRES=[^ ]*')
case "$tres" in
    *cpu=196608,*node=2048,*) ;;
    *) fail stage_files_accepted_by_slurm "the controller's partition is not 2048 nodes x 96 cores: '$tres'"; exit 1 ;;
esac

# ---- every stage of 8B, 70B and 405B: accepted, on its node count ----
T=$D/runs
for m in 8b 70b 405b; do
    out=$(HERD_BIN=$HERD sh slurm/pipeline.sh "configs/recipe/$m" --out "$T/$m" --test-only 2>&1); rc=$?
    n=$(echo "$out" | grep -c ': accepted: Job ')
    bad=""
    for f in configs/recipe/$m/*.yaml; do
        name=$(basename "$f" .yaml)
        nodes=$(sed -n 's/^#SBATCH --nodes=\([0-9]*\)$/\1/p' "$f")
        # 96 cores a node (8 tasks x 12), on exactly NODES nodes
        echo "$out" | grep "stage $name: accepted: " | grep -q "using $((nodes * 96)) processors on nodes gpu" || bad="$bad $name"
    done
    if [ "$rc" -ne 0 ] || [ "$n" -ne 8 ] || [ -n "$bad" ]; then
        fail "stage_files_accepted_$m" "exit $rc, $n of 8 accepted, wrong size:${bad:- none}: $(echo "$out" | tail -n 4)"
    else pass "stage_files_accepted_$m"; fi
done

# ---- and refused when the request does not fit the declared nodes ----
# (the 405B pre-training stage alone: HERD_SBATCH_ARGS comes after its #SBATCH lines)
mkdir -p "$T/one" && cp configs/recipe/405b/01_pretrain.yaml "$T/one/"
for extra in --nodes=2049 --gpus-per-node=9 --cpus-per-task=13; do
    out=$(HERD_BIN=$HERD HERD_SBATCH_ARGS=$extra sh slurm/pipeline.sh "$T/one" --out "$T/no" --test-only 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && echo "$out" | grep -q 'stage 01_pretrain: refused .*Requested node configuration is not available'; then
        pass "stage_refused_when_too_big_$(echo "$extra" | tr -c 'a-z0-9\n' _)"
    else fail "stage_refused_when_too_big_$(echo "$extra" | tr -c 'a-z0-9\n' _)" "exit $rc: $(echo "$out" | head -n 3)"; fi
done
[ "$fails" -eq 0 ]
