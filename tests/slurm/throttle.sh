#!/bin/sh
# throttle.sh NODE RUN_S STOP_S CMD [ARGS...] — a node slowed on purpose.
#
# On Slurm node NODE ($SLURMD_NODENAME) CMD runs, but is stopped for STOP_S
# seconds after every RUN_S seconds (SIGSTOP/SIGCONT, as cpulimit does): its
# processes get RUN_S / (RUN_S + STOP_S) of the time, a node whose cores are
# throttled or shared. This takes no CPU (a busy loop would take a core of
# this shared machine). On every other node CMD runs as is.
set -u
node=$1 run=$2 stop=$3
shift 3
[ "${SLURMD_NODENAME:-}" = "$node" ] || exec "$@"
"$@" &
pid=$!
while kill -STOP "$pid" 2>/dev/null; do
    sleep "$stop"
    kill -CONT "$pid" 2>/dev/null || break
    sleep "$run"
done
wait "$pid"
