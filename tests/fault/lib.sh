# lib.sh — the fault-injection tests' harness (tests/fault/[a-g]_*.sh).
#
# Each test: a private 4-node cluster (slurm/local/cluster.sh), a tiny config
# with tp=2 (8 ranks: dp 4) and checkpoints every CKPT_EVERY steps, an
# undisturbed reference run (cached in $FAULT_REF_DIR for the whole
# `make test-fault`), then the same stage with one fault injected; the run must
# finish with final parameters equal to the reference's (bitwise, or within 1e-5
# where DP shrank), a recovery log that names the fault and the recovery, and
# print the time from the fault to training again.
#
# The cluster runs with Slurm's default KillWait of 30 s (FAULT_KILL_WAIT), not
# cluster.sh's short one: a step torn down after a rank's death must not wait
# for KillWait's SIGKILL (checkpoint/stop.c), and the tests measure that.
# FAULT_NODES (default 4) emulated nodes: a spare lets a requeued job run
# while a killed node stays dead.
#
# Needs the MPI trainer with checkpoint/resume (checkpoint.every, parallel.dp,
# --dump-params); until it has them, each test SKIPs saying what is missing.
# HERD_FAULT_FORCE=1 runs them anyway (they then test the harness and the
# driver: a restart from step 0 reproduces the reference too, only slower).
. tests/slurm/lib.sh

STEPS=${FAULT_STEPS:-30}
CKPT_EVERY=${FAULT_CKPT_EVERY:-5}
HERD_BIN=${HERD_BIN:-$(pwd)/build/herd}
export HERD_BIN
HERD_EXE=$(readlink -f "$HERD_BIN")

# fault_setup NAME: checks, cluster, data, config, reference; exits 0 on SKIP
fault_setup() {
    NAME=$1
    [ -x "$HERD_BIN" ] || { skip "$NAME" "$HERD_BIN not built"; exit 0; }
    keys=$("$HERD_BIN" config --keys 2>/dev/null)
    missing=""
    echo "$keys" | grep -q '^checkpoint.every ' || missing="$missing checkpoint.every"
    echo "$keys" | grep -q '^parallel.dp ' || missing="$missing parallel.dp"
    grep -q -a -- '--dump-params' "$HERD_EXE" || missing="$missing --dump-params"
    HAVE_CKPT=1; echo "$missing" | grep -q checkpoint && HAVE_CKPT=0
    if [ -n "$missing" ] && [ "${HERD_FAULT_FORCE:-0}" != 1 ]; then
        skip "$NAME" "the trainer lacks$missing (checkpoint/resume of the MPI trainer); HERD_FAULT_FORCE=1 runs it anyway"
        exit 0
    fi
    export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-fault-slurm.XXXXXX)
    T=$(mktemp -d /tmp/herd-fault.XXXXXX)
    trap 'sh slurm/local/cluster.sh stop >/dev/null 2>&1; rm -rf "$T" "$HERD_SLURM_DIR"' EXIT INT TERM
    cluster_up "${FAULT_NODES:-4}" || { skip "$NAME" "Slurm cannot start here: $why"; exit 0; }
    set_kill_wait "${FAULT_KILL_WAIT:-30}" || { fail "$NAME" "cannot set KillWait=${FAULT_KILL_WAIT:-30} in $SLURM_CONF"; exit 1; }
    export OMP_NUM_THREADS=1
    FAULT_REF_DIR=${FAULT_REF_DIR:-$T/refcache}
    mkdir -p "$FAULT_REF_DIR"
    "$HERD_BIN" data prepare --out "$T/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1 \
        || { fail "$NAME" "herd data prepare failed"; exit 1; }
    ckpt_keys=""
    [ "$HAVE_CKPT" = 1 ] && ckpt_keys="checkpoint:
  every: $CKPT_EVERY
  keep_last: 3"
    # a short hang limit, so that (b) restarts in seconds (key proposed to the lead)
    wd_keys=""
    echo "$keys" | grep -q '^monitor.watchdog_step_s ' && wd_keys="monitor:
  watchdog_step_s: ${FAULT_WATCHDOG_S:-15}"
    cat >"$T/cfg.yaml" <<YAML
model:
  preset: tiny
batch:
  micro_batch: 2
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
schedule:
  warmup_steps: 2
  decay_steps: $STEPS
train:
  seed: 77
  max_steps: $STEPS
  log_every: 5
  threads: 1
data:
  path: $T/train.bin
parallel:
  tp: 2
$ckpt_keys
$wd_keys
YAML
    # the reference: the same stage, undisturbed (one per make test-fault)
    REF=$FAULT_REF_DIR/final.st
    if [ ! -s "$REF" ]; then
        j=$(HERD_SBATCH_ARGS="--output=$FAULT_REF_DIR/job.out" sh slurm/train.sbatch "$T/cfg.yaml" \
            --out "$FAULT_REF_DIR/run" -- --dump-params "$REF" 2>&1 | sed -n 's/^Submitted batch job //p')
        t0=$(date +%s)
        job_wait "$j" 600 && [ -s "$REF" ] || { fail "$NAME" "the reference run did not finish: $(tail -n 5 "$FAULT_REF_DIR/run/recovery.log" 2>&1)"; exit 1; }
        echo "reference run: $STEPS steps on 4 nodes, 8 ranks in $(( $(date +%s) - t0 )) s"
    fi
}

