#!/bin/sh
# (b) SIGSTOP one rank: the other ranks wait in a collective, their hang watchdog
# fires (exit 76), srun -K1 ends the step, the driver relaunches; bitwise equal.
set -u; cd "$(dirname "$0")/../.."; . tests/fault/lib.sh
fault_setup fault_b_rank_stop
submit
wait_steps $((CKPT_EVERY + 3))
pid=$(rank_pid "$JOB" 5 "$HERD_EXE") || { fail "$NAME" "rank 5 not found"; exit 1; }
mark_fault; kill -STOP "$pid"
wait_training_again 180
ok=1
finish_and_compare 0 || ok=0
grep -q 'restart 1/.*cause: hang watchdog fired' "$T/run/recovery.log" || { fail "$NAME" "no restart caused by the hang watchdog in the recovery log"; ok=0; }
lost_ok || { fail "$NAME" "a restart lost more than $CKPT_EVERY steps (one checkpoint interval)"; ok=0; }
[ "$ok" = 1 ] && pass "$NAME"
kill -KILL "$pid" 2>/dev/null
show_log
[ "$fails" -eq 0 ]
