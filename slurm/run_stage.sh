#!/bin/sh
# run_stage.sh — one training stage inside a Slurm allocation, with recovery.
#
#   run_stage.sh check  CONFIG [--out DIR] [--init-from DIR] [--set key=value]... [-- TRAINER_ARGS]
#   run_stage.sh run    CONFIG [--out DIR] [--init-from DIR] [--set key=value]... [-- TRAINER_ARGS]
#
# `check` validates the input without Slurm (the config through `herd config`, the
# output directory by creating and writing a file in it, the previous stage's
# checkpoint directory) and exits 1 with a message naming the file and the field.
# slurm/train.sbatch runs it before `sbatch` asks for nodes, and again at job start.
#
# `run` (inside the allocation) launches `srun --mpi=pmix -K1 herd train ...` and,
# when the step fails, finds the allocation's failed nodes (Slurm's node state and
# a probe step on each node), excludes them and relaunches on the healthy nodes
# (spares first, then a smaller data-parallel size when HERD_MIN_NODES allows),
# up to HERD_MAX_RESTARTS times. When the allocation cannot continue, or the step
# stopped on SIGUSR1/SIGTERM after committing a checkpoint (exit 75), the job
# requeues itself. Each launch resumes from the newest complete checkpoint in the
# output directory (the trainer does that); a stage with none starts from the
# previous stage's newest complete checkpoint (--init-from), copied in.
# Every restart is logged, to stderr and OUT_DIR/recovery.log, with its cause,
# the nodes excluded and the time lost (from the last step logged before the
# failure to the relaunch, and the steps logged since the checkpoint resumed).
#
# The batch host is the one node whose death Slurm does not handle under
# --no-kill (the job stays RUNNING with no batch script): the driver writes a
# heartbeat file, and slurm/stage_guard.sh, a step on every other node,
# requeues the job when the heartbeat stops and the batch host is gone.
#
# Settings (environment):
#   HERD_ROOT           the herd checkout (default: SLURM_SUBMIT_DIR, else this file's ../)
#   HERD_BIN            the herd binary (default $HERD_ROOT/build/herd)
#   HERD_TRAIN_CMD      the command srun runs (default "$HERD_BIN train"); CONFIG and the
#                       --set arguments follow it
#   HERD_MAX_RESTARTS   relaunches inside one allocation (default 3)
#   HERD_MAX_REQUEUES   requeues of the job (default 3; SLURM_RESTART_COUNT counts them)
#   HERD_SPARES         allocated nodes kept as spares (default 0)
#   HERD_MIN_NODES      fewest nodes to go on with (default: all but the spares, i.e. no
#                       shrinking); fewer nodes than needed shrink parallel.dp
#   HERD_TASKS_PER_NODE ranks per node (default SLURM_NTASKS_PER_NODE, else 1)
#   HERD_PROBE_TIMEOUT  seconds a node has to run a probe step (default 10)
#   HERD_PER_RANK_OUT   1: each rank trains into OUT_DIR/rankN (the single-process trainer
#                       before MPI lands; independent runs, one per rank)
#   HERD_HEARTBEAT_S    seconds between the driver's heartbeats (default 5)
#   HERD_GUARD_SILENCE_S  a heartbeat silent this long sends the guards to check the
#                       batch host (default 30; more than the shared file system's lag)
#   HERD_STOP_GRACE_S   the trainer's grace after SIGTERM (checkpoint/stop.c, default 3)
#   HERD_GPU_BIND       srun's GPU binding of the ranks: unset = one GPU per rank
#                       (--gpu-bind=single:1) when the job has GPUs, nothing when not;
#                       "none" = every rank sees its node's GPUs (herd picks by local
#                       rank and locality); anything else is passed to srun as given
#                       (e.g. "--gpus-per-task=1")
#   HERD_PREFLIGHT      1: before the first launch of the allocation, run the preflight
#                       (`herd check CONFIG --out OUT/preflight`) on the launch's nodes
#                       with the training binding, and exclude the nodes it lists in
#                       OUT/preflight/slow_nodes (Slurm node names, one a line)
#   HERD_CHECK_CMD      the preflight's command (default "$HERD_BIN check")
#   HERD_PREFLIGHT_TIMEOUT  seconds the preflight may take (default 600)
set -u

