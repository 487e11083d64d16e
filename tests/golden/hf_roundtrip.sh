#!/bin/sh
# The Hugging Face round trip: a checkpoint made by transformers
# (tests/fixtures/hf: gqa_untied, and llama31_sharded with Llama 3.1 rope
# scaling) -> `herd train` (train.init_from) 3 steps -> `herd ckpt export
# --format hf` -> LlamaForCausalLM.from_pretrained: its loss on a held-out batch
# (the fixture's input.tokens, drawn apart from train.bin) equals herd's loss on
# that batch from the run's checkpoint (1e-4 relative; build/tests/hf_heldout_loss),
# and so do the logits (largest difference over the largest |logit|, 1e-4).
# Live when HERD_HF_PYTHON (default /usr/bin/python3) imports transformers, else
# against transformers' loss and logits committed in tests/fixtures/hf_roundtrip/
# (NAME.json, NAME.logits.safetensors; HERD_HF_REGEN=1 with a transformers Python
# rewrites them); herd reading the export back (build/tests/hf_heldout_loss --hf)
# gives the same logits. It must be able to fail: 2 steps instead of 3 give
# another loss, the Llama 3.1 export without its rope scaling other logits.
set -u
cd "$(dirname "$0")/../.." || exit 1
herd=build/herd
tool=build/tests/hf_heldout_loss
py=${HERD_HF_PYTHON:-/usr/bin/python3}
rt=tests/golden/hf_roundtrip.py
fixd=tests/fixtures/hf_roundtrip
if [ ! -x "$herd" ] || [ ! -x "$tool" ]; then
    echo "SKIP hf_roundtrip: build/herd or $tool not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
live=
if "$py" -c 'import torch, transformers' 2>/dev/null; then live=1
else echo "hf_roundtrip: transformers not importable by $py: committed losses only (HERD_HF_PYTHON=/path/to/python for the live run)"; fi
[ "${HERD_HF_REGEN:-0}" = 1 ] && [ -z "$live" ] && { echo "FAIL hf_roundtrip: HERD_HF_REGEN=1 needs transformers"; exit 1; }

# chain NAME FIXTURE STEPS: train from FIXTURE, export (herd's one file and HF);
# prints herd's held-out loss
chain() {
    scale=
    case $1 in llama31*) scale="rope_scale_factor: 8, rope_low_freq_factor: 1,
        rope_high_freq_factor: 4, rope_original_max_pos: 8";; esac
    cat >"$tmp/$1.yaml" <<YAML
model: {n_layers: 2, d_model: 32, n_heads: 4, n_kv_heads: 2, ffn_dim: 64, vocab_size: 96, max_seq_len: 16,
        rope_theta: 10000, norm_eps: 1.0e-5, $scale}
batch: {micro_batch: 1, ramp: [{after_tokens: 0, batch_tokens: 64, seq_len: 16}]}
optim: {lr: 1.0e-2, min_lr: 1.0e-3}
schedule: {warmup_steps: 1, decay_steps: 10}
train: {max_steps: $3, log_every: 0, threads: 1, init_from: $PWD/$2, out_dir: $tmp/$1}
checkpoint: {every: $3}
data: {path: $PWD/$2/train.bin}
YAML
    $herd train "$tmp/$1.yaml" >"$tmp/$1.log" 2>&1 \
        && $herd ckpt export "$tmp/$1" "$tmp/$1.safetensors" >>"$tmp/$1.log" 2>&1 \
        && $herd ckpt export "$tmp/$1" "$tmp/hf_$1" --format hf --dtype f32 >>"$tmp/$1.log" 2>&1 \
        && $tool "$2" "$tmp/$1.safetensors" "$2/expected.safetensors" "$tmp/$1.logits" 2>>"$tmp/$1.log"
}
# within A B TOL: |A - B| <= TOL |B|; big X: X > 1e-4 (a relative difference)
within() { /usr/bin/python3 -c \
    'import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(not abs(a - b) <= t * abs(b))' "$1" "$2" "$3"; }
big() { /usr/bin/python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > 1e-4)' "$1"; }

