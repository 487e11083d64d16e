#!/bin/sh
# make bench-layouts: MFU of EVERY valid TP x CP x PP x DP layout of 8 ranks for
# the tiny model (benchmarks/layouts.yaml), measured on the local Slurm cluster
# (4 emulated nodes, srun --mpi=pmix) beside `herd plan`'s prediction for the
# same model, cluster and layouts; the Spearman rank correlation of the two MFU
# columns; a plot of measured against predicted MFU.
#
#   sh benchmarks/layouts.sh [STEPS]        (default 6 steps per layout)
#
# Steps of the method (docs/monitoring.md, "MFU per layout"):
# 1. peak: this CPU's fp32 sgemm rate (herd train's own measurement, one rank
#    alone on a core) x cores / ranks: what one of 8 ranks gets of 2 cores. It is
#    monitor.peak_tflops of every run and --peak-tflops of `herd plan`.
# 2. links: an MPI ping-pong between ranks on node1 and node3 (different leaf
#    switches), 4 pairs at once as 8 ranks load 2 cores, gives latency and
#    bandwidth (benchmarks/mpi/pingpong.c); every height gets it, because every
#    emulated node is this one host (Open MPI over UCX: TCP on loopback between
#    emulated nodes, shared memory inside one; slurm/local/cluster.sh env).
# 3. layouts: every tp, cp, pp, dp with product 8 that `herd config` accepts
#    (the trainer's own rules: heads, KV heads, ffn, vocab, layers, 2*cp | seq,
#    dp * micro_batch | sequences, micro-batches >= pp).
# 4. measured: the mean over steps 2..STEPS of metrics.jsonl (step 1 pays for
#    first touches of memory and the first connections).
# 5. predicted: herd plan --json with the cluster's topology.conf, the links
#    file, 2 ranks per node, --compute-eff = the DP-only layout's measured MFU
#    without its communication, and (more ranks than cores) the oversubscribed
#    mode: --oversub-hop-us = that layout's DP communication per ring step.
# Results: build/bench/layouts.txt (the table), build/bench/layouts.png,
# JSON lines appended to build/bench/results.jsonl.
# Without Slurm (not root, no slurmctld) it falls back to mpirun and says so.
set -eu
cd "$(dirname "$0")/.."
steps=${1:-6}
np=8
herd=$PWD/build/herd
[ -x "$herd" ] || { echo "layouts.sh: build/herd is not built (run make)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "layouts.sh: gnuplot not installed (scripts/deps.sh)" >&2; exit 1; }
mkdir -p build/bench
bench=build/bench
tmp=$(mktemp -d)
export HERD_SLURM_DIR="$tmp/slurm"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# more ranks than cores: waiting ranks yield instead of spinning on a core
export OMPI_MCA_mpi_yield_when_idle=1
slurm=0
cleanup() {
    [ "$slurm" = 1 ] && sh slurm/local/cluster.sh stop >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# ---- the model and data ----
"$herd" data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1 ||
    { echo "layouts.sh: herd data prepare failed" >&2; exit 1; }
cfg=$tmp/cfg.yaml
sed -e "s|@STEPS@|$steps|" -e "s|@DATA@|$tmp/train.bin|" benchmarks/layouts.yaml >"$cfg"
seq_len=$(sed -n 's/.*seq_len: *\([0-9]*\).*/\1/p' benchmarks/layouts.yaml | head -1)
batch=$(sed -n 's/.*batch_tokens: *\([0-9]*\).*/\1/p' benchmarks/layouts.yaml | head -1)
mb=$(sed -n 's/^ *micro_batch: *\([0-9]*\).*/\1/p' benchmarks/layouts.yaml | head -1)

# ---- 1. peak: herd train's sgemm measurement on one rank ----
# best of 3: on a machine shared with other work a slow measurement is load, not the core
: >"$tmp/peaks"
for i in 1 2 3; do
    "$herd" train "$cfg" --set train.max_steps=1 --set monitor.peak_tflops=0 --set train.out_dir="$tmp/peak" \
        >"$tmp/peak.log" 2>&1 || { echo "layouts.sh: one-rank run failed: $(tail -3 "$tmp/peak.log")" >&2; exit 1; }
    grep -o 'peak [0-9.]* TFLOP/s' "$tmp/peak.log" | head -1 | awk '{print $2}' >>"$tmp/peaks"
done
core_peak=$(sort -g "$tmp/peaks" | tail -1)
[ -n "$core_peak" ] || { echo "layouts.sh: no peak in the one-rank log: $(head -5 "$tmp/peak.log")" >&2; exit 1; }
cores=$(nproc)
peak=$(awk -v p="$core_peak" -v c="$cores" -v n="$np" 'BEGIN { printf "%.6f", p * (c < n ? c : n) / n }')
echo "peak: fp32 sgemm $core_peak TFLOP/s per core (herd train's measurement) x $cores cores / $np ranks = $peak TFLOP/s per rank"

# ---- the cluster (or mpirun) ----
. tests/slurm/lib.sh
if cluster_up 4; then
    slurm=1
    conf=$HERD_SLURM_DIR/etc/topology.conf
    launch() { timeout 120 srun --mpi=pmix -N4 -n"$np" "$@"; }
    echo "launcher: srun --mpi=pmix -N4 -n$np on the local Slurm cluster ($HERD_SLURM_DIR, 4 nodes, 2 leaf switches)"
else
    echo "NOTE: Slurm cannot start here ($why): falling back to mpirun -np $np on this host;"
    echo "      herd plan still uses a 4-node, 2-leaf topology.conf like the local cluster's."
    conf=$tmp/topology.conf
    printf 'SwitchName=leaf1 Nodes=node[1-2]\nSwitchName=leaf2 Nodes=node[3-4]\nSwitchName=spine Switches=leaf1,leaf2\n' >"$conf"
    launch() { timeout 120 mpirun -np "$np" "$@"; }
    export OMPI_MCA_btl=self,tcp OMPI_MCA_pml=ob1 OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_mpi_preconnect_mpi=1
fi

# ---- 2. links: ping-pong between emulated nodes under different leaves ----
# once with one pair alone (node1 <-> node3), once with 8 ranks as 4 pairs at
# once (rank r <-> r + 4: node1 <-> node3, node2 <-> node4), the way the 8 ranks
# of a layout load the 2 cores; the links file gets the loaded numbers
mpicc -O2 -o "$tmp/pingpong" benchmarks/mpi/pingpong.c || { echo "layouts.sh: mpicc failed" >&2; exit 1; }
if [ "$slurm" = 1 ]; then
    pp1=$(timeout 60 srun --mpi=pmix -N2 -n2 -w node1,node3 "$tmp/pingpong" 2>&1) || true
    pp8=$(launch "$tmp/pingpong" 2>&1) || true
else
    pp1=$(timeout 60 mpirun -np 2 "$tmp/pingpong" 2>&1) || true
    pp8=$(launch "$tmp/pingpong" 2>&1) || true
fi
for p in "$pp1" "$pp8"; do
    echo "$p" | grep -q '^pingpong:' || { echo "layouts.sh: ping-pong failed: $p" >&2; exit 1; }
done
echo "ping-pong, one pair alone: $(echo "$pp1" | grep '^pingpong:')"
echo "ping-pong, 4 pairs at once: $(echo "$pp8" | grep '^pingpong:')  (used for herd plan)"
lat=$(echo "$pp8" | awk '/^pingpong:/ {print $3}')
bw=$(echo "$pp8" | awk '/^pingpong:/ {print $5}')
links=$bench/layouts.links
{
    echo "# this machine's links for herd plan, measured by benchmarks/layouts.sh: MPI ping-pong"
    echo "# node1 <-> node3 with 4 pairs at once (8 ranks on the cores), over TCP loopback;"
    echo "# every height is the same loopback. One pair alone: $(echo "$pp1" | grep '^pingpong:' | cut -d' ' -f2-5)"
    for h in 1 2 3; do echo "$h bandwidth=$bw latency=$lat"; done
} >"$links"

# ---- 3. every valid layout ----
layouts=""
for tp in 1 2 4 8; do for cp in 1 2 4 8; do for pp in 1 2 4 8; do
    inner=$((tp * cp * pp))
    [ $((np % inner)) -eq 0 ] || continue
    dp=$((np / inner))
    if "$herd" config "$cfg" --set parallel.tp=$tp --set parallel.cp=$cp --set parallel.pp=$pp \
        --set parallel.dp=$dp >/dev/null 2>"$tmp/why"; then
        layouts="$layouts $tp,$cp,$pp,$dp"
    else
        echo "invalid: tp $tp cp $cp pp $pp dp $dp: $(head -1 "$tmp/why")"
    fi
done; done; done
echo "valid layouts of $np ranks:$layouts"

# ---- 4. measured ----
# mean of a field over steps 2.. of a metrics.jsonl ("key":number)
field_mean() {
    awk -v k="\"$2\":" 'index($0, "\"loss\"") {
        n++; if (n < 2) next
        i = index($0, k); if (!i) next
        s += substr($0, i + length(k)) + 0; m++
    } END { printf "%.6f", m ? s / m : 0 }' "$1"
}
: >"$tmp/rows"
for l in $layouts; do
    set -- $(echo "$l" | tr , ' ')
    d=$tmp/run_$1_$2_$3_$4
    ok=0
    for try in 1 2; do # a second try when a launch fails (its log is kept in build/bench)
        if launch "$herd" train "$cfg" --set parallel.tp=$1 --set parallel.cp=$2 --set parallel.pp=$3 \
            --set parallel.dp=$4 --set monitor.peak_tflops="$peak" --set train.out_dir="$d" >"$d.log" 2>&1; then
            ok=1; break
        fi
        cp "$d.log" "$bench/layouts_failed_${l}_try$try.log"
        echo "layout $l: try $try failed (log: $bench/layouts_failed_${l}_try$try.log): $(tail -2 "$d.log" | tr '\n' ' ')"
        rm -rf "$d"
    done
    [ "$ok" = 1 ] || continue
    m=$d/metrics.jsonl
    echo "$l $(for k in tokens_per_second mfu step_seconds compute_s comm_tp_s comm_cp_s comm_pp_s comm_dp_s bubble_s data_s; do
        printf '%s ' "$(field_mean "$m" $k)"; done)" >>"$tmp/rows"
    echo "measured $l: $(tail -1 "$tmp/rows" | cut -d' ' -f2-4) (tokens/s, MFU, step s)"