me=run_stage.sh
say() { echo "herd-stage: $*" >&2; [ -n "${LOG:-}" ] && echo "$(date -u +%FT%TZ) $*" >>"$LOG"; return 0; }
die() { echo "$me: $*" >&2; [ -n "${LOG:-}" ] && echo "$(date -u +%FT%TZ) $*" >>"$LOG"; exit 1; }
now() { date +%s; }

mode=${1:-}; shift 2>/dev/null
case "$mode" in check|run) ;; *) die "usage: $me check|run CONFIG [--out DIR] [--init-from DIR] [--set key=value]..." ;; esac
[ $# -ge 1 ] || die "usage: $me $mode CONFIG [--out DIR] [--init-from DIR] [--set key=value]..."
CONFIG=$1; shift
OUT=""; INIT_FROM=""; SETS=""; EXTRA=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out: needs a directory"; OUT=$2; shift 2 ;;
        --init-from) [ $# -ge 2 ] || die "--init-from: needs a directory"; INIT_FROM=$2; shift 2 ;;
        --set) [ $# -ge 2 ] || die "--set: needs key=value"
               case "$2" in *=*) ;; *) die "--set '$2': not key=value" ;; esac
               case "$2" in *" "*|*"'"*) die "--set '$2': spaces and quotes are not supported" ;; esac
               SETS="$SETS --set $2"; shift 2 ;;
        --) shift; for a in "$@"; do
                case "$a" in *" "*|*"'"*) die "'$a': spaces and quotes are not supported" ;; esac
                EXTRA="$EXTRA $a"; done; break ;;
        *) die "argument '$1': expected --out, --init-from, --set or -- TRAINER_ARGS" ;;
    esac
done

if [ -z "${HERD_ROOT:-}" ]; then
    if [ -n "${SLURM_SUBMIT_DIR:-}" ]; then HERD_ROOT=$SLURM_SUBMIT_DIR
    else HERD_ROOT=$(cd "$(dirname "$0")/.." && pwd); fi
fi
HERD_BIN=${HERD_BIN:-$HERD_ROOT/build/herd}

