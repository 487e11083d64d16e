#!/bin/sh
# recipe_gate.sh — the adaptation gate after a long-context stage (slurm/pipeline.sh
# submits it between a gated stage and the next one).
#
#   sh slurm/recipe_gate.sh check STAGE_CONFIG
#   sbatch [the stage's #SBATCH] slurm/recipe_gate.sh run STAGE_CONFIG STAGE_DIR REF_DIR SHORT_CONFIG
#
# The paper moves to a longer context only once the model has adapted to the current
# one. The two criteria, read from the stage's evaluation (slurm/recipe_eval.sh):
#   1. short context recovered: for every source in REF_DIR/eval.json (the stage
#      before the extension, by default the first one), STAGE_DIR/eval.json's loss
#      is at most that loss + loss_margin;
#   2. retrieval at the stage's length: "accuracy" of that length in
#      STAGE_DIR/passkey.json ("lengths": {"L": {"accuracy": a, ...}}) >= passkey_min.
# When either fails, the stage is trained extend_steps more steps (the stage's own
# driver, slurm/train.sbatch, in this job's allocation: it resumes from the stage's
# newest checkpoint) and evaluated again, up to max_extensions times. At the limit:
# on_limit=continue (default) says so and lets the chain move on; on_limit=stop
# fails this job, so that the chain stops (the next stages are cancelled).
#
# Settings: `#GATE key=value ...` lines in the stage config (a YAML comment, as the
# `#SBATCH` lines; several lines add up, a later key wins). A stage with no #GATE
# line is not gated. Keys (default):
#   loss_margin     nats the short-context loss may exceed the reference's (0.30)
#   passkey_min     passkey accuracy needed at the stage's length, 0..1 (0.9)
#   length          the passkey length to read (the stage's seq_len: its ramp's last entry)
#   extend_steps    steps per extension, >= 1 (10)
#   max_extensions  extensions at most, >= 0 (2)
#   on_limit        continue | stop (continue)
#
# Writes STAGE_DIR/gate.log (each decision, timestamped) and, once decided,
# STAGE_DIR/gate.json: {"stage", "passed", "moves_on", "extensions", "steps_added",
# "max_extensions", "reason"}.
# STAGE_DIR/gate.state records the extensions, so that a requeued gate job goes on
# where it stopped. Exit 0 when the chain may go on, 1 otherwise.
#SBATCH --requeue
#SBATCH --no-kill
#SBATCH --signal=B:USR1@120
#SBATCH --open-mode=append
set -u
me=recipe_gate.sh
die() { echo "$me: $*" >&2; exit 1; }
HERD_ROOT=${HERD_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
HERD_BIN=${HERD_BIN:-$HERD_ROOT/build/herd}

# ---- settings: the #GATE lines of CONFIG ----
LOSS_MARGIN=0.30; PASSKEY_MIN=0.9; LENGTH=""; EXTEND_STEPS=10; MAX_EXT=2; ON_LIMIT=continue
is_num() { echo "$1" | grep -Eq '^[0-9]+(\.[0-9]+)?$'; }
is_int() { echo "$1" | grep -Eq '^[0-9]+$'; }
read_settings() { # read_settings CONFIG
    grep -q '^#GATE\([ 	]\|$\)' "$1" || die "$1: no #GATE line: the stage is not gated"
    set -f      # the words of the #GATE lines are not file patterns
    for kv in $(sed -n 's/^#GATE[ 	]*//p' "$1" | sed 's/[ 	]#.*//'); do
        k=${kv%%=*}; v=${kv#*=}
        [ "$k" != "$kv" ] || die "$1: #GATE '$kv': expected key=value"
        case "$k" in
            loss_margin) is_num "$v" || die "$1: #GATE loss_margin '$v': expected a number of nats >= 0"; LOSS_MARGIN=$v ;;
            passkey_min) is_num "$v" && awk -v a="$v" 'BEGIN {exit !(a <= 1)}' \
                             || die "$1: #GATE passkey_min '$v': expected an accuracy in [0, 1]"; PASSKEY_MIN=$v ;;
            length) is_int "$v" && [ "$v" -gt 0 ] || die "$1: #GATE length '$v': expected a context length > 0"; LENGTH=$v ;;
            extend_steps) is_int "$v" && [ "$v" -ge 1 ] || die "$1: #GATE extend_steps '$v': expected a number of steps >= 1"; EXTEND_STEPS=$v ;;
            max_extensions) is_int "$v" || die "$1: #GATE max_extensions '$v': expected a number >= 0"; MAX_EXT=$v ;;
            on_limit) case "$v" in continue|stop) ON_LIMIT=$v ;; *) die "$1: #GATE on_limit '$v': expected continue or stop" ;; esac ;;
            *) die "$1: #GATE '$k': unknown key (loss_margin, passkey_min, length, extend_steps, max_extensions, on_limit)" ;;
        esac
    done
    set +f
    if [ -z "$LENGTH" ]; then
        LENGTH=$("$HERD_BIN" config "$1" 2>/dev/null | awk '/after_tokens:/ && /seq_len:/ {sub(/.*seq_len: */, ""); sub(/[^0-9].*/, ""); s = $0} END {print s}')
        [ -n "$LENGTH" ] || die "$1: batch.ramp: no seq_len found (the gate's passkey length; or set #GATE length=L)"
    fi
}

