#!/bin/sh
# herd plan for a CPU cluster, as benchmarks/layouts.sh (make bench-layouts)
# calls it: a peak below 1 TFLOP/s and a links file of measured loopback
# numbers; MFU = B F / (T_step N peak) must hold for the JSON it prints, a
# slower link must predict a longer step for a communicating layout and not
# for DP-only, and a peak of 0 is refused naming the flag. Also the ping-pong
# program of the benchmark under mpirun (2 ranks, a number for each field).
set -u
cd "$(dirname "$0")/../.."
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
[ -x build/herd ] || { echo "SKIP plan_cpu: build/herd not built"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'SwitchName=leaf1 Nodes=node[1-2]\nSwitchName=leaf2 Nodes=node[3-4]\nSwitchName=spine Switches=leaf1,leaf2\n' >"$tmp/topology.conf"
for h in 1 2 3; do echo "$h bandwidth=1.25 latency=14"; done >"$tmp/fast.links"
for h in 1 2 3; do echo "$h bandwidth=0.01 latency=5000"; done >"$tmp/slow.links"
plan() { # plan LINKS LAYOUT
    build/herd plan --conf "$tmp/topology.conf" --links "$1" --gpus-per-node 2 --model tiny --seq 128 \
        --batch-tokens 4096 --micro-batch 1 --peak-tflops 0.0185 --compute-eff 0.37 --layout "$2" --json
}
g() { sed -n "s/.*\"$1\": \([0-9.eE+-]*\).*/\1/p" | head -1; }
if out=$(plan "$tmp/fast.links" 1,4,1,2 2>&1); then
    mfu=$(echo "$out" | g mfu); st=$(echo "$out" | g step_s)
    # tiny: P_matmul 131072, F = 6 P + 6 L s d = 786432 + 98304 per token
    want=$(awk -v s="$st" 'BEGIN { printf "%.4f", 4096 * (6 * 131072 + 6 * 2 * 128 * 64) / (s * 8 * 0.0185e12) }')
    if [ -n "$mfu" ] && awk -v a="$mfu" -v b="$want" 'BEGIN { exit !(a > 0 && (a - b) ^ 2 < 1e-4 * b * b) }'; then
        pass plan_cpu_peak_mfu_formula
    else
        fail plan_cpu_peak_mfu_formula "mfu $mfu, from step_s $st expected $want: $out"
    fi
else
    fail plan_cpu_peak_mfu_formula "$out"
fi
s_fast=$(plan "$tmp/fast.links" 1,4,1,2 2>/dev/null | g step_s)
s_slow=$(plan "$tmp/slow.links" 1,4,1,2 2>/dev/null | g step_s)
d_fast=$(plan "$tmp/fast.links" 1,1,1,8 2>/dev/null | g compute_s)
d_slow=$(plan "$tmp/slow.links" 1,1,1,8 2>/dev/null | g compute_s)
if [ -n "$s_fast" ] && [ -n "$s_slow" ] && awk -v a="$s_fast" -v b="$s_slow" 'BEGIN { exit !(b > 2 * a) }' \
   && [ -n "$d_fast" ] && [ "$d_fast" = "$d_slow" ]; then
    pass plan_cpu_slow_links_cost_cp
else
    fail plan_cpu_slow_links_cost_cp "CP4xDP2 step $s_fast -> $s_slow; DP8 compute $d_fast -> $d_slow"
fi
msg=$(build/herd plan --conf "$tmp/topology.conf" --model tiny --seq 128 --batch-tokens 4096 --peak-tflops 0 \
    --layout 1,1,1,8 2>&1); rc=$?
if [ "$rc" -eq 2 ] && echo "$msg" | grep -q -- "--peak-tflops '0'"; then pass plan_cpu_zero_peak_refused
else fail plan_cpu_zero_peak_refused "rc $rc: $msg"; fi

if command -v mpicc >/dev/null && mpicc -O2 -o "$tmp/pingpong" benchmarks/mpi/pingpong.c 2>"$tmp/cc.err"; then
    out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
        OMPI_MCA_btl=self,tcp OMPI_MCA_mpi_preconnect_mpi=1 timeout 60 mpirun -np 2 "$tmp/pingpong" 2>&1)
    if echo "$out" | awk '/^pingpong:/ && $3 > 0 && $5 > 0 { ok = 1 } END { exit !ok }'; then
        pass layouts_pingpong_measures
    else
        fail layouts_pingpong_measures "$out"
    fi
    out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
        OMPI_MCA_btl=self,tcp OMPI_MCA_mpi_preconnect_mpi=1 timeout 60 mpirun -np 3 "$tmp/pingpong" 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && echo "$out" | grep -q "needs an even number of ranks, got 3"; then
        pass layouts_pingpong_odd_refused
    else
        fail layouts_pingpong_odd_refused "rc $rc: $out"
    fi
else
    fail layouts_pingpong_measures "mpicc: $(cat "$tmp/cc.err" 2>/dev/null)"
fi
exit $((fails > 0))
