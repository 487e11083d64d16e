#!/bin/sh
# herd plan against published training throughput it was not fitted to
# (docs/topology.md, "Validation"): every row with its inputs, the measured
# number, the prediction and the error; then the count within +-15%.
#
#   sh benchmarks/plan_validate.sh [HERD]     (default build/herd)
#
# One set of inputs for every row: herd plan's defaults (other_frac fitted
# once on Table 4 row 1; the overlaps chosen on Table 4 before), the GPU's
# built-in profile (--gpu), the cluster's links. Per row only what the
# source states: model shape, layout, batch, sequence, recompute, sharding.
# Rows marked "fit" are the in-sample Table 4 rows (MFU, +-3 points).
# Prints a markdown table; the last line: "within15 N of M".
set -u
cd "$(dirname "$0")/.."
herd=${1:-build/herd}
F=tests/fixtures/topology
sel="--conf $F/selene.conf --links $F/selene.links --gpu a100"
l3="--conf $F/llama3.conf --links $F/llama3.links --gpu h100"
# GPT of the Megatron-LM paper: vocabulary 51,200, sequence 2,048, GELU MLP
# of 4h, full activation recomputation, no sequence parallelism, unfused
# attention (the whole s x s), 1F1B, micro-batch 1 (assumed: not in Table 1).
meg="$sel --mlp gelu --attn-full 1 --sequence-parallel 0 --recompute full --schedule 1f1b --micro-batch 1 --seq 2048"
g() { sed -n "s/.*\"$1\": \([0-9.eE+-]*\).*/\1/p" | head -1; }
hits=0 rows=0
echo "| # | source | model | GPUs | TP,CP,PP,DP | batch | measured | predicted | error |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
# row: SOURCE NAME L H HEADS KV FFN VOCAB SEQ BATCH_SEQS LAYOUT METRIC MEASURED FLAGS...
row() {
    src=$1 name=$2 L=$3 H=$4 heads=$5 kv=$6 ffn=$7 voc=$8 seq=$9; shift 9
    bseq=$1 lay=$2 metric=$3 meas=$4; shift 4
    out=$("$herd" plan "$@" --shape "$L,$H,$heads,$kv,$ffn,$voc" --seq "$seq" \
        --batch-tokens $((bseq * seq)) --layout "$lay" --json 2>&1) || {
        echo "| - | $src | $name | | $lay | | $meas | error: $(echo "$out" | tail -1) | |"; return; }
    st=$(echo "$out" | g step_s) mfu=$(echo "$out" | g mfu)
    n=$(echo "$lay" | awk -F, '{ print $1 * $2 * $3 * $4 }')
    pred=$(awk -v m="$metric" -v st="$st" -v mfu="$mfu" -v n="$n" -v b="$bseq" -v s="$seq" -v l="$L" -v h="$H" \
        -v v="$voc" 'BEGIN {
        if (m == "tflops") printf "%.1f", 96 * b * s * l * h * h * (1 + s / (6 * h) + v / (16 * l * h)) / (st * n) / 1e12
        else if (m == "tps") printf "%.0f", b * s / st / n
        else printf "%.1f", 100 * mfu }')
    err=$(awk -v p="$pred" -v m="$meas" 'BEGIN { printf "%+.1f", 100 * (p - m) / m }')
    unit=$metric; [ "$metric" = mfu ] && unit="% MFU"; [ "$metric" = tps ] && unit="tok/s/GPU"
    [ "$metric" = tflops ] && unit="TFLOP/s/GPU"
    rows=$((rows + 1))
    if [ "$src" = "fit" ]; then
        e=$(awk -v p="$pred" -v m="$meas" 'BEGIN { printf "%+.1f points", p - m }')
        echo "| fit | Llama 3 Table 4 | $name | $n | $lay | $bseq x $seq | $meas$unit | $pred% | $e |"
        rows=$((rows - 1))
        return
    fi
    ok=$(awk -v e="$err" 'BEGIN { print (e <= 15 && e >= -15) ? 1 : 0 }')
    hits=$((hits + ok))
    mark=""; [ "$ok" = 0 ] && mark=" (miss)"
    echo "| $rows | $src | $name | $n | $lay | $bseq x $seq | $meas $unit | $pred | $err%$mark |"
}
# Llama 3 paper Table 4 (in-sample): 405B, 16M tokens a batch, MFU in %
row fit 405B 126 16384 128 8 53248 128256 8192 2048 8,1,16,64 mfu 43 $l3
row fit 405B 126 16384 128 8 53248 128256 8192 2048 8,1,16,128 mfu 41 $l3
row fit 405B 126 16384 128 8 53248 128256 131072 128 8,16,16,8 mfu 38 $l3
# Megatron-LM (Narayanan et al. 2021) Table 1: achieved TFLOP/s per A100 (Megatron's FLOP count)
# (checked against NVIDIA/Megatron-LM images/cases_april2021.png: model-parallel size = TP x PP)
row Megatron-T1 1.7B 24 2304 24 24 9216 51200 2048 512 1,1,1,32 tflops 137 $meg
row Megatron-T1 3.6B 30 3072 32 32 12288 51200 2048 512 2,1,1,32 tflops 138 $meg
row Megatron-T1 7.5B 36 4096 32 32 16384 51200 2048 512 4,1,1,32 tflops 142 $meg
row Megatron-T1 18.4B 40 6144 48 48 24576 51200 2048 1024 8,1,1,32 tflops 135 $meg
row Megatron-T1 39.1B 48 8192 64 64 32768 51200 2048 1536 8,1,2,32 tflops 138 $meg
row Megatron-T1 76.1B 60 10240 80 80 40960 51200 2048 1792 8,1,4,32 tflops 140 $meg
row Megatron-T1 145.6B 80 12288 96 96 49152 51200 2048 2304 8,1,8,24 tflops 148 $meg
row Megatron-T1 310.1B 96 16384 128 128 65536 51200 2048 2160 8,1,16,15 tflops 155 $meg
row Megatron-T1 529.6B 105 20480 128 128 81920 51200 2048 2520 8,1,35,9 tflops 163 $meg
row Megatron-T1 1008B 128 25600 160 160 102400 51200 2048 3072 8,1,64,6 tflops 163 $meg
# torchtitan docs/performance.md: FSDP2 (fully sharded) on 64 A100 80GB, local batch 1-2,
# tokens per second per GPU (WPS). Llama 3: sequence 8192; Llama 2: 4096.
tt="$sel --sharding full --schedule 1f1b --micro-batch 1"
row torchtitan-A100 L3-8B-sel 32 4096 32 8 14336 128256 8192 64 1,1,1,64 tps 2973 $tt --recompute selective
row torchtitan-A100 L3-70B-full 80 8192 64 8 28672 128256 8192 64 1,1,1,64 tps 331 $tt --recompute full
row torchtitan-A100 L2-13B-none 40 5120 40 40 13824 32000 4096 128 1,1,1,64 tps 2162 $tt --micro-batch 2
row torchtitan-A100 L2-70B-full 80 8192 64 8 28672 32000 4096 128 1,1,1,64 tps 353 $tt --recompute full --micro-batch 2
# torchtitan paper / docs Table 1: FSDP2 eager, Llama 3.1 8B, 8 H100 (96 GB, 500 W), local batch 2, selective AC
row torchtitan-H100 L3.1-8B-sel 32 4096 32 8 14336 128256 8192 16 1,1,1,8 tps 5762 $l3 --sharding full \
    --recompute selective --micro-batch 2 --hbm 96
