#!/bin/sh
# Pipeline bubble per schedule: measured (1 - busy / span of the last step,
# averaged over the stages; herd train --print-schedule) beside the theory
# (PP-1)/(N*V+PP-1) and the simulation of the same op lists with backward =
# 2 x forward (src/parallel/pipeline.c).
#
#   sh benchmarks/pipeline_bubble.sh [PP]
#
# One thread per rank; PP ranks on this machine's cores (PP 2 on 2 cores is
# the honest case: PP 4 oversubscribes and a waiting rank's core is lent to a
# busy one, which the bubble then counts).
set -eu
cd "$(dirname "$0")/.."
pp=${1:-2}
herd=$PWD/build/herd
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/* >/dev/null 2>&1
printf '%-22s %4s %3s %9s %8s %9s %7s\n' schedule N V measured theory simulated peak
row() { # row N V
    n=$1; v=$2
    cat >"$tmp/cfg.yaml" <<YAML
model: {n_layers: 8, d_model: 256, n_heads: 8, n_kv_heads: 2, ffn_dim: 768, vocab_size: 512, max_seq_len: 256}
batch:
  micro_batch: 1
  ramp:
    - {after_tokens: 0, batch_tokens: $((n * 256)), seq_len: 256}
train: {max_steps: 3, log_every: 0, threads: 1}
monitor: {peak_tflops: 1}
parallel: {pp: $pp, virtual_stages: $v}
data: {path: $tmp/train.bin}
YAML
    if ! mpirun -np "$pp" "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/o" --print-schedule \
        >"$tmp/log" 2>&1; then
        echo "N $n V $v: failed: $(tail -3 "$tmp/log")"; return
    fi
    line=$(grep '^pipeline bubble:' "$tmp/log")
    meas=$(echo "$line" | sed 's/.*measured \([0-9.]*\),.*/\1/')
    theo=$(echo "$line" | sed 's/.*= \([0-9.]*\), simulated.*/\1/')
    sim=$(echo "$line" | sed 's/.*forward) \([0-9.-]*\).*/\1/')
    peak=$(sed -n 's/^pipeline peak activations per stage: //p' "$tmp/log" | tr ' ' ',')
    name="1F1B"; [ "$v" -gt 1 ] && name="interleaved"
    printf '%-22s %4d %3d %9s %8s %9s %7s\n' "$name PP$pp" "$n" "$v" "$meas" "$theo" "$sim" "$peak"
    printf '{"bench":"pipeline_bubble","pp":%d,"n_micro":%d,"v":%d,"measured":%s,"theory":%s,"simulated":%s}\n' \
        "$pp" "$n" "$v" "$meas" "$theo" "$sim" >&2
    if [ "${SHOW:-0}" = 1 ]; then grep '^stage ' "$tmp/log"; fi
}
for v in 1 2; do
    for n in $pp $((2 * pp)) $((4 * pp)) $((4 * pp + 1)); do row "$n" "$v"; done
done
