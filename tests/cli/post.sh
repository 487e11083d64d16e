#!/bin/sh
# herd post / herd generate end to end on a very small model: demo data,
# tokenizer, a few SFT / RM / DPO steps, rejection sampling, evaluation,
# averaging (the element-wise mean, checked with numpy), generation with and
# without the KV cache (same greedy text); and bad input: an
# unknown role, identical responses, a prompt longer than the context, a
# vocabulary that does not match, a weights file of another shape.
set -u
cd "$(dirname "$0")/../.."
herd=$PWD/build/herd
if [ ! -x "$herd" ]; then echo "SKIP post_cli: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
cfg=configs/post_demo.yaml
small="--set model.n_layers=1 --set model.d_model=32 --set model.n_heads=4 --set model.n_kv_heads=2 --set model.ffn_dim=64 --set batch.micro_batch=4 --set train.log_every=1"
t="--tokenizer $tmp/tok.ranks"

# expect NAME STATUS "PATTERN" CMD...: exit status and a fixed string in stdout+stderr
expect() {
    name=$1; want=$2; pat=$3; shift 3
    "$@" >"$tmp/out" 2>&1
    rc=$?
    if [ "$rc" -ne "$want" ]; then fail "$name" "exit $rc, expected $want: $(tail -3 "$tmp/out")"; return 1; fi
    if ! grep -qF -- "$pat" "$tmp/out"; then fail "$name" "output lacks '$pat': $(tail -3 "$tmp/out")"; return 1; fi
    pass "$name"
}

expect post_demo_data 0 "SFT conversations" $herd post demo-data --out "$tmp/d" --train 200 --test 20 --pref 100
expect post_tokenizer 0 "vocab_size 576" $herd data train-tokenizer --vocab-size 320 --out "$tmp/tok.ranks" "$tmp/d/corpus.txt"
expect post_sft 0 "wrote" $herd post sft $cfg $t $small --data "$tmp/d/sft.jsonl" --val "$tmp/d/test.jsonl" --out "$tmp/w0.safetensors" --steps 3
expect post_rm 0 "accuracy" $herd post rm $cfg $t $small --data "$tmp/d/pref.jsonl" --weights "$tmp/w0.safetensors" --out "$tmp/rm.safetensors" --steps 2
# rm-eval: a reward model's loss and pairwise accuracy on pairs, the numbers the
# training run's own --val printed for the model it wrote
$herd post rm $cfg $t $small --data "$tmp/d/pref.jsonl" --weights "$tmp/w0.safetensors" --val "$tmp/d/pref.jsonl" \
    --out "$tmp/rmv.safetensors" --steps 3 >"$tmp/rmv.out" 2>&1
want=$(sed -n "s|^herd post rm: $tmp/d/pref.jsonl: \(loss .* pairs\)$|\1|p" "$tmp/rmv.out")
got=$($herd post rm-eval $cfg $t $small --data "$tmp/d/pref.jsonl" --weights "$tmp/rmv.safetensors" 2>&1 |
      sed -n "s|^herd post rm-eval: $tmp/d/pref.jsonl: \(loss .* pairs\)$|\1|p")
if [ -n "$want" ] && [ "$got" = "$want" ]; then pass "post_rm_eval_equals_training_val ($got)"
else fail post_rm_eval_equals_training_val "training --val '$want', rm-eval '$got'"; fi
expect post_rm_eval_needs_weights 2 "rm-eval: --weights (the reward model) is required" \
    $herd post rm-eval $cfg $t $small --data "$tmp/d/pref.jsonl"
expect post_dpo 0 "beta 0.1, nll_coef 0.2" $herd post dpo $cfg $t $small --data "$tmp/d/pref.jsonl" --weights "$tmp/w0.safetensors" --out "$tmp/w1.safetensors" --steps 2
expect post_dpo_config_keys 0 "beta 0.5, nll_coef 0," $herd post dpo $cfg $t $small --set post.dpo_beta=0.5 --set post.dpo_nll_coef=0 --data "$tmp/d/pref.jsonl" --weights "$tmp/w0.safetensors" --out "$tmp/w2.safetensors" --steps 1
expect post_dpo_flag_over_config 0 "beta 0.25, nll_coef 0.2" $herd post dpo $cfg $t $small --set post.dpo_beta=0.5 --beta 0.25 --data "$tmp/d/pref.jsonl" --weights "$tmp/w0.safetensors" --out "$tmp/w2.safetensors" --steps 1
expect post_dpo_bad_beta 1 "post.dpo_beta" $herd post dpo $cfg $t $small --set post.dpo_beta=0 --data "$tmp/d/pref.jsonl" --weights "$tmp/w0.safetensors" --out "$tmp/w2.safetensors" --steps 1
# demo data: the rejection-sampling prompts are questions without answers, none of them held out
if [ "$(wc -l <"$tmp/d/prompts.jsonl")" -gt 0 ] && ! grep -q '"assistant"' "$tmp/d/prompts.jsonl" &&
   ! grep -Fxf "$(sed 's/.*"user","content":"\([^"]*\)".*/\1/' "$tmp/d/test.jsonl" >"$tmp/tq"; echo "$tmp/tq")" \
        "$(sed 's/.*"user","content":"\([^"]*\)".*/\1/' "$tmp/d/prompts.jsonl" >"$tmp/pq"; echo "$tmp/pq")" >/dev/null; then
    pass post_demo_data_prompts_disjoint
