#!/bin/sh
# herd plan --goodput and checkpoint.every: auto from the command line: the
# closed form and the simulation printed side by side and within a point at
# an MTBF of hours, the sweep's gap growing with the failure rate, the paper's
# four cases, bad input refused naming the flag or the key, and a tiny run
# with auto that logs its interval and why and checkpoints at it.
set -u
cd "$(dirname "$0")/../.."
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
[ -x build/herd ] || { echo "SKIP goodput: build/herd not built"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

out=$(build/herd plan --goodput --step-s 1 --stall-s 2 --write-s 10 --restart-s 60 --interruptions 24 --days 1 --sweep 2>&1)
gap=$(echo "$out" | sed -n 's/.*simulated - closed form: \([-+0-9.]*\) points.*/\1/p')
if [ -n "$gap" ] && awk -v g="$gap" 'BEGIN { exit !(g >= -1 && g <= 1) }'; then pass goodput_closed_vs_sim
else fail goodput_closed_vs_sim "gap '$gap': $out"; fi
# the sweep: MTBF from 360 s to 100 h; the gap at the highest rate exceeds the one at the lowest
rows=$(echo "$out" | awk '$1 ~ /^[0-9.e+]+$/ && NF == 5')
first=$(echo "$rows" | head -1 | awk '{print $5}'); last=$(echo "$rows" | tail -1 | awk '{print $5}')
if [ "$(echo "$rows" | wc -l)" -eq 7 ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(a > b && a > 1) }'; then
    pass goodput_sweep_parts_at_high_rates
else fail goodput_sweep_parts_at_high_rates "$rows"; fi

out=$(build/herd plan --goodput --paper 2>&1)
n=$(echo "$out" | grep -c -E '^(in-allocation|requeue), (a)?sync ')
a=$(echo "$out" | awk '/^in-allocation, async/ {print $4}'); s=$(echo "$out" | awk '/^requeue, sync/ {print $4}')
if [ "$n" -eq 4 ] && awk -v a="$a" -v s="$s" 'BEGIN { exit !(a > s && a < 100) }'; then pass goodput_paper_cases
else fail goodput_paper_cases "$out"; fi

bad() { # bad NAME WANT ARGS...: exit 2 and a message with WANT
    name=$1; want=$2; shift 2
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq 2 ] && echo "$err" | grep -q -- "$want"; then pass "$name"; else fail "$name" "exit $rc: $err"; fi
}
bad goodput_needs_step '--step-s is required' build/herd plan --goodput --mtbf-s 3600
bad goodput_rate_once 'give the interruption rate once' build/herd plan --goodput --step-s 1 --mtbf-s 3600 --per-gpu-day 1 --gpus 8
bad goodput_bad_number "\-\-p-node '2'" build/herd plan --goodput --step-s 1 --mtbf-s 3600 --p-node 2
bad goodput_node_rate_needs_nodes 'needs --nodes N' build/herd plan --goodput --step-s 1 --per-node-day 0.1
bad goodput_node_needs_nodes 'nodes >= 2' build/herd plan --goodput --step-s 1 --mtbf-s 3600 --p-node 0.5

# the config: auto needs one rate; a negative interval is not auto
for c in "checkpoint.every=auto" "checkpoint.every=-1" "checkpoint.every=sometimes"; do
    if build/herd config configs/tiny.yaml --set "$c" >/dev/null 2>"$tmp/err"; then
        fail goodput_config_refuses "$c accepted"
    elif ! grep -q "checkpoint.every" "$tmp/err"; then fail goodput_config_refuses "$c: $(cat "$tmp/err")"
    else pass "goodput_config_refuses_$(echo "$c" | cut -d= -f2 | tr -c 'a-z0-9\n' _)"; fi
done
if build/herd config configs/tiny.yaml --set checkpoint.every=auto --set checkpoint.mtbf_s=600 2>&1 \
    | grep -q '^  every: auto$'; then pass goodput_config_writes_auto
else fail goodput_config_writes_auto "the resolved config does not say auto"; fi

# a tiny run with auto: the first checkpoint at step 3, then the measured interval
# (the log, not the directories: retention may remove the early ones)
build/herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1
cat >"$tmp/cfg.yaml" <<YAML
model:
  preset: tiny
batch:
  micro_batch: 4
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
train:
  max_steps: 16
  threads: 1
  out_dir: $tmp/run
data:
  path: $tmp/train.bin
checkpoint:
  every: auto
  mtbf_s: 600
  restart_s: 20
