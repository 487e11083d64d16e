#!/bin/sh
# herd plan's shape-aware compute and its validation (docs/topology.md):
# a calibration table changes the predicted compute by the measured/roofline
# ratio of the nearest shape; a table from benchmarks/bench_shapes (the CPU
# backend) is read; bad tables are refused naming file, line and field; the
# schedule and sharding flags move what they should; and the validation rows
# (benchmarks/plan_validate.sh) keep their error bounds: Table 4 within 3
# points, >= 10 rows within 15%, the fully sharded memory of torchtitan's
# Llama 3.1 8B FSDP run within 15% of its 82.4 GiB.
set -u
cd "$(dirname "$0")/../.."
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
[ -x build/herd ] || { echo "SKIP plan_calibrate: build/herd not built"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
F=tests/fixtures/topology
g() { sed -n "s/.*\"$1\": \([0-9.eE+-]*\).*/\1/p" | head -1; }
plan() { build/herd plan --conf $F/llama3.conf --links $F/llama3.links --model 8b --seq 8192 \
    --batch-tokens 262144 --layout 8,1,1,1 --json "$@"; }

# every GEMM of the step measured at 1 ms (about 10x the H100 roofline of these
# shapes, 0.1 ms or less): the GEMM part of compute grows by the ratio of its
# nearest point; attention (not in the table) stays
base=$(plan 2>&1 | g compute_s)
cat >"$tmp/slow.txt" <<'EOF'
# a hand-made table: one point per GEMM kind of 8B at TP 8, 8192 tokens
gemm 8192 768 4096 0.001
gemm 8192 4096 512 0.001
gemm 8192 1792 4096 0.001
gemm 8192 4096 1792 0.001
EOF
slow=$(plan --calibrate "$tmp/slow.txt" 2>&1 | g compute_s)
if [ -n "$base" ] && [ -n "$slow" ] && awk -v a="$base" -v b="$slow" 'BEGIN { exit !(b > 1.5 * a) }'; then
    pass plan_calibrate_changes_prediction
else
    fail plan_calibrate_changes_prediction "compute $base s without the table, $slow s with it"
fi
# a table at the roofline itself changes nothing (the ratio is 1)
out=$(build/herd plan --conf $F/llama3.conf --links $F/llama3.links --model 8b --seq 8192 --batch-tokens 262144 \
    --layout 8,1,1,1 2>&1 | grep -c "by shape on h100")
[ "$out" = 1 ] && pass plan_shape_mode_default || fail plan_shape_mode_default "no 'by shape on h100' line"

# the CPU backend's own table (tiny model) read back, and it moves the tiny model's compute
if [ -x build/benchmarks/bench_shapes ] && nice -n 10 build/benchmarks/bench_shapes --reps 3 >"$tmp/cpu.txt" 2>"$tmp/cpu.err" &&
    [ "$(grep -c '^gemm ' "$tmp/cpu.txt")" = 15 ] && [ "$(grep -c '^attn ' "$tmp/cpu.txt")" = 1 ]; then
    t0=$(build/herd plan --conf $F/llama3.conf --model tiny --seq 128 --batch-tokens 4096 --layout 1,1,1,8 --json | g compute_s)
    t1=$(build/herd plan --conf $F/llama3.conf --model tiny --seq 128 --batch-tokens 4096 --layout 1,1,1,8 \
        --calibrate "$tmp/cpu.txt" --json | g compute_s)
    if [ -n "$t0" ] && [ -n "$t1" ] && awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b > 2 * a) }'; then
        pass plan_calibrate_cpu_table
    else
        fail plan_calibrate_cpu_table "tiny compute $t0 s (H100 roofline) vs $t1 s (CPU table): $(head -3 "$tmp/cpu.txt")"
    fi
else
    fail plan_calibrate_cpu_table "bench_shapes: $(cat "$tmp/cpu.err") $(head -3 "$tmp/cpu.txt" 2>/dev/null)"
fi

