#!/bin/sh
# (c) kill node3's slurmd and its ranks: the driver's probe finds node3 dead,
# excludes it and relaunches on the healthy nodes with a smaller DP (4 -> 2: the
# largest DP dividing 4 that 3 nodes hold); final parameters within 1e-5.
set -u; cd "$(dirname "$0")/../.."; . tests/fault/lib.sh
fault_setup fault_c_node_kill
submit HERD_MIN_NODES=2
wait_steps $((CKPT_EVERY + 3))
slurmd=$(cat "$HERD_SLURM_DIR/run/slurmd-node3.pid")
ranks=$(node_ranks "$JOB" node3)
[ -n "$ranks" ] || { fail "$NAME" "no rank found on node3"; exit 1; }
mark_fault; kill -KILL "$slurmd" $ranks
wait_training_again 240
if finish_and_compare 1e-5 && grep -q 'excluding failed nodes: node3' "$T/run/recovery.log" \
   && grep -q 'shrinking data parallelism from 4 to parallel.dp=2' "$T/run/recovery.log" && lost_ok; then
    pass "$NAME"
else
    fail "$NAME" "expected node3 excluded and DP shrunk"
fi
show_log
[ "$fails" -eq 0 ]
