#!/bin/sh
# Build data/demo/{train,val}.bin from real English text that every Debian
# system ships (base-files' /usr/share/common-licenses), byte-level tokens.
set -eu
cd "$(dirname "$0")/.."
out=data/demo
if [ -s $out/train.bin ] && [ -s $out/val.bin ] && [ $out/train.bin -nt build/herd ]; then
    echo "data: $out is up to date"; exit 0
fi
mkdir -p $out
# one copy of each text (GPL is a link to GPL-3, and so on)
files=$(for f in /usr/share/common-licenses/*; do readlink -f "$f"; done | sort -u)
# shellcheck disable=SC2086
build/herd data prepare --out $out/train.bin --val $out/val.bin --val-fraction 0.05 $files
