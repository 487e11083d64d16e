#!/bin/sh
# (d) SIGKILL rank 0 while a checkpoint is being written (a step directory or a
# temporary entry without its MANIFEST): the partial checkpoint never counts, the
# relaunch resumes from the one before; final parameters equal bitwise.
set -u; cd "$(dirname "$0")/../.."; . tests/fault/lib.sh
fault_setup fault_d_kill_in_checkpoint
submit
wait_steps 2
caught=""; t=0
while [ -z "$caught" ] && [ "$t" -lt 6000 ]; do
    for d in "$T"/run/checkpoints/* "$T"/run/checkpoints/.[!.]*; do
        [ -e "$d" ] || continue
        [ -d "$d" ] && [ -f "$d/MANIFEST" ] && continue
        caught=$d; break
    done
    [ -z "$caught" ] && { sleep 0.01; t=$((t + 1)); }
done
[ -n "$caught" ] || { fail "$NAME" "no checkpoint write was caught in progress"; exit 1; }
pid=$(rank_pid "$JOB" 0 "$HERD_EXE") || { fail "$NAME" "rank 0 not found"; exit 1; }
mark_fault; kill -KILL "$pid"
echo "$NAME: killed rank 0 while $(basename "$caught") was being written"
wait_training_again 120
partial=$(basename "$caught")
ok=1
finish_and_compare 0 || ok=0
grep -q "restart 1/.*from checkpoint .*/$partial;" "$T/run/recovery.log" && { fail "$NAME" "relaunched from the partial checkpoint $partial"; ok=0; }
lost_ok || { fail "$NAME" "a restart lost more than $CKPT_EVERY steps (one checkpoint interval)"; ok=0; }
[ "$ok" = 1 ] && pass "$NAME"
show_log
[ "$fails" -eq 0 ]