done
[ -s "$tmp/rows" ] || { echo "layouts.sh: no layout ran" >&2; exit 1; }

# ---- 5. predicted ----
# One layout calibrates two numbers for all: the DP-only layout (no model
# parallelism). compute_eff: its MFU without its communication (MFU x step /
# (step - comm_dp)), in [0.01, 1]. The oversubscribed mode (8 ranks on fewer
# cores, docs/topology.md): each message of a step waits for a descheduled
# peer; hop_us = its measured DP communication over its 2 (DP-1) ring steps.
# Without that layout: 0.5 and the mode off.
set -- $(awk -v n="$np" '$1 == "1,1,1," n { st = $4; c = $9; if (st > c && st > 0) e = $3 * st / (st - c); h = c / (2 * (n - 1)) * 1e6 }
    END { if (e == "") { e = 0.5; h = 0 } if (e < 0.01) e = 0.01; if (e > 1) e = 1; printf "%.4f %.1f", e, h }' "$tmp/rows")
eff=$1 hop_us=$2
[ "$cores" -ge "$np" ] && hop_us=0 # ranks have a core each: no waits for the scheduler
echo "compute_eff $eff, oversubscribed hop $hop_us us (from layout 1,1,1,$np; $np ranks on $cores cores)"
: >"$tmp/pred"
while read -r l rest; do
    "$herd" plan --conf "$conf" --links "$links" --gpus-per-node 2 --model tiny --seq "$seq_len" \
        --batch-tokens "$batch" --micro-batch "$mb" --peak-tflops "$peak" --compute-eff "$eff" --oversub-hop-us "$hop_us" --layout "$l" --json \
        >"$tmp/plan.json" 2>"$tmp/plan.err" || { echo "herd plan $l failed: $(cat "$tmp/plan.err")" >&2; exit 1; }
    g() { sed -n "s/.*\"$1\": \([0-9.eE+-]*\).*/\1/p" "$tmp/plan.json" | head -1; }
    echo "$l $(g mfu) $(g step_s) $(g compute_s) $(g bubble_s) $(g tp_s) $(g cp_s) $(g pp_s) $(g dp_s)" >>"$tmp/pred"
done <"$tmp/rows"

# ---- the table, the correlation, the JSON lines, the plot ----
sort -k1,1 "$tmp/rows" >"$tmp/r1"; sort -k1,1 "$tmp/pred" >"$tmp/p1"
join "$tmp/r1" "$tmp/p1" >"$tmp/all"
# columns: 1 layout | 2 tok/s 3 mfu 4 step 5 compute 6 tp 7 cp 8 pp 9 dp 10 bubble 11 data
#          | 12 pred mfu 13 pred step 14 comp 15 bubble 16 tp 17 cp 18 pp 19 dp
# Spearman's rho: Pearson's r of the ranks (ties get their mean rank)
ranks() { # ranks COLUMN: "layout rank" sorted by layout
    sort -g -k"$1","$1" "$tmp/all" | awk -v c="$1" '{ v[NR] = $c; l[NR] = $1 } END {
        i = 1
        while (i <= NR) { j = i; while (j < NR && v[j + 1] == v[i]) j++
            for (k = i; k <= j; k++) print l[k], (i + j) / 2; i = j + 1 } }' | sort -k1,1
}
ranks 3 >"$tmp/rm"
ranks 12 >"$tmp/rp"
rho=$(join "$tmp/rm" "$tmp/rp" | awk '{ x[NR] = $2; y[NR] = $3; sx += $2; sy += $3 } END {
    mx = sx / NR; my = sy / NR
    for (i = 1; i <= NR; i++) { a += (x[i] - mx) * (y[i] - my); b += (x[i] - mx) ^ 2; c += (y[i] - my) ^ 2 }
    printf "%.3f", (b > 0 && c > 0) ? a / sqrt(b * c) : 0 }')