else
    fail post_demo_data_prompts_disjoint "$(head -2 "$tmp/d/prompts.jsonl")"
fi
# --split-digits: numbers encode one digit per token
$herd data train-tokenizer --vocab-size 300 --split-digits --out "$tmp/tokd.ranks" "$tmp/d/corpus.txt" >/dev/null 2>&1
printf '12+345=357' >"$tmp/num.txt"
nd=$($herd data encode --tokenizer "$tmp/tokd.ranks" "$tmp/num.txt" 2>/dev/null | wc -w)
nm=$($herd data encode --tokenizer "$tmp/tok.ranks" "$tmp/num.txt" 2>/dev/null | wc -w)
if [ "$nd" -eq 10 ] && [ "$nm" -lt 10 ]; then pass "tokenizer_split_digits (10 tokens, $nm without)"
else fail tokenizer_split_digits "$nd tokens with --split-digits, $nm without"; fi
expect post_rs 0 "kept 20 best samples" $herd post rs $cfg $t $small --prompts "$tmp/d/test.jsonl" --weights "$tmp/w0.safetensors" --rm "$tmp/rm.safetensors" --k 3 --out "$tmp/rs.jsonl" --max-new 4
n=$(wc -l <"$tmp/rs.jsonl")
if [ "$n" -eq 20 ] && grep -q '"role":"assistant"' "$tmp/rs.jsonl"; then pass post_rs_output; else fail post_rs_output "$n lines"; fi
# annotate: references = the model's own greedy answers and sampling at a temperature
# of ~0: every sample is right, no pair; references = the held-out answers: each
# pair's chosen is the reference and its rejected is a different (wrong) sample
$herd post rs $cfg $t $small --prompts "$tmp/d/test.jsonl" --weights "$tmp/w0.safetensors" --rm "$tmp/rm.safetensors" \
    --k 1 --temperature 1e-6 --max-new 4 --out "$tmp/own.jsonl" >/dev/null 2>&1
expect post_annotate_own_answers 0 "0 pairs (reference vs a wrong sample)" $herd post annotate $cfg $t $small --data "$tmp/own.jsonl" --weights "$tmp/w0.safetensors" --k 2 --temperature 1e-6 --max-new 4 --out "$tmp/ann0.jsonl"
expect post_annotate 0 "herd post annotate:" $herd post annotate $cfg $t $small --data "$tmp/d/test.jsonl" --weights "$tmp/w0.safetensors" --k 3 --max-new 4 --out "$tmp/ann.jsonl"
if /usr/bin/python3 - "$tmp/ann.jsonl" "$tmp/d/test.jsonl" <<'PY'
import json, sys
ref = {}
for l in open(sys.argv[2]):
    m = json.loads(l)["messages"]; ref[m[0]["content"]] = m[-1]["content"]
pairs = [json.loads(l) for l in open(sys.argv[1])]
assert pairs, "no pair from an untrained model"
for p in pairs:
    q = p["prompt"][0]["content"]
    assert p["chosen"] == ref[q] and p["rejected"] != p["chosen"], p
PY
then pass post_annotate_pairs_reference_vs_wrong; else fail post_annotate_pairs_reference_vs_wrong "$(head -2 "$tmp/ann.jsonl")"; fi
expect post_annotate_needs_reference 1 "the last message must be the assistant's reference answer" $herd post annotate $cfg $t $small --data "$tmp/d/prompts.jsonl" --weights "$tmp/w0.safetensors" --out "$tmp/ann1.jsonl"
expect post_eval 0 "of 20 exact answers" $herd post eval $cfg $t $small --data "$tmp/d/test.jsonl" --weights "$tmp/w1.safetensors"
expect post_average 0 "mean of 2 models" $herd post average $cfg $t $small --out "$tmp/avg.safetensors" "$tmp/w0.safetensors" "$tmp/w1.safetensors"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    if /usr/bin/python3 tests/lib/check_mean.py "$tmp/avg.safetensors" "$tmp/w0.safetensors" "$tmp/w1.safetensors" >/dev/null
    then pass post_average_is_elementwise_mean; else fail post_average_is_elementwise_mean "numpy check"; fi
else
    echo "SKIP post_average_is_elementwise_mean: numpy not installed for /usr/bin/python3"