# ---- input checks: no Slurm needed, so bad input never costs an allocation ----
[ -x "$HERD_BIN" ] || die "$HERD_BIN: herd binary not found or not executable (run make, or set HERD_BIN)"
[ -e "$CONFIG" ] || die "$CONFIG: config file does not exist"
[ -f "$CONFIG" ] && [ -r "$CONFIG" ] || die "$CONFIG: config file is not a readable file"
resolved=$("$HERD_BIN" config "$CONFIG" $SETS 2>&1) || die "$CONFIG: config rejected: $resolved"
# the value of KEY in SECTION of the resolved config (herd config prints 2-space YAML)
cfg_get() {
    printf '%s\n' "$resolved" | awk -v s="$1:" -v k="$2:" '
        /^[^ #]/ {in_s = ($1 == s)} in_s && $1 == k {v = $2; gsub(/"/, "", v); print v; exit}'
}
[ -n "$OUT" ] || OUT=$(cfg_get train out_dir)
[ -n "$OUT" ] || die "$CONFIG: train.out_dir: empty, and no --out given"
case "$OUT" in /*) ;; *) OUT=$HERD_ROOT/$OUT ;; esac
mkdir -p "$OUT" 2>/dev/null || die "$OUT: output directory (train.out_dir) cannot be created"
probe_file="$OUT/.herd-write-test.$$"
( : >"$probe_file" ) 2>/dev/null && rm -f "$probe_file" \
    || die "$OUT: output directory (train.out_dir) is not writable"
if [ -n "$INIT_FROM" ]; then
    [ -d "$INIT_FROM" ] || die "$INIT_FROM: --init-from: previous stage's directory does not exist"
fi
# the batch host guard's settings (slurm/stage_guard.sh reads them in the job)
hb_s=${HERD_HEARTBEAT_S:-5}
case "$hb_s" in ''|*[!0-9.]*|*.*.*|.) hb_s=0 ;; esac
awk -v v="$hb_s" 'BEGIN {exit !(v + 0 > 0)}' || die "HERD_HEARTBEAT_S '${HERD_HEARTBEAT_S:-}': not a positive number of seconds"
case "${HERD_GUARD_SILENCE_S:-30}" in ''|*[!0-9]*|0) die "HERD_GUARD_SILENCE_S '${HERD_GUARD_SILENCE_S:-}': not a positive whole number of seconds" ;; esac
# the emulated cluster of slurm/local needs its Open MPI settings (cluster.sh env):
# Open MPI's own choice there is shared memory between "nodes" that are one host,
# and the ranks crash in MPI_Init
if [ -n "${SLURM_CONF:-}" ] && [ -z "${OMPI_MCA_pml:-}" ] && grep -q '^# generated by slurm/local/cluster.sh' "$SLURM_CONF" 2>/dev/null; then
    die "$SLURM_CONF: the local emulated cluster needs its Open MPI settings, and OMPI_MCA_pml is not set: eval \"\$(HERD_SLURM_DIR=$(dirname "$(dirname "$SLURM_CONF")") sh $HERD_ROOT/slurm/local/cluster.sh env)\" before submitting"
fi
case "${HERD_PREFLIGHT:-0}" in 0|1) ;; *) die "HERD_PREFLIGHT '${HERD_PREFLIGHT:-}': expected 0 or 1" ;; esac
case "${HERD_PREFLIGHT_TIMEOUT:-600}" in ''|*[!0-9]*|0) die "HERD_PREFLIGHT_TIMEOUT '${HERD_PREFLIGHT_TIMEOUT:-}': not a positive whole number of seconds" ;; esac
[ "$mode" = check ] && { echo "$me: $CONFIG: ok (output $OUT)"; exit 0; }

# ---- inside the allocation ----
[ -n "${SLURM_JOB_ID:-}" ] || die "run: not inside a Slurm allocation (SLURM_JOB_ID unset); use sbatch"
LOG=$OUT/recovery.log
MAX_RESTARTS=${HERD_MAX_RESTARTS:-3}
MAX_REQUEUES=${HERD_MAX_REQUEUES:-3}
SPARES=${HERD_SPARES:-0}
TPN=${HERD_TASKS_PER_NODE:-${SLURM_NTASKS_PER_NODE:-1}}
PROBE=${HERD_PROBE_TIMEOUT:-10}
TRAIN_CMD=${HERD_TRAIN_CMD:-$HERD_BIN train}
CHECK_CMD=${HERD_CHECK_CMD:-$HERD_BIN check}
PREFLIGHT=${HERD_PREFLIGHT:-0}
PREFLIGHT_TIMEOUT=${HERD_PREFLIGHT_TIMEOUT:-600}
ALLOC=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | tr '\n' ' ')
n_alloc=$(echo $ALLOC | wc -w)
NEED=$((n_alloc - SPARES))
MIN_NODES=${HERD_MIN_NODES:-$NEED}
[ "$NEED" -ge 1 ] || die "HERD_SPARES: $SPARES spares leave no node of $n_alloc to train on"
# model-parallel size: what one data-parallel replica needs (keys of the MPI trainer)
mp=1
for k in tp cp pp; do v=$(cfg_get parallel $k); [ -n "$v" ] && mp=$((mp * v)); done

# ---- the ranks' binding, the same for training and the preflight ----
# GPUs per node of the job (the batch host's; stage files ask --gpus-per-node)
job_gpus_per_node() {
    if [ -n "${SLURM_GPUS_ON_NODE:-}" ]; then echo "$SLURM_GPUS_ON_NODE"
    elif [ -n "${SLURM_JOB_GPUS:-}" ]; then echo "$SLURM_JOB_GPUS" | tr ',' '\n' | grep -c .
    elif [ -n "${SLURM_GPUS_PER_NODE:-}" ]; then echo "${SLURM_GPUS_PER_NODE##*:}"
    else echo 0; fi
}
GPUS_NODE=$(job_gpus_per_node)
case "$GPUS_NODE" in ''|*[!0-9]*) die "the job's GPUs per node '$GPUS_NODE' (SLURM_GPUS_ON_NODE, SLURM_JOB_GPUS, SLURM_GPUS_PER_NODE): not a number" ;; esac
# srun does not inherit the job's --cpus-per-task (Slurm 22.05 and later, srun(1)):
# without it each rank would get one CPU
STEP_BIND=""
[ -n "${SLURM_CPUS_PER_TASK:-}" ] && STEP_BIND="--cpus-per-task=$SLURM_CPUS_PER_TASK"
if [ -n "${HERD_GPU_BIND+set}" ]; then
    [ "$HERD_GPU_BIND" = none ] || STEP_BIND="$STEP_BIND $HERD_GPU_BIND"
elif [ "$GPUS_NODE" -gt 0 ]; then
    [ "$TPN" -le "$GPUS_NODE" ] || die "$TPN ranks per node (HERD_TASKS_PER_NODE or --ntasks-per-node) but $GPUS_NODE GPUs per node: two ranks would share a GPU (set HERD_GPU_BIND to bind them yourself)"
    # one GPU per rank, the one nearest its cores (gres.conf Cores=); the step
    # keeps every GPU of the job, so NCCL still reaches the other ranks' GPUs
    STEP_BIND="$STEP_BIND --gpu-bind=single:1"
fi

# The full layout's data-parallel size, and the most nodes (of N healthy, at
# least HERD_MIN_NODES) whose ranks hold whole model replicas and a DP size that
# divides the full one, so that the global batch still splits evenly.
DP_FULL=$(( NEED * TPN / mp ))
shrunk_nodes() {
    k=$1
    while [ "$k" -ge "$MIN_NODES" ] && [ "$k" -ge 1 ]; do
        r=$((k * TPN))
        if [ $((r % mp)) -eq 0 ] && [ $((r / mp)) -ge 1 ] && [ $((DP_FULL % (r / mp))) -eq 0 ]; then
            echo "$k"; return 0
        fi
        k=$((k - 1))
    done
    return 1
}

# newest complete checkpoint (its MANIFEST is written last) under DIR/checkpoints
newest_ckpt() {
    for d in $(ls -d "$1"/checkpoints/step_* 2>/dev/null | grep -E '/step_[0-9]+$' | sort -r); do
        [ -f "$d/MANIFEST" ] && { echo "$d"; return 0; }
    done
    return 1
}
# metrics_of DIR: a stage's metrics.jsonl (rank 0's under HERD_PER_RANK_OUT)
metrics_of() { if [ "${HERD_PER_RANK_OUT:-0}" = 1 ]; then echo "$1/rank0/metrics.jsonl"; else echo "$1/metrics.jsonl"; fi; }
METRICS=$(metrics_of "$OUT")
# The plan of a chain with a cumulative train.max_tokens (the tiny recipe): an
# adaptation gate's extension (slurm/recipe_gate.sh) trains a stage past its
# planned end, and the stages after it keep their own lengths. A stage records
# OUT/plan, "END SHIFT": the tokens it plans to end at and the shift it
# inherited. A stage started from PREV moves its train.max_tokens by PREV's
# shift plus the tokens PREV's newest checkpoint holds beyond PREV's END. The
# extension itself (train.max_tokens 0, train.max_steps) and max_steps stages
# are left alone.
plan_shift() {
    mt=$(cfg_get train max_tokens)
    case $mt in ''|*[!0-9]*|0) return 0 ;; esac
    if [ ! -f "$OUT/plan" ]; then
        shift_t=0
        prev=""; [ -n "$INIT_FROM" ] && prev=$(cat "$INIT_FROM/plan" 2>/dev/null)
        # shellcheck disable=SC2086
        set -- $prev
        if [ $# -eq 2 ] && [ -z "$(echo "$1$2" | tr -d 0-9)" ]; then
            ck=$(ckpt_step "$(newest_ckpt "$INIT_FROM")")
            seen=$(grep "^{\"step\":$ck,.*\"tokens_seen\":" "$(metrics_of "$INIT_FROM")" 2>/dev/null | tail -n 1 | sed -n 's/.*"tokens_seen":\([0-9]*\).*/\1/p')
            shift_t=$2
            [ -n "$seen" ] && [ "$seen" -gt "$1" ] && shift_t=$((shift_t + seen - $1))
        fi
        rm -f "$OUT/plan.tmp"
        echo "$((mt + shift_t)) $shift_t" >"$OUT/plan.tmp" && mv "$OUT/plan.tmp" "$OUT/plan" \
            || die "$OUT/plan: cannot be written"
        [ "$shift_t" -gt 0 ] && say "earlier stages were extended by $shift_t tokens past the plan: train.max_tokens $mt -> $((mt + shift_t))"
    fi
    pe=$(cut -d' ' -f1 "$OUT/plan")
    case $pe in ''|*[!0-9]*) die "$OUT/plan: '$(cat "$OUT/plan")': not \"END SHIFT\" in tokens" ;; esac
    [ "$pe" = "$mt" ] || SETS="$SETS --set train.max_tokens=$pe"
}
metrics_size() { stat -c %s "$METRICS" 2>/dev/null || echo 0; }
# the last step line (not an event line) that metrics.jsonl got after byte $1
step_logged_after() {
    tail -c +$(($1 + 1)) "$METRICS" 2>/dev/null | grep -v '"event"' | tail -n 1 \
        | sed -n 's/.*"step":\([0-9]*\).*/\1/p'
}
ckpt_step() { echo "$1" | sed -n 's/.*step_0*\([0-9][0-9]*\)$/\1/p;s/^none$/0/p'; }