# the same, Table 3: 128 GPUs, global batch 256
row torchtitan-H100 L3.1-8B-sel 32 4096 32 8 14336 128256 8192 256 1,1,1,128 tps 5605 $l3 --sharding full \
    --recompute selective --micro-batch 2 --hbm 96
echo "within15 $hits of $rows"

# Interleaved vs 1F1B, the same model, layout and batch: torchtitan
# benchmarks/llama3_h100_202412_torchtitan.md Table 5 (Llama 3.1 405B, 512
# H100, FSDP 8 x TP 8 x PP 8, local batch 32 = 8 micro-batches of 4, seq 8192,
# full AC): 1F1B 100, interleaved 1F1B (2 stages per rank) 128 TPS/GPU.
ti="$l3 --model 405b --seq 8192 --batch-tokens $((256 * 8192)) --micro-batch 4 --recompute full --sharding full"
s1=$("$herd" plan $ti --hbm 96 --layout 8,1,8,8 --schedule 1f1b --json | g step_s)
s2=$("$herd" plan $ti --hbm 96 --layout 8,1,8,8 --schedule interleaved:2 --json | g step_s)
awk -v a="$s1" -v b="$s2" 'BEGIN { p = 100 * (a / b - 1); m = 28;
    printf "interleaved_gain predicted %+.1f%% (1F1B %.2f s, V=2 %.2f s), measured %+.1f%% (100 -> 128 TPS/GPU), error %+.1f%% of the measured gain\n",
        p, a, b, m, 100 * (p - m) / m }'

# Memory, fully sharded (torchtitan FSDP2): measured GiB (torch's peak reserved, x 1.0737 = GB)
mem() { # NAME MEASURED_GIB FLAGS...
    name=$1 gib=$2; shift 2
    m=$("$herd" plan "$@" --json | g mem_GB)
    awk -v n="$name" -v m="$m" -v g="$gib" 'BEGIN { gb = g * 1.073741824;
        printf "memory %s: measured %.1f GiB = %.1f GB, predicted %.1f GB, error %+.1f%%\n", n, g, gb, m, 100 * (m / gb - 1) }'
}
m8="$l3 --shape 32,4096,32,8,14336,128256 --sharding full --hbm 96"
mem "torchtitan T1 8B FSDP 8, b 2, seq 8192, selective" 82.4 $m8 --seq 8192 --batch-tokens 131072 --micro-batch 2 \
    --recompute selective --layout 1,1,1,8
mem "torchtitan T3 8B FSDP 128, b 2, seq 8192, selective" 67.0 $m8 --seq 8192 --batch-tokens $((256 * 8192)) \
    --micro-batch 2 --recompute selective --layout 1,1,1,128
mem "torchtitan T2 8B FSDP 8, b 1, seq 32768, full (Float8)" 83.9 $m8 --seq 32768 --batch-tokens $((8 * 32768)) \
    --micro-batch 1 --recompute full --layout 1,1,1,8
mem "torchtitan T5 405B 1F1B FSDP 8 TP 8 PP 8 (Float8)" 82.5 $ti --hbm 96 --layout 8,1,8,8 --schedule 1f1b
mem "torchtitan T5 405B interleaved (Float8)" 72.7 $ti --hbm 96 --layout 8,1,8,8 --schedule interleaved:2
