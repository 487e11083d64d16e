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
ok=1
finish_and_compare 1e-5 || ok=0
grep -q 'excluding failed nodes: node3' "$T/run/recovery.log" || { fail "$NAME" "node3 was not excluded"; ok=0; }
grep -q 'shrinking data parallelism from 4 to parallel.dp=2' "$T/run/recovery.log" || { fail "$NAME" "DP was not shrunk to 2"; ok=0; }
lost_ok || { fail "$NAME" "a restart lost more than $CKPT_EVERY steps (one checkpoint interval)"; ok=0; }
[ "$ok" = 1 ] && pass "$NAME"
show_log
[ "$fails" -eq 0 ]
