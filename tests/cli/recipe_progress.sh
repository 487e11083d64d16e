#!/bin/sh
# slurm/recipe_progress.sh (pipeline.sh --progress) on a run directory made here
# (no Slurm): a running stage's line says its step of the total its config
# stops at, and the expected time is the elapsed time plus the steps left at
# the last steps' mean step time — also when the step count has fewer digits
# than the total (28 of 1200: compared as numbers, not as text).
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

run=$tmp/run; st=$run/01_pretrain
mkdir -p "$st"
echo "stage 01_pretrain 1 $st" >"$run/pipeline.jobs"
# launched 100 s ago; 1200 steps of 4096 tokens; steps 19..28 at 0.5 s each
echo "$(date -u -d @$(( $(date +%s) - 100 )) +%Y-%m-%dT%H:%M:%SZ) launch on node1 (1 rank) from checkpoint none" >"$st/recovery.log"
printf 'train:\n  max_steps: 0\n  max_tokens: 4915200\n' >"$st/config.yaml"
i=19
while [ "$i" -le 28 ]; do
    echo "{\"step\":$i,\"loss\":2.5,\"tokens_seen\":$((i * 4096)),\"batch_tokens\":4096,\"step_seconds\":0.5,\"tokens_per_second\":8192}"
    i=$((i + 1))
done >"$st/metrics.jsonl"
line=$(sh slurm/recipe_progress.sh "$run" 2>&1)
exp=$(echo "$line" | sed -n 's/.*expected *\([0-9]*\) s.*/\1/p')
el=$(echo "$line" | sed -n 's/.*elapsed *\([0-9]*\) s.*/\1/p')
# 1172 steps left x 0.5 s = 586 s after the elapsed time
if echo "$line" | grep -q 'step   28/1200 .*running' && [ -n "$exp" ] && [ -n "$el" ] &&
   [ "$((exp - el))" -ge 585 ] && [ "$((exp - el))" -le 587 ]; then
    pass "progress_expected_time (step 28/1200 at 0.5 s: elapsed $el s, expected $exp s)"
else fail progress_expected_time "$line"; fi
exit "$((fails > 0))"
