#!/bin/sh
# Time per step split into compute and communication for each Parallelism I
# layout, 8 MPI ranks on this machine (CPU backend, one thread per rank).
#
#   sh benchmarks/parallel_layouts.sh [NP] [STEPS]
#
# Each layout trains the same model and batch (the one-process run is the
# reference row); the table averages steps 2..STEPS of metrics.jsonl (step 1
# pays for first touches of memory). "comm" is the time inside the group's
# calls, which on an oversubscribed CPU includes waiting for the slowest rank.
set -eu
cd "$(dirname "$0")/.."
np=${1:-8}
steps=${2:-6}
herd=$PWD/build/herd
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# more ranks than cores: waiting ranks yield instead of spinning on a core
export OMPI_MCA_mpi_yield_when_idle=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/* >/dev/null 2>&1
cat >"$tmp/cfg.yaml" <<YAML
model: {n_layers: 4, d_model: 256, n_heads: 8, n_kv_heads: 2, ffn_dim: 768, vocab_size: 512, max_seq_len: 256}
batch:
  micro_batch: 1
  ramp:
    - {after_tokens: 0, batch_tokens: 4096, seq_len: 256}
train: {max_steps: $steps, log_every: 0, threads: 1}
monitor: {peak_tflops: 1}
data: {path: $tmp/train.bin}
YAML
printf '%-16s %6s %10s %10s %10s %10s %10s %8s\n' layout ranks step_s compute_s comm_tp_s comm_dp_s data_s comm%
row() { # row NAME NP [--set ...]
    name=$1; n=$2; shift 2
    if ! mpirun -np "$n" "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/$name" "$@" \
        >"$tmp/$name.log" 2>&1; then
        echo "$name: failed: $(tail -3 "$tmp/$name.log")"; return
    fi
    /usr/bin/python3 - "$tmp/$name/metrics.jsonl" "$name" "$n" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l][1:]
avg = lambda k: sum(r.get(k, 0.0) for r in rows) / len(rows)
st, cp, tp, dp, da = (avg(k) for k in ("step_seconds", "compute_s", "comm_tp_s", "comm_dp_s", "data_s"))
print(f"{sys.argv[2]:<16} {sys.argv[3]:>6} {st:10.4f} {cp:10.4f} {tp:10.4f} {dp:10.4f} {da:10.4f} {100*(tp+dp)/st:7.1f}%")
print(json.dumps({"bench": "parallel_layout", "layout": sys.argv[2], "ranks": int(sys.argv[3]),
                  "step_s": st, "compute_s": cp, "comm_tp_s": tp, "comm_dp_s": dp}), file=sys.stderr)
PY
}
row "1 rank" 1
row "DP$np" "$np"
row "TP2xDP$((np / 2))" "$np" --set parallel.tp=2
row "TP4xDP$((np / 4))" "$np" --set parallel.tp=4
row "TP$np" "$np" --set parallel.tp="$np"
row "TP2+SPxDP$((np / 2))" "$np" --set parallel.tp=2 --set parallel.sequence_parallel=1
