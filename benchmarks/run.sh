#!/bin/sh
# make bench: every benchmark, results appended to build/bench/results.jsonl.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/results.jsonl
echo "== CPU training step vs bare sgemm (benchmarks/bench_train.c) =="
build/benchmarks/bench_train "$@" | tee build/bench/train.log
grep '^{' build/bench/train.log >>"$out"
echo "== checkpoint stall and background write vs sequential disk write (benchmarks/bench_ckpt.c) =="
build/benchmarks/bench_ckpt | tee build/bench/ckpt.log
grep '^{' build/bench/ckpt.log >>"$out"
echo "== one HDF5 file per rank vs one shared file, 2 MPI ranks (benchmarks/bench_ckpt_layout.c) =="
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe \
    build/benchmarks/bench_ckpt_layout | tee build/bench/ckpt_layout.log
grep '^{' build/bench/ckpt_layout.log >>"$out"
echo "results appended to $out"
