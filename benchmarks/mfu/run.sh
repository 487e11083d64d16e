#!/bin/sh
# benchmarks/mfu/run.sh — herd beside PyTorch on one GPU, same shapes, one table.
#
#   sh benchmarks/mfu/run.sh                 # both shapes, attention microbenchmark
#   SHAPES=1b sh benchmarks/mfu/run.sh       # one shape
#   TINY=1 sh benchmarks/mfu/run.sh          # the tiny preset on the CPU (a check without a GPU)
#
# Shapes (seq 8192, batch 1, BF16 peak 989.4 TFLOP/s, DESIGN.md's MFU formula):
#   8b  Llama 3 8B layer shapes: d 4096, ffn 14336, 32 heads, 8 KV heads, vocab 128256,
#       LAYERS_8B layers (default 4: what fits one 80 GB H100 beside AdamW state on
#       both sides; raise it on an H200)
#   1b  Llama 3.2 1B: 16 layers, d 2048, ffn 8192, 32 heads, 8 KV heads, vocab 128256
#       (untied output projection on both sides)
# herd's side is build/benchmarks/mfu/bench_mfu, or build/bundle/run bench_mfu where
# herd's build deps are missing (make device-bundle on the build machine, carried
# here); PyTorch's is benchmarks/mfu/torch_llama.py (transformers LlamaForCausalLM,
# SDPA, torch.compile, fused AdamW). herd runs with HERD_FLAGS (default
# "--precision bf16 --xent-chunk 8192": bf16 GEMM inputs as torch's autocast, the
# vocabulary-chunked cross-entropy). PROFILE=1 and nsys on PATH: the per-kernel
# share of herd's step time (nsys cuda_gpu_kern_sum). Results: build/mfu/.
set -eu
cd "$(dirname "$0")/../.."
OUT=${MFU_OUT:-build/mfu}
PY=${PYTHON:-python3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
mkdir -p "$OUT"
: >"$OUT/results.jsonl"

if [ -n "${TINY:-}" ]; then
    SHAPES=tiny
    DEVFLAGS="--backend cpu --device cpu"
else
    SHAPES=${SHAPES:-"8b 1b"}
    DEVFLAGS="--backend cuda --device cuda"
fi

if [ -x build/bundle/run ] && [ -z "${NO_BUNDLE:-}" ]; then
    HERD="build/bundle/run bench_mfu"
elif [ -x build/benchmarks/mfu/bench_mfu ]; then
    HERD=build/benchmarks/mfu/bench_mfu
else
    echo "run.sh: no herd binary: make -j build/benchmarks/mfu/bench_mfu, or make device-bundle" \
         "on a machine with herd's build deps and bring build/bundle here" >&2
    exit 1
fi

flags_of() {
    case "$1" in
    8b) echo "--layers ${LAYERS_8B:-4} --d-model 4096 --ffn 14336 --heads 32 --kv-heads 8 --vocab 128256 --seq 8192 --batch 1" ;;
    1b) echo "--layers 16 --d-model 2048 --ffn 8192 --heads 32 --kv-heads 8 --vocab 128256 --seq 8192 --batch 1" ;;
    tiny) echo "--tiny" ;;
    *) echo "run.sh: unknown shape '$1' (8b, 1b)" >&2; return 1 ;;
    esac
}

# run one side; its log in $OUT, its JSON line appended to results.jsonl; a
# failure (out of memory, missing torch) is reported and the table says so
side() {
    name=$1; shift
    echo "== $name: $*"
    if "$@" >"$OUT/$name.log" 2>&1; then
        grep -v '^{' "$OUT/$name.log" || true
        grep '^{' "$OUT/$name.log" | tail -1 >>"$OUT/results.jsonl"
    else
        echo "   FAILED (rc $?), last lines of $OUT/$name.log:"
        tail -5 "$OUT/$name.log" | sed 's/^/   /'
    fi
}

for s in $SHAPES; do
    f=$(flags_of "$s")
    common="$f --steps $STEPS --warmup $WARMUP --label $s $DEVFLAGS"
    [ "$s" = tiny ] && common="$f --label $s $DEVFLAGS"
    # shellcheck disable=SC2086
    side "herd_$s" $HERD $common ${HERD_FLAGS:---precision bf16 --xent-chunk 8192}
    # shellcheck disable=SC2086
    side "torch_$s" "$PY" benchmarks/mfu/torch_llama.py $common ${TORCH_FLAGS:-}
    if [ -n "${PROFILE:-}" ] && command -v nsys >/dev/null 2>&1 && [ "$s" != tiny ]; then
        echo "== herd_$s per-kernel share of the step (nsys)"
        # shellcheck disable=SC2086
        nsys profile -f true -o "$OUT/herd_$s" $HERD $f --steps 2 --warmup 1 $DEVFLAGS ${HERD_FLAGS:---precision bf16 --xent-chunk 8192} \
            >"$OUT/herd_${s}_nsys.log" 2>&1 &&
            nsys stats -q -r cuda_gpu_kern_sum -f csv "$OUT/herd_$s.nsys-rep" \
                >"$OUT/herd_${s}_kernels.csv" 2>>"$OUT/herd_${s}_nsys.log" &&
            head -15 "$OUT/herd_${s}_kernels.csv" | cut -d, -f1,2,9 ||
            echo "   nsys failed: $OUT/herd_${s}_nsys.log"
    fi
done

# attention alone, Llama 3 8B heads at seq 8192: herd's flash kernel vs SDPA
if [ -z "${TINY:-}" ] && [ -z "${NO_ATTENTION:-}" ]; then
    a="--d-model 4096 --heads 32 --kv-heads 8 --seq 8192 --batch 1 --steps $STEPS --warmup $WARMUP --attention-only $DEVFLAGS"
    # shellcheck disable=SC2086
    side herd_attention $HERD $a --label attn
    # shellcheck disable=SC2086
    side torch_attention_bf16 "$PY" benchmarks/mfu/torch_llama.py $a --label attn --attn-dtype bf16
    # shellcheck disable=SC2086
    side torch_attention_fp32 "$PY" benchmarks/mfu/torch_llama.py $a --label attn --attn-dtype fp32
fi

echo "== table ($OUT/results.jsonl)"
"$PY" - "$OUT/results.jsonl" <<'PYEOF' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| shape | impl | precision | layers | seq | tokens/s | TFLOP/s | MFU | memory GiB |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    if r["bench"] != "mfu":
        continue
    prec = r.get("precision") or r.get("weights")
    mem = r.get("mem_gib", r.get("peak_mem_gib", 0))
    print(f"| {r['label']} | {r['impl']} | {prec} | {r['layers']} | {r['seq']} | "
          f"{r['tokens_per_second']:.0f} | {r['tflops']:.1f} | {100 * r['mfu']:.2f}% | {mem:.1f} |")
att = [r for r in rows if r["bench"] == "attention"]
if att:
    print()
    print("| attention | precision | B | T | H/KV | hd | fwd+bwd ms | TFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in att:
        name = r["impl"] + (" " + r["attention"] if "attention" in r else "")
        print(f"| {name} | {r['precision']} | {r['batch']} | {r['seq']} | "
              f"{r['heads']}/{r['kv_heads']} | {r['head_dim']} | {r['ms']:.2f} | {r['tflops']:.2f} |")
PYEOF
