#!/bin/sh
# (g) the batch host dies whole: its slurmd, the batch script (the stage
# driver) with its srun and heartbeat, its ranks and the slurmstepd's they run
# under, SIGKILLed at once. Under --no-kill Slurm keeps the job RUNNING on the
# other nodes with no batch script; the guard step (slurm/stage_guard.sh) on
# the other nodes sees the driver's heartbeat stop and the batch host gone and
# requeues the job, which runs again on healthy nodes (5 nodes: one is a spare,
# the dead one stays dead) and resumes from the newest checkpoint; bitwise equal.
set -u; cd "$(dirname "$0")/../.."; FAULT_NODES=${FAULT_NODES:-5}; . tests/fault/lib.sh
BOUND=${FAULT_BATCH_HOST_BOUND_S:-150}
fault_setup fault_g_batch_host_kill
submit HERD_HEARTBEAT_S=1 HERD_GUARD_SILENCE_S="${FAULT_GUARD_SILENCE_S:-5}" HERD_PROBE_TIMEOUT=5
wait_steps $((CKPT_EVERY + 3))
bh=$(scontrol show job "$JOB" | tr ' ' '\n' | sed -n 's/^BatchHost=//p')
[ -n "$bh" ] && [ -f "$HERD_SLURM_DIR/run/slurmd-$bh.pid" ] || { fail "$NAME" "no batch host found for job $JOB"; exit 1; }
slurmd=$(cat "$HERD_SLURM_DIR/run/slurmd-$bh.pid")
procs=$(node_procs "$JOB" "$bh")
driver=""; ranks=""
for p in $procs; do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'run_stage.sh run' && driver="$driver $p"
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$HERD_EXE" ] && ranks="$ranks $p"
done
[ -n "$driver" ] && [ -n "$ranks" ] || { fail "$NAME" "$bh: driver ($driver) or ranks ($ranks) not found among$procs"; exit 1; }
echo "$NAME: killing batch host $bh: slurmd $slurmd, driver$driver, ranks$ranks, all of:"
ps -o pid=,ppid=,args= -p "$(echo $procs | tr ' ' ',')" | cut -c1-100 | sed 's/^/  /'
# a node dies at one instant: frozen first (SIGSTOP), so that no slurmstepd of
# it outlives its tasks long enough to report the batch script's end, then killed
mark_fault; kill -STOP "$slurmd" $procs; kill -KILL "$slurmd" $procs
# the requeue: Slurm counts it in Restarts
t_end=$(( $(date +%s) + BOUND ))
until [ "$(scontrol show job "$JOB" 2>/dev/null | tr ' ' '\n' | sed -n 's/^Restarts=//p')" = 1 ]; do
    sleep 0.5
    [ "$(date +%s)" -lt "$t_end" ] || { fail "$NAME" "job $JOB not requeued within $BOUND s of the batch host's death ($(job_state "$JOB"))"; show_log; exit 1; }
done
echo "$NAME: requeued $(awk -v a="$(date +%s.%N)" -v f="$T_FAULT" 'BEGIN {printf "%.1f", a - f}') s after the fault"
wait_training_again "$BOUND" || { show_log; exit 1; }
ok=1
awk -v a="$AGAIN" -v b="$BOUND" 'BEGIN {exit !(a < b)}' || { fail "$NAME" "training again $AGAIN s after the fault (bound $BOUND s)"; ok=0; }
finish_and_compare 0 || ok=0
grep -q "guard on .*: batch host $bh is gone .*requeueing job $JOB" "$T/run/recovery.log" \
    || { fail "$NAME" "no guard logged the requeue"; ok=0; }
grep 'launch on' "$T/run/recovery.log" | tail -n 1 | grep -q "$bh" && { fail "$NAME" "relaunched on the dead batch host $bh"; ok=0; }
[ "$ok" = 1 ] && pass "$NAME"
show_log
[ "$fails" -eq 0 ]
