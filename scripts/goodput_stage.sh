#!/bin/sh
# goodput_stage.sh — one line: the goodput a finished training stage measured
# and the one `herd plan --goodput` predicts from the same stage's own costs.
#
#   sh scripts/goodput_stage.sh STAGE_DIR [HERD]
#
# Measured: the step time of the steps the stage kept (the last logged time of
# each step, metrics.jsonl) over its wall time (OUT/recovery.log: the first
# launch to "stage finished"; the first start-up and the last commit count
# against it). Predicted: its mean step and checkpoint stall, the restarts'
# mean "time lost: N s down" (recovery.log), checkpoint.every of its resolved
# config, and an MTBF of its wall time over its interruptions. docs/goodput.md.
set -u
d=$1; herd=${2:-build/herd}
m=$d/metrics.jsonl; log=$d/recovery.log
[ -s "$m" ] && [ -s "$log" ] || { echo "goodput: no metrics.jsonl or recovery.log in $d"; exit 0; }
stamp() { date -u -d "$(sed -n "$1" "$log" | cut -d' ' -f1 | sed 's/T/ /; s/Z$//')" +%s 2>/dev/null; }
t0=$(stamp '1p'); t1=$(stamp '/stage finished/p')
[ -n "$t0" ] && [ -n "$t1" ] && [ "$t1" -gt "$t0" ] || { echo "goodput: $log has no finished stage"; exit 0; }
wall=$((t1 - t0))
useful=$(grep -v '"event"' "$m" | sed -n 's/.*"step":\([0-9]*\),.*"step_seconds":\([0-9.e+-]*\).*/\1 \2/p' \
         | awk '{s[$1] = $2} END {for (k in s) {u += s[k]; n++} printf "%.3f %d", u, n}')
steps=${useful#* }; useful=${useful% *}
[ "$steps" -gt 0 ] || { echo "goodput: no steps in $m"; exit 0; }
stall=$(grep '"event":"checkpoint"' "$m" | sed 's/.*"stall_s":\([0-9.e+-]*\).*/\1/' \
        | awk '{s += $1; n++} END {printf "%.6f", n ? s / n : 0}')
restarts=$(grep -c 'restart [0-9]*/\|requeueing' "$log")
down=$(sed -n 's/.*time lost: \([0-9.]*\) s down.*/\1/p' "$log" | awk '{s += $1; n++} END {printf "%.1f", n ? s / n : 0}')
every=$(sed -n '/^checkpoint:/,/^[a-z]/s/^  every: \([0-9]*\)$/\1/p' "$d/config.yaml" 2>/dev/null)
mtbf=$(awk -v w="$wall" -v r="$restarts" 'BEGIN {printf "%.1f", r ? w / r : 1e12}')
pred=$("$herd" plan --goodput --step-s "$(awk -v u="$useful" -v n="$steps" 'BEGIN {printf "%.6f", u / n}')" \
       --stall-s "$stall" --restart-s "$down" --mtbf-s "$mtbf" ${every:+--every "$every"} 2>/dev/null \
       | sed -n 's/^  closed form *\([0-9.]*\)%.*/\1/p')
echo "goodput: measured $(awk -v u="$useful" -v w="$wall" 'BEGIN {printf "%.1f", 100 * u / w}')% ($useful s of" \
     "$steps steps kept over $wall s, $restarts interruptions); predicted ${pred:-?}% (herd plan --goodput:" \
     "its step, stall, restart ${down} s, MTBF ${mtbf} s${every:+, every $every})"