# set_kill_wait SECONDS: KillWait in the running cluster's slurm.conf, reconfigured
set_kill_wait() {
    sed -i "s/^KillWait=.*/KillWait=$1/" "$SLURM_CONF" && grep -qx "KillWait=$1" "$SLURM_CONF" || return 1
    scontrol reconfigure >/dev/null 2>&1 || return 1
    t=0
    until scontrol show config 2>/dev/null | grep -Eq "^KillWait +=  *$1 sec"; do
        sleep 0.5; t=$((t + 1)); [ "$t" -lt 40 ] || return 1
    done
    # every slurmd re-reads the file on reconfigure: wait until they answer again
    t=0
    while sinfo -h -o '%t' 2>/dev/null | grep -qvx 'idle'; do
        sleep 0.5; t=$((t + 1)); [ "$t" -lt 60 ] || return 1
    done
}

# submit [ENV=VALUE...]: the stage under test, into $T/run; sets JOB
submit() {
    JOB=$(env "$@" sbatch --parsable --output="$T/job.out" slurm/train.sbatch "$T/cfg.yaml" --out "$T/run" \
          -- --dump-params "$T/run/final.st") || { fail "$NAME" "sbatch failed"; exit 1; }
}

# wait_steps N [SECONDS]: until metrics.jsonl has N lines
wait_steps() {
    t=0
    while [ "$(lines "$T/run/metrics.jsonl")" -lt "$1" ]; do
        sleep 0.1; t=$((t + 1))
        [ "$t" -gt $(( ${2:-300} * 10 )) ] && { fail "$NAME" "no step $1 within ${2:-300} s"; exit 1; }
    done
}

launches() { grep -cE 'launch on|restart [0-9]+/' "$T/run/recovery.log" 2>/dev/null || echo 0; }

# mark_fault: call right before the fault
mark_fault() { N_LAUNCH=$(launches); T_FAULT=$(date +%s.%N); }

# wait_training_again [SECONDS]: until a relaunched step logged a step; prints the time
wait_training_again() {
    t=0; t_rel=""
    while [ "$t" -lt $(( ${1:-300} * 10 )) ]; do
        if [ -z "$t_rel" ] && [ "$(launches)" -gt "$N_LAUNCH" ]; then t_rel=$(date +%s.%N); fi
        if [ -n "$t_rel" ]; then
            m=$(stat -c %.9Y "$T/run/metrics.jsonl" 2>/dev/null || echo 0)
            if awk -v m="$m" -v r="$t_rel" 'BEGIN {exit !(m > r)}'; then
                AGAIN=$(awk -v a="$(date +%s.%N)" -v f="$T_FAULT" 'BEGIN {printf "%.1f", a - f}')
                echo "$NAME: training again $AGAIN s after the fault"
                return 0
            fi
        fi
        sleep 0.1; t=$((t + 1))
    done
    fail "$NAME" "not training again within ${1:-300} s of the fault"
    return 1
}

# finish_and_compare TOLERANCE: job completed, final parameters equal the reference
finish_and_compare() {
    job_wait "$JOB" "${2:-600}" || { fail "$NAME" "job $JOB did not finish"; return 1; }
    [ "$(job_state "$JOB")" = COMPLETED ] || { fail "$NAME" "job $JOB ended $(job_state "$JOB"): $(tail -n 5 "$T/run/recovery.log")"; return 1; }
    [ -s "$T/run/final.st" ] || { fail "$NAME" "no final parameters"; return 1; }
    if [ "$1" = 0 ]; then
        cmp -s "$REF" "$T/run/final.st" || { fail "$NAME" "final parameters differ from the reference (bitwise)"; return 1; }
    else
        r=$(/usr/bin/python3 tests/fault/compare_params.py "$REF" "$T/run/final.st" "$1" 2>&1) \
            || { fail "$NAME" "final parameters: $r"; return 1; }
        echo "$NAME: $r"
    fi
    return 0
}

# lost_ok: every restart lost at most one checkpoint interval of steps
lost_ok() {
    bad=$(sed -n 's/.*, \([0-9-]*\) steps since the checkpoint.*/\1/p' "$T/run/recovery.log" \
          | awk -v e="$CKPT_EVERY" '$1 > e || $1 < 0')
    [ -z "$bad" ]
}

show_log() { sed 's/^/  | /' "$T/run/recovery.log"; }

# node_procs JOB NODE: every process of JOB on emulated NODE (the batch script,
# the driver's children, the ranks, the guard: SLURMD_NODENAME=NODE in their
# environment) and the slurmstepd each of them runs under
node_procs() {
    tasks=""
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}; p=${p%/environ}
        env=$(tr '\0' '\n' 2>/dev/null <"$e") || continue
        echo "$env" | grep -qx "SLURM_CONF=$SLURM_CONF" || continue
        echo "$env" | grep -qx "SLURM_JOB_ID=$1" && echo "$env" | grep -qx "SLURMD_NODENAME=$2" && tasks="$tasks $p"
    done
    for p in $tasks; do
        echo "$p"
        pp=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$p/status" 2>/dev/null)
        case "$(readlink "/proc/$pp/exe" 2>/dev/null)" in */slurmstepd*) echo "$pp" ;; esac  # Debian: slurmstepd-wlm
    done | sort -u
}

# pids of this job's herd ranks on NODE
node_ranks() {
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}; p=${p%/environ}
        [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$HERD_EXE" ] || continue
        env=$(tr '\0' '\n' 2>/dev/null <"$e")
        echo "$env" | grep -qx "SLURM_JOB_ID=$1" && echo "$env" | grep -qx "SLURMD_NODENAME=$2" && echo "$p"
    done
}
