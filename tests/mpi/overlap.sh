#!/bin/sh
# Overlapped gradient reduction (train.overlap_grad_reduce, src/parallel/fsdp.h): each
# layer's TP/CP sums and DP reduce-scatter start inside the backward, as soon
# as the last micro-batch has made the layer's gradient final. 8 MPI processes
# on the CPU:
#   - with two ranks per group every sum is a + b, whatever the bucketing, so
#     the overlapped run is bitwise the run that reduces after the backward;
#   - DP8 (eight-way sums, whose order MPI picks by message size) is within
#     1e-5 of the one-process run, as every layout is;
#   - the start line says which reduction runs.
NAME=overlap
. "$(dirname "$0")/../lib/mpi.sh"

small_model 4 4  # tests/lib/mpi.sh: the data, $tmp/cfg.yaml, run_small

compare() { # compare NAME REF TOL [--bitwise]
    name=$1; ref=$2; tol=$3; shift 3
    if out=$($py tests/mpi/compare_runs.py "$tmp/$ref" "$tmp/$ref.st" "$tmp/$name" "$tmp/$name.st" \
             "$tol" "$@"); then
        pass "$name ($(echo "$out" | tail -1))"
    else
        fail "$name" "$(echo "$out" | tr '\n' ' ')"
    fi
}
pair() { # pair NAME [--set ...]: the layout without and with overlap, bitwise
    p=$1; shift   # (run_small sets $name)
    if ! run_small "${p}_after" 8 "$@"; then fail "$p" "run failed: $(tail -3 "$tmp/${p}_after.log")"; return; fi
    if ! run_small "$p" 8 "$@" --set train.overlap_grad_reduce=1; then
        fail "$p" "run failed: $(tail -3 "$tmp/$p.log")"; return
    fi
    grep -q '^gradient reduction: per layer, overlapped with the backward' "$tmp/$p.log" ||
        { fail "$p" "start line: $(grep '^gradient reduction' "$tmp/$p.log")"; return; }
    compare "$p" "${p}_after" 0 --bitwise
}

# TP2 with sequence parallel (norm gradients summed over TP), CP2, DP2
pair overlap_tp2sp_cp2_dp2 --set parallel.tp=2 --set parallel.sequence_parallel=1 --set parallel.cp=2
# PP2 interleaved (two chunks per rank: the head bucket, the layers, the
# embedding become final at different times of the schedule), CP2, DP2
pair overlap_pp2v2_cp2_dp2 --set parallel.pp=2 --set parallel.virtual_stages=2 --set parallel.cp=2
# full recompute reruns each layer inside the backward: the hook still fires once per layer
pair overlap_pp2_tp2_dp2_recompute --set parallel.pp=2 --set parallel.tp=2 --set train.recompute=full

# DP8 against one process
if run_small ref 1 && run_small overlap_dp8 8 --set train.overlap_grad_reduce=1; then
    compare overlap_dp8 ref 1e-5
else
    fail overlap_dp8 "run failed: $(tail -3 "$tmp/overlap_dp8.log")"
fi
