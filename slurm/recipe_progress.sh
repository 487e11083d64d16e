#!/bin/sh
# recipe_progress.sh — one progress line per started stage of a recipe chain, read
# from the run's files only (no Slurm client, so it works from any shell, and while
# the cluster is busy or gone).
#
#   sh slurm/recipe_progress.sh RUN_DIR          (also: sh slurm/pipeline.sh --progress RUN_DIR)
#
#   01_pretrain           step   23/40    loss 6.512  tok/s  10582  elapsed   35 s  expected   61 s  restarts 1  running
#
# step/total: the last step in STAGE/metrics.jsonl, and the step at which the stage
# stops by its resolved config (STAGE/config.yaml: train.max_steps, or train.max_tokens
# at the current batch size); tok/s: the mean of the last 10 steps; elapsed: since the
# stage's first launch (STAGE/recovery.log); expected: elapsed + the steps left at the
# mean step time of the last 10 steps; restarts: relaunches and requeues
# (recovery.log); the state: running, done, stopped (the stage driver gave up), and
# the adaptation gate's (slurm/recipe_gate.sh) when the stage has one.
set -u
me=recipe_progress.sh
die() { echo "$me: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $me RUN_DIR"
RUN=$1
[ -f "$RUN/pipeline.jobs" ] || die "$RUN/pipeline.jobs: not a pipeline run directory (no job list)"
now=$(date +%s)

# the value of train.KEY in a resolved config (2-space YAML of herd config)
train_key() { awk -v k="$2:" '/^[^ #]/ {in_t = ($1 == "train:")} in_t && $1 == k {print $2; exit}' "$1" 2>/dev/null; }

# gate_state DIR: the gate's word on the stage, if it has one
gate_state() {
    if [ -f "$1/gate.json" ]; then
        n=$(sed -n 's/.*"extensions": \([0-9]*\).*/\1/p' "$1/gate.json")
        w="$n extensions"; [ "$n" = 1 ] && w="1 extension"
        if grep -q '"passed": true' "$1/gate.json"; then echo "gate passed ($w)"
        else echo "gate: not adapted after $w (the limit)"; fi
    elif [ -f "$1/gate.state" ]; then
        m=$(tail -n 1 "$1/gate.state" | sed -n 's/^extending \([0-9]*\) to step \([0-9]*\)$/gate extension \1, to step \2/p')
        [ -n "$m" ] && echo "$m"
    fi
}

awk '$1 == "stage" {print $2, $4}' "$RUN/pipeline.jobs" | while read -r name dir; do
    log=$dir/recovery.log; m=$dir/metrics.jsonl
    [ -f "$log" ] || continue          # not started
    t0=$(head -n 1 "$log" | cut -d' ' -f1)
    t0=$(date -u -d "$t0" +%s 2>/dev/null || echo "$now")
    restarts=$(grep -c 'restart [0-9]*/\|requeueing' "$log" || true)
    case "$(tail -n 1 "$log")" in
        *"stage finished"*) state="done"; now_s=$(date -u -d "$(tail -n 1 "$log" | cut -d' ' -f1)" +%s 2>/dev/null || echo "$now") ;;
        *"giving up"*|*"not requeueing"*|*"not restarting"*) state=stopped; now_s=$now ;;
        *) state=running; now_s=$now ;;
    esac
    g=$(gate_state "$dir"); [ -n "$g" ] && state="$state, $g"
    max_steps=$(train_key "$dir/config.yaml" max_steps); max_tokens=$(train_key "$dir/config.yaml" max_tokens)
    # the last 10 step lines: step, loss, tokens seen, batch tokens, step seconds, tokens/s
    grep '"loss"' "$m" 2>/dev/null | grep -v '"event"' | tail -n 10 | awk \
        -v name="$name" -v el=$((now_s - t0)) -v ms="${max_steps:-0}" -v mt="${max_tokens:-0}" \
        -v rs="$restarts" -v state="$state" '
        function field(k,   v) { v = $0; if (!sub(".*\"" k "\":", "", v)) return ""; sub(/[,}].*/, "", v); return v }
        { step = field("step") + 0; loss = field("loss"); seen = field("tokens_seen") + 0; bt = field("batch_tokens") + 0
          sec += field("step_seconds"); tps += field("tokens_per_second"); n++ }
        END {
            if (!n) { printf "  %-22s step    -          waiting for its first step  elapsed %4d s  restarts %d  %s\n", name, el, rs, state; exit }
            total = 0
            if (ms > 0) total = ms
            if (mt > 0 && bt > 0) { t = step + int((mt - seen + bt - 1) / bt); if (total == 0 || t < total) total = t }
            left = (total > step) ? total - step : 0
            exp_s = (state ~ /^done/) ? el : el + left * sec / n
            printf "  %-22s step %4d/%-5s loss %.3f  tok/s %6.0f  elapsed %4d s  expected %4d s  restarts %d  %s\n",
                name, step, (total ? total : "?"), loss, tps / n, el, exp_s, rs, state
        }'
done
