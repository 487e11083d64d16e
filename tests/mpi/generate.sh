#!/bin/sh
# Generation at scale: `herd generate` and `herd post rs|annotate|eval` tensor-
# parallel (parallel.tp 2: each rank its heads, ffn rows and vocabulary rows of
# the weights, its KV heads of the cache; tp 4: KV heads replicated), data-
# parallel (2 replicas), and both (TP2 x DP2 on 4 ranks) print / write the same
# bytes / lines as one process: greedy
# tokens equal token for token, sampled ones too (same counters; the TP
# group gathers the logits, so its ranks sample alike). Bad layouts are
# refused with the key named.
NAME=generate_mpi
. "$(dirname "$0")/../lib/mpi.sh"
cfg=configs/post_demo.yaml
small="--set model.n_layers=2 --set model.d_model=32 --set model.n_heads=4 --set model.n_kv_heads=2 --set model.ffn_dim=64 --set train.log_every=0 --set train.threads=1"
t="--tokenizer $tmp/tok.ranks"
# 4 ranks on 2 shared cores: a waiting rank yields its core; a generous timeout
export OMPI_MCA_mpi_yield_when_idle=1
mpi() { np=$1; shift; timeout 300 mpirun -np "$np" "$herd" "$@"; }

$herd post demo-data --out "$tmp/d" --train 120 --test 40 --pref 60 --prompts 20 >/dev/null 2>&1 &&
    $herd data train-tokenizer --vocab-size 320 --out "$tmp/tok.ranks" "$tmp/d/corpus.txt" >/dev/null 2>&1 ||
    { fail generate_mpi_setup "demo data or tokenizer"; exit 1; }
# w0: one SFT step at lr 1e-6 from the init (its greedy responses are token
# soup, not the empty answer of an early SFT model: tokens to compare); w: a
# few SFT steps, and a reward model on it, for rejection sampling
$herd post sft $cfg $t $small --data "$tmp/d/sft.jsonl" --out "$tmp/w0.safetensors" --steps 1 \
    --lr 1e-6 --set batch.micro_batch=4 >/dev/null 2>&1 &&
$herd post sft $cfg $t $small --data "$tmp/d/sft.jsonl" --out "$tmp/w.safetensors" --steps 12 \
    --lr 3e-3 --set batch.micro_batch=4 >/dev/null 2>&1 &&
$herd post rm $cfg $t $small --data "$tmp/d/pref.jsonl" --weights "$tmp/w.safetensors" \
    --out "$tmp/rm.safetensors" --steps 4 --set batch.micro_batch=4 >/dev/null 2>&1 ||
    { fail generate_mpi_setup "sft / rm"; exit 1; }

head -10 "$tmp/d/test.jsonl" >"$tmp/p.jsonl"
gen="generate $cfg $t $small --weights $tmp/w0.safetensors --prompts $tmp/p.jsonl --prompt 12+35=? --max-new 6"

# same NAME NP OUT1 ARGS...: NP ranks write what one process wrote to OUT1
same() {
    name=$1; np=$2; ref=$3; shift 3
    if mpi "$np" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" && cmp -s "$ref" "$tmp/$name.out"; then
        pass "$name ($(wc -l <"$ref") lines)"
    else
        fail "$name" "$(diff "$ref" "$tmp/$name.out" | head -4) $(tail -3 "$tmp/$name.err")"
    fi
}

# greedy: one process, then TP2, DP2 (batches of 3 over uneven shares), TP2 x DP2
distinct() { sed 's/.*"response"://' "$1" | sort -u | wc -l; }
if $herd $gen >"$tmp/g1.out" 2>"$tmp/g1.err" && [ "$(wc -l <"$tmp/g1.out")" -eq 11 ] &&
   [ "$(distinct "$tmp/g1.out")" -ge 3 ] && ! grep -q '"response":""' "$tmp/g1.out"; then
    pass "generate_1proc_greedy ($(distinct "$tmp/g1.out") distinct non-empty responses)"
else fail generate_1proc_greedy "$(tail -3 "$tmp/g1.err"; head -3 "$tmp/g1.out")"; fi
same generate_tp2_greedy_equals_1proc 2 "$tmp/g1.out" $gen --set parallel.tp=2
same generate_dp2_greedy_equals_1proc 2 "$tmp/g1.out" $gen --batch 3
same generate_tp2xdp2_greedy_equals_1proc 4 "$tmp/g1.out" $gen --set parallel.tp=2
# TP4 > n_kv_heads 2: each KV head replicated on 2 ranks, as the trainer does
same generate_tp4_replicated_kv_equals_1proc 4 "$tmp/g1.out" $gen --set parallel.tp=4
# the reference without the cache (the model's own TP forward) on TP2
same generate_tp2_nocache_equals_1proc 2 "$tmp/g1.out" $gen --set parallel.tp=2 --no-cache