if [ -n "$INIT_FROM" ] && ! newest_ckpt "$OUT" >/dev/null; then
    prev=$(newest_ckpt "$INIT_FROM") || die "$INIT_FROM: --init-from: no complete checkpoint (step_*/MANIFEST) under $INIT_FROM/checkpoints"
    mkdir -p "$OUT/checkpoints" && cp -a "$prev" "$OUT/checkpoints/" \
        || die "$OUT/checkpoints: cannot copy the previous stage's checkpoint $prev"
    say "stage starts from the previous stage's checkpoint $prev"
fi
plan_shift

# Signals: --signal=B:USR1@S reaches this shell only; forward it to the step
# (scancel -s: every step of the job, not this batch shell), and remember, so
# that the end of the step means "requeue", whatever its code. SIGTERM (time
# limit, preemption, scancel) reaches the ranks too, from Slurm itself; it is
# forwarded as SIGUSR1, the trainer's explicit "checkpoint and stop", since a
# SIGTERM alone makes a rank that cannot agree with its peers within a short
# grace exit at once (checkpoint/stop.c: srun -K1 sends the same SIGTERM when a
# rank died). Slurm refuses to signal the steps of a job that is already ending.
signalled=""
forward() {
    signalled=$1
    say "got SIG$1: forwarding SIGUSR1 to the step (checkpoint, commit, exit $((75)))"
    scancel -s USR1 "$SLURM_JOB_ID" 2>/dev/null
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM

requeue() { # requeue WHY
    if [ "${SLURM_RESTART_COUNT:-0}" -ge "$MAX_REQUEUES" ]; then
        say "not requeueing ($1): the job was requeued ${SLURM_RESTART_COUNT:-0} times already (HERD_MAX_REQUEUES $MAX_REQUEUES)"
        exit 1
    fi
    say "requeueing job $SLURM_JOB_ID: $1"
    scontrol requeue "$SLURM_JOB_ID" || { say "scontrol requeue $SLURM_JOB_ID failed"; exit 1; }
    exit 0
}

# healthy_nodes sets GOOD (names) and BAD ("name (why)" each).
# A node is healthy when Slurm does not call it down, drained, failed or not
# responding, and a one-task probe step runs on it within HERD_PROBE_TIMEOUT.
healthy_nodes() {
    tmp=$(mktemp -d); probes=""
    for n in $ALLOC; do
        (
            st=$(scontrol show node "$n" 2>/dev/null | sed -n 's/.*State=\([^ ]*\).*/\1/p')
            case "$st" in ''|*DOWN*|*DRAIN*|*FAIL*|*NOT_RESPONDING*|*'*'*) echo "state $st" >"$tmp/$n.bad"; exit ;; esac
            timeout -k 2 "$PROBE" srun --overlap -N1 -n1 -w "$n" --mpi=none -K1 true >/dev/null 2>&1 \
                || echo "probe step failed or timed out (${PROBE}s)" >"$tmp/$n.bad"
        ) &
        probes="$probes $!"
    done
    # `wait` returns early when a trapped signal arrives: wait until every probe ended
    for p in $probes; do
        wait "$p"
        while kill -0 "$p" 2>/dev/null; do wait "$p"; done
    done
    GOOD=""; BAD=""
    for n in $ALLOC; do
        if [ -f "$tmp/$n.bad" ]; then BAD="$BAD $n ($(cat "$tmp/$n.bad"))"; else GOOD="$GOOD $n"; fi
    done
    rm -rf "$tmp"
}

