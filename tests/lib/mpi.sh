# tests/lib/mpi.sh — sourced by the multi-process tests (tests/mpi): the checks that make
# them skip with a reason, Open MPI's settings for root and for more ranks than
# cores, a temporary directory, and the PASS/FAIL lines that tests/run.sh counts.
#   NAME=... ; . "$(dirname "$0")/../lib/mpi.sh"
set -u
cd "$(dirname "$0")/../.."
herd=$PWD/build/herd
py=/usr/bin/python3
if [ ! -x "$herd" ]; then echo "SKIP $NAME: build/herd not built"; exit 0; fi
if ! command -v mpirun >/dev/null; then echo "SKIP $NAME: mpirun not found (scripts/deps.sh)"; exit 0; fi
if ! $py -c 'import numpy' 2>/dev/null; then echo "SKIP $NAME: python3-numpy missing"; exit 0; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# The small model of the equivalence tests (parallel.sh, overlap.sh):
# $tmp/train.bin from two license texts and $tmp/cfg.yaml with LAYERS layers
# and STEPS steps of 16 sequences of 32 tokens. 8 query heads over 2 KV heads
# (TP4 and TP8 replicate KV heads); 16 sequences so that DP8 x micro_batch 1
# divides the batch. Ends the test when the data cannot be prepared.
small_model() { # small_model LAYERS STEPS
    $herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 \
        /usr/share/common-licenses/Apache-2.0 >/dev/null 2>&1 || { fail prepare "data prepare"; exit 1; }
    cat >"$tmp/cfg.yaml" <<YAML
model: {n_layers: $1, d_model: 64, n_heads: 8, n_kv_heads: 2, ffn_dim: 128, vocab_size: 512, max_seq_len: 64}
batch:
  micro_batch: 1
  ramp:
    - {after_tokens: 0, batch_tokens: 512, seq_len: 32}
optim: {lr: 1.0e-3, min_lr: 1.0e-4}
schedule: {warmup_steps: 2, decay_steps: 10}
train: {max_steps: $2, log_every: 0, threads: 1}
data: {path: $tmp/train.bin}
YAML
}

run_small() { # run_small NAME NP [--set ...]: trains $tmp/cfg.yaml into $tmp/NAME, dumps $tmp/NAME.st
    name=$1; np=$2; shift 2
    timeout 120 mpirun -np "$np" "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/$name" \
        --dump-params "$tmp/$name.st" "$@" >"$tmp/$name.log" 2>&1
}
