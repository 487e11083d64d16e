#!/bin/sh
# make bench: every benchmark, results appended to build/bench/results.jsonl.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/results.jsonl
echo "== CPU training step vs bare sgemm (benchmarks/bench_train.c) =="
build/benchmarks/bench_train "$@" | tee build/bench/train.log
grep '^{' build/bench/train.log >>"$out"
echo "== tokenizer: herd vs Python tiktoken, one thread each (benchmarks/tokenizer.sh) =="
sh benchmarks/tokenizer.sh | tee build/bench/tokenizer.log
grep '^{' build/bench/tokenizer.log >>"$out"
echo "results appended to $out"
