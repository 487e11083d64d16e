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
    line=$(grep 'checkpoint.every auto at step 6: every' "$tmp/out")
    every=$(echo "$line" | sed -n 's/.*: every \([0-9]*\) steps: predicted goodput.*/\1/p')
    if [ -n "$every" ] && echo "$line" | grep -q 'restart 20 s (checkpoint.restart_s), MTBF 600 s' \
        && [ -d "$tmp/run/checkpoints/step_00000003" ] && [ -d "$tmp/run/checkpoints/step_00000006" ]; then
        pass goodput_train_auto
    else fail goodput_train_auto "$(grep -e auto -e rror "$tmp/out")"; fi
else fail goodput_train_auto "$(tail -5 "$tmp/out")"; fi
# 2 ranks: one interval for both (a disagreement would hang the collective save)
if command -v mpirun >/dev/null 2>&1; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
    if timeout 120 mpirun --oversubscribe -np 2 build/herd train "$tmp/cfg.yaml" --set train.out_dir="$tmp/mpi" \
        --set parallel.dp=2 --set train.max_steps=12 >"$tmp/mpi.out" 2>&1; then
        at=$(sed -n 's/^checkpoint.every auto at step 6: every \([0-9]*\) steps.*/\1/p' "$tmp/mpi.out")
        if [ -n "$at" ] && [ -d "$tmp/mpi/checkpoints/step_00000012" ] && [ -d "$tmp/mpi/checkpoints/step_00000006" ]; then
            pass goodput_train_auto_2_ranks
        else fail goodput_train_auto_2_ranks "$(grep -e auto -e rror "$tmp/mpi.out"; ls "$tmp/mpi/checkpoints")"; fi
    else fail goodput_train_auto_2_ranks "$(tail -5 "$tmp/mpi.out")"; fi
fi
[ "$fails" -eq 0 ]
