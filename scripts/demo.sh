#!/bin/sh
# make demo: real text -> token shards -> train the tiny Llama 3 -> loss curve.
# (Later issues grow this into the staged recipe on a local Slurm cluster.)
set -eu
cd "$(dirname "$0")/.."
echo "== 1. data: Debian's license texts as byte-level token shards =="
sh scripts/make_demo_data.sh
build/herd data inspect data/demo/train.bin | head -8
echo
echo "== 2. train: configs/tiny.yaml =="
build/herd train configs/tiny.yaml "$@"
echo
echo "== 3. loss curve (runs/demo/metrics.jsonl) =="
sh monitoring/loss_curve.sh runs/demo/metrics.jsonl 20
echo
echo "== 4. report: plots of the run (runs/demo/report/report.html and *.png) =="
build/herd report runs/demo
