#!/bin/sh
# The paper-scale recipe configs (configs/recipe/{8b,70b,405b}) (a few seconds):
# each stage loads with `herd config`; its layout's product equals the GPUs of its
# #SBATCH header (nodes x gpus-per-node); `herd plan` (the Llama 3 cluster of
# tests/fixtures/topology) on the layout at the stage's longest sequence, with the
# stage's micro_batch, virtual_stages, pp_first_last_fewer and train.recompute, fits
# 80 GB per GPU by its memory estimate (topology/memmodel.c; every stage, no
# exception: the 405B stages recompute what docs/recipe.md says); the pre-training
# ramp is the paper's (4194304 x 4096, 8388608 x 8192 after 252M, 16777216 after
# 2.87T); six long-context stages from 8K to 128K with CP on at 128K; annealing
# over the last 40M tokens at 128K with math and code upsampled; max_tokens grows.
set -u
cd "$(dirname "$0")/../.."
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
[ -x build/herd ] || { echo "SKIP recipe_configs: build/herd not built"; exit 0; }
conf=tests/fixtures/topology/llama3.conf
get() { printf '%s\n' "$resolved" | awk -v s="$1:" -v k="$2:" '/^[^ #]/ {in_s = ($1 == s)} in_s && $1 == k {v = $2; gsub(/"/, "", v); print v; exit}'; }
ramp() { printf '%s\n' "$resolved" | sed -n 's/^ *- {after_tokens: \([0-9]*\), batch_tokens: \([0-9]*\), seq_len: \([0-9]*\)}.*/\1 \2 \3/p'; }
weight() { printf '%s\n' "$resolved" | sed -n "s/.*name: \"\{0,1\}$1\"\{0,1\},.* weight: \([0-9.]*\)}.*/\1/p"; }
# a recompute mode herd plan does not know is refused, naming the flag
out=$(build/herd plan --conf "$conf" --layout 8,1,16,64 --recompute some 2>&1) \
    && fail "recipe_plan_bad_recompute" "exit 0: $out" \
    || { echo "$out" | grep -q -- "--recompute 'some'" && pass "recipe_plan_bad_recompute" \
         || fail "recipe_plan_bad_recompute" "message: $out"; }
for scale in 8b 70b 405b; do
    d=configs/recipe/$scale
    prev_tokens=0; n_long=0; prev_seq=0; math0=""
    for f in $(ls $d/*.yaml | sort); do
        name=$scale/$(basename "$f" .yaml)
        resolved=$(build/herd config "$f" 2>&1) || { fail "recipe_config_$name" "herd config: $resolved"; continue; }
        nodes=$(sed -n 's/^#SBATCH --nodes=\([0-9]*\).*/\1/p' "$f"); gpn=$(sed -n 's/^#SBATCH --gpus-per-node=\([0-9]*\).*/\1/p' "$f")
        tp=$(get parallel tp); cp=$(get parallel cp); pp=$(get parallel pp); dp=$(get parallel dp)
        vs=$(get parallel virtual_stages); fl=$(get parallel pp_first_last_fewer); mb=$(get batch micro_batch)
        rc=$(get train recompute)
        gpus=$((nodes * gpn))
        last=$(ramp | tail -n 1); seq=$(echo "$last" | cut -d' ' -f3); bt=$(echo "$last" | cut -d' ' -f2)
        [ $((tp * cp * pp * dp)) -eq "$gpus" ] && pass "recipe_layout_divides_gpus $name ($tp,$cp,$pp,$dp = $gpus GPUs)" \
            || fail "recipe_layout_divides_gpus $name" "TP $tp x CP $cp x PP $pp x DP $dp != $nodes nodes x $gpn GPUs"
        plan=$(build/herd plan --conf "$conf" --model "$scale" --layout "$tp,$cp,$pp,$dp" --seq "$seq" \
                   --batch-tokens "$bt" --micro-batch "$mb" --virtual-stages "$vs" --first-last-fewer "$fl" \
                   --recompute "$rc" --json 2>&1) || { fail "recipe_plan $name" "$plan"; continue; }
        mem=$(echo "$plan" | sed -n 's/.*"mem_GB": \([0-9.]*\).*/\1/p'); fits=$(echo "$plan" | sed -n 's/.*"fits": \([a-z]*\).*/\1/p')
        mfu=$(echo "$plan" | sed -n 's/.*"mfu": \([0-9.]*\).*/\1/p')
        if [ "$fits" = true ] && awk -v m="$mem" 'BEGIN {exit !(m > 0 && m <= 80)}'; then
            pass "recipe_plan_fits_80GB $name (seq $seq, V $vs, recompute $rc: $mem GB per GPU, predicted MFU $mfu)"
        else
            fail "recipe_plan_fits_80GB $name" "seq $seq layout $tp,$cp,$pp,$dp V $vs recompute $rc: $mem GB (fits $fits)"
        fi
        tokens=$(get train max_tokens)
        [ "$tokens" -gt "$prev_tokens" ] || fail "recipe_tokens_cumulative $name" "max_tokens $tokens <= previous stage's $prev_tokens"
        prev_tokens=$tokens
        case "$f" in
        *_pretrain.yaml)
            r=$(ramp | tr '\n' ';')
            [ "$r" = "0 4194304 4096;252000000 8388608 8192;2870000000000 16777216 8192;" ] \
                && pass "recipe_paper_batch_ramp $name" || fail "recipe_paper_batch_ramp $name" "ramp $r"
            math0=$(weight math); code0=$(weight code) ;;
        *_long_context_*)
            n_long=$((n_long + 1))
            [ "$seq" -gt "$prev_seq" ] && [ "$seq" -gt 8192 ] || fail "recipe_long_context_grows $name" "seq $seq after $prev_seq"
            prev_seq=$seq ;;
        *_anneal.yaml)
            at=$(get schedule anneal_tokens)
            if [ "$at" = 40000000 ] && [ "$seq" = 131072 ] && [ "$cp" -gt 1 ] \
               && awk -v a="$(weight math)" -v b="$math0" -v c="$(weight code)" -v d="$code0" 'BEGIN {exit !(a > b && c > d)}'; then
                pass "recipe_anneal_40M_at_128K_upsampled $name (math $math0 -> $(weight math), code $code0 -> $(weight code))"
            else
                fail "recipe_anneal_40M_at_128K_upsampled $name" "anneal_tokens $at seq $seq cp $cp math $(weight math) code $(weight code)"
            fi ;;
        esac
    done
    [ "$n_long" -eq 6 ] && [ "$prev_seq" -eq 131072 ] && pass "recipe_six_long_context_stages_to_128K $scale" \
        || fail "recipe_six_long_context_stages_to_128K $scale" "$n_long stages, last seq $prev_seq"
done
exit $fails
