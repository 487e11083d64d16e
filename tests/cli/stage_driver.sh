#!/bin/sh
# stage_driver.sh — slurm/run_stage.sh and slurm/stage_guard.sh against fake
# Slurm commands (srun, scontrol, scancel on PATH) and a fake herd: what the
# driver logs and launches, and when the guard requeues, in seconds, with no
# cluster. The real cluster runs are tests/fault/ (make test-fault).
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
F=$(mktemp -d /tmp/herd-stage-driver.XXXXXX)
trap 'rm -rf "$F"' EXIT
mkdir -p "$F/bin"

# fake herd: `config` prints a resolved config, nothing else is needed
cat >"$F/bin/herd" <<'SH'
#!/bin/sh
case "$1" in
    config) printf 'train:\n  out_dir: %s\nparallel:\n  tp: 1\n' "$FAKE/out" ;;
esac
exit 0
SH
# fake srun: a probe (`true`), the guard step, or a training attempt whose
# behaviour $FAKE/attempts lists, one line per attempt: STEPS SLEEP EXIT
# The preflight's command (HERD_CHECK_CMD) runs for real, without srun's options.
cat >"$F/bin/srun" <<'SH'
#!/bin/sh
last=""; for a in "$@"; do last=$a; done
case "$*" in
    *stage_guard.sh*) echo "$*" >"$FAKE/guard.args"; exec sleep 60 ;;
    *fake_check*) echo "$*" >>"$FAKE/check.args"
        while [ $# -gt 0 ]; do case "$1" in -N|-n|-w) shift 2 ;; -*) shift ;; *) break ;; esac; done
        exec "$@" ;;
esac
[ "$last" = true ] && exit 0
echo "$*" >>"$FAKE/srun.args"
n=$(( $(cat "$FAKE/attempt" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$FAKE/attempt"
set -- $(sed -n "${n}p" "$FAKE/attempts")
steps=${1:-0}; pause=${2:-0}; rc=${3:-0}
first=$(( $(cat "$FAKE/next_step" 2>/dev/null || echo 1) ))
i=0
while [ "$i" -lt "$steps" ]; do
    echo "{\"step\":$((first + i)),\"loss\":1.0}" >>"$HERD_OUT/metrics.jsonl"; i=$((i + 1))
done
sleep "$pause"
[ "$rc" -ne 0 ] && echo "srun: error: nodeB: task 1: Killed" >&2
exit "$rc"
SH
cat >"$F/bin/scontrol" <<'SH'
#!/bin/sh
echo "$*" >>"$FAKE/scontrol.log"
case "$1 $2" in
    "show hostnames") cat "$FAKE/nodes" 2>/dev/null || { echo nodeA; echo nodeB; } ;;
    "show node") echo "NodeName=$3 State=$(cat "$FAKE/node_state" 2>/dev/null || echo IDLE) ThreadsPerCore=1" ;;
    "show job") echo "JobId=$SLURM_JOB_ID JobState=RUNNING Restarts=0 BatchHost=nodeA" ;;
esac
exit 0
SH
printf '#!/bin/sh\nexit 0\n' >"$F/bin/scancel"
# the preflight: names the nodes of $FAKE/slow in OUT/preflight/slow_nodes
cat >"$F/bin/fake_check" <<'SH'
#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
{ echo "# slow against the median"; cat "$FAKE/slow" 2>/dev/null; } >"$out/slow_nodes"
SH
chmod +x "$F/bin/"*

# run_driver NAME ATTEMPTS...: the driver in a fake job on nodeA,nodeB
run_driver() {
    d=$F/$1; shift
    rm -rf "$d"; mkdir -p "$d/out/checkpoints/step_00000005"
    : >"$d/out/checkpoints/step_00000005/MANIFEST"
    for a in "$@"; do echo "$a"; done >"$d/attempts"
    echo 6 >"$d/next_step"
    printf 'model:\n  preset: tiny\n' >"$d/cfg.yaml"
    [ -n "${NODES:-}" ] && echo "$NODES" | tr ' ' '\n' >"$d/nodes"
    [ -n "${PRE_LINK:-}" ] && ln -s "$PRE_LINK" "$d/out/preflight"
    [ -n "${SLOW:-}" ] && echo "$SLOW" | tr " " "\n" >"$d/slow"
    # shellcheck disable=SC2086
    env PATH="$F/bin:$PATH" FAKE="$d" HERD_BIN="$F/bin/herd" SLURM_JOB_ID=42 SLURM_JOB_NODELIST='node[A-B]' \
        SLURMD_NODENAME=nodeA SLURM_NTASKS_PER_NODE=1 HERD_HEARTBEAT_S=1 ${DRIVER_ENV:-} \
        sh slurm/run_stage.sh run "$d/cfg.yaml" --out "$d/out" >"$d/driver.out" 2>&1
}

# 18: a rank dies 3 s after the step 8 was logged (srun's teardown); the
# relaunch counts the time lost from step 8, and 3 steps since checkpoint 5
run_driver lost "3 3 137" "0 0 0"
r=$(grep 'restart 1/' "$F/lost/out/recovery.log")
down=$(echo "$r" | sed -n 's/.*time lost: \([0-9]*\) s down since the last step logged.*/\1/p')
if [ -z "$r" ]; then fail time_lost_from_last_step "no restart logged: $(tail -n 3 "$F/lost/driver.out")"
elif [ -z "$down" ] || [ "$down" -lt 2 ]; then fail time_lost_from_last_step "'$r': not counted from the last step logged (>= 2 s)"
elif ! echo "$r" | grep -q ', 3 steps since the checkpoint'; then fail time_lost_from_last_step "'$r': expected 3 steps since checkpoint 5"
else pass time_lost_from_last_step; fi

# 18: the first launch fails before its first step: nothing lost, no "?"
run_driver nostep "0 1 1" "0 0 0"
r=$(grep 'restart 1/' "$F/nostep/out/recovery.log")
if echo "$r" | grep -q ', 0 steps since the checkpoint'; then pass time_lost_before_the_first_step
else fail time_lost_before_the_first_step "'$r': expected 0 steps since the checkpoint"; fi

# 16: the heartbeat, and the guard step on every node but the batch host
hb=$(cat "$F/lost/out/.driver-heartbeat" 2>/dev/null)
g=$(cat "$F/lost/guard.args" 2>/dev/null)
if ! echo "$hb" | grep -q '^[0-9][0-9]* job 42 restart 0 on nodeA$'; then fail driver_heartbeat_and_guard "heartbeat '$hb'"
elif ! echo "$g" | grep -q -- '--overlap --no-kill .*-w nodeB .*stage_guard.sh .*/.driver-heartbeat nodeA '; then
    fail driver_heartbeat_and_guard "guard step '$g'"
else pass driver_heartbeat_and_guard; fi
grep -q 'stage finished' "$F/lost/out/recovery.log" && pass driver_finishes_after_restart \
    || fail driver_finishes_after_restart "$(tail -n 3 "$F/lost/driver.out")"

# run_guard NAME NODE_STATE TOUCH SECONDS: the guard on nodeB watching nodeA for
# SECONDS, with the heartbeat rewritten every 0.2 s when TOUCH is 1
run_guard() {
    d=$F/$1; rm -rf "$d"; mkdir -p "$d"; echo "$2" >"$d/node_state"
    echo 1 >"$d/hb"
    env PATH="$F/bin:$PATH" FAKE="$d" SLURM_JOB_ID=42 SLURMD_NODENAME=nodeB HERD_HEARTBEAT_S=0.2 \
        HERD_GUARD_SILENCE_S=1 HERD_PROBE_TIMEOUT=2 sh slurm/stage_guard.sh "$d/hb" nodeA "$d/log" 2>/dev/null &
    gp=$!
    i=0
    while [ "$i" -lt $(($4 * 5)) ] && kill -0 "$gp" 2>/dev/null; do
        [ "$3" = 1 ] && echo "$i" >"$d/hb"
        sleep 0.2; i=$((i + 1))
    done
    kill "$gp" 2>/dev/null; wait "$gp" 2>/dev/null
}
run_guard dead 'DOWN*' 0 8
if grep -q '^requeue 42' "$F/dead/scontrol.log" 2>/dev/null && grep -q 'batch host nodeA is gone .*requeueing job 42' "$F/dead/log"; then
    pass guard_requeues_when_batch_host_gone
else fail guard_requeues_when_batch_host_gone "no requeue: $(cat "$F/dead/log" 2>/dev/null)"; fi
run_guard beating 'DOWN*' 1 4
grep -q '^requeue' "$F/beating/scontrol.log" 2>/dev/null && fail guard_quiet_while_heartbeat "requeued while the heartbeat beat" \
    || pass guard_quiet_while_heartbeat
run_guard answers IDLE 0 5
if grep -q '^requeue' "$F/answers/scontrol.log" 2>/dev/null; then fail guard_keeps_job_when_batch_host_answers "requeued a job whose batch host answers"
elif ! grep -q 'answers: not requeueing' "$F/answers/log" 2>/dev/null; then fail guard_keeps_job_when_batch_host_answers "the silent heartbeat was not logged"
else pass guard_keeps_job_when_batch_host_answers; fi

# one GPU per rank: with GPUs in the job, the step is bound (--gpu-bind=single:1)
# and gets the job's cores per task; without, neither
DRIVER_ENV="SLURM_GPUS_ON_NODE=2 SLURM_NTASKS_PER_NODE=2 SLURM_CPUS_PER_TASK=4" run_driver gpus "0 0 0"
a=$(cat "$F/gpus/srun.args" 2>/dev/null); a0=$(cat "$F/lost/srun.args" 2>/dev/null)
if ! echo "$a" | grep -q -- '--cpus-per-task=4 --gpu-bind=single:1 .*herd train'; then fail step_binds_one_gpu_per_rank "with GPUs: '$a'"
elif echo "$a0" | grep -q -- '--gpu-bind'; then fail step_binds_one_gpu_per_rank "without GPUs: '$a0'"
else pass step_binds_one_gpu_per_rank; fi
# two ranks per GPU: refused before any step, naming both counts
DRIVER_ENV="SLURM_GPUS_ON_NODE=1 SLURM_NTASKS_PER_NODE=2" run_driver shared "0 0 0"
if [ -f "$F/shared/srun.args" ] || ! grep -q '2 ranks per node .* but 1 GPUs per node: two ranks would share a GPU' "$F/shared/driver.out"; then
    fail two_ranks_per_gpu_refused "$(tail -n 2 "$F/shared/driver.out")"
else pass two_ranks_per_gpu_refused; fi

# the preflight hook: HERD_PREFLIGHT=1 runs HERD_CHECK_CMD on the launch's nodes with
# the training binding, once; the slow node it names is excluded like a dead one
# (a spare takes its place); with no node to spare, training goes on with it
NODES="nodeA nodeB nodeC" SLOW=nodeB DRIVER_ENV="HERD_PREFLIGHT=1 HERD_CHECK_CMD=$F/bin/fake_check HERD_SPARES=1 SLURM_GPUS_ON_NODE=1" \
    run_driver pre "0 0 0"
c=$(cat "$F/pre/check.args" 2>/dev/null)
if [ "$(echo "$c" | grep -c .)" -ne 1 ] || ! echo "$c" | grep -q -- "-N 2 -n 2 -w nodeA,nodeB .*--gpu-bind=single:1 $F/bin/fake_check $F/pre/cfg.yaml --out $F/pre/out/preflight\$"; then
    fail preflight_excludes_slow_nodes "the check ran as: '$c'"
elif ! grep -q 'excluding slow nodes (preflight, .*slow_nodes): nodeB$' "$F/pre/out/recovery.log" \
     || ! grep -q 'launch on nodeA,nodeC (2 ranks' "$F/pre/out/recovery.log"; then
    fail preflight_excludes_slow_nodes "$(cat "$F/pre/out/recovery.log")"
else pass preflight_excludes_slow_nodes; fi
SLOW="nodeB nodeX" DRIVER_ENV="HERD_PREFLIGHT=1 HERD_CHECK_CMD=$F/bin/fake_check" run_driver pre2 "0 0 0"
if grep -q 'training on them anyway' "$F/pre2/out/recovery.log" && grep -q "names 'nodeX', not a node of this launch: ignored" "$F/pre2/out/recovery.log" \
   && grep -q 'launch on nodeA,nodeB (2 ranks' "$F/pre2/out/recovery.log" && grep -q 'stage finished' "$F/pre2/out/recovery.log"; then
    pass preflight_keeps_slow_nodes_when_none_to_spare
else fail preflight_keeps_slow_nodes_when_none_to_spare "$(cat "$F/pre2/out/recovery.log")"; fi
# a planted link in place of OUT/preflight is not followed
mkdir -p "$F/elsewhere"
PRE_LINK=$F/elsewhere SLOW=nodeB DRIVER_ENV="HERD_PREFLIGHT=1 HERD_CHECK_CMD=$F/bin/fake_check" run_driver prelink "0 0 0"
if [ -z "$(ls -A "$F/elsewhere")" ] && [ ! -f "$F/prelink/check.args" ] && grep -q 'preflight: .*/preflight is a symbolic link, not followed' "$F/prelink/out/recovery.log" \
   && grep -q 'stage finished' "$F/prelink/out/recovery.log"; then
    pass preflight_does_not_follow_a_planted_link
else fail preflight_does_not_follow_a_planted_link "in the link's target: '$(ls -A "$F/elsewhere")'; $(cat "$F/prelink/out/recovery.log")"; fi
[ ! -f "$F/lost/check.args" ] && pass no_preflight_unless_asked || fail no_preflight_unless_asked "the check ran without HERD_PREFLIGHT"

# bad guard settings are refused before sbatch, naming the variable
printf 'model:\n  preset: tiny\n' >"$F/cfg.yaml"
o1=$(HERD_GUARD_SILENCE_S=2.5 sh slurm/run_stage.sh check "$F/cfg.yaml" --out "$F/o" 2>&1)
o2=$(HERD_HEARTBEAT_S=0 sh slurm/run_stage.sh check "$F/cfg.yaml" --out "$F/o" 2>&1)
if echo "$o1" | grep -q "HERD_GUARD_SILENCE_S '2.5'" && echo "$o2" | grep -q "HERD_HEARTBEAT_S '0'"; then
    pass bad_guard_settings_refused
else fail bad_guard_settings_refused "silence 2.5: $o1; heartbeat 0: $o2"; fi
o1=$(HERD_PREFLIGHT=yes sh slurm/run_stage.sh check "$F/cfg.yaml" --out "$F/o" 2>&1); r1=$?
o2=$(HERD_PREFLIGHT=1 HERD_PREFLIGHT_TIMEOUT=1m sh slurm/run_stage.sh check "$F/cfg.yaml" --out "$F/o" 2>&1); r2=$?
if [ "$r1" -ne 0 ] && echo "$o1" | grep -q "HERD_PREFLIGHT 'yes': expected 0 or 1" \
   && [ "$r2" -ne 0 ] && echo "$o2" | grep -q "HERD_PREFLIGHT_TIMEOUT '1m'"; then
    pass bad_preflight_settings_refused
else fail bad_preflight_settings_refused "HERD_PREFLIGHT=yes: $o1; timeout 1m: $o2"; fi
[ "$fails" -eq 0 ]
