# lib.sh — shared by the Slurm tests (tests/cli/slurm_*.sh, tests/fault/*.sh):
# a private cluster on free ports, PASS/FAIL/SKIP helpers, job waiting, and
# finding a rank's PID. Sourced with the repository root as the working directory.

fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
skip() { echo "SKIP $1: $2"; }

# free_port_base: a base port P with P..P+8 free (slurmctld P, slurmd P+1..)
free_port_base() {
    used=$(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
    p=$(( 20000 + ($$ % 400) * 20 ))
    while [ "$p" -lt 29000 ]; do
        clash=0
        for q in $(seq "$p" $((p + 8))); do echo "$used" | grep -qx "$q" && { clash=1; break; }; done
        [ "$clash" = 0 ] && { echo "$p"; return 0; }
        p=$((p + 20))
    done
    return 1
}

# cluster_up [--gpus N] NODES: start a private cluster in $HERD_SLURM_DIR; sets SLURM_CONF
# (and, with GPUs, the CUDA emulator's variables of `cluster.sh env`).
# Returns 1 with the reason in $why when Slurm cannot start here.
cluster_up() {
    why=""
    [ "$(id -u)" -eq 0 ] || { why="needs root (slurmd runs as SlurmUser=root)"; return 1; }
    for b in slurmctld slurmd; do [ -x /usr/sbin/$b ] || { why="/usr/sbin/$b not installed (scripts/deps.sh)"; return 1; }; done
    base=$(free_port_base) || { why="no free port range found"; return 1; }
    export HERD_SLURM_PORT=$base HERD_SLURM_NODE_PORT=$((base + 1))
    out=$(sh slurm/local/cluster.sh start "$@" 2>&1) || { why="cluster.sh start failed: $(echo "$out" | tail -n 3 | tr '\n' ' ')"; return 1; }
    eval "$(sh slurm/local/cluster.sh env)"
    return 0
}

# own_procs: PIDs whose environment carries the cluster's marker
own_procs() {
    grep -lzxF "HERD_SLURM_CLUSTER=$HERD_SLURM_DIR" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
}

# cluster_procs: own_procs, and every process that holds a file of the cluster's
# directory open: slurmstepd starts with an empty environment, but keeps its
# node's log (log/slurmd-nodeK.log) open
cluster_procs() {
    {
        own_procs
        find /proc/[0-9]*/fd -maxdepth 1 -lname "$HERD_SLURM_DIR/*" 2>/dev/null | cut -d/ -f3
    } | sort -u
}

# job_wait JOBID SECONDS: wait until the job left the queue; 1 on timeout
job_wait() {
    t=0
    while [ "$t" -lt "$2" ]; do
        st=$(squeue -h -j "$1" -o %T 2>/dev/null)
        [ -z "$st" ] && return 0
        sleep 1; t=$((t + 1))
    done
    return 1
}

# job_state JOBID: COMPLETED, FAILED, ... (scontrol keeps finished jobs MinJobAge s)
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }

# rank_pid JOBID RANK EXE: PID of the task with SLURM_PROCID=RANK running EXE
rank_pid() {
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}; p=${p%/environ}
        [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$3" ] || continue
        env=$(tr '\0' '\n' 2>/dev/null <"$e")
        echo "$env" | grep -qx "SLURM_JOB_ID=$1" && echo "$env" | grep -qx "SLURM_PROCID=$2" && { echo "$p"; return 0; }
    done
    return 1
}

# lines FILE: number of lines (0 when missing)
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# tiny_config DIR STEPS: a byte-level data shard and a tiny config in DIR
tiny_config() {
    build/herd data prepare --out "$1/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1 || return 1
    cat >"$1/cfg.yaml" <<YAML
model:
  preset: tiny
batch:
  micro_batch: 2
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
schedule:
  warmup_steps: 2
  decay_steps: 20
train:
  max_steps: $2
  log_every: 50
  threads: 1
  out_dir: $1/out
checkpoint:
  every: 5
data:
  path: $1/train.bin
YAML
}
