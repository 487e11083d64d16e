#!/bin/sh
# Print a loss curve from a herd metrics.jsonl as a text chart.
#   monitoring/loss_curve.sh METRICS.jsonl [ROWS]
# Each row is the mean loss over an equal slice of the steps.
set -eu
f=${1:?usage: loss_curve.sh METRICS.jsonl [ROWS]}
rows=${2:-20}
[ -s "$f" ] || { echo "loss_curve: $f: no metrics" >&2; exit 1; }
sed -n 's/.*"step":\([0-9]*\),"loss":\([^,]*\),.*"tokens_seen":\([0-9]*\),.*/\1 \2 \3/p' "$f" |
awk -v rows="$rows" '
{ step[NR] = $1; loss[NR] = $2; tok[NR] = $3 }
END {
    n = NR; if (n == 0) exit 1
    if (rows > n) rows = n
    lo = 1e30; hi = -1e30
    for (r = 0; r < rows; r++) {
        a = int(r * n / rows) + 1; b = int((r + 1) * n / rows); s = 0
        for (i = a; i <= b; i++) s += loss[i]
        m[r] = s / (b - a + 1); last[r] = b
        if (m[r] < lo) lo = m[r]; if (m[r] > hi) hi = m[r]
    }
    printf "%8s %12s %8s\n", "step", "tokens", "loss"
    for (r = 0; r < rows; r++) {
        w = hi > lo ? int(50 * (m[r] - lo) / (hi - lo) + 0.5) : 0
        bar = ""; for (k = 0; k < w; k++) bar = bar "#"
        printf "%8d %12d %8.4f |%s\n", step[last[r]], tok[last[r]], m[r], bar
    }
}'
