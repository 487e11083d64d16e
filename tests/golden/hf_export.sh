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
# the fixture's run data is gone: no shard to read bos/eos from, none written
# (while regenerating, the fresh run's shard is there)
export HF_BOS_EOS=none
[ -n "$regen" ] && HF_BOS_EOS="256 257"
variant f32_untied "$ck" "$tmp/one.safetensors" f32 0 20000
variant f32_tied "$tmp/tied" "$tmp/tied.safetensors" f32 1 20000
variant bf16_untied "$ck" "$tmp/one_bf16.safetensors" bf16 0 3000
variant bf16_tied "$tmp/tied" "$tmp/tied_bf16.safetensors" bf16 1 3000
# a checkpoint written by 2 ranks (TP2) exports the same way: each tensor whole
# (live only: no committed logits for a checkpoint trained here)
if command -v mpirun >/dev/null 2>&1; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,tcp \
           OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
    $herd data prepare --out "$tmp/tp.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1
    cat >"$tmp/tp2.yaml" <<YAML
model: {preset: tiny, n_layers: 2, d_model: 16, n_heads: 4, n_kv_heads: 2, ffn_dim: 32,
        vocab_size: 260, max_seq_len: 16, rope_theta: 10000}
batch: {micro_batch: 4, ramp: [{after_tokens: 0, batch_tokens: 64, seq_len: 16}]}
optim: {lr: 1.0e-2}
schedule: {warmup_steps: 1}
parallel: {tp: 2}
train: {seed: 7, max_steps: 2, threads: 1, out_dir: $tmp/tp2}
checkpoint: {every: 2}
data: {path: $tmp/tp.bin}
YAML
    if mpirun -np 2 --oversubscribe $herd train "$tmp/tp2.yaml" >"$tmp/tp2.out" 2>&1 \
       && $herd ckpt export "$tmp/tp2" "$tmp/tp2.safetensors" >>"$tmp/tp2.out" 2>&1; then
        keep=$regen; regen=   # no fixture for it
        # its token shard is there: bos/eos are its end-of-text id (byte-level 257) and the one before
        HF_BOS_EOS="256 257"
        variant tp2 "$tmp/tp2" "$tmp/tp2.safetensors" f32 0 20000
        regen=$keep
    else fail hf_export_tp2 "$(tail -3 "$tmp/tp2.out")"; fi
fi

# the round trip: each Hugging Face fixture of the import (tests/fixtures/hf, made by
# transformers) through `herd ckpt import` and back out, in its own dtype
if $herd ckpt import 2>&1 | grep -q "usage: herd ckpt import" && [ -d tests/fixtures/hf ]; then
    for fx in tests/fixtures/hf/*/; do
        fx=${fx%/}; n=${fx##*/}
        "$py" $chk yaml "$fx" "$tmp/rt_$n" >"$tmp/rt_$n.yaml"
        dt=$("$py" -c 'import json,sys; print({"bfloat16": "bf16"}.get(json.load(open(sys.argv[1]))["torch_dtype"], "f32"))' "$fx/config.json")
        if $herd ckpt import "$fx" "$tmp/rt_$n.yaml" >"$tmp/rt_$n.out" 2>&1 \
           && $herd ckpt export "$tmp/rt_$n" "$tmp/rt_hf_$n" --format hf --dtype "$dt" >>"$tmp/rt_$n.out" 2>&1; then
            "$py" $chk roundtrip "$n" "$fx" "$tmp/rt_hf_$n" || fails=$((fails + 1))
        else fail "hf_roundtrip_$n" "$(tail -3 "$tmp/rt_$n.out")"; fi
    done
else echo "SKIP hf_roundtrip: no herd ckpt import or no tests/fixtures/hf in this tree"; fi

# rounding to BF16 moves the logits by about 2^-8 of their scale: a loose bound
"$py" $chk diff "$tmp/herd_bf16_untied.safetensors" "$tmp/herd_f32_untied.safetensors" 5e-2 \
    || fails=$((fails + 1))

# the tokenizer files: a tiktoken rank file (committed, trained by herd) as
# tokenizer.json; transformers' ids equal herd's on texts with contractions,
# numbers, whitespace runs, non-Latin scripts, emoji and special tokens
mkdir "$tmp/texts"
printf "Hello world, it's the GNU GPL!\n  x = 12345678; y=3.14\n" >"$tmp/texts/a.txt"
printf "d\303\251j\303\240 vu \346\227\245\346\234\254\350\252\236 \360\237\230\200\n\n\ttabs   and  spaces \r\n" >"$tmp/texts/b.txt"
printf "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWe'll SEE THEY'RE<|eot_id|>" >"$tmp/texts/c.txt"
printf "    int main(void) { return 0; }\n\n\n// ok?!  \n" >"$tmp/texts/d.txt"
$herd data encode --tokenizer "$fix/ranks.tik" --special "$tmp/texts"/*.txt >"$tmp/herd_ids" 2>"$tmp/enc.err" \
    || fail hf_export_tokenizer_encode "$(cat "$tmp/enc.err")"
$herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1
cat >"$tmp/tok.yaml" <<YAML
model: {preset: tiny, n_layers: 1, d_model: 8, n_heads: 2, n_kv_heads: 1, ffn_dim: 16,
        vocab_size: 856, max_seq_len: 16}
batch: {micro_batch: 1, ramp: [{after_tokens: 0, batch_tokens: 16, seq_len: 16}]}
train: {seed: 1, max_steps: 1, threads: 1, out_dir: $tmp/tokrun}
checkpoint: {every: 1}
data: {path: $tmp/train.bin}
YAML
if $herd train "$tmp/tok.yaml" >"$tmp/tok.out" 2>&1 \
   && $herd ckpt export "$tmp/tokrun" "$tmp/hf_tok" --format hf --tokenizer "$fix/ranks.tik" \
      >>"$tmp/tok.out" 2>&1; then
    "$py" $chk tok "$tmp/hf_tok" "$tmp/texts" "$tmp/herd_ids" "$fix" $regen || fails=$((fails + 1))
    "$py" -c 'import json,sys; c=json.load(open(sys.argv[1])); sys.exit(not (c["bos_token_id"]==600 and c["eos_token_id"]==601))' \
        "$tmp/hf_tok/config.json" && pass hf_export_tokenizer_bos_eos || fail hf_export_tokenizer_bos_eos "config.json"
else fail hf_export_tokenizer "$(tail -3 "$tmp/tok.out")"; fi
# a tokenizer with more ids than the model's vocabulary is refused
$herd ckpt export "$ck" "$tmp/v" --format hf --tokenizer "$fix/ranks.tik" >"$tmp/e4" 2>&1; rc=$?
[ "$rc" -eq 1 ] && grep -q "856 ids, but the model's vocab_size is 260" "$tmp/e4" && [ ! -e "$tmp/v" ] \
    && pass hf_export_tokenizer_vocab_refused || fail hf_export_tokenizer_vocab_refused "rc=$rc $(cat "$tmp/e4")"

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
$herd ckpt export "$ck" "$tmp/w" --format hf --max-shard-size 5XB >"$tmp/e5" 2>&1; rc=$?
[ "$rc" -eq 2 ] && grep -q "max-shard-size 5XB: expected a size" "$tmp/e5" && [ ! -e "$tmp/w" ] \
    && pass hf_export_bad_shard_size || fail hf_export_bad_shard_size "rc=$rc $(cat "$tmp/e5")"
[ "$fails" -eq 0 ]
