#!/bin/sh
# (a) SIGKILL one rank mid-run: srun -K1 ends the step, the driver relaunches it on
# the same nodes from the newest checkpoint; final parameters equal bitwise.
# Under Slurm's default KillWait (30 s, lib.sh) the surviving ranks, waiting in a
# collective on the dead one, must not wait for SIGKILL: training again within
# FAULT_RANK_KILL_BOUND_S (15 s) of the kill.
set -u; cd "$(dirname "$0")/../.."; . tests/fault/lib.sh
fault_setup fault_a_rank_kill
submit
wait_steps $((CKPT_EVERY + 3))
pid=$(rank_pid "$JOB" 5 "$HERD_EXE") || { fail "$NAME" "rank 5 not found"; exit 1; }
mark_fault; kill -KILL "$pid"
wait_training_again 120
ok=1
BOUND=${FAULT_RANK_KILL_BOUND_S:-15}
awk -v a="$AGAIN" -v b="$BOUND" 'BEGIN {exit !(a < b)}' \
    || { fail "$NAME" "training again $AGAIN s after the kill, not within $BOUND s (KillWait $(scontrol show config | sed -n 's/^KillWait *= *//p'))"; ok=0; }
finish_and_compare 0 || ok=0
grep -q 'restart 1/.*cause: step failed' "$T/run/recovery.log" || { fail "$NAME" "the recovery log names no restart after a failed step"; ok=0; }
lost_ok || { fail "$NAME" "a restart lost more than $CKPT_EVERY steps (one checkpoint interval)"; ok=0; }
[ "$ok" = 1 ] && pass "$NAME"
show_log
[ "$fails" -eq 0 ]
