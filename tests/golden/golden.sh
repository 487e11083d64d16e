#!/bin/sh
# herd's model against an independent PyTorch reference: logits, loss and every
# parameter gradient within 1e-4 (tests/golden/llama_ref.py).
set -u
cd "$(dirname "$0")/../.."
if [ ! -x build/tests/golden_dump ]; then echo "SKIP golden: build/tests/golden_dump not built"; exit 0; fi
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    echo "SKIP golden: PyTorch is not installed for /usr/bin/python3 (make deps installs python3-torch)"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/tests/golden_dump "$tmp" >&2 || { echo "FAIL golden_dump"; exit 1; }
/usr/bin/python3 tests/golden/llama_ref.py "$tmp"
