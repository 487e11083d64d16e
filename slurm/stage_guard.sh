#!/bin/sh
# stage_guard.sh — requeues a stage's job when its batch host is gone.
#
#   stage_guard.sh HEARTBEAT_FILE BATCH_HOST LOG
#
# slurm/run_stage.sh starts it as a step with one task on every node of the
# allocation but the batch host (srun --overlap --no-kill: it takes no CPUs from
# the training step, and a failed node removes only its own task).
#
# Why: with --no-kill, Slurm 22.05 keeps a job RUNNING when one of its nodes
# fails, also when that node ran the batch script: slurmctld's
# kill_running_job_by_node_name removes the node and kills the steps on it, the
# batch step with them, and nothing is left to relaunch or requeue. The job
# would hold its other nodes, idle, until its time limit.
#
# The driver writes HEARTBEAT_FILE (a counter) every HERD_HEARTBEAT_S seconds.
# When it has not changed for HERD_GUARD_SILENCE_S (as this node's clock sees
# it: no clock skew between nodes matters) and the batch host is gone (Slurm
# calls it down or not responding, or a probe step on it fails within
# HERD_PROBE_TIMEOUT), one guard (the first to create the claim directory)
# requeues the job with `scontrol requeue`; past HERD_MAX_REQUEUES it cancels
# the job instead, so that it never holds nodes without training. A silent
# heartbeat whose batch host still answers (a slow shared file system, a
# driver stuck in a Slurm command) is logged and never requeues.
set -u
[ $# -eq 3 ] || { echo "stage_guard.sh: usage: stage_guard.sh HEARTBEAT_FILE BATCH_HOST LOG" >&2; exit 2; }
HB=$1; BATCH_HOST=$2; LOG=$3
PERIOD=${HERD_HEARTBEAT_S:-5}
SILENCE=${HERD_GUARD_SILENCE_S:-30}
PROBE=${HERD_PROBE_TIMEOUT:-10}
MAX_REQUEUES=${HERD_MAX_REQUEUES:-3}
JOB=${SLURM_JOB_ID:?stage_guard.sh: SLURM_JOB_ID unset: run by slurm/run_stage.sh inside a job}
INCARNATION=${SLURM_RESTART_COUNT:-0}
me=${SLURMD_NODENAME:-$(hostname -s)}

say() { echo "$(date -u +%FT%TZ) guard on $me: $*" >>"$LOG"; echo "herd-guard: $me: $*" >&2; }
now() { date +%s; }
job_field() { scontrol show job "$JOB" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

# 0 when the batch host is gone, with the evidence in GONE_WHY
batch_host_gone() {
    st=$(scontrol show node "$BATCH_HOST" 2>/dev/null | sed -n 's/.*State=\([^ ]*\).*/\1/p')
    case "$st" in *DOWN*|*FAIL*|*NOT_RESPONDING*|*'*'*) GONE_WHY="Slurm calls it $st"; return 0 ;; esac
    timeout -k 2 "$PROBE" srun --overlap -N1 -n1 -w "$BATCH_HOST" --mpi=none -K1 true >/dev/null 2>&1 && return 1
    GONE_WHY="a probe step on it failed or timed out (${PROBE} s; Slurm state ${st:-unknown})"
    return 0
}

last=$(cat "$HB" 2>/dev/null); t_change=$(now); warned=0
while :; do
    sleep "$PERIOD"
    cur=$(cat "$HB" 2>/dev/null)
    if [ "$cur" != "$last" ]; then last=$cur; t_change=$(now); warned=0; continue; fi
    silent=$(( $(now) - t_change ))
    [ "$silent" -ge "$SILENCE" ] || continue
    if ! batch_host_gone; then
        [ "$warned" = 1 ] || say "the driver's heartbeat $HB has not changed for $silent s, but the batch host $BATCH_HOST answers: not requeueing"
        warned=1; t_change=$(now); continue
    fi
    mkdir "$HB.claim-$JOB-$INCARNATION" 2>/dev/null || exit 0   # another guard acts
    # only the incarnation that started this guard, and only while it runs
    [ "$(job_field JobState)" = RUNNING ] && [ "$(job_field Restarts)" = "$INCARNATION" ] || exit 0
    if [ "$INCARNATION" -ge "$MAX_REQUEUES" ]; then
        say "batch host $BATCH_HOST is gone ($GONE_WHY); the job was requeued $INCARNATION times already (HERD_MAX_REQUEUES $MAX_REQUEUES): cancelling job $JOB so that it holds no nodes"
        scancel "$JOB"
        exit 0
    fi
    say "batch host $BATCH_HOST is gone ($GONE_WHY; the driver's heartbeat silent for $silent s): requeueing job $JOB"
    scontrol requeue "$JOB" || say "scontrol requeue $JOB failed"
    exit 0
done
