#!/bin/sh
# Build data/demo/train.bin and data/demo/val.bin: byte-level token shards of
# real English text that every Debian system ships (base-files' license texts
# in /usr/share/common-licenses), the last ~5% of the tokens held out.
# Idempotent: does nothing while both shards are newer than build/herd (a new
# herd may tokenize differently, so it rebuilds them).
set -eu
cd "$(dirname "$0")/.."
herd=build/herd
src=/usr/share/common-licenses
out=data/demo
if [ ! -x "$herd" ]; then
    echo "make_demo_data: $herd is not built (run make)" >&2
    exit 1
fi
if [ -s "$out/train.bin" ] && [ -s "$out/val.bin" ] &&
    [ "$out/train.bin" -nt "$herd" ] && [ "$out/val.bin" -nt "$herd" ]; then
    echo "data: $out is up to date"
    exit 0
fi
# One copy of each text: several names are links to one file (GPL -> GPL-3).
# The names have no spaces, so a newline-separated list is safe to split.
files=$(for f in "$src"/*; do [ -f "$f" ] && readlink -f "$f"; done | sort -u)
if [ -z "$files" ]; then
    echo "make_demo_data: no text found in $src (is base-files installed?)" >&2
    exit 1
fi
mkdir -p "$out"
# shellcheck disable=SC2086
"$herd" data prepare --out "$out/train.bin" --val "$out/val.bin" --val-fraction 0.05 $files