# run_preflight NODES N_USE NTASKS DP_SET: the preflight step on the nodes a launch
# would use, bound as training is; sets SLOW to those of NODES that
# OUT/preflight/slow_nodes names (first word of a line; # starts a comment).
# Returns 1 when the check failed and named no node.
PRE_DIR=$OUT/preflight
run_preflight() {
    SLOW=""
    [ -L "$PRE_DIR" ] && { say "preflight: $PRE_DIR is a symbolic link, not followed: skipped"; return 1; }
    mkdir -p "$PRE_DIR" || { say "preflight: $PRE_DIR cannot be created: skipped"; return 1; }
    # a list from an earlier run must not count; no planted link is written through
    rm -f "$PRE_DIR/slow_nodes" "$PRE_DIR/check.out" "$PRE_DIR/check.err"
    t0=$(now)
    say "preflight: $CHECK_CMD on $1 ($3 ranks)"
    timeout -k 10 "$PREFLIGHT_TIMEOUT" srun --mpi=pmix -K1 -N "$2" -n "$3" -w "$1" --kill-on-bad-exit=1 $STEP_BIND \
        $CHECK_CMD "$CONFIG" $SETS $4 --out "$PRE_DIR" >"$PRE_DIR/check.out" 2>"$PRE_DIR/check.err" &
    p=$!
    while :; do
        wait "$p"; prc=$?
        if [ "$prc" -gt 128 ] && kill -0 "$p" 2>/dev/null; then continue; fi
        break
    done
    took=$(($(now) - t0))
    if [ -f "$PRE_DIR/slow_nodes" ]; then
        for h in $(sed 's/#.*//' "$PRE_DIR/slow_nodes" | awk 'NF {print $1}'); do
            if echo "$1" | tr ',' '\n' | grep -qxF "$h"; then SLOW="$SLOW $h"
            else say "preflight: $PRE_DIR/slow_nodes names '$h', not a node of this launch: ignored"; fi
        done
    fi
    if [ "$prc" -ne 0 ] && [ -z "$SLOW" ]; then
        say "preflight: exit $prc after $took s ($(tail -n 1 "$PRE_DIR/check.err" 2>/dev/null | cut -c1-160)): no node excluded"
        return 1
    fi
    say "preflight: exit $prc after $took s; slow nodes:${SLOW:- none}"
    return 0
}
EXCLUDED=""
# exclude_slow: the nodes the preflight named leave GOOD
exclude_slow() {
    [ -n "$EXCLUDED" ] || return 0
    kept=""
    for n in $GOOD; do
        case " $EXCLUDED " in *" $n "*) ;; *) kept="$kept $n" ;; esac
    done
    GOOD=$kept
}

