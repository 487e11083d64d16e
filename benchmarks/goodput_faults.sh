#!/bin/sh
# goodput_faults.sh — goodput measured under injected faults, beside the
# model's prediction for the same inputs (docs/goodput.md).
#
#   sh benchmarks/goodput_faults.sh [PERIOD_S [STEPS [EVERY]]]   (defaults 30 400 10)
#
# A local Slurm cluster of 2 emulated nodes (slurm/local/cluster.sh; set
# HERD_SLURM_DIR, HERD_SLURM_PORT and HERD_SLURM_NODE_PORT to use your own), the
# tiny model on 2 ranks (DP 2), a checkpoint every EVERY steps, the stage driver
# (slurm/train.sbatch -> run_stage.sh) relaunching after each failure:
#   1. undisturbed: the wall time of its steps (first step to last) is the
#      useful step time; its checkpoints give the stall and the write time;
#   2. the same stage with one rank, chosen at random, SIGKILLed every PERIOD s
#      (a fixed period from a random first one: the number of faults is not noise);
#      each fault's restart is the time from the kill to the end of the first
#      step logged after the relaunch, less one step.
# Useful step time: the step_seconds the faulted run logged for the steps it
# kept (the last time of each step), scaled by the undisturbed run's wall time
# over its own step_seconds (the loop around the step: logging, polls) — taken
# from the faulted run itself, because this shared machine's load drifts
# between two runs by more than the effect measured. Measured goodput = useful
# step time / the faulted run's wall time (first step to last); predicted:
# `herd plan --goodput` with that step, the stall, write and restart, MTBF
# PERIOD and a checkpoint every EVERY steps. Prints both and the gap.
# HERD_GOODPUT_KEEP=DIR keeps the runs' logs there.
set -u
cd "$(dirname "$0")/.."
. tests/slurm/lib.sh
PERIOD=${1:-30}; STEPS=${2:-400}; EVERY=${3:-10}
HERD_EXE=$(readlink -f build/herd)
[ -x "$HERD_EXE" ] || { echo "goodput_faults: build/herd not built" >&2; exit 1; }
export HERD_SLURM_DIR=${HERD_SLURM_DIR:-$(mktemp -d /tmp/herd-goodput-slurm.XXXXXX)}
T=$(mktemp -d /tmp/herd-goodput.XXXXXX)
keep() { [ -n "${HERD_GOODPUT_KEEP:-}" ] && mkdir -p "$HERD_GOODPUT_KEEP" && cp -r "$T"/*.times "$T"/ref "$T"/fault "$HERD_GOODPUT_KEEP"/ 2>/dev/null; rm -rf "$T"; }
trap 'sh slurm/local/cluster.sh stop >/dev/null 2>&1; keep' EXIT INT TERM
if [ -n "${HERD_SLURM_PORT:-}" ]; then
    sh slurm/local/cluster.sh start 2 >"$T/cluster.log" 2>&1 || { cat "$T/cluster.log" >&2; exit 1; }
    eval "$(sh slurm/local/cluster.sh env)"
else
    cluster_up 2 || { echo "goodput_faults: $why" >&2; exit 1; }
fi
export OMP_NUM_THREADS=1 HERD_MAX_RESTARTS=1000
tiny_config "$T" "$STEPS" || { echo "goodput_faults: herd data prepare failed" >&2; exit 1; }
sed -i "s/every: 5/every: $EVERY/; s/decay_steps: 20/decay_steps: $STEPS/" "$T/cfg.yaml"

now() { date +%s.%N; }
mtime() { stat -c %.9Y "$1" 2>/dev/null || echo 0; }
later() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

# run NAME PERIOD (0: no faults): the stage in $T/NAME; writes $T/NAME.times:
# "first T", "last T", and "restart S" per fault
run() {
    d=$T/$1; m=$d/run/metrics.jsonl; log=$d/run/recovery.log; out=$T/$1.times
    mkdir -p "$d"; : >"$out"
    j=$(sbatch --parsable --nodes=2 --ntasks-per-node=1 --output="$d/job.out" slurm/train.sbatch \
        "$T/cfg.yaml" --out "$d/run") || return 1
    until [ "$(lines "$m")" -ge 1 ]; do
        [ -n "$(squeue -h -j "$j" 2>/dev/null)" ] || { echo "job $j ended before its first step" >&2; return 1; }
        sleep 0.05
    done
    first=$(mtime "$m"); echo "first $first" >>"$out"
    # the first fault at a random phase of the period: the expected number of
    # faults in the run is then its wall time / PERIOD, not one fewer
    next=$(awk -v a="$first" -v p="$2" -v s="$$" 'BEGIN { srand(s); printf "%.3f", a + rand() * p }'); t_kill=""; t_rel=""
    while [ -n "$(squeue -h -j "$j" 2>/dev/null)" ]; do
        sleep 0.5
        if [ "$2" != 0 ] && [ -z "$t_kill" ] && later "$(now)" "$next"; then
            pid=$(rank_pid "$j" "$(awk -v s="$(now)" 'BEGIN { srand(s * 1000); print int(rand() * 2) }')" "$HERD_EXE")
            [ -n "$pid" ] || continue # between launches: try again
            n_launch=$(grep -cE 'launch on|restart [0-9]+/' "$log" 2>/dev/null)
            t_kill=$(now); kill -KILL "$pid" 2>/dev/null
            next=$(awk -v a="$t_kill" -v p="$2" 'BEGIN { printf "%.3f", a + p }')
        fi
        if [ -n "$t_kill" ] && [ -z "$t_rel" ] && \
            [ "$(grep -cE 'launch on|restart [0-9]+/' "$log" 2>/dev/null)" -gt "$n_launch" ]; then t_rel=$(now); fi
        if [ -n "$t_rel" ] && later "$(mtime "$m")" "$t_rel"; then
            echo "again $t_kill $(mtime "$m")" >>"$out"; t_kill=""; t_rel=""
        fi
    done
    [ "$(job_state "$j")" = COMPLETED ] || { echo "job $j ended $(job_state "$j")" >&2; tail -n 5 "$log" >&2; return 1; }
    echo "last $(mtime "$m")" >>"$out"
}

run ref 0 || exit 1
run fault "$PERIOD" || exit 1
# the undisturbed run: its loop's wall time over its steps' own time; the
# checkpoints' stall and write (+ commit)
kept() { grep -v '"event"' "$1" | sed -n 's/.*"step":\([0-9]*\),.*"step_seconds":\([0-9.e+-]*\).*/\1 \2/p' \
         | awk '{s[$1] = $2} END {for (k in s) u += s[k]; printf "%.6f", u}'; }
wall_ref=$(awk '/^first/ {f = $2} /^last/ {l = $2} END { printf "%.3f", l - f }' "$T/ref.times")
loop=$(awk -v w="$wall_ref" -v k="$(kept "$T/ref/run/metrics.jsonl")" -v n="$STEPS" 'BEGIN { printf "%.6f", w / (k * (n - 1) / n) }')
stall=$(grep '"event":"checkpoint"' "$T/ref/run/metrics.jsonl" | sed 's/.*"stall_s":\([0-9.]*\).*/\1/' \
        | awk '{s += $1; n++} END { printf "%.6f", n ? s / n : 0 }')
write=$(sed -n 's/.* write \([0-9.]*\) s (.*commit \([0-9.]*\) s .*/\1 \2/p' "$T/ref/job.out" \
        | awk '{s += $1 + $2; n++} END { printf "%.6f", n ? s / n : 0 }')
useful=$(awk -v k="$(kept "$T/fault/run/metrics.jsonl")" -v l="$loop" -v n="$STEPS" 'BEGIN { printf "%.3f", k * l * (n - 1) / n }')
step=$(awk -v u="$useful" -v n="$STEPS" -v c="$stall" -v e="$EVERY" 'BEGIN { printf "%.6f", u / (n - 1) - c / e }')
restart=$(awk -v s="$step" '/^again/ {r += $3 - $2 - s; n++} END { printf "%.3f", n ? r / n : 0 }' "$T/fault.times")
kills=$(grep -c '^again' "$T/fault.times")
wall_f=$(awk '/^first/ {f = $2} /^last/ {l = $2} END { printf "%.3f", l - f }' "$T/fault.times")
measured=$(awk -v a="$useful" -v b="$wall_f" 'BEGIN { printf "%.2f", 100 * a / b }')
echo "undisturbed: $STEPS steps in $wall_ref s (wall / logged step time $loop), checkpoint every $EVERY: stall $stall s, write+commit $write s"
echo "faulted: $kills kills (one rank every $PERIOD s), $wall_f s; useful step time $useful s (step $step s); restart (kill to training again) $restart s on average"
pred=$(build/herd plan --goodput --step-s "$step" --stall-s "$stall" --write-s "$write" --restart-s "$restart" \
       --mtbf-s "$PERIOD" --every "$EVERY") || exit 1
echo "$pred" | sed 's/^/  | /'
closed=$(echo "$pred" | sed -n 's/^  closed form *\([0-9.]*\)%.*/\1/p')
sim=$(echo "$pred" | sed -n 's/^  simulated *\([0-9.]*\)%.*/\1/p')
echo "goodput: measured $measured%, predicted $closed% (closed form), $sim% (simulated): $(awk -v m="$measured" -v c="$closed" 'BEGIN { printf "%+.2f", m - c }') points"
sed 's/^/  recovery.log | /' "$T/fault/run/recovery.log" | tail -n 4
awk -v m="$measured" -v c="$closed" 'BEGIN { d = m - c; exit !(d <= 5 && d >= -5) }'
