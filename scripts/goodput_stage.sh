#!/bin/sh
# goodput_stage.sh — one line: the goodput a finished training stage measured
# and the one `herd plan --goodput` predicts from the same stage's own costs.
#
#   sh scripts/goodput_stage.sh STAGE_DIR [HERD]
#
# Its wall time per step: the median over consecutive checkpoints of one
# launch of their time difference over their step difference (metrics.jsonl's
# checkpoint events; a restart event starts a launch), or where no launch has
# two checkpoints, the median of the steps' step_seconds. The same quantities
# as benchmarks/goodput_faults.sh: measured goodput is the steps the stage kept
# times that, over its wall time from the first step to the last checkpoint
# (the first launch's start-up is a one-time cost, not an interruption's);
# each restart runs from the last step logged before the failure (the
# recovery log's "last step logged: N, at T") to training again (the relaunch's
# restart event, written once the checkpoint is loaded): detection, requeue
# and the trainer's start-up, as the model's R means. Predicted: `herd plan
# --goodput` with that step (less the mean checkpoint stall per step), the
# stall, the mean restart, the checkpoint interval, and an MTBF of the wall
# time over the interruptions. Where the logs lack those times, the wall
# falls back to the recovery log's launch to "stage finished" and the restart
# to its "down" times (or failure to next launch). docs/goodput.md.
set -u
d=$1; herd=${2:-build/herd}
m=$d/metrics.jsonl; log=$d/recovery.log
[ -s "$m" ] && [ -s "$log" ] || { echo "goodput: no metrics.jsonl or recovery.log in $d"; exit 0; }
stamp() { date -u -d "$(sed -n "$1" "$log" | head -n 1 | cut -d' ' -f1 | sed 's/T/ /; s/Z$//')" +%s 2>/dev/null; }
t0=$(stamp '1p'); t1=$(stamp '/stage finished/p')
[ -n "$t0" ] && [ -n "$t1" ] && [ "$t1" -gt "$t0" ] || { echo "goodput: $log has no finished stage"; exit 0; }
wall=$((t1 - t0))
# "launch step time stall" of each checkpoint event; a restart event starts a
# new launch (a relaunch's first checkpoint minus the last one before the
# failure would count the failure and the requeue as training time)
ev=$(awk '/"event":"restart"/ {l++} /"event":"checkpoint"/ {print l + 0, $0}' "$m" |
     sed -n 's/^\([0-9]*\) .*"step":\([0-9]*\),"time":\([0-9.]*\),"stall_s":\([0-9.e+-]*\).*/\1 \2 \3 \4/p')
per=$(echo "$ev" | awk 'NR > 1 && $1 == l && $2 > s {print ($3 - t) / ($2 - s), $2 - s} {l = $1; s = $2; t = $3}' | sort -g)
n=$(echo "$per" | grep -c .)
if [ "$n" -ge 1 ]; then
    r=$(echo "$per" | awk -v n="$n" 'NR == int((n + 1) / 2) {print $1}')
    every=$(echo "$per" | awk -v n="$n" 'NR == int((n + 1) / 2) {print $2}')
else # no two checkpoints in one launch: the steps' own median time, the interval between checkpoints
    r=$(grep -v '"event"' "$m" | sed -n 's/.*"step_seconds":\([0-9.e+-]*\).*/\1/p' | sort -g |
        awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}')
    every=$(echo "$ev" | awk 'NR > 1 && $2 > s {print $2 - s; exit} {s = $2}')
    [ -n "$r" ] && [ -n "$every" ] || { echo "goodput: no step times or fewer than two checkpoints in $d"; exit 0; }
fi
stall=$(echo "$ev" | awk '{s += $4; n++} END {printf "%.6f", n ? s / n : 0}')
steps=$(grep -v '"event"' "$m" | sed -n 's/.*"step":\([0-9]*\),.*/\1/p' | sort -un | grep -c .)
restarts=$(grep -c 'restart [0-9]*/\|requeueing' "$log")
down=$(sed -n 's/.*time lost: \([0-9.]*\) s down.*/\1/p' "$log" | awk '{s += $1; n++} END {printf "%.1f", n ? s / n : 0}')
if [ "$down" = "0.0" ] && [ "$restarts" -gt 0 ]; then
    # a requeue logs no "time lost": each failure to the next launch
    down=$(while read -r ts rest; do
               case $rest in "step failed"*|launch*) echo "$(date -u -d "$(echo "$ts" | sed 's/T/ /; s/Z$//')" +%s) ${rest%% *}" ;; esac
           done <"$log" | awk '$2 == "step" {f = $1} $2 == "launch" && f {s += $1 - f; n++; f = 0}
                               END {printf "%.1f", n ? s / n : 0}')
fi
# kill to training again: each failure's last logged step to the next restart
# event (both whole seconds)
stops=$(sed -n 's/^\([0-9-]*\)T.*step failed.*last step logged: [0-9]*, at \([0-9:]*\)).*/\1 \2/p' "$log" |
        while read -r day hms; do date -u -d "$day $hms" +%s; done)
agains=$(sed -n 's/.*"event":"restart".*"time":\([0-9.]*\).*/\1/p' "$m")
if [ -n "$stops" ] && [ "$(echo "$stops" | grep -c .)" -eq "$(echo "$agains" | grep -c .)" ]; then
    again=$(awk -v s="$stops" -v a="$agains" 'BEGIN {n = split(s, S, "\n"); split(a, A, "\n")
           for (i = 1; i <= n; i++) if (A[i] > S[i]) {t += A[i] - S[i]; k++}
           if (k) printf "%.1f", t / k}')
    [ -n "$again" ] && down=$again
fi
# first step to the last checkpoint, where the first launch has a checkpoint
first=$(echo "$ev" | awk -v r="$r" 'NR == 1 && $1 == 0 {printf "%.3f", $3 - $2 * r}')
last=$(echo "$ev" | awk 'END {print $3}')
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN {exit !(b > a)}'; then
    wall=$(awk -v a="$first" -v b="$last" 'BEGIN {printf "%.1f", b - a}')
fi
mtbf=$(awk -v w="$wall" -v k="$restarts" 'BEGIN {printf "%.1f", k ? w / k : 1e12}')
step=$(awk -v r="$r" -v c="$stall" -v e="$every" 'BEGIN {printf "%.6f", r - c / e}')
pred=$("$herd" plan --goodput --step-s "$step" --stall-s "$stall" --restart-s "$down" --mtbf-s "$mtbf" \
       --every "$every" 2>/dev/null | sed -n 's/^  closed form *\([0-9.]*\)%.*/\1/p')
echo "goodput: measured $(awk -v k="$steps" -v r="$r" -v w="$wall" 'BEGIN {printf "%.1f", 100 * k * r / w}')%" \
     "($steps steps kept at $r s over $wall s, $restarts interruptions); predicted ${pred:-?}%" \
     "(herd plan --goodput: that step, stall $stall s, restart $down s, MTBF $mtbf s, every $every)"
