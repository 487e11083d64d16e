#!/bin/sh
# The local Slurm cluster end to end (about a minute): slurm/local/cluster.sh
# starts 4 emulated nodes with a tree topology; `srun --mpi=pmix -n 8` of an MPI
# program spans the 4 nodes; `slurm/train.sbatch` trains on them; a rank killed
# mid-run makes the stage driver relaunch the step inside the same allocation;
# bad input fails before any job exists; `cluster.sh stop` leaves no process of
# its own. Skips (with the reason) only where Slurm cannot start on this machine.
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
[ -x build/herd ] || { skip slurm_cluster "build/herd not built"; exit 0; }
export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-test.XXXXXX)
tmp=$(mktemp -d)
cleanup() {
    sh slurm/local/cluster.sh stop >/dev/null 2>&1
    rm -rf "$tmp" "$HERD_SLURM_DIR"
}
trap cleanup EXIT INT TERM

# ---- bad input: refused before Slurm is asked (no cluster needed) ----
t0=$(date +%s)
msg=$(sh slurm/train.sbatch "$tmp/missing.yaml" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "$tmp/missing.yaml: config file does not exist" \
   && ! echo "$msg" | grep -q "Submitted"; then
    pass sbatch_missing_config_refused
else
    fail sbatch_missing_config_refused "rc $rc: $msg"
fi
tiny_config "$tmp" 10 || { fail tiny_config "herd data prepare failed"; exit 1; }
: >"$tmp/afile"
msg=$(sh slurm/train.sbatch "$tmp/cfg.yaml" --out "$tmp/afile/out" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "$tmp/afile/out: output directory (train.out_dir) cannot be created" \
   && ! echo "$msg" | grep -q "Submitted"; then
    pass sbatch_unwritable_out_refused
else
    fail sbatch_unwritable_out_refused "rc $rc: $msg"
fi
printf 'model:\n  n_layerz: 2\n' >"$tmp/bad.yaml"
msg=$(sh slurm/train.sbatch "$tmp/bad.yaml" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "n_layerz" && [ $(( $(date +%s) - t0 )) -lt 10 ]; then
    pass sbatch_bad_key_refused
else
    fail sbatch_bad_key_refused "rc $rc: $msg"
fi

# ---- the cluster ----
if ! cluster_up 4; then skip slurm_cluster "Slurm cannot start here: $why"; exit 0; fi
if [ "$(sinfo -h -N -o '%N %T' | grep -c ' idle$')" -eq 4 ] \
   && scontrol show topology 2>/dev/null | grep -q 'SwitchName=spine.*Switches=leaf1,leaf2' \
   && scontrol show topology 2>/dev/null | grep -q 'SwitchName=leaf2.*Nodes=node\[3-4\]'; then
    pass cluster_4_nodes_tree_topology
else
    fail cluster_4_nodes_tree_topology "$(sinfo -N 2>&1; scontrol show topology 2>&1)"
fi

# an MPI program over PMIx, 8 ranks on 4 nodes
if mpicc -O2 -o "$tmp/mpi_probe" tests/slurm/mpi_probe.c 2>"$tmp/mpicc.err"; then
    out=$(timeout 60 srun --mpi=pmix -N4 -n8 "$tmp/mpi_probe" 2>&1)
    if echo "$out" | grep -q '^probe: size 8 sum 36 nodes 4$'; then pass srun_pmix_8_ranks_4_nodes
    else fail srun_pmix_8_ranks_4_nodes "$out"; fi
else
    fail srun_pmix_8_ranks_4_nodes "mpicc: $(cat "$tmp/mpicc.err")"
fi

# a job that passes sbatch and then hits bad input fails at once, without a step
rm -f "$tmp/gone.yaml"; cp "$tmp/cfg.yaml" "$tmp/gone.yaml"
job=$(sbatch --parsable --output="$tmp/gone.out" slurm/train.sbatch "$tmp/gone.yaml")
# (the config disappears between submission and start: the job must say so and stop)
rm -f "$tmp/gone.yaml"
if [ -n "$job" ] && job_wait "$job" 30 && [ "$(job_state "$job")" = FAILED ] \
   && grep -q "gone.yaml: config file does not exist" "$tmp/gone.out"; then
    pass sbatch_job_bad_input_fails_fast
else
    fail sbatch_job_bad_input_fails_fast "job $job state $(job_state "$job"): $(cat "$tmp/gone.out" 2>&1)"
fi

# herd topo under srun: the job's tree from Slurm's topology.conf (leaf switches and spine)
out=$(timeout 60 srun --mpi=pmix -N4 -n8 build/herd topo 2>&1)
if echo "$out" | grep -q 'leaf1' && echo "$out" | grep -q 'leaf2' && echo "$out" | grep -q 'spine' \
   && echo "$out" | grep -q 'node4'; then
    pass srun_herd_topo_shows_slurm_switches
    echo "$out" | grep -E 'leaf|spine' | head -6 | sed 's/^/  /'
else
    fail srun_herd_topo_shows_slurm_switches "$out"
fi

# the same training run under srun --mpi=pmix across 4 nodes as under mpirun on one:
# TP2 x DP4, 5 steps, against the one-process run (tests/mpi/compare_runs.py)
tiny_config "$tmp" 5
build/herd train "$tmp/cfg.yaml" --set train.out_dir="$tmp/one" --set checkpoint.every=0 \
    --dump-params "$tmp/one.st" >"$tmp/one.log" 2>&1
timeout 120 srun --mpi=pmix -N4 -n8 build/herd train "$tmp/cfg.yaml" --set parallel.tp=2 \
    --set checkpoint.every=0 --set train.out_dir="$tmp/srun" --dump-params "$tmp/srun.st" \
    >"$tmp/srun.log" 2>&1
rc=$?; out=""
if grep -q 'layout TP2 x CP1 x PP1 x DP4 (8 ranks)' "$tmp/srun.log" &&
   out=$(/usr/bin/python3 tests/mpi/compare_runs.py "$tmp/one" "$tmp/one.st" "$tmp/srun" "$tmp/srun.st" 1e-5); then
    pass "srun_pmix_tp2_dp4_equals_one_process ($(echo "$out" | tail -1))"
else
    # one line (tests/run.sh shows only the FAIL line): the comparison, or the log's end
    fail srun_pmix_tp2_dp4_equals_one_process "srun exit $rc: $(echo "${out:-$(grep -v '^ ' "$tmp/srun.log" | tail -8)}" | tr '\n' ' ')"
fi

# train across the 4 nodes: one MPI job of 8 ranks (DP8)
# a previous stage (1 process, 10 steps) with complete checkpoints and a newer,
# incomplete one: the stage, which has none of its own, must start from the
# newest complete one (step 10) and train steps 11..20
tiny_config "$tmp" 20
build/herd train "$tmp/cfg.yaml" --set train.max_steps=10 --set train.out_dir="$tmp/prev" \
    >"$tmp/prev.log" 2>&1 || fail prev_stage "$(tail -3 "$tmp/prev.log")"
mkdir -p "$tmp/prev/checkpoints/step_00000020"
echo partial >"$tmp/prev/checkpoints/step_00000020/shard_00000.h5"
out=$(HERD_SBATCH_ARGS="--output=$tmp/train.out" sh slurm/train.sbatch "$tmp/cfg.yaml" --out "$tmp/run" \
      --init-from "$tmp/prev" 2>&1)
job=$(echo "$out" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
ok=1
if [ -z "$job" ] || ! job_wait "$job" 90; then ok=0; fi
# steps 11..20 (a relaunch may log some of them twice)
[ "$(grep '"loss"' "$tmp/run/metrics.jsonl" 2>/dev/null | sed 's/.*"step":\([0-9]*\).*/\1/' | sort -u | wc -l)" = 10 ] || ok=0
grep -q 'layout TP1 x CP1 x PP1 x DP8 (8 ranks)' "$tmp/train.out" 2>/dev/null || ok=0
grep -q 'launch on node1,node2,node3,node4 (8 ranks, 2 per node)' "$tmp/run/recovery.log" 2>/dev/null || ok=0
# the stage must finish; a relaunch is allowed (a step that dies at start-up is
# what the driver's restart exists for; the tcp BTL's start-up crash is gone with
# the cluster's UCX transport, docs/slurm.md) and is shown
grep -q 'stage finished (step exit 0) after [0-9]* restarts' "$tmp/run/recovery.log" 2>/dev/null || ok=0
grep 'restart [0-9]*/' "$tmp/run/recovery.log" 2>/dev/null | sed 's/^/  relaunched: /' 
[ "$(job_state "$job")" = COMPLETED ] || ok=0
if [ "$ok" = 1 ]; then pass sbatch_train_4_nodes_8_ranks
else fail sbatch_train_4_nodes_8_ranks "job $job $(job_state "$job"): $out $(cat "$tmp/run/recovery.log" 2>&1; tail -5 "$tmp/train.out")"; fi
if grep -q "resumed from $tmp/run/checkpoints/step_00000010 (step 10, written by TP1 x CP1 x PP1 x DP1, 1 ranks)" \
        "$tmp/train.out" && [ -f "$tmp/run/checkpoints/step_00000020/MANIFEST" ] \
   && grep -q "stage starts from the previous stage's checkpoint $tmp/prev/checkpoints/step_00000010" "$tmp/run/recovery.log"; then
    pass stage_starts_from_previous_stage_checkpoint
else
    fail stage_starts_from_previous_stage_checkpoint "$(ls -R "$tmp/run/checkpoints" 2>&1; cat "$tmp/run/recovery.log" 2>&1)"
fi

# kill rank 3 mid-run: srun -K1 ends the step; the driver relaunches on the same,
# healthy nodes, from the newest checkpoint
tiny_config "$tmp" 40
rm -rf "$tmp/out"
job=$(sbatch --parsable --output="$tmp/kill.out" slurm/train.sbatch "$tmp/cfg.yaml" --out "$tmp/kill")
herd_exe=$(readlink -f build/herd)
t=0; pid=""
# after step 8: the checkpoint of step 5 has committed, so the relaunch resumes from it
nloss() { n=$(grep -c '"loss"' "$1" 2>/dev/null); echo "${n:-0}"; }
while [ "$t" -lt 600 ] && [ "$(nloss "$tmp/kill/metrics.jsonl")" -lt 8 ]; do
    sleep 0.1; t=$((t + 1)); done
pid=$(rank_pid "$job" 3 "$herd_exe")
if [ -n "$pid" ]; then
    kill -KILL "$pid"; t_kill=$(date +%s.%N)
    # training again: a new rank 3 has logged a step since the kill
    t=0; pid2=""
    while [ "$t" -lt 600 ]; do
        [ -z "$pid2" ] && pid2=$(rank_pid "$job" 3 "$herd_exe" | grep -vx "$pid")
        if [ -n "$pid2" ] && [ "$(lines "$tmp/kill/metrics.jsonl")" -ge 1 ]; then
            m=$(stat -c %.9Y "$tmp/kill/metrics.jsonl" 2>/dev/null || echo 0)
            awk -v m="$m" -v k="$t_kill" 'BEGIN {exit !(m > k)}' && break
        fi
        sleep 0.1; t=$((t + 1))
    done
    t_again=$(date +%s.%N)
    echo "rank kill: training again $(awk -v a="$t_again" -v k="$t_kill" 'BEGIN {printf "%.1f", a - k}') s after the SIGKILL of rank 3 (PID $pid)"
fi
if [ -n "$pid" ] && job_wait "$job" 180 && [ "$(job_state "$job")" = COMPLETED ] \
   && grep -q 'restart 1/3: cause: step failed with exit' "$tmp/kill/recovery.log" \
   && grep -q 'from checkpoint .*step_00000005' "$tmp/kill/recovery.log" \
   && grep -q 'time lost: [0-9]* s down' "$tmp/kill/recovery.log" \
   && grep -q 'stage finished (step exit 0) after [1-3] restarts' "$tmp/kill/recovery.log"; then
    pass rank_kill_restarts_in_allocation
    grep -E 'restart|failed' "$tmp/kill/recovery.log" | sed 's/^/  /'
else
    fail rank_kill_restarts_in_allocation "pid '$pid' job $job $(job_state "$job"): $(cat "$tmp/kill/recovery.log" 2>&1)"
fi

# SIGSTOP one rank of an MPI step loop that runs the real watchdog
# (tests/slurm/mpi_steps.c): its peers wait in MPI_Allreduce, their watchdogs
# exit 76, srun -K1 ends the step, the driver relaunches it
if mpicc -std=c11 -D_GNU_SOURCE -O2 -I. -o "$tmp/mpi_steps" tests/slurm/mpi_steps.c monitoring/watchdog.c \
        checkpoint/stop.c monitoring/clock.c -lpthread 2>"$tmp/mpicc.err"; then
    job=$(HERD_TRAIN_CMD="$tmp/mpi_steps" MPI_STEPS_N=40 MPI_STEPS_MS=100 MPI_STEPS_LIMIT=2 \
          sbatch --parsable --output="$tmp/hang.out" slurm/train.sbatch "$tmp/cfg.yaml" --out "$tmp/hang")
    t=0
    while [ "$t" -lt 300 ] && [ "$(lines "$tmp/hang/metrics.jsonl")" -lt 10 ]; do sleep 0.1; t=$((t + 1)); done
    pid=$(rank_pid "$job" 5 "$tmp/mpi_steps")
    if [ -n "$pid" ]; then
        kill -STOP "$pid"; t_stop=$(date +%s.%N)
        t=0
        while [ "$t" -lt 600 ] && ! grep -q 'restart 1/' "$tmp/hang/recovery.log"; do sleep 0.1; t=$((t + 1)); done
        t_rel=$(date +%s.%N)
        while [ "$t" -lt 600 ]; do
            m=$(stat -c %.9Y "$tmp/hang/metrics.jsonl" 2>/dev/null || echo 0)
            awk -v m="$m" -v r="$t_rel" 'BEGIN {exit !(m > r)}' && break
            sleep 0.1; t=$((t + 1))
        done
        echo "rank stop: training again $(awk -v a="$(date +%s.%N)" -v k="$t_stop" 'BEGIN {printf "%.1f", a - k}') s after the SIGSTOP of rank 5 (watchdog limit 2 s)"
    fi
    if [ -n "$pid" ] && job_wait "$job" 60 && [ "$(job_state "$job")" = COMPLETED ] \
       && grep -q 'restart [0-9]/3: cause: hang watchdog fired' "$tmp/hang/recovery.log" \
       && grep -q 'STILL WAITING' "$tmp/hang.out" && grep -q 'allreduce step' "$tmp/hang.out" \
       && grep -q 'stage finished (step exit 0) after [1-3] restarts' "$tmp/hang/recovery.log"; then
        pass rank_stop_watchdog_restart
        grep -E 'restart' "$tmp/hang/recovery.log" | sed 's/^/  /'
    else
        fail rank_stop_watchdog_restart "pid '$pid' job $job $(job_state "$job"): $(cat "$tmp/hang/recovery.log" 2>&1)"
    fi
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
else
    fail rank_stop_watchdog_restart "mpicc: $(cat "$tmp/mpicc.err")"
fi

# SIGUSR1 to the batch shell (what --signal=B:USR1@S does before the time limit):
# forwarded to the step, the ranks agree and exit 75, the job requeues itself and
# comes back (cred_expire + 1 s later), and finishes
if [ -x "$tmp/mpi_steps" ]; then
    job=$(HERD_TRAIN_CMD="$tmp/mpi_steps" MPI_STEPS_N=40 MPI_STEPS_MS=100 MPI_STEPS_LIMIT=5 \
          sbatch --parsable --output="$tmp/usr1.out" slurm/train.sbatch "$tmp/cfg.yaml" --out "$tmp/usr1")
    t=0
    while [ "$t" -lt 300 ] && [ "$(lines "$tmp/usr1/metrics.jsonl")" -lt 10 ]; do sleep 0.1; t=$((t + 1)); done
    scancel -s USR1 -b "$job"; t_sig=$(date +%s.%N)
    t=0
    while [ "$t" -lt 900 ] && [ "$(grep -c 'launch on' "$tmp/usr1/recovery.log")" -lt 2 ]; do sleep 0.1; t=$((t + 1)); done
    t_rel=$(date +%s.%N)
    while [ "$t" -lt 900 ]; do
        m=$(stat -c %.9Y "$tmp/usr1/metrics.jsonl" 2>/dev/null || echo 0)
        awk -v m="$m" -v r="$t_rel" 'BEGIN {exit !(m > r)}' && break
        sleep 0.1; t=$((t + 1))
    done
    echo "SIGUSR1: training again $(awk -v a="$(date +%s.%N)" -v k="$t_sig" 'BEGIN {printf "%.1f", a - k}') s after the signal (exit 75, requeue, requeue delay)"
    if job_wait "$job" 60 && [ "$(job_state "$job")" = COMPLETED ] \
       && grep -q 'got SIGUSR1' "$tmp/usr1/recovery.log" \
       && grep -q "requeueing job $job: the step stopped with exit 75" "$tmp/usr1/recovery.log" \
       && grep -q '"stopped":' "$tmp/usr1/metrics.jsonl" \
       && scontrol show job "$job" | grep -q 'Restarts=1' \
       && grep -q 'stage finished (step exit 0)' "$tmp/usr1/recovery.log"; then
        pass sigusr1_exit75_requeues
        sed 's/^/  /' "$tmp/usr1/recovery.log"
    else
        fail sigusr1_exit75_requeues "job $job $(job_state "$job"): $(cat "$tmp/usr1/recovery.log" 2>&1)"
    fi
fi

# a step that fails on healthy nodes every time: restart up to the limit, then give up
# (no requeue: a new allocation would fail the same way)
job=$(HERD_TRAIN_CMD=/bin/false HERD_MAX_RESTARTS=1 sbatch --parsable --output="$tmp/false.out" \
      slurm/train.sbatch "$tmp/cfg.yaml" --out "$tmp/false")
if job_wait "$job" 60 && [ "$(job_state "$job")" = FAILED ] \
   && grep -q 'restart 1/1: cause: step failed with exit 1' "$tmp/false/recovery.log" \
   && grep -q 'giving up: .*every node is healthy' "$tmp/false/recovery.log" \
   && ! grep -q requeueing "$tmp/false/recovery.log"; then
    pass persistent_failure_gives_up
else
    fail persistent_failure_gives_up "job $job $(job_state "$job"): $(cat "$tmp/false/recovery.log" 2>&1)"
fi

# stop: nothing of the cluster's left
sh slurm/local/cluster.sh stop >"$tmp/stop.out" 2>&1; rc=$?
left=$(own_procs)
if [ "$rc" -eq 0 ] && [ -z "$left" ]; then pass cluster_stop_leaves_nothing
else fail cluster_stop_leaves_nothing "rc $rc, left: $left $(cat "$tmp/stop.out")"; fi
[ "$fails" -eq 0 ]