# The heartbeat (a counter, rewritten in place every HERD_HEARTBEAT_S while this
# shell lives) and the guards that watch it from the other nodes.
HB=$OUT/.driver-heartbeat
HB_PERIOD=${HERD_HEARTBEAT_S:-5}
BATCH_HOST=${SLURMD_NODENAME:-$(hostname -s)}
rm -rf "$HB".claim-* 2>/dev/null
(
    n=0
    while kill -0 $$ 2>/dev/null; do
        n=$((n + 1))
        echo "$n job $SLURM_JOB_ID restart ${SLURM_RESTART_COUNT:-0} on $BATCH_HOST" >"$HB"
        sleep "$HB_PERIOD"
    done
) &
HB_PID=$!
GUARD_PID=""
# start_guard NODES: the guard step on NODES but this one (when not running yet)
start_guard() {
    [ -n "$GUARD_PID" ] && kill -0 "$GUARD_PID" 2>/dev/null && return 0
    others=$(echo $1 | tr ' ' '\n' | grep -vx "$BATCH_HOST" | tr '\n' ',' | sed 's/,$//')
    [ -n "$others" ] || return 0
    k=$(echo "$others" | tr ',' '\n' | wc -l)
    srun --overlap --no-kill -K0 -N "$k" -n "$k" --ntasks-per-node=1 -w "$others" --mpi=none \
        sh "$HERD_ROOT/slurm/stage_guard.sh" "$HB" "$BATCH_HOST" "$LOG" >/dev/null &
    GUARD_PID=$!
}
stop_helpers() {
    [ -n "$GUARD_PID" ] && kill "$GUARD_PID" 2>/dev/null
    kill "$HB_PID" 2>/dev/null
    return 0
}
trap stop_helpers EXIT

