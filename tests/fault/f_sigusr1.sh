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
if finish_and_compare 0 700 && grep -q 'got SIGUSR1' "$T/run/recovery.log" \
   && grep -q "requeueing job $JOB" "$T/run/recovery.log"; then
    pass "$NAME"
else
    fail "$NAME" "expected SIGUSR1 forwarded and the job requeued"
fi
show_log
[ "$fails" -eq 0 ]