# json_flat FILE: "path=value" per scalar of a JSON file (objects' keys and arrays'
# indices joined by '.'), so that a field is found wherever the file nests it
json_flat() {
    awk 'BEGIN {RS = "\001"} {
        s = $0; n = length(s); d = 0; key = ""; havekey = 0
        for (i = 1; i <= n; i++) {
            c = substr(s, i, 1)
            if (c ~ /[ \t\r\n:]/) continue
            if (c == "{" || c == "[") {
                d++; typ[d] = c; idx[d] = 0
                nm[d] = (d == 1) ? "" : (typ[d - 1] == "{" ? key : idx[d - 1]); havekey = 0; continue
            }
            if (c == "}" || c == "]") { d--; havekey = 0; continue }
            if (c == ",") { if (typ[d] == "[") idx[d]++; havekey = 0; continue }
            if (c == "\"") {
                v = ""
                for (i++; i <= n && substr(s, i, 1) != "\""; i++) {
                    if (substr(s, i, 1) == "\\") i++
                    v = v substr(s, i, 1)
                }
                if (typ[d] == "{" && !havekey) { key = v; havekey = 1; continue }
            } else {
                v = ""
                for (; i <= n && substr(s, i, 1) !~ /[,}\] \t\r\n]/; i++) v = v substr(s, i, 1)
                i--
            }
            p = ""
            for (j = 2; j <= d; j++) p = p nm[j] "."
            print p (typ[d] == "{" ? key : idx[d]) "=" v
            havekey = 0
        }
    }' "$1"
}

# short-context losses of an eval.json: "source loss" lines
val_losses() { json_flat "$1" | sed -n 's/^val\.\([^.]*\)\.loss=\(.*\)$/\1 \2/p'; }

# judge STAGE_DIR REF_DIR: sets OK (1/0) and WHY (the criteria, with their numbers)
judge() {
    OK=1; WHY=""
    ev=$1/eval.json; ref=$2/eval.json; pk=$1/passkey.json
    [ -f "$ref" ] || die "$ref: no evaluation of the reference stage (the short-context loss before the extension)"
    [ -f "$ev" ] || die "$ev: no evaluation of the stage"
    bad=""; good=""
    for line in $(val_losses "$ref" | tr ' ' '='); do
        src=${line%%=*}; r=${line#*=}
        l=$(val_losses "$ev" | awk -v s="$src" '$1 == s {print $2}')
        [ -n "$l" ] || die "$ev: no validation loss of source '$src' (the reference $ref has one)"
        t=$(awk -v l="$l" -v r="$r" -v m="$LOSS_MARGIN" 'BEGIN {printf "%s %.3f > %.3f", (l > r + m) ? "bad" : "ok", l, r + m}')
        case "$t" in bad*) bad="$bad $src ${t#bad }" ;; *) good="$good $src" ;; esac
    done
    [ -n "$bad$good" ] || die "$ref: no per-source validation loss (val.SOURCE.loss)"
    if [ -n "$bad" ]; then
        OK=0; WHY="short-context loss above $(basename "$2")'s + $LOSS_MARGIN:$bad"
    else
        WHY="short-context loss within +$LOSS_MARGIN of $(basename "$2")'s ($(echo $good | tr ' ' ','))"
    fi
    acc=""; [ -f "$pk" ] && acc=$(json_flat "$pk" | sed -n "s/^lengths\.$LENGTH\.accuracy=//p" | head -n 1)
    if [ -z "$acc" ]; then
        OK=0; WHY="$WHY; $pk: no passkey accuracy at length $LENGTH"
    elif awk -v a="$acc" -v m="$PASSKEY_MIN" 'BEGIN {exit !(a + 0 >= m + 0)}'; then
        WHY="$WHY; passkey accuracy at $LENGTH $acc >= $PASSKEY_MIN"
    else
        OK=0; WHY="$WHY; passkey accuracy at $LENGTH $acc < $PASSKEY_MIN"
    fi
}

mode=${1:-}
case "$mode" in
    check) [ $# -eq 2 ] || die "usage: $me check STAGE_CONFIG"
           [ -f "$2" ] || die "$2: stage config does not exist"
           read_settings "$2"
           echo "$me: $2: gate loss_margin=$LOSS_MARGIN passkey_min=$PASSKEY_MIN length=$LENGTH extend_steps=$EXTEND_STEPS max_extensions=$MAX_EXT on_limit=$ON_LIMIT"
           exit 0 ;;
    run) [ $# -eq 5 ] || die "usage: $me run STAGE_CONFIG STAGE_DIR REF_DIR SHORT_CONFIG" ;;
    *) die "usage: $me check STAGE_CONFIG | run STAGE_CONFIG STAGE_DIR REF_DIR SHORT_CONFIG" ;;
