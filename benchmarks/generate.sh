#!/bin/sh
# Generation throughput per layout: `herd generate` (greedy, KV cache) of the
# same prompts in one process (TP1), tensor-parallel on 2 ranks (TP2: each
# rank half the heads, ffn rows, vocabulary rows and KV cache; two
# all-reduces per layer and one all-gather of the logits per step) and
# data-parallel on 2 ranks (DP2: each replica half the prompts). The rate is
# the one herd generate prints (tokens generated / wall time of the decoding,
# load and encoding excluded); REPS runs each, the best kept.
#
#   sh benchmarks/generate.sh [PROMPTS] [MAX_NEW] [REPS]
#
# One thread per rank (OMP_NUM_THREADS=1): TP1 uses one core, TP2 and DP2
# two. The outputs of the three layouts are checked equal.
set -eu
cd "$(dirname "$0")/.."
n=${1:-32}; max_new=${2:-32}; reps=${3:-3}
herd=$PWD/build/herd
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$herd post demo-data --out "$tmp/d" --train 200 --test "$n" --pref 10 --prompts 10 >/dev/null
$herd data train-tokenizer --vocab-size 320 --out "$tmp/tok.ranks" "$tmp/d/corpus.txt" >/dev/null 2>&1
model="--set model.n_layers=4 --set model.d_model=256 --set model.n_heads=8 --set model.n_kv_heads=4 --set model.ffn_dim=768 --set model.max_seq_len=128"
gen="generate configs/post_demo.yaml --tokenizer $tmp/tok.ranks $model --prompts $tmp/d/test.jsonl --max-new $max_new --timing"
rate() { # rate NAME NP [ARGS]: best tokens/s of REPS runs
    name=$1; np=$2; shift 2
    best=0
    for r in $(seq "$reps"); do
        if [ "$np" -eq 1 ]; then $herd $gen "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
        else mpirun -np "$np" "$herd" $gen "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?; fi
        [ "${rc:-0}" -eq 0 ] || { cat "$tmp/$name.err" >&2; exit 1; }
        x=$(sed -n 's/.*: \([0-9.]*\) tokens\/s.*/\1/p' "$tmp/$name.err")
        best=$(echo "$best $x" | awk '{print ($2 > $1) ? $2 : $1}')
    done
    echo "$best"
}
t1=$(rate tp1 1)
t2=$(rate tp2 2 --set parallel.tp=2)
d2=$(rate dp2 2)
cmp -s "$tmp/tp1.out" "$tmp/tp2.out" && cmp -s "$tmp/tp1.out" "$tmp/dp2.out" ||
    { echo "the layouts' outputs differ" >&2; exit 1; }
grep -h 'tokens generated' "$tmp/tp1.err" "$tmp/tp2.err" "$tmp/dp2.err"
printf 'layout  tokens/s  vs TP1\n'
for l in "TP1 $t1" "TP2 $t2" "DP2 $d2"; do
    set -- $l
    printf '%-6s %9s  %6s\n' "$1" "$2" "$(echo "$2 $t1" | awk '{printf "%.2f", $1 / $2}')"
done
