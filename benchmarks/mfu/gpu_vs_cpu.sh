#!/bin/sh
# benchmarks/mfu/gpu_vs_cpu.sh — the CUDA backend's acceptance: 100 steps of
# the tiny preset on the GPU and on the CPU, same config and seed, give loss
# curves within 1% of each other, in fp32 and in bf16 (train.precision).
#
#   sh benchmarks/mfu/gpu_vs_cpu.sh                        (on the GPU machine)
#   FIRST_BACKEND=cpu sh benchmarks/mfu/gpu_vs_cpu.sh      (anywhere: the plumbing)
#
# herd is build/bundle/run herd (make device-bundle on the build machine, the
# bundle carried here), or build/herd with NO_BUNDLE=1. The text is the bundle's
# share/text (Debian's license texts, shipped in it), or TEXT="file ...".
# Each curve: the largest relative difference |a - b| / |b| over the steps, the
# step where it is, the last losses; PASS when within TOL (0.01). The curves
# land in OUT (default build/gpu_vs_cpu): PRECISION.tsv (step, loss a, loss b,
# rel diff) and each run's out_dir with metrics.jsonl and its log.
# Knobs: FIRST_BACKEND (cuda), SECOND_BACKEND (cpu), PRECISIONS ("fp32 bf16"),
# STEPS (100), TOL (0.01), THREADS (the CPU side's train.threads, 0: all cores),
# OUT_DIR, SECOND_SET (below), HERD_BIN (the herd binary for both sides, e.g.
# build/emu/herd: the acceptance on the CUDA emulator, about 20 s a CUDA step
# on one core here).
set -eu
cd "$(dirname "$0")/../.."
A=${FIRST_BACKEND:-cuda}
B=${SECOND_BACKEND:-cpu}
PRECISIONS=${PRECISIONS:-"fp32 bf16"}
STEPS=${STEPS:-100}
TOL=${TOL:-0.01}
THREADS=${THREADS:-0}
OUT=${OUT_DIR:-build/gpu_vs_cpu}
# SECOND_SET="key=value ...": overrides for the second side only (a check that
# the comparison can fail: SECOND_SET=train.seed=7)
second_set=""
for kv in ${SECOND_SET:-}; do second_set="$second_set --set $kv"; done

if [ -n "${HERD_BIN:-}" ]; then
    HERD=$HERD_BIN   # e.g. build/emu/herd: both backends, CUDA on the CPU emulation (docs/cuda.md)
    text_default=""
elif [ -x build/bundle/run ] && [ -z "${NO_BUNDLE:-}" ]; then
    HERD="build/bundle/run herd"
    text_default=$(ls build/bundle/share/text/* 2>/dev/null | tr '\n' ' ')
elif [ -x build/herd ]; then
    HERD=build/herd
    text_default=""
else
    echo "gpu_vs_cpu.sh: no herd: make device-bundle on a machine with herd's build deps and" \
         "bring build/bundle here, or make build/herd (NO_BUNDLE=1)" >&2
    exit 1
fi
[ -n "$text_default" ] || text_default="/usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0"
TEXT=${TEXT:-$text_default}
for t in $TEXT; do
    [ -r "$t" ] || { echo "gpu_vs_cpu.sh: $t: no such text file (TEXT)" >&2; exit 1; }
done
for be in "$A" "$B"; do
    case "$be" in cpu|cuda) ;; *) echo "gpu_vs_cpu.sh: backend '$be': cpu or cuda (FIRST_BACKEND, SECOND_BACKEND)" >&2; exit 1 ;; esac
done

rm -rf "$OUT"
mkdir -p "$OUT"
# shellcheck disable=SC2086
$HERD data prepare --out "$OUT/train.bin" $TEXT >"$OUT/prepare.log" 2>&1 \
    || { cat "$OUT/prepare.log" >&2; exit 1; }
# the tiny preset as it is (2 layers, d 64, GQA 4:2, 4096 tokens a step at
# seq 128, lr 1e-3 after 20 warm-up steps, seed 1234); only the data and steps
cat >"$OUT/cfg.yaml" <<YAML
model:
  preset: tiny
train:
  max_steps: $STEPS
  log_every: 25
data:
  path: $OUT/train.bin
YAML

train() { # train SIDE BACKEND PRECISION [--set K=V]: trains into $OUT/PRECISION-SIDE-BACKEND
    side=$1 be=$2 prec=$3; shift 3
    dir="$OUT/$prec-$side-$be"
    echo "== herd train: backend $be, precision $prec, $STEPS steps $*"
    start=$(date +%s)
    if ! $HERD train "$OUT/cfg.yaml" --set "train.backend=$be" --set "train.precision=$prec" \
            --set "train.threads=$THREADS" --set "train.out_dir=$dir" "$@" >"$dir.log" 2>&1; then
        grep -v "^ \|^[a-z_]*:$" "$dir.log" | tail -5
        echo "FAIL train_${prec}_$be: herd train exited non-zero (log: $dir.log)"
        return 1
    fi
    tail -1 "$dir.log"
    echo "   $(($(date +%s) - start)) s"
}
losses() { sed 's/.*"loss":\([^,}]*\).*/\1/' "$OUT/$1/metrics.jsonl"; }

fails=0
for p in $PRECISIONS; do
    # shellcheck disable=SC2086
    if ! train a "$A" "$p" || ! train b "$B" "$p" $second_set; then fails=$((fails + 1)); continue; fi
    losses "$p-a-$A" >"$OUT/a.txt"
    losses "$p-b-$B" >"$OUT/b.txt"
    na=$(wc -l <"$OUT/a.txt"); nb=$(wc -l <"$OUT/b.txt")
    if [ "$na" -ne "$STEPS" ] || [ "$nb" -ne "$STEPS" ]; then
        echo "FAIL gpu_vs_cpu_$p: $na and $nb steps in metrics.jsonl, $STEPS expected"
        fails=$((fails + 1)); continue
    fi
    paste "$OUT/a.txt" "$OUT/b.txt" | awk -v tol="$TOL" -v p="$p" -v a="$A" -v b="$B" -v tsv="$OUT/$p.tsv" '
        BEGIN { printf "step\tloss_%s\tloss_%s\trel_diff\n", a, b > tsv }
        {
            d = $1 - $2; if (d < 0) d = -d
            r = d / ($2 < 0 ? -$2 : $2)
            printf "%d\t%s\t%s\t%.3e\n", NR, $1, $2, r > tsv
            if (NR == 1 || r > worst) { worst = r; at = NR }
            sum += r
            if (r > tol) over++
            la = $1; lb = $2
        }
        END {
            printf "%s: %s vs %s, %d steps: largest relative loss difference %.3e at step %d;", p, a, b, NR, worst, at
            printf " mean %.3e; %d steps over %g; last loss %s (%s) vs %s (%s)\n", sum / NR, over, tol, la, a, lb, b
            if (worst <= tol) printf "PASS gpu_vs_cpu_%s (within %g%%)\n", p, tol * 100
            else { printf "FAIL gpu_vs_cpu_%s: not within %g%%\n", p, tol * 100; exit 1 }
        }' || fails=$((fails + 1))
done
rm -f "$OUT/a.txt" "$OUT/b.txt"
echo "curves: $OUT/*.tsv; runs and logs: $OUT/PRECISION-{a,b}-BACKEND"
[ "$fails" -eq 0 ]