YAML
if build/herd train "$tmp/cfg.yaml" >"$tmp/out" 2>&1; then
    # the first measured choice: at step 6, or later where the step-3 checkpoint's
    # background write had not committed by step 6 (a busy machine)
    line=$(grep -m1 'checkpoint.every auto at step [0-9]*: every [0-9]* steps: predicted goodput' "$tmp/out")
    every=$(echo "$line" | sed -n 's/.*: every \([0-9]*\) steps: predicted goodput.*/\1/p')
    if [ -n "$every" ] && echo "$line" | grep -q 'restart 20 s (checkpoint.restart_s), MTBF 600 s' \
        && grep -q '^checkpoint: step 3 committed' "$tmp/out" && grep -q '^checkpoint: step 6 committed' "$tmp/out"; then
        pass goodput_train_auto
    else fail goodput_train_auto "$(grep -e auto -e rror "$tmp/out")"; fi
else fail goodput_train_auto "$(tail -5 "$tmp/out")"; fi
# the demo's line: a stage killed once and requeued. The step time must come
# from one launch (not the checkpoint before the failure to the one after
# it); the restart runs from the last step logged before the failure to the
# relaunch's restart event, the wall from the first step to the last
# checkpoint (11:35:00 is 1796470500).
st=$tmp/stage; mkdir -p "$st"
{ for i in $(seq 1 25); do echo "{\"step\":$i,\"loss\":1,\"step_seconds\":0.200000,\"mfu\":0.1}"; done
  echo '{"event":"checkpoint","step":20,"time":1796470504.000,"stall_s":0.010000,"write_s":0.000000}'
  echo '{"event":"restart","step":20,"time":1796470534.000,"restarts":1}'
  for i in $(seq 21 40); do echo "{\"step\":$i,\"loss\":1,\"step_seconds\":0.200000,\"mfu\":0.1}"; done
  echo '{"event":"checkpoint","step":40,"time":1796470538.000,"stall_s":0.010000,"write_s":0.000000}'; } >"$st/metrics.jsonl"
cat >"$st/recovery.log" <<'LOG'
2026-12-05T11:35:00Z launch on node1,node2 (2 ranks, 1 per node) from checkpoint none
2026-12-05T11:35:06Z step failed at 11:35:06 (last step logged: 25, at 11:35:05): step failed with exit 137
2026-12-05T11:35:17Z requeueing job 1: only 1 healthy nodes of 2, fewer than HERD_MIN_NODES 2
2026-12-05T11:35:30Z launch on node1,node3 (2 ranks, 1 per node) from checkpoint .../step_00000020
2026-12-05T11:35:40Z stage finished (step exit 0) after 0 restarts
LOG
line=$(sh scripts/goodput_stage.sh "$st" build/herd)
if echo "$line" | grep -q '40 steps kept at 0.200000 s over 38.0 s, 1 interruptions' &&
   echo "$line" | grep -q 'measured 21.1%' && echo "$line" | grep -q 'restart 29.0 s, MTBF 38.0 s, every 20'; then
    pass goodput_stage_line_across_a_requeue
else fail goodput_stage_line_across_a_requeue "$line"; fi
# without the last step's time (an older log): the restart from the failure to
# the next launch
sed -i 's/ (last step logged: 25, at 11:35:05)//' "$st/recovery.log"
line=$(sh scripts/goodput_stage.sh "$st" build/herd)
if echo "$line" | grep -q 'restart 24.0 s, MTBF 38.0 s, every 20'; then
    pass goodput_stage_line_restart_fallback
else fail goodput_stage_line_restart_fallback "$line"; fi
# 2 ranks: one interval for both (a disagreement would hang the collective save)
if command -v mpirun >/dev/null 2>&1; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
    if timeout 120 mpirun --oversubscribe -np 2 build/herd train "$tmp/cfg.yaml" --set train.out_dir="$tmp/mpi" \
        --set parallel.dp=2 --set train.max_steps=12 >"$tmp/mpi.out" 2>&1; then
        at=$(sed -n 's/^checkpoint.every auto at step [0-9]*: every \([0-9]*\) steps: predicted.*/\1/p' "$tmp/mpi.out" | head -n 1)
        if [ -n "$at" ] && grep -q '^checkpoint: step 12 committed' "$tmp/mpi.out" &&
            grep -q '^checkpoint: step 6 committed' "$tmp/mpi.out"; then
            pass goodput_train_auto_2_ranks
        else fail goodput_train_auto_2_ranks "$(grep -e auto -e rror "$tmp/mpi.out"; ls "$tmp/mpi/checkpoints")"; fi
    else fail goodput_train_auto_2_ranks "$(tail -5 "$tmp/mpi.out")"; fi
fi
[ "$fails" -eq 0 ]
