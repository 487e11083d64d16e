#!/bin/sh
# herd config on bad input: each mistake exits non-zero with a message that
# names the file (or --set) and the key; good input prints YAML that reads back.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP config_cli: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# expect_error NAME "PATTERN..." ARGS...: herd config ARGS fails, and stderr
# contains every |-separated fixed string of PATTERN.
expect_error() {
    name=$1; patterns=$2; shift 2
    if $herd config "$@" >"$tmp/out" 2>"$tmp/err"; then
        fail "$name" "exit status 0"
        return
    fi
    old_ifs=$IFS; IFS='|'
    for p in $patterns; do
        if ! grep -qF -- "$p" "$tmp/err"; then
            IFS=$old_ifs
            fail "$name" "stderr lacks '$p': $(cat "$tmp/err")"
            return
        fi
    done
    IFS=$old_ifs
    pass "$name"
}

# a file: config NAME TEXT -> $tmp/NAME.yaml
config() { printf '%s' "$2" >"$tmp/$1.yaml"; }

expect_error config_missing_file "$tmp/nope.yaml|cannot open config" "$tmp/nope.yaml"

config unknown_key 'model:
  preset: tiny
  n_layer: 3
'
expect_error config_unknown_key "unknown_key.yaml:3|model.n_layer|unknown key" "$tmp/unknown_key.yaml"

config unknown_section 'optimizer:
  lr: 1e-3
'
expect_error config_unknown_section "unknown_section.yaml:2: key 'optimizer.lr': unknown section" \
    "$tmp/unknown_section.yaml"

config unknown_preset 'model:
  preset: 7b
'
expect_error config_unknown_preset "unknown_preset.yaml:2|model.preset|7b|405b" "$tmp/unknown_preset.yaml"

config wrong_type 'optim:
  lr: fast
'
expect_error config_wrong_type "wrong_type.yaml:2|optim.lr|fast" "$tmp/wrong_type.yaml"

config mapping_for_scalar 'model:
  n_layers: {a: 1}
'
expect_error config_mapping_for_scalar "mapping_for_scalar.yaml:2|model.n_layers|mapping" \
    "$tmp/mapping_for_scalar.yaml"

config kv_heads 'model:
  n_heads: 6
  n_kv_heads: 4
  d_model: 96
'
expect_error config_kv_heads_divide "kv_heads.yaml:3|model.n_kv_heads|n_heads (6) is not divisible by n_kv_heads (4)" \
    "$tmp/kv_heads.yaml"

config heads 'model:
  d_model: 100
  n_heads: 8
'
expect_error config_heads_divide "heads.yaml:3|model.n_heads|d_model (100) is not divisible by n_heads (8)" \
    "$tmp/heads.yaml"

config bound 'batch:
  micro_batch: 0
'
expect_error config_out_of_range "bound.yaml:2|batch.micro_batch|out of range" "$tmp/bound.yaml"

config micro 'batch:
  micro_batch: 3
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 128}
'
expect_error config_micro_batch_divides "micro.yaml:2|batch.micro_batch|not a multiple of micro_batch 3" "$tmp/micro.yaml"

config syntax 'model:
  n_layers: 2
   d_model: 64
'
expect_error config_yaml_syntax "syntax.yaml:3|YAML syntax error" "$tmp/syntax.yaml"

expect_error config_set_wrong_type "herd: --set optim.lr: expected a number, got 'abc'" --set optim.lr=abc
expect_error config_set_unknown_key "herd: --set optim.lrr: unknown key" --set optim.lrr=1
expect_error config_set_unknown_preset "--set|model.preset|huge" --set model.preset=huge
expect_error config_unknown_argument "usage" --bogus

# good input: the printed YAML is itself a config that resolves to the same
config good 'model:
  preset: 100m
  n_layers: 4
batch:
  ramp:
    - {after_tokens: 0, batch_tokens: 65536, seq_len: 512}
    - {after_tokens: 1M, batch_tokens: 131072, seq_len: 512}
'
if $herd config "$tmp/good.yaml" --set optim.lr=3e-4 >"$tmp/resolved.yaml" 2>"$tmp/err" &&
    $herd config "$tmp/resolved.yaml" >"$tmp/again.yaml" 2>>"$tmp/err" &&
    cmp -s "$tmp/resolved.yaml" "$tmp/again.yaml" &&
    grep -q '^  n_layers: 4$' "$tmp/resolved.yaml" && grep -q '^  lr: 0.0003$' "$tmp/resolved.yaml" &&
    grep -q 'after_tokens: 1000000, batch_tokens: 131072' "$tmp/resolved.yaml"; then
    pass config_resolved_round_trip
else
    fail config_resolved_round_trip "$(cat "$tmp/err")"
fi

if $herd config --keys >"$tmp/keys" && grep -q '^batch.ramp' "$tmp/keys" && grep -q '^monitor.peak_tflops' "$tmp/keys"; then
    pass config_keys
else
    fail config_keys "herd config --keys lacks keys"
fi

for f in configs/*.yaml; do
    n=config_ships_$(basename "$f" .yaml)
    if $herd config "$f" >/dev/null 2>"$tmp/err"; then pass "$n"; else fail "$n" "$(cat "$tmp/err")"; fi
done

# nesting: libyaml's time grows with the square of the depth (100,000 levels:
# half a minute), a config needs 3 levels; deeper than 64 is refused at once,
# with the line where the limit is passed
awk 'BEGIN { printf "model:\n  preset: "; for (i = 0; i < 100000; i++) printf "[";
             for (i = 0; i < 100000; i++) printf "]"; printf "\n" }' >"$tmp/deep.yaml"
herd_plain=$herd; herd="timeout 10 $herd_plain"
expect_error config_deep_nesting "deep.yaml:2: YAML nested deeper than 64 levels" "$tmp/deep.yaml"
awk 'BEGIN { for (i = 0; i < 70; i++) { for (j = 0; j < i; j++) printf " "; printf "k%d:\n", i } }' \
    >"$tmp/deep_block.yaml"
expect_error config_deep_block "deep_block.yaml:65: YAML nested deeper than 64 levels" "$tmp/deep_block.yaml"
expect_error config_deep_set "--set batch.ramp: YAML nested deeper than 64 levels" \
    --set "batch.ramp=$(awk 'BEGIN { for (i = 0; i < 100000; i++) printf "[" }')"
# size: a config is at most 1 MiB
awk 'BEGIN { for (i = 0; i < 16385; i++) printf "# %061d\n", i }' >"$tmp/large.yaml"
expect_error config_too_large "large.yaml: config larger than 1048576 bytes" "$tmp/large.yaml"
mkdir "$tmp/dir.yaml"
expect_error config_directory "dir.yaml: cannot read config: Is a directory" "$tmp/dir.yaml"
herd=$herd_plain

[ "$fails" -eq 0 ]