esac
CFG=$2; DIR=$3; REF=$4; SHORT=$5
read_settings "$CFG"
stage=$(basename "$DIR")
[ -d "$DIR" ] || die "$DIR: stage directory does not exist"
LOG=$DIR/gate.log; STATE=$DIR/gate.state
[ -L "$LOG" ] || [ -L "$STATE" ] || [ -L "$DIR/gate.json" ] && die "$DIR: gate.log, gate.state or gate.json is a symbolic link: not followed"
say() { echo "gate $stage: $*"; echo "$(date -u +%FT%TZ) $*" >>"$LOG"; }
newest_step() {
    ls -d "$DIR"/checkpoints/step_* 2>/dev/null | grep -E '/step_[0-9]+$' | sort -r | while read -r d; do
        [ -f "$d/MANIFEST" ] && { basename "$d" | sed 's/^step_0*//; s/^$/0/'; break; }
    done
}
exts() { if [ "$1" = 1 ]; then echo "1 extension"; else echo "$1 extensions"; fi; }
# decide PASSED MOVES_ON REASON: gate.json, written once the gate has decided
decide() {
    ne=$(grep -c '^extended ' "$STATE" 2>/dev/null || true)
    why=$(printf '%s' "$3" | sed 's/\\/\\\\/g; s/"/\\"/g')
    rm -f "$DIR/gate.json.tmp"      # a planted link there is removed, not written through
    printf '{"stage": "%s", "passed": %s, "moves_on": %s, "extensions": %d, "steps_added": %d, "max_extensions": %d, "reason": "%s"}\n' \
        "$stage" "$1" "$2" "$ne" $((ne * EXTEND_STEPS)) "$MAX_EXT" "$why" >"$DIR/gate.json.tmp" \
        && mv "$DIR/gate.json.tmp" "$DIR/gate.json"
}

# a signal for the stage driver (the time limit's SIGUSR1, SIGTERM) goes to the extension's driver
child=""
fwd() { [ -n "$child" ] && kill -"$1" "$child" 2>/dev/null; }
trap 'fwd USR1' USR1
trap 'fwd TERM' TERM
run_child() {
    "$@" &
    child=$!
    while :; do
        wait "$child"; crc=$?
        if [ "$crc" -gt 128 ] && kill -0 "$child" 2>/dev/null; then continue; fi
        break
    done
    child=""
    return "$crc"
}

rm -f "$DIR/gate.json"
touch "$STATE" || die "$STATE: cannot be written"
while :; do
    n=$(grep -c '^extended ' "$STATE" || true)
    pending=$(tail -n 1 "$STATE" | sed -n 's/^extending [0-9]* to step \([0-9]*\)$/\1/p')
    if [ -z "$pending" ]; then
        judge "$DIR" "$REF"
        if [ "$OK" = 1 ]; then
            say "passed after $(exts "$n"): $WHY"
            decide true true "passed after $(exts "$n"): $WHY"; exit 0
        fi
        if [ "$n" -ge "$MAX_EXT" ]; then
            msg="criteria still not met after $(exts "$n") of $EXTEND_STEPS steps (max_extensions $MAX_EXT, the limit): $WHY"
            if [ "$ON_LIMIT" = stop ]; then
                decide false false "$msg"; say "$msg; stopping the chain (on_limit=stop)"; exit 1
            fi
            decide false true "$msg"
            say "$msg; the chain moves on (on_limit=continue)"; exit 0
        fi
        # outside a job, train.sbatch would submit a job of its own instead of training here
        [ -n "${SLURM_JOB_ID:-}" ] || die "$stage not adapted ($WHY): extending it needs a Slurm allocation (submit the gate with sbatch, as slurm/pipeline.sh does)"
        from=$(newest_step)
        [ -n "$from" ] || die "$DIR/checkpoints: no complete checkpoint to extend"
        pending=$((from + EXTEND_STEPS))
        say "not adapted: $WHY; extension $((n + 1))/$MAX_EXT: $EXTEND_STEPS more steps, $from -> $pending"
        echo "extending $((n + 1)) to step $pending" >>"$STATE"
    fi
    # the stage's own driver (restarts, requeue) to step $pending; max_tokens off: the extension counts steps
    run_child sh "$HERD_ROOT/slurm/train.sbatch" "$CFG" --out "$DIR" \
        --set "train.max_steps=$pending" --set train.max_tokens=0 \
        || { say "extension $((n + 1)) to step $pending failed (the stage's log: $DIR/recovery.log)"; exit 1; }
    [ "$(newest_step)" = "$pending" ] || { say "extension $((n + 1)): the driver ended but step $pending has no checkpoint (requeued?)"; exit 1; }
    run_child sh "$HERD_ROOT/slurm/recipe_eval.sh" "$DIR" "$SHORT" >/dev/null \
        || { say "evaluation after extension $((n + 1)) failed"; exit 1; }
    echo "extended $((n + 1)) to step $pending" >>"$STATE"
done
