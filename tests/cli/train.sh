#!/bin/sh
# herd train end to end on real text: the loss falls, the same config and seed
# give a bit-identical loss curve, and bad data input is refused clearly.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP train_cli: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# real text shipped by Debian's base-files
$herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 \
    /usr/share/common-licenses/Apache-2.0 >/dev/null 2>"$tmp/prep.err" \
    || { fail data_prepare "$(cat "$tmp/prep.err")"; exit 1; }

cat >"$tmp/cfg.yaml" <<YAML
model:
  preset: tiny
batch:
  micro_batch: 4
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
optim:
  lr: 3.0e-3
  min_lr: 3.0e-4
schedule:
  warmup_steps: 5
  decay_steps: 60
train:
  max_steps: 40
  log_every: 10
  threads: 2
data:
  path: $tmp/train.bin
YAML

run() { # run NAME [extra args]: trains into $tmp/NAME
    name=$1; shift
    $herd train "$tmp/cfg.yaml" --set "train.out_dir=$tmp/$name" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
}
losses() { sed 's/.*"loss":\([^,]*\),.*/\1/' "$tmp/$1/metrics.jsonl"; }

if run a && run b; then
    if [ "$(losses a | wc -l)" -eq 40 ] && [ "$(losses a)" = "$(losses b)" ]; then
        pass train_deterministic
    else
        fail train_deterministic "loss curves differ between two identical runs"
    fi
    first=$(losses a | head -1); last=$(losses a | tail -5 | awk '{s += $1} END {print s / NR}')
    if awk -v f="$first" -v l="$last" 'BEGIN {exit !(l < f - 1.5)}'; then
        pass train_loss_falls
    else
        fail train_loss_falls "first loss $first, mean of last 5 $last"
    fi
    grep -q 'P_matmul' "$tmp/a.out" && grep -q '"mfu":' "$tmp/a/metrics.jsonl" \
        && [ -s "$tmp/a/config.yaml" ] && pass train_outputs \
        || fail train_outputs "header, metrics or saved config missing"
    if $herd config "$tmp/a/config.yaml" >/dev/null 2>&1; then pass saved_config_reloads;
    else fail saved_config_reloads "the saved config.yaml does not load"; fi
else
    fail train_runs "$(cat "$tmp/a.err" "$tmp/b.err" 2>/dev/null | tail -5)"
fi

# a held-out shard: the validation loss is logged every eval_every steps and falls
$herd data prepare --out "$tmp/val.bin" /usr/share/common-licenses/LGPL-2.1 >/dev/null 2>&1
if run d --set "data.val_path=$tmp/val.bin" --set train.eval_every=10 --set train.eval_batches=2; then
    vals=$(sed -n 's/.*"val_loss":\([^,]*\),.*/\1/p' "$tmp/d/metrics.jsonl")
    first=$(echo "$vals" | head -1); lastv=$(echo "$vals" | tail -1)
    if [ "$(echo "$vals" | wc -l)" -eq 4 ] && awk -v f="$first" -v l="$lastv" 'BEGIN {exit !(l < f)}'; then
        pass train_val_loss
    else
        fail train_val_loss "val losses: $(echo $vals)"
    fi
else
    fail train_val_loss "$(tail -3 "$tmp/d.err")"
fi

# a different seed gives a different curve
if run c --set train.seed=7 --set train.max_steps=3 && \
   [ "$(losses c | head -3)" != "$(losses a | head -3)" ]; then pass train_seed_matters;
else fail train_seed_matters "seed 7 gave the same losses"; fi

# the step's peak memory in every step line; full recompute lowers it and
# leaves the loss curve bitwise the same
peaks() { sed -n 's/.*"mem_peak_mib":\([0-9.]*\).*/\1/p' "$tmp/$1/metrics.jsonl"; }
if run rc --set train.recompute=full --set train.max_steps=3 && grep -q 'activations: recompute full' "$tmp/rc.out"; then
    pn=$(peaks a | sed -n 3p); pf=$(peaks rc | sed -n 3p)
    if [ "$(peaks a | wc -l)" -eq 40 ] && [ "$(losses rc)" = "$(losses a | head -3)" ] &&
       awk -v n="$pn" -v f="$pf" 'BEGIN {exit !(f > 0 && f < n)}'; then
        pass "train_recompute_full_peak_memory (step 3: $pn MiB kept, $pf MiB recomputed; same losses)"
    else
        fail train_recompute_full_peak_memory "peaks none $pn full $pf; losses $(losses rc | tr '\n' ' ')"
    fi
else
    fail train_recompute_full_peak_memory "$(tail -3 "$tmp/rc.err")"
fi

# BF16 compute (GEMM inputs rounded to bfloat16, fp32 sums, fp32 master weights)
# against the fp32 run: the median step's loss within 0.5% and the mean of the
# last 5 within 1%, and not the fp32 curve itself. (Single steps differ more
# inside a loss spike of this lr-3e-3 run: 1.7% at step 39, measured.)
if run bf --set train.precision=bf16 && grep -q '^precision: bf16' "$tmp/bf.out"; then
    losses a >"$tmp/a.l"; losses bf >"$tmp/bf.l"
    median=$(paste -d' ' "$tmp/a.l" "$tmp/bf.l" | awk '{r = ($2 - $1) / $1; print (r < 0 ? -r : r)}' |
             sort -g | awk '{v[NR] = $1} END {printf "%.5f", v[int((NR + 1) / 2)]}')
    tail5=$(paste -d' ' "$tmp/a.l" "$tmp/bf.l" | tail -5 | awk '{a += $1; b += $2} END {r = (b - a) / a; printf "%.5f", r < 0 ? -r : r}')
    if [ "$(losses bf | wc -l)" -eq 40 ] && [ "$(losses bf)" != "$(losses a)" ] &&
       awk -v m="$median" -v t="$tail5" 'BEGIN {exit !(m < 0.005 && t < 0.01)}'; then
        pass "train_bf16_close_to_fp32 (median step relative difference $median, last 5 steps $tail5)"
    else
        fail train_bf16_close_to_fp32 "median relative difference $median, last 5 steps $tail5"
    fi
else
    fail train_bf16_close_to_fp32 "$(tail -3 "$tmp/bf.err")"
fi

expect_error() { # NAME PATTERN [args]: non-zero exit and stderr matching PATTERN
    name=$1; pattern=$2; shift 2
    if $herd train "$tmp/cfg.yaml" --set "train.out_dir=$tmp/$name" "$@" >/dev/null 2>"$tmp/err"; then
        fail "$name" "exit status 0"
    elif grep -q -- "$pattern" "$tmp/err"; then
        pass "$name"
    else
        fail "$name" "stderr: $(cat "$tmp/err")"
    fi
}
expect_error data_missing "$tmp/nope.bin" --set "data.path=$tmp/nope.bin"
head -c 1000 "$tmp/train.bin" >"$tmp/trunc.bin"
expect_error data_truncated "$tmp/trunc.bin.*truncated" --set "data.path=$tmp/trunc.bin"
expect_error data_vocab_too_large "vocab_size" --set model.vocab_size=200
expect_error data_path_unset "data.path" --set data.path=
expect_error precision_unknown "train.precision.*fp8" --set train.precision=fp8
[ "$fails" -eq 0 ]
