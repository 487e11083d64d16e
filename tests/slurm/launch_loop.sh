#!/bin/sh
# launch_loop.sh — how often does an MPI launch on the local cluster fail?
# Not in `make test` (minutes): run it by hand after changing the cluster's
# environment or transport.
#
#   sh tests/slurm/launch_loop.sh [LAUNCHES]        (default 200)
#
# Starts a private 4-node cluster (slurm/local/cluster.sh, free ports, its own
# HERD_SLURM_DIR), then launches `srun --mpi=pmix -N4 -n8` LAUNCHES times in a
# row, alternating tests/slurm/mpi_probe.c (an allreduce and a gather over every
# rank) and `build/herd topo` (the launch that failed in CI). A launch fails when
# srun exits non-zero, runs past 60 s, or prints the wrong result. While it
# runs, LOAD busy loops (default 2, one per core of this machine) compete for
# the CPUs; they are started and ended by PID.
#
# Prints one line per failure and at the end: launches, failures, seconds per
# launch, the load average; the first failure's full output is kept and printed.
# Exit 0 when no launch failed.
#
#   LOAD=N            busy loops while launching (0: none)
#   LAUNCH_ONLY=probe|topo   only one of the two programs
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
n=${1:-200}
load=${LOAD:-2}
only=${LAUNCH_ONLY:-}
case "$n$load" in *[!0-9]*) echo "launch_loop.sh: LAUNCHES ($n) and LOAD ($load) must be numbers" >&2; exit 2 ;; esac
[ -x build/herd ] || { echo "launch_loop.sh: build/herd not built (make build/herd)" >&2; exit 2; }

export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-loop.XXXXXX)
tmp=$(mktemp -d /tmp/herd-launch-loop.XXXXXX)
busy=""
cleanup() {
    [ -n "$busy" ] && kill $busy 2>/dev/null
    sh slurm/local/cluster.sh stop >/dev/null 2>&1
    rm -rf "$HERD_SLURM_DIR"
    # the failures' logs stay (their paths were printed)
    [ "${fails:-0}" -eq 0 ] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_up 4 || { echo "launch_loop.sh: cannot start the cluster: $why" >&2; exit 1; }
mpicc -O2 -o "$tmp/mpi_probe" tests/slurm/mpi_probe.c || exit 1

i=0
while [ "$i" -lt "$load" ]; do
    nice -n 0 sh -c 'while :; do :; done' &
    busy="$busy $!"
    i=$((i + 1))
done

launch() { # launch I: one srun, its output in $tmp/launch.I; 0 when it did what it should
    if [ "$only" = topo ] || { [ "$only" != probe ] && [ $(($1 % 2)) -eq 0 ]; }; then
        prog=topo
        timeout 60 srun --mpi=pmix -N4 -n8 build/herd topo >"$tmp/launch.$1" 2>&1 || return 1
        grep -q leaf2 "$tmp/launch.$1" && grep -q spine "$tmp/launch.$1" && grep -q node4 "$tmp/launch.$1"
    else
        prog=probe
        timeout 60 srun --mpi=pmix -N4 -n8 "$tmp/mpi_probe" >"$tmp/launch.$1" 2>&1 || return 1
        grep -q '^probe: size 8 sum 36 nodes 4$' "$tmp/launch.$1"
    fi
}

fails=0; first=""; i=1
t0=$(date +%s.%N)
while [ "$i" -le "$n" ]; do
    if launch "$i"; then
        rm -f "$tmp/launch.$i"
    else
        fails=$((fails + 1))
        echo "launch $i ($prog): FAILED: $(grep -v '^ ' "$tmp/launch.$i" | tail -n 3 | tr '\n' ' ')"
        [ -z "$first" ] && first="$tmp/launch.$i"
    fi
    i=$((i + 1))
done
t1=$(date +%s.%N)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
echo "launches $n, failures $fails, $(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / n}') s per launch, busy loops $load, load average $loadavg ($(nproc) cores)"
if [ -n "$first" ]; then
    echo "first failure ($first):"
    sed 's/^/  /' "$first"
fi
[ "$fails" -eq 0 ]