HAVE_VERIFY=0
"$HERD_BIN" help 2>/dev/null | grep -q '^  ckpt ' && HAVE_VERIFY=1

restarts=0
cause=""; t_down=0; fail_step=""
preflight_done=0; [ "$PREFLIGHT" = 1 ] || preflight_done=1
while :; do
    # ---- pick the nodes ----
    t_probe=$(now)
    healthy_nodes
    exclude_slow
    good=$GOOD
    n_good=$(echo $good | wc -w)
    [ -n "$BAD" ] && say "excluding failed nodes:$BAD"
    [ -n "$EXCLUDED" ] && say "excluding slow nodes (preflight, $PRE_DIR/slow_nodes): $EXCLUDED"
    if [ "$n_good" -ge "$NEED" ]; then
        nodes=$(echo $good | tr ' ' '\n' | head -n "$NEED" | tr '\n' ',' | sed 's/,$//')
        n_use=$NEED; dp_set=""
    elif [ "$n_good" -ge "$MIN_NODES" ] && [ "$n_good" -ge 1 ] && n_use=$(shrunk_nodes "$n_good"); then
        nodes=$(echo $good | tr ' ' '\n' | head -n "$n_use" | tr '\n' ',' | sed 's/,$//')
        dp=$(( n_use * TPN / mp ))
        dp_set="--set parallel.dp=$dp"
        say "only $n_good of $NEED nodes healthy: shrinking data parallelism from $DP_FULL to parallel.dp=$dp on $n_use nodes"
    elif [ -n "$EXCLUDED" ]; then
        # slow nodes are better than a requeue that may get the same nodes again
        say "preflight: without the slow nodes only $n_good healthy nodes remain (HERD_MIN_NODES $MIN_NODES): training on them anyway"
        EXCLUDED=""
        continue
    else
        requeue "only $n_good healthy nodes of $n_alloc, fewer than HERD_MIN_NODES $MIN_NODES"
    fi
    ntasks=$((n_use * TPN))
    [ -n "$dp_set" ] && ntasks=$(( $(echo "$dp_set" | sed 's/.*=//') * mp ))

    # ---- the preflight: once per allocation, on the nodes picked ----
    if [ "$preflight_done" = 0 ]; then
        preflight_done=1
        if run_preflight "$nodes" "$n_use" "$ntasks" "$dp_set"; then
            [ -n "$SLOW" ] && { EXCLUDED=${SLOW# }; continue; }
        else
            continue    # the check failed: probe the nodes again before training
        fi
    fi

    ckpt=$(newest_ckpt "$OUT") || ckpt="none"
    # a checkpoint that fails verification (`herd ckpt verify`, where herd has it)
    # is renamed aside, so that the trainer resumes from the one before it
    while [ "$ckpt" != none ] && [ "$HAVE_VERIFY" = 1 ] && ! "$HERD_BIN" ckpt verify "$ckpt" >"$OUT/verify.log" 2>&1; do
        say "checkpoint $ckpt fails verification: $(tail -n 1 "$OUT/verify.log"); moving it to $OUT/checkpoints.corrupt/"
        mkdir -p "$OUT/checkpoints.corrupt" && mv "$ckpt" "$OUT/checkpoints.corrupt/$(basename "$ckpt").$(now)" \
            || die "$ckpt: cannot move aside"
        ckpt=$(newest_ckpt "$OUT") || ckpt="none"
    done
    t_launch=$(now)
    if [ "$restarts" -gt 0 ]; then
        # the steps to train again: those the failed launch logged past this checkpoint
        lost_steps=0
        [ -n "$fail_step" ] && lost_steps=$((fail_step - $(ckpt_step "$ckpt")))
        [ "$lost_steps" -ge 0 ] || lost_steps=0
        say "restart $restarts/$MAX_RESTARTS: cause: $cause; relaunch on $nodes ($ntasks ranks) from checkpoint $ckpt;" \
            "time lost: $((t_launch - t_down)) s down since the last step logged (probing nodes $((t_launch - t_probe)) s)," \
            "$lost_steps steps since the checkpoint"
    else
        say "launch on $nodes ($ntasks ranks, $TPN per node) from checkpoint $ckpt"
    fi
    start_guard "$good"
    m_size=$(metrics_size)

    # a stop signal that arrived between steps: the newest checkpoint is final
    [ -n "$signalled" ] && requeue "SIG$signalled arrived while no step ran"

    # ---- the step ----
    export HERD_OUT="$OUT"
    attempt_err=$OUT/step-$SLURM_JOB_ID-${SLURM_RESTART_COUNT:-0}-$restarts.err
    if [ "${HERD_PER_RANK_OUT:-0}" = 1 ]; then
        srun --mpi=pmix -K1 -N "$n_use" -n "$ntasks" -w "$nodes" --kill-on-bad-exit=1 $STEP_BIND \
            sh -c 'exec "$@" --set "train.out_dir=$HERD_OUT/rank$SLURM_PROCID"' herd-rank \
            $TRAIN_CMD "$CONFIG" $SETS $dp_set $EXTRA 2>"$attempt_err" &
    else
        srun --mpi=pmix -K1 -N "$n_use" -n "$ntasks" -w "$nodes" --kill-on-bad-exit=1 $STEP_BIND \
            $TRAIN_CMD "$CONFIG" $SETS --set "train.out_dir=$OUT" $dp_set $EXTRA 2>"$attempt_err" &
    fi
    pid=$!
    # `wait` returns early when a trapped signal arrives: wait again until srun ends
    while :; do
        wait "$pid"; rc=$?
        if [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
        break
    done
    cat "$attempt_err" >&2
    # the last step this launch logged, and when: the failure came after it
    # (srun ends later, by however long the step's teardown took). A launch that
    # logged no step lost none, and the stage is down since the earlier failure
    # (or since this launch, when it was the first).
    fail_step=$(step_logged_after "$m_size")
    if [ -n "$fail_step" ]; then
        t_down=$(stat -c %Y "$METRICS" 2>/dev/null || now)
    elif [ "$restarts" -eq 0 ]; then
        t_down=$t_launch
    fi

    # ---- what happened ----
    if [ "$rc" -eq 0 ] && [ -z "$signalled" ]; then
        say "stage finished (step exit 0) after $restarts restarts"
        exit 0
    fi
    if [ "$rc" -eq 75 ] || [ -n "$signalled" ]; then
        [ "$rc" -eq 0 ] && { say "stage finished (step exit 0) while SIG$signalled was pending"; exit 0; }
        requeue "the step stopped with exit $rc after SIG${signalled:-?} (75 = checkpoint committed)"
    fi
    if [ "$rc" -eq 2 ]; then
        say "the step refused its input (exit 2, usage): not restarting"
        exit 1
    fi
    if grep -q 'herd watchdog: .*HANG' "$attempt_err"; then
        cause="hang watchdog fired (exit $rc): $(grep -m1 'herd watchdog: .*HANG' "$attempt_err" | sed 's/^[^:]*: //')"
    elif [ "$rc" -eq 76 ]; then
        cause="hang watchdog fired (exit 76)"
    else
        why=$(grep -m1 -E 'srun: error: .*task' "$attempt_err")
        [ -n "$why" ] || why=$(grep -m1 -iE 'error|killed|terminated|fail' "$attempt_err")
        cause="step failed with exit $rc: $(echo "$why" | cut -c1-160)"
    fi
    restarts=$((restarts + 1))
    if [ "$restarts" -gt "$MAX_RESTARTS" ]; then
        # a new allocation helps only when nodes were lost; a step that keeps
        # failing on healthy nodes would fail the same way after a requeue
        healthy_nodes
        if [ -n "$BAD" ]; then
            requeue "$cause; HERD_MAX_RESTARTS $MAX_RESTARTS restarts used in this allocation; failed nodes:$BAD"
        fi
        say "giving up: $cause; HERD_MAX_RESTARTS $MAX_RESTARTS restarts used and every node is healthy (not a node fault)"
        exit 1
    fi
    say "step failed at $(date -u +%T) (last step logged: ${fail_step:-none by this launch}, at $(date -u -d "@$t_down" +%T)): $cause"
done
