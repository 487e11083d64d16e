#!/bin/sh
# (f) SIGUSR1 to the batch shell, as --signal=B:USR1@S sends it before the time
# limit: forwarded to the step, the trainer checkpoints and exits 75, the job
# requeues itself, comes back (Slurm's requeue delay) and resumes; bitwise equal.
set -u; cd "$(dirname "$0")/../.."; . tests/fault/lib.sh
fault_setup fault_f_sigusr1
submit
wait_steps $((CKPT_EVERY + 2))
mark_fault; scancel -s USR1 -b "$JOB"
wait_training_again 400
ok=1
finish_and_compare 0 700 || ok=0
grep -q 'got SIGUSR1' "$T/run/recovery.log" || { fail "$NAME" "the driver did not see SIGUSR1"; ok=0; }
grep -q "requeueing job $JOB" "$T/run/recovery.log" || { fail "$NAME" "the job did not requeue itself"; ok=0; }
[ "$ok" = 1 ] && pass "$NAME"
show_log
[ "$fails" -eq 0 ]
