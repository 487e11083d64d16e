#!/bin/sh
# herd check, the preflight (docs/slurm.md "Preflight: herd check"): bad input
# is refused with the file or flag named; one rank writes its three files; on
# the local Slurm cluster (4 nodes, 8 ranks, TP2 x DP4) a node slowed on
# purpose (tests/slurm/throttle.sh: its ranks stopped 98% of the time) is the
# one line of slow_nodes, and the measured links file changes the ordering of
# `herd plan --rank` against the default links. Skips the cluster part (with
# the reason) only where Slurm cannot start on this machine.
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
[ -x build/herd ] || { skip check "build/herd not built"; exit 0; }
tmp=$(mktemp -d)
export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-test.XXXXXX)
cleanup() {
    sh slurm/local/cluster.sh stop >/dev/null 2>&1
    rm -rf "$tmp" "$HERD_SLURM_DIR"
}
trap cleanup EXIT INT TERM
cat >"$tmp/cfg.yaml" <<YAML
model: {preset: tiny}
batch:
  micro_batch: 2
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
train: {threads: 1, out_dir: $tmp/out}
data: {path: $tmp/unused.bin}
YAML

# ---- bad input, one rank ----
msg=$(build/herd check "$tmp/missing.yaml" --out "$tmp/o" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "$tmp/missing.yaml" && [ ! -e "$tmp/o" ]; then pass check_missing_config
else fail check_missing_config "rc $rc: $msg"; fi
msg=$(build/herd check "$tmp/cfg.yaml" --factor 0.5 2>&1); rc=$?
if [ "$rc" -eq 2 ] && echo "$msg" | grep -q -- "--factor '0.5'"; then pass check_bad_factor
else fail check_bad_factor "rc $rc: $msg"; fi
msg=$(build/herd check "$tmp/cfg.yaml" --out "$tmp/o" --set parallel.tp=2 2>&1); rc=$?
if [ "$rc" -eq 1 ] && echo "$msg" | grep -q "parallel.tp" && [ ! -e "$tmp/o" ]; then pass check_layout_does_not_fit
else fail check_layout_does_not_fit "rc $rc: $msg"; fi
: >"$tmp/afile"
msg=$(build/herd check "$tmp/cfg.yaml" --out "$tmp/afile/o" 2>&1); rc=$?
if [ "$rc" -eq 1 ] && echo "$msg" | grep -q "$tmp/afile"; then pass check_unwritable_out
else fail check_unwritable_out "rc $rc: $msg"; fi
printf 'leaf bandwidth=fast\n' >"$tmp/bad.links"
msg=$(build/herd check "$tmp/cfg.yaml" --out "$tmp/o" --set parallel.links="$tmp/bad.links" 2>&1); rc=$?
if [ "$rc" -eq 1 ] && echo "$msg" | grep -q "$tmp/bad.links:1: bandwidth: 'fast'"; then pass check_bad_links_key
else fail check_bad_links_key "rc $rc: $msg"; fi

# ---- one rank: the files ----
out=$(build/herd check "$tmp/cfg.yaml" --out "$tmp/one" --reps 3 2>&1); rc=$?
if [ "$rc" -eq 0 ] && [ -f "$tmp/one/slow_nodes" ] && [ ! -s "$tmp/one/slow_nodes" ] && [ -f "$tmp/one/links" ] \
   && /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["world_size"] == 1 and d["slow_nodes"] == []' \
      "$tmp/one/check.json"; then pass check_one_rank_files
else fail check_one_rank_files "rc $rc: $out"; fi

# ---- the local cluster: node3 slowed on purpose ----
if ! cluster_up 4; then skip check_cluster "Slurm cannot start here: $why"; exit "$([ "$fails" -eq 0 ] && echo 0 || echo 1)"; fi
# ranks waiting in MPI give their core away (8 ranks share this machine's cores)
export OMPI_MCA_mpi_yield_when_idle=1
out=$(timeout 120 srun --mpi=pmix -N4 -n8 sh tests/slurm/throttle.sh node3 0.002 0.098 \
      build/herd check "$tmp/cfg.yaml" --out "$tmp/slow" --set parallel.tp=2 2>&1); rc=$?
if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/slow/slow_nodes")" = node3 ]; then pass check_names_slowed_node
else fail check_names_slowed_node "rc $rc, slow_nodes '$(cat "$tmp/slow/slow_nodes" 2>&1)': $out"; fi
if grep -q '^1 bandwidth=' "$tmp/slow/links" && grep -q '^2 bandwidth=' "$tmp/slow/links" \
   && grep -q '^3 bandwidth=' "$tmp/slow/links"; then pass check_links_every_height
else fail check_links_every_height "$(cat "$tmp/slow/links" 2>&1)"; fi

# herd plan --rank on this cluster's tree: default links against the measured ones
plan() {
    build/herd plan --conf "$HERD_SLURM_DIR/etc/topology.conf" --rank --gpus 32 --gpus-per-node 8 --model 8b \
        --batch-tokens 1048576 --top 100 --json "$@"
}
plan >"$tmp/default.json" 2>"$tmp/plan.err" && plan --links "$tmp/slow/links" >"$tmp/measured.json" 2>>"$tmp/plan.err"
rc=$?
if [ "$rc" -eq 0 ] && msg=$(/usr/bin/python3 - "$tmp/default.json" "$tmp/measured.json" <<'PY'
import json, sys
d, m = (json.load(open(p))["results"] for p in sys.argv[1:3])
key = lambda r: (r["tp"], r["cp"], r["pp"], r["dp"])
order_d, order_m = [key(r) for r in d], [key(r) for r in m]
assert sorted(order_d) == sorted(order_m), "not the same layouts"
assert order_d != order_m, "the same ordering"
# slower measured links: the best layout is predicted slower, and the new best
# is the one that exposes less communication over them than the old best
best_d, best_m = d[0]["mfu"], m[0]["mfu"]
assert best_m < best_d, f"best MFU {best_m} measured vs {best_d} default"
comm = lambda r: r["tp_s"] + r["cp_s"] + r["pp_s"] + r["dp_s"]
old_best = next(r for r in m if key(r) == order_d[0])
if order_m[0] != order_d[0]:
    assert comm(m[0]) < comm(old_best), f"communication {comm(m[0])} vs {comm(old_best)} s"
print(f"best {order_d[0]} -> {order_m[0]}, MFU {best_d:.3f} -> {best_m:.3f}, "
      f"exposed communication {comm(old_best):.2f} -> {comm(m[0]):.2f} s")
PY
); then pass "check_links_change_plan_ordering ($msg)"
else fail check_links_change_plan_ordering "rc $rc: $msg $(cat "$tmp/plan.err")"; fi
[ "$fails" -eq 0 ]
