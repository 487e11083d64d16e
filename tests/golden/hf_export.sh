#!/bin/sh
# herd ckpt export --format hf against transformers: LlamaForCausalLM.from_pretrained
# on the export gives herd's logits (1e-4 relative), F32 and BF16, untied and tied;
# the index covers every tensor once, shards stay under --max-shard-size.
# transformers' logits come live when HERD_HF_PYTHON (default /usr/bin/python3)
# imports transformers, else from tests/fixtures/hf_export/ (made by this script
# with HERD_HF_REGEN=1 and a transformers Python: a fresh `herd train` checkpoint).
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
py=${HERD_HF_PYTHON:-/usr/bin/python3}
fix=tests/fixtures/hf_export
chk=tests/golden/hf_export_check.py
if [ ! -x "$herd" ] || [ ! -x build/tests/hf_export_logits ]; then
    echo "SKIP hf_export: build/herd or build/tests/hf_export_logits not built"; exit 0; fi
if ! "$py" -c 'import numpy, h5py' 2>/dev/null; then
    echo "SKIP hf_export: numpy and h5py are not installed for $py"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

regen=
if [ "${HERD_HF_REGEN:-0}" = 1 ]; then
    regen=regen
    $herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1
    cat >"$tmp/cfg.yaml" <<YAML
model: {preset: tiny, n_layers: 2, d_model: 16, n_heads: 4, n_kv_heads: 2, ffn_dim: 32,
        vocab_size: 260, max_seq_len: 16, rope_theta: 10000}
batch: {micro_batch: 4, ramp: [{after_tokens: 0, batch_tokens: 64, seq_len: 16}]}
optim: {lr: 1.0e-2}
schedule: {warmup_steps: 1}
train: {seed: 7, max_steps: 3, threads: 1, out_dir: $tmp/run}
checkpoint: {every: 3}
data: {path: $tmp/train.bin}
YAML
    $herd train "$tmp/cfg.yaml" >"$tmp/train.out" 2>&1 || { cat "$tmp/train.out"; exit 1; }
    rm -rf "$fix/ckpt" && mkdir -p "$fix/ckpt" && cp -r "$tmp/run/checkpoints/step_00000003" "$fix/ckpt/"
fi
ck=$fix/ckpt/step_00000003
"$py" $chk tie "$ck" "$tmp/tied" || { fail hf_export_tie_copy "h5py edit failed"; exit 1; }
$herd ckpt export "$ck" "$tmp/one.safetensors" >/dev/null || { fail hf_export_one "export failed"; exit 1; }
$herd ckpt export "$tmp/tied" "$tmp/tied.safetensors" >/dev/null || { fail hf_export_one "tied"; exit 1; }
"$py" $chk bf16 "$tmp/one.safetensors" "$tmp/one_bf16.safetensors"
"$py" $chk bf16 "$tmp/tied.safetensors" "$tmp/tied_bf16.safetensors"
dims=$("$py" -c 'import json,sys; c=json.load(open(sys.argv[1])); print(*[c[k] for k in
  ("num_hidden_layers","hidden_size","num_attention_heads","num_key_value_heads",
   "intermediate_size","vocab_size","rope_theta","rms_norm_eps")])' "$fix/config.json" 2>/dev/null)

# NAME CKPT ONE DTYPE TIED MAX_SHARD
variant() {
    out=$tmp/hf_$1
    if ! $herd ckpt export "$2" "$out" --format hf --dtype "$4" --max-shard-size "$6" \
         >"$tmp/$1.out" 2>&1; then fail "hf_export_$1" "$(cat "$tmp/$1.out")"; return; fi
    [ -n "$regen" ] && [ "$1" = f32_untied ] && cp "$out/config.json" "$fix/config.json" \
        && dims=$("$py" -c 'import json,sys; c=json.load(open(sys.argv[1])); print(*[c[k] for k in
  ("num_hidden_layers","hidden_size","num_attention_heads","num_key_value_heads",
   "intermediate_size","vocab_size","rope_theta","rms_norm_eps")])' "$fix/config.json")
    # shellcheck disable=SC2086
    build/tests/hf_export_logits "$3" "$tmp/herd_$1.safetensors" $dims || { fail "hf_export_$1" "hf_export_logits"; return; }
    "$py" $chk check "$1" "$out" "$3" "$tmp/herd_$1.safetensors" "$6" "$5" "$4" "$fix" $regen \
        || fails=$((fails + 1))
}
variant f32_untied "$ck" "$tmp/one.safetensors" f32 0 20000
variant f32_tied "$tmp/tied" "$tmp/tied.safetensors" f32 1 20000
variant bf16_untied "$ck" "$tmp/one_bf16.safetensors" bf16 0 3000
variant bf16_tied "$tmp/tied" "$tmp/tied_bf16.safetensors" bf16 1 3000
# rounding to BF16 moves the logits by about 2^-8 of their scale: a loose bound
"$py" $chk diff "$tmp/herd_bf16_untied.safetensors" "$tmp/herd_f32_untied.safetensors" 5e-2 \
    || fails=$((fails + 1))

# refusals: an existing directory, --tie yes on an untied model, a bad dtype
mkdir "$tmp/exists"
$herd ckpt export "$ck" "$tmp/exists" --format hf >"$tmp/e1" 2>&1; rc=$?
[ "$rc" -eq 1 ] && grep -q "exists; not overwritten" "$tmp/e1" && [ -z "$(ls "$tmp/exists")" ] \
    && pass hf_export_refuses_existing || fail hf_export_refuses_existing "rc=$rc $(cat "$tmp/e1")"
$herd ckpt export "$ck" "$tmp/t" --format hf --tie yes >"$tmp/e2" 2>&1; rc=$?
[ "$rc" -eq 1 ] && grep -q "lm_head.weight differs" "$tmp/e2" && [ ! -e "$tmp/t" ] \
    && ! ls "$tmp" | grep -q '^t\.tmp' && pass hf_export_tie_yes_untied \
    || fail hf_export_tie_yes_untied "rc=$rc $(cat "$tmp/e2")"
$herd ckpt export "$ck" "$tmp/u" --format hf --dtype f16 >"$tmp/e3" 2>&1; rc=$?
[ "$rc" -eq 2 ] && grep -q "expected bf16 or f32" "$tmp/e3" && pass hf_export_bad_dtype \
    || fail hf_export_bad_dtype "rc=$rc $(cat "$tmp/e3")"
[ "$fails" -eq 0 ]