n=$(wc -l <"$tmp/all")
# rank of each layout by predicted MFU, as column 20
sort -g -r -k12,12 "$tmp/all" | awk '{ print $1, NR }' | sort -k1,1 >"$tmp/prank"
join "$tmp/all" "$tmp/prank" | sort -g -r -k3,3 | awk -v rho="$rho" -v n="$n" '
BEGIN {
    printf "%-11s %8s %6s %4s | %7s %7s %6s %6s %6s %6s %6s | %7s %4s | %7s %7s %6s %6s %6s %6s\n",
        "TP,CP,PP,DP", "tok/s", "MFU%", "rank", "step_s", "compute", "tp", "cp", "pp", "dp", "bubble",
        "predMFU", "rank", "p_step", "p_comp", "p_tp", "p_cp", "p_pp", "p_dp"
}
{
    printf "%-11s %8.0f %6.2f %4d | %7.4f %7.4f %6.4f %6.4f %6.4f %6.4f %6.4f | %7.2f %4d | %7.4f %7.4f %6.4f %6.4f %6.4f %6.4f\n",
        $1, $2, 100 * $3, NR, $4, $5, $6, $7, $8, $9, $10, 100 * $12, $20, $13, $14, $16, $17, $18, $19
}
END { printf "Spearman rank correlation of measured and predicted MFU over %d layouts: %s\n", n, rho }' >"$bench/layouts.txt"
echo
echo "== measured (srun, mean of steps 2..$steps, seconds per step) vs predicted (herd plan) =="
cat "$bench/layouts.txt"
launcher=mpirun
[ "$slurm" = 1 ] && launcher=srun-pmix
awk -v rho="$rho" -v peak="$peak" -v bw="$bw" -v lat="$lat" -v la="$launcher" '{
    split($1, g, ",")
    printf "{\"bench\": \"layouts\", \"model\": \"tiny\", \"ranks\": %d, \"launcher\": \"%s\", \"tp\": %s, \"cp\": %s, \"pp\": %s, \"dp\": %s, ",
        g[1] * g[2] * g[3] * g[4], la, g[1], g[2], g[3], g[4]
    printf "\"tokens_per_second\": %s, \"mfu\": %s, \"step_s\": %s, \"compute_s\": %s, \"comm_tp_s\": %s, \"comm_cp_s\": %s, \"comm_pp_s\": %s, \"comm_dp_s\": %s, \"bubble_s\": %s, \"data_s\": %s, ",
        $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
    printf "\"pred_mfu\": %s, \"pred_step_s\": %s, \"peak_tflops\": %s, \"link_GBps\": %s, \"link_latency_us\": %s, \"spearman\": %s}\n",
        $12, $13, peak, bw, lat, rho }' "$tmp/all" >>"$bench/results.jsonl"

awk '{ printf "%s %.4f %.4f\n", $1, 100 * $12, 100 * $3 }' "$tmp/all" >"$bench/layouts.dat"
gnuplot <<GP
set terminal pngcairo size 900,650 font "sans,10"
set output "$bench/layouts.png"
set title "tiny model, 8 ranks on 4 emulated Slurm nodes (2 cores): MFU per TP,CP,PP,DP layout\nSpearman rho = $rho"
set xlabel "predicted MFU % (herd plan)"
set ylabel "measured MFU % (herd train, steps 2..$steps)"
set grid
set key off
plot "$bench/layouts.dat" using 2:3 with points pt 7 ps 1.3, \
     "" using 2:3:1 with labels offset 0,0.8 font "sans,8"
GP
echo "plot: $bench/layouts.png; table: $bench/layouts.txt; JSON lines appended to $bench/results.jsonl"
