#!/bin/sh
# herd on Hugging Face checkpoints made by transformers (tests/fixtures/hf,
# tests/golden/hf_make_fixtures.py): each fixture's logits and loss within 1e-4
# of transformers' (build/tests/hf_logits prints the max relative difference).
# The check must be able to fail: without its rope_scaling the Llama 3.1
# fixture's logits must differ. When transformers is importable (HERD_HF_PYTHON,
# default /usr/bin/python3) the fixtures are re-made live and checked again.
set -u
cd "$(dirname "$0")/../.."
if [ ! -x build/tests/hf_logits ]; then echo "SKIP hf_import: build/tests/hf_logits not built"; exit 0; fi
fail=0
check_all() {
    for f in "$1"/*/; do
        build/tests/hf_logits "${f%/}" || { echo "FAIL hf_import: ${f%/}"; fail=1; }
    done
}
check_all tests/fixtures/hf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r tests/fixtures/hf/llama31_sharded "$tmp/noscale"
/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["rope_scaling"]=None; print(json.dumps(c))' "$tmp/noscale/config.json" \
    > "$tmp/noscale/c.json" && mv "$tmp/noscale/c.json" "$tmp/noscale/config.json"
if build/tests/hf_logits "$tmp/noscale" >/dev/null 2>&1; then
    echo "FAIL hf_import: the Llama 3.1 fixture matched without its rope_scaling (the check cannot fail)"; fail=1
fi
py=${HERD_HF_PYTHON:-/usr/bin/python3}
if "$py" -c 'import torch, transformers, safetensors' 2>/dev/null; then
    "$py" tests/golden/hf_make_fixtures.py "$tmp/live" 2>/dev/null || { echo "FAIL hf_import: hf_make_fixtures.py"; fail=1; }
    check_all "$tmp/live"
else
    echo "hf_import: transformers not importable by $py: fixtures only (HERD_HF_PYTHON=/path/to/python for the live run)"
fi
[ $fail = 0 ] && echo "PASS hf_import"
exit $fail
