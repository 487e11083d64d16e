#!/bin/sh
# Bad configs are refused with the file, the line and the key, and exit non-zero.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP config_cli: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect NAME PATTERN YAML [herd config args]: herd config on YAML fails, stderr matches
expect() {
    name=$1; pattern=$2; yaml=$3; shift 3
    printf '%s\n' "$yaml" >"$tmp/$name.yaml"
    if $herd config "$tmp/$name.yaml" "$@" >/dev/null 2>"$tmp/err"; then
        echo "FAIL $name: exit status 0"; fails=$((fails + 1))
    elif grep -q -- "$pattern" "$tmp/err"; then
        echo "PASS $name"
    else
        echo "FAIL $name: stderr was: $(cat "$tmp/err")"; fails=$((fails + 1))
    fi
}

if $herd config "$tmp/absent.yaml" >/dev/null 2>"$tmp/err" || ! grep -q "$tmp/absent.yaml: cannot open config" "$tmp/err"; then
    echo "FAIL config_missing: $(cat "$tmp/err")"; fails=$((fails + 1))
else echo "PASS config_missing"; fi

expect unknown_key "unknown_key.yaml:3: key 'model.n_layer'" 'model:
  d_model: 64
  n_layer: 2'
expect unknown_section "unknown_section.yaml:2: key 'modle.n_layers'" 'modle:
  n_layers: 2'
expect wrong_type_int "wrong_type_int.yaml:2: key 'model.n_layers': expected an integer" 'model:
  n_layers: two'
expect wrong_type_float "wrong_type_float.yaml:2: key 'optim.lr': expected a number" 'optim:
  lr: fast'
expect wrong_type_mapping "key 'optim.lr': expected a single value" 'optim:
  lr: {a: 1}'
expect out_of_range "key 'model.n_heads': value 0 out of range" 'model:
  n_heads: 0'
expect heads_not_divisible "heads_not_divisible.yaml:4: key 'model.n_kv_heads': n_heads (6) is not divisible by n_kv_heads (4)" 'model:
  d_model: 96
  n_heads: 6
  n_kv_heads: 4'
expect dmodel_not_divisible "key 'model.n_heads': d_model (100) is not divisible by n_heads (8)" 'model:
  d_model: 100
  n_heads: 8
  n_kv_heads: 2'
expect ramp_not_multiple "key 'batch.micro_batch'" 'batch:
  micro_batch: 3
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 128}'
expect yaml_syntax "yaml_syntax.yaml:.*YAML syntax error" 'model: [unclosed'
expect unknown_preset "unknown preset" 'model:
  preset: 7b'
expect set_unknown "--set optim.lrr" 'optim:
  lr: 1e-3' --set optim.lrr=1

# a good file, presets and overrides resolve
printf 'model:\n  preset: 405b\n' >"$tmp/good.yaml"
if $herd config "$tmp/good.yaml" --set optim.lr=1e-4 >"$tmp/out" 2>&1 &&
   grep -q 'n_layers: 126' "$tmp/out" && grep -q 'lr: 0.0001' "$tmp/out" &&
   grep -q 'after_tokens: 2870000000000, batch_tokens: 16777216, seq_len: 8192' "$tmp/out"; then
    echo "PASS preset_and_override"
else echo "FAIL preset_and_override: $(cat "$tmp/out")"; fails=$((fails + 1)); fi
[ "$fails" -eq 0 ]