# sampled (temperature 0.9, top-p 0.95): the counters follow the prompt index
$herd $gen --temperature 0.9 --top-p 0.95 --seed 7 >"$tmp/s1.out" 2>/dev/null
if cmp -s "$tmp/s1.out" "$tmp/g1.out"; then fail generate_sampled_differs "sampling gave the greedy text"
else same generate_tp2xdp2_sampled_equals_1proc 4 "$tmp/s1.out" $gen --temperature 0.9 --top-p 0.95 \
         --seed 7 --set parallel.tp=2 --batch 2; fi

# rejection sampling with the reward model on the same ranks: TP2 and TP2 x DP2
# (20 prompts in chunks of 16 at K 4: one replica takes both chunks, or each
# replica one) write the policy's best samples and pairs as one process does
head -20 "$tmp/d/prompts.jsonl" >"$tmp/rp.jsonl"
rs="post rs $cfg $t $small --prompts $tmp/rp.jsonl --weights $tmp/w.safetensors --rm $tmp/rm.safetensors --k 4 --max-new 4"
$herd $rs --out "$tmp/rs1.jsonl" --pairs "$tmp/pp1.jsonl" >"$tmp/rs1.log" 2>&1; r1=$?
for np in 2 4; do
    mpi $np $rs --set parallel.tp=2 --out "$tmp/rs$np.jsonl" --pairs "$tmp/pp$np.jsonl" >"$tmp/rs$np.log" 2>&1
    r=$?
    if [ $r1 -eq 0 ] && [ $r -eq 0 ] && [ "$(wc -l <"$tmp/rs1.jsonl")" -eq 20 ] &&
       cmp -s "$tmp/rs1.jsonl" "$tmp/rs$np.jsonl" && cmp -s "$tmp/pp1.jsonl" "$tmp/pp$np.jsonl" &&
       [ "$(grep -c 'herd post rs: 20 prompts' "$tmp/rs$np.log")" -eq 1 ] &&
       [ "$(grep 'herd post rs: 20 prompts' "$tmp/rs1.log" | cut -d'(' -f1)" = \
         "$(grep 'herd post rs: 20 prompts' "$tmp/rs$np.log" | cut -d'(' -f1)" ]; then
        pass "generate_rs_tp2_${np}ranks_same_bytes ($(wc -l <"$tmp/pp1.jsonl") pairs)"
    else fail "generate_rs_tp2_${np}ranks_same_bytes" "exit $r1/$r; $(tail -3 "$tmp/rs$np.log")"; fi
done

# annotate and eval, TP2 x DP2
an="post annotate $cfg $t $small --data $tmp/d/test.jsonl --weights $tmp/w.safetensors --k 2 --max-new 4"
$herd $an --out "$tmp/an1.jsonl" >"$tmp/an1.log" 2>&1; r1=$?
mpi 4 $an --set parallel.tp=2 --out "$tmp/an4.jsonl" >"$tmp/an4.log" 2>&1; r=$?
if [ $r1 -eq 0 ] && [ $r -eq 0 ] && cmp -s "$tmp/an1.jsonl" "$tmp/an4.jsonl" &&
   [ "$(grep 'herd post annotate:' "$tmp/an1.log")" = "$(grep 'herd post annotate:' "$tmp/an4.log" | sed "s|an4|an1|")" ]; then
    pass "generate_annotate_tp2xdp2_same_bytes ($(wc -l <"$tmp/an1.jsonl") pairs)"
else fail generate_annotate_tp2xdp2_same_bytes "exit $r1/$r; $(tail -3 "$tmp/an4.log")"; fi
ev="post eval $cfg $t $small --data $tmp/d/test.jsonl --weights $tmp/w.safetensors --max-new 4"
a1=$($herd $ev 2>&1 | grep accuracy); a4=$(mpi 4 $ev --set parallel.tp=2 2>&1 | grep accuracy)
if [ -n "$a1" ] && [ "$a1" = "$a4" ]; then pass "generate_eval_tp2xdp2_same_accuracy"
else fail generate_eval_tp2xdp2_same_accuracy "1: '$a1' 4: '$a4'"; fi

# bad layouts: every rank stops, the key named once
bad() {
    name=$1; np=$2; want=$3; shift 3
    if [ "$np" -eq 1 ]; then out=$(timeout 60 "$herd" "$@" 2>&1); rc=$?
    else out=$(mpi "$np" "$@" 2>&1); rc=$?; fi
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$(echo "$out" | grep -c "$want")" -eq 1 ]; then pass "$name"
    else fail "$name" "exit $rc: $(echo "$out" | tail -3)"; fi
}
bad generate_tp_not_dividing_ranks 1 "key 'parallel.tp': 2 does not divide the job's ranks (1 rank)" \
    $gen --set parallel.tp=2
bad generate_pp_refused 2 "key 'parallel.pp': 2 is above 1: generation runs tensor- and data-parallel only" \
    $gen --set parallel.pp=2
bad generate_chat_one_process 2 "chat runs in one process (got 2 ranks)" \
    generate $cfg $t $small --weights "$tmp/w.safetensors" --chat
exit 0
