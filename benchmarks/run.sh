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
echo "== pipeline bubble per schedule, measured vs theory (benchmarks/pipeline_bubble.sh) =="
sh benchmarks/pipeline_bubble.sh 2 2>>"$out" | tee build/bench/pipeline_bubble.log
echo "== tokenizer: herd vs Python tiktoken, one thread each (benchmarks/tokenizer.sh) =="
sh benchmarks/tokenizer.sh | tee build/bench/tokenizer.log
grep '^{' build/bench/tokenizer.log >>"$out"
if [ -s data/demo-mix/mix.yaml ]; then
    echo "== loader: wait per step, prefetch off/on (benchmarks/bench_loader.c, data/demo-mix) =="
    { printf 'batch: {ramp: [{after_tokens: 0, batch_tokens: 262144, seq_len: 8192}]}\n'
      printf 'model: {vocab_size: 4096, max_seq_len: 8192}\n'
      sed -n '/^data/,$p' data/demo-mix/mix.yaml; } >build/bench/loader.yaml
    build/benchmarks/bench_loader build/bench/loader.yaml 50 | tee build/bench/loader.log
    grep '^{' build/bench/loader.log >>"$out"
else
    echo "(loader benchmark skipped: run make demo-data first)"
fi
echo "== checkpoint stall and background write vs sequential disk write (benchmarks/bench_ckpt.c) =="
build/benchmarks/bench_ckpt | tee build/bench/ckpt.log
grep '^{' build/bench/ckpt.log >>"$out"
echo "== one HDF5 file per rank vs one shared file, 2 MPI ranks (benchmarks/bench_ckpt_layout.c) =="
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe \
    build/benchmarks/bench_ckpt_layout | tee build/bench/ckpt_layout.log
grep '^{' build/bench/ckpt_layout.log >>"$out"