fi
# the KV cache changes no greedy token, through the CLI
$herd generate $cfg $t $small --weights "$tmp/w1.safetensors" --prompt "12+5=?" --prompt "x+3=9, x=?" --max-new 6 >"$tmp/g1" 2>&1
$herd generate $cfg $t $small --weights "$tmp/w1.safetensors" --prompt "12+5=?" --prompt "x+3=9, x=?" --max-new 6 --no-cache >"$tmp/g2" 2>&1
if [ -s "$tmp/g1" ] && cmp -s "$tmp/g1" "$tmp/g2"; then pass post_generate_cache_same_text; else fail post_generate_cache_same_text "$(cat "$tmp/g1" "$tmp/g2")"; fi
printf '3+4=?\n/reset\n5+5=?\n' | $herd generate $cfg $t $small --weights "$tmp/w1.safetensors" --chat --max-new 4 >"$tmp/chat" 2>/dev/null
if [ "$(grep -c '^assistant> ' "$tmp/chat")" -eq 2 ]; then pass post_chat_mode; else fail post_chat_mode "$(cat "$tmp/chat")"; fi

# post.specials picks the special tokens and chat template of every post command
printf '3+4=?\n' | $herd generate $cfg $t $small --set model.max_seq_len=256 --set post.specials=llama3.1 --weights "$tmp/w1.safetensors" --chat --max-new 4 >"$tmp/chat31" 2>"$tmp/chat31.err"
# the 3.1 template's system turn ("Cutting Knowledge Date: ...") is ~99 tokens of this vocabulary:
# the conversation outgrows max_seq_len 64, so the run asks for 256 (RoPE needs no weights)
if [ "$(grep -c '^assistant> ' "$tmp/chat31")" -eq 1 ] && ! grep -q 'no longer fits' "$tmp/chat31.err"; then pass post_specials_llama31; else fail post_specials_llama31 "$(cat "$tmp/chat31" "$tmp/chat31.err")"; fi
# ...and it is the 3.1 template that ran: at max_seq_len 64, where llama3's conversation fits
# (post_chat_mode), the 3.1 system turn does not
printf '3+4=?\n' | $herd generate $cfg $t $small --set post.specials=llama3.1 --weights "$tmp/w1.safetensors" --chat --max-new 4 >/dev/null 2>"$tmp/chat31b.err"
if grep -q 'no longer fits model.max_seq_len 64' "$tmp/chat31b.err"; then pass post_specials_llama31_template_longer
else fail post_specials_llama31_template_longer "$(cat "$tmp/chat31b.err")"; fi
expect post_specials_unknown_family 1 "llama9" $herd generate $cfg $t $small --set post.specials=llama9 --weights "$tmp/w1.safetensors" --prompt "1+1=?" --max-new 2

# bad input
printf '{"messages": [{"role": "user", "content": "1+1=?"}, {"role": "bot", "content": "2"}]}\n' >"$tmp/badrole.jsonl"
expect post_unknown_role 1 "badrole.jsonl:1: messages[1].role: unknown role 'bot'" $herd post sft $cfg $t $small --data "$tmp/badrole.jsonl" --out "$tmp/x.safetensors"
printf '{"prompt": [{"role": "user", "content": "1+1=?"}], "chosen": "2", "rejected": "2"}\n{"prompt": [{"role": "user", "content": "1+2=?"}], "chosen": "3", "rejected": "4"}\n' >"$tmp/same.jsonl"
expect post_identical_pair_counted 0 "1 skipped as identical responses" $herd post rm $cfg $t $small --data "$tmp/same.jsonl" --out "$tmp/x.safetensors" --steps 1
long=$(head -c 300 /dev/zero | tr '\0' '7')
printf '{"messages": [{"role": "user", "content": "%s"}, {"role": "assistant", "content": "2"}]}\n{"messages": [{"role": "user", "content": "1+1=?"}, {"role": "assistant", "content": "2"}]}\n' "$long" >"$tmp/long.jsonl"
expect post_long_conversation_counted 0 "1 skipped (longer than model.max_seq_len 64)" $herd post sft $cfg $t $small --data "$tmp/long.jsonl" --out "$tmp/x.safetensors" --steps 1
expect post_long_prompt_refused 1 "exceed model.max_seq_len 64" $herd generate $cfg $t $small --prompt "$long"
expect post_vocab_mismatch 1 "model.vocab_size is 600 but the tokenizer" $herd post eval $cfg $t $small --set model.vocab_size=600 --data "$tmp/d/test.jsonl"
expect post_weights_wrong_shape 1 "model.embed_tokens.weight: shape: expected [576, 64]" $herd post eval $cfg $t $small --set model.d_model=64 --set model.ffn_dim=128 --data "$tmp/d/test.jsonl" --weights "$tmp/w0.safetensors"
expect post_usage 2 "usage: herd post" $herd post sft $cfg
[ "$fails" -eq 0 ]
