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
echo "results appended to $out"