for n in gqa_untied llama31_sharded; do
    fx=tests/fixtures/hf/$n
    if ! herd_loss=$(chain "$n" "$fx" 3); then fail "hf_roundtrip_$n" "$(tail -3 "$tmp/$n.log")"; continue; fi
    if [ -n "$live" ]; then
        wl=$tmp/$n.tf_logits
        want=$("$py" $rt loss "$tmp/hf_$n" "$fx/expected.safetensors" "$wl" 2>"$tmp/$n.py.err") \
            || { fail "hf_roundtrip_$n" "transformers: $(tail -3 "$tmp/$n.py.err")"; continue; }
        src="transformers $(PYTHONWARNINGS=ignore "$py" -c 'import transformers; print(transformers.__version__)' 2>/dev/null) live"
        if [ "${HERD_HF_REGEN:-0}" = 1 ]; then
            mkdir -p "$fixd"; rm -f "$fixd/$n.json"
            /usr/bin/python3 $rt put "$fixd/$n.json" transformers_loss "$want"
            /usr/bin/python3 $rt put "$fixd/$n.json" herd_loss "$herd_loss"
            /usr/bin/python3 $rt put "$fixd/$n.json" made_with "$src"
            cp "$wl" "$fixd/$n.logits.safetensors"
        fi
    else
        want=$(/usr/bin/python3 $rt get "$fixd/$n.json" transformers_loss) \
            || { fail "hf_roundtrip_$n" "$fixd/$n.json: no transformers_loss"; continue; }
        src="committed $fixd/$n.json"
        wl=$fixd/$n.logits.safetensors
    fi
    rel=$(/usr/bin/python3 $rt rel "$herd_loss" "$want")
    if within "$herd_loss" "$want" 1e-4; then
        pass "hf_roundtrip_$n (held-out loss herd $herd_loss, $src $want, rel $rel)"
    else fail "hf_roundtrip_$n" "held-out loss herd $herd_loss, $src $want, rel $rel > 1e-4"; fi
    if ! lrel=$(/usr/bin/python3 $rt cmp "$tmp/$n.logits" "$wl"); then fail "hf_roundtrip_${n}_logits" "cmp failed"
    elif ! big "$lrel"; then
        pass "hf_roundtrip_${n}_logits (max rel diff $lrel)"
    else fail "hf_roundtrip_${n}_logits" "max rel diff $lrel > 1e-4"; fi
    # herd reading the export back (config.json and weights, as train.init_from
    # does) gives the same logits: without transformers this is what checks the export
    if ! $tool --hf "$tmp/hf_$n" "$fx/expected.safetensors" "$tmp/$n.back" >/dev/null \
       || ! brel=$(/usr/bin/python3 $rt cmp "$tmp/$n.back" "$wl"); then fail "hf_roundtrip_${n}_read_back" "failed"
    elif ! big "$brel"; then pass "hf_roundtrip_${n}_export_read_back (logits max rel diff $brel)"
    else fail "hf_roundtrip_${n}_export_read_back" "max rel diff $brel > 1e-4"; fi
    [ "$n" = llama31_sharded ] && scaled_logits=$wl
    # the check can fail: a run of 2 steps gives another loss
    if ! wrong=$(chain "${n}_2steps" "$fx" 2); then fail "hf_roundtrip_${n}_2steps" "$(tail -3 "$tmp/${n}_2steps.log")"
    elif within "$wrong" "$want" 1e-4; then
        fail "hf_roundtrip_${n}_2steps_differs" "2 steps gave $wrong, as 3 steps' $want: the check cannot fail"
    else pass "hf_roundtrip_${n}_2steps_differs (herd $wrong vs $want, rel $(/usr/bin/python3 $rt rel "$wrong" "$want"))"; fi
done

# the check can fail: an export of the Llama 3.1 run without its rope scaling
# (config.json's rope_scaling dropped) gives other logits, read by herd and,
# live, by transformers
n=llama31_sharded
if [ -d "$tmp/hf_$n" ] && [ -n "${scaled_logits:-}" ]; then
    /usr/bin/python3 $rt noscale "$tmp/hf_$n"
    if ! $tool --hf "$tmp/hf_$n" "tests/fixtures/hf/$n/expected.safetensors" "$tmp/ns.logits" >/dev/null \
       || ! d=$(/usr/bin/python3 $rt cmp "$tmp/ns.logits" "$scaled_logits"); then
        fail hf_roundtrip_noscale_herd "hf_heldout_loss failed"
    elif ! big "$d"; then fail hf_roundtrip_noscale_herd "the export without rope scaling matched (max rel diff $d)"
    else pass "hf_roundtrip_noscale_herd_differs (logits max rel diff $d)"; fi
    if [ -n "$live" ]; then
        if ! "$py" $rt loss "$tmp/hf_$n" "tests/fixtures/hf/$n/expected.safetensors" "$tmp/tns.logits" \
                >/dev/null 2>&1 || ! d=$(/usr/bin/python3 $rt cmp "$tmp/tns.logits" "$tmp/$n.logits"); then
            fail hf_roundtrip_noscale_transformers "transformers failed"
        elif ! big "$d"; then
            fail hf_roundtrip_noscale_transformers "an export without rope scaling matched herd (max rel diff $d)"
        else pass "hf_roundtrip_noscale_transformers_differs (logits max rel diff $d)"; fi
    fi
fi
[ "$fails" -eq 0 ]
