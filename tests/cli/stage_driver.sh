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
cat >"$F/bin/srun" <<'SH'
#!/bin/sh
last=""; for a in "$@"; do last=$a; done
case "$*" in
    *stage_guard.sh*) echo "$*" >"$FAKE/guard.args"; exec sleep 60 ;;
esac
[ "$last" = true ] && exit 0
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
    "show hostnames") echo nodeA; echo nodeB ;;
    "show node") echo "NodeName=$3 State=$(cat "$FAKE/node_state" 2>/dev/null || echo IDLE) ThreadsPerCore=1" ;;
    "show job") echo "JobId=$SLURM_JOB_ID JobState=RUNNING Restarts=0 BatchHost=nodeA" ;;
esac
exit 0
SH
printf '#!/bin/sh\nexit 0\n' >"$F/bin/scancel"
chmod +x "$F/bin/"*

# run_driver NAME ATTEMPTS...: the driver in a fake job on nodeA,nodeB
run_driver() {
    d=$F/$1; shift
    rm -rf "$d"; mkdir -p "$d/out/checkpoints/step_00000005"
    : >"$d/out/checkpoints/step_00000005/MANIFEST"
    for a in "$@"; do echo "$a"; done >"$d/attempts"
    echo 6 >"$d/next_step"
    printf 'model:\n  preset: tiny\n' >"$d/cfg.yaml"
    env PATH="$F/bin:$PATH" FAKE="$d" HERD_BIN="$F/bin/herd" SLURM_JOB_ID=42 SLURM_JOB_NODELIST='node[A-B]' \
        SLURMD_NODENAME=nodeA SLURM_NTASKS_PER_NODE=1 HERD_HEARTBEAT_S=1 \
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

# bad guard settings are refused before sbatch, naming the variable
printf 'model:\n  preset: tiny\n' >"$F/cfg.yaml"
o1=$(HERD_GUARD_SILENCE_S=2.5 sh slurm/run_stage.sh check "$F/cfg.yaml" --out "$F/o" 2>&1)
o2=$(HERD_HEARTBEAT_S=0 sh slurm/run_stage.sh check "$F/cfg.yaml" --out "$F/o" 2>&1)
if echo "$o1" | grep -q "HERD_GUARD_SILENCE_S '2.5'" && echo "$o2" | grep -q "HERD_HEARTBEAT_S '0'"; then
    pass bad_guard_settings_refused
else fail bad_guard_settings_refused "silence 2.5: $o1; heartbeat 0: $o2"; fi
[ "$fails" -eq 0 ]