printf 'gemm 8192 768\n' >"$tmp/bad.txt"
msg=$(plan --calibrate "$tmp/bad.txt" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "bad.txt:1: gemm: expected M N K SECONDS"; then pass plan_calibrate_bad_line
else fail plan_calibrate_bad_line "rc $rc: $msg"; fi
msg=$(plan --calibrate "$tmp/none.txt" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "none.txt: cannot open"; then pass plan_calibrate_missing
else fail plan_calibrate_missing "rc $rc: $msg"; fi
msg=$(plan --schedule zigzag 2>&1); rc=$?
if [ "$rc" -eq 2 ] && echo "$msg" | grep -q -- "--schedule 'zigzag'"; then pass plan_schedule_refused
else fail plan_schedule_refused "rc $rc: $msg"; fi

msg=$(plan --shape 32,4096,30,8,14336,128256 2>&1); rc=$?
if [ "$rc" -eq 2 ] && echo "$msg" | grep -q -- "--shape '32,4096,30,8,14336,128256'"; then pass plan_shape_refused
else fail plan_shape_refused "rc $rc: $msg"; fi
msg=$(plan --sharding zero3 2>&1); rc=$?
if [ "$rc" -eq 2 ] && echo "$msg" | grep -q -- "--sharding 'zero3': expected zero2 or full"; then pass plan_sharding_refused
else fail plan_sharding_refused "rc $rc: $msg"; fi

# interleaving: fewer bubbles, more hops; fully sharded: less memory, more traffic
p405() { build/herd plan --conf $F/llama3.conf --links $F/llama3.links --layout 8,1,16,64 --json "$@"; }
s1=$(p405 --schedule 1f1b | g bubble_s); s8=$(p405 --schedule interleaved:8 | g bubble_s)
m2=$(p405 --sharding zero2 | g mem_static_GB); mf=$(p405 --sharding full | g mem_static_GB)
d2=$(p405 --sharding zero2 | g dp_s)
if awk -v a="$s1" -v b="$s8" -v m2="$m2" -v mf="$mf" -v d="$d2" 'BEGIN { exit !(b < a / 4 && mf < m2 / 3 && d > 0) }'; then
    pass plan_schedule_and_sharding
else
    fail plan_schedule_and_sharding "bubble 1f1b $s1 vs V=8 $s8; static GB zero2 $m2 vs full $mf"
fi

# the oversubscribed mode: every message waits; TP 4 x CP 2 sends hundreds of
# messages a step, DP 8 fourteen: the first slows far more
printf 'SwitchName=leaf1 Nodes=node[1-2]\nSwitchName=leaf2 Nodes=node[3-4]\nSwitchName=spine Switches=leaf1,leaf2\n' >"$tmp/cpu.conf"
tiny() { build/herd plan --conf "$tmp/cpu.conf" --gpus-per-node 2 --model tiny --seq 128 --batch-tokens 4096 \
    --peak-tflops 0.025 --compute-eff 0.4 --layout "$1" --oversub-hop-us "$2" --json | g step_s; }
a0=$(tiny 4,2,1,1 0) a1=$(tiny 4,2,1,1 1000) b0=$(tiny 1,1,1,8 0) b1=$(tiny 1,1,1,8 1000)
if awk -v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" 'BEGIN { exit !(a1 - a0 > 20 * (b1 - b0) && b1 - b0 > 0.01) }'; then
    pass plan_oversubscribed_mode
else
    fail plan_oversubscribed_mode "TP4xCP2 $a0 -> $a1 s, DP8 $b0 -> $b1 s"
fi

# validation: the bounds the docs state
sh benchmarks/plan_validate.sh >"$tmp/val.md" 2>&1
if awk -F'|' '$2 ~ /fit/ { split($10, e, " "); if (e[1] > 3 || e[1] < -3) bad = 1; n++ }
              END { exit !(n == 3 && !bad) }' "$tmp/val.md"; then
    pass plan_validate_table4
else
    fail plan_validate_table4 "$(grep fit "$tmp/val.md")"
fi
if awk '/^within15/ { exit !($2 >= 10) } END { }' "$tmp/val.md" && grep -q '^within15' "$tmp/val.md"; then
    pass plan_validate_within15
else
    fail plan_validate_within15 "$(cat "$tmp/val.md")"
fi
if awk '/^interleaved_gain/ { split($0, w, "error "); split(w[2], x, "%");
        ok = x[1] <= 10 && x[1] >= -10; seen = 1 } END { exit !(seen && ok) }' "$tmp/val.md"; then
    pass plan_validate_interleaved_gain
else
    fail plan_validate_interleaved_gain "$(grep interleaved_gain "$tmp/val.md")"
fi
mem=$(build/herd plan --conf $F/llama3.conf --links $F/llama3.links --shape 32,4096,32,8,14336,128256 --seq 8192 \
    --batch-tokens 131072 --layout 1,1,1,8 --sharding full --recompute selective --micro-batch 2 --hbm 96 --json | g mem_GB)
# torchtitan Table 1: 82.4 GiB = 88.48 GB
if [ -n "$mem" ] && awk -v m="$mem" 'BEGIN { e = m / 88.48 - 1; exit !(e < 0.15 && e > -0.15) }'; then
    pass plan_fsdp_memory_torchtitan
else
    fail plan_fsdp_memory_torchtitan "predicted $mem GB vs 88.48 GB measured"
fi
[ "$fails" -eq 0 ]
