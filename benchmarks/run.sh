#!/bin/sh
# make bench: every benchmark, results appended to build/bench/results.jsonl.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/results.jsonl
echo "== CPU training step vs bare sgemm (benchmarks/bench_train.c) =="
build/benchmarks/bench_train "$@" | tee build/bench/train.log
grep '^{' build/bench/train.log >>"$out"

echo "== Parallelism I layouts: step time split into compute and communication (benchmarks/parallel_layouts.sh) =="
sh benchmarks/parallel_layouts.sh 8 4 2>>"$out" | tee build/bench/parallel_layouts.log
echo "results appended to $out"
