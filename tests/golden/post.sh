#!/bin/sh
# herd's DPO and reward-model losses and gradients against PyTorch
# (tests/golden/post_ref.py over the model of tests/golden/llama_ref.py).
set -u
cd "$(dirname "$0")/../.."
if [ ! -x build/tests/post_dump ]; then echo "SKIP post_golden: build/tests/post_dump not built"; exit 0; fi
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    echo "SKIP post_golden: PyTorch is not installed for /usr/bin/python3 (make deps installs python3-torch)"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/tests/post_dump "$tmp" >&2 || { echo "FAIL post_dump"; exit 1; }
/usr/bin/python3 tests/golden/post_ref.py "$tmp"
