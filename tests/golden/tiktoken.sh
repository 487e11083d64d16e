#!/bin/sh
# herd's BPE encoder against Python tiktoken (pip): a vocabulary trained by
# `herd data train-tokenizer`, loaded into tiktoken from the same rank file and
# pattern, must give the same ids on a mixed text set (tests/golden/tiktoken_check.py).
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP tiktoken: build/herd not built"; exit 0; fi
py=/usr/bin/python3
if ! $py -c 'import tiktoken' 2>/dev/null; then
    $py -m pip install --quiet --break-system-packages tiktoken >/dev/null 2>&1 ||
        $py -m pip install --quiet tiktoken >/dev/null 2>&1
fi
if ! $py -c 'import tiktoken' 2>/dev/null; then
    echo "SKIP tiktoken_equal: Python tiktoken is not installed and 'pip install tiktoken' failed"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# training text that is on every Debian machine: licences and C headers
cat /usr/share/common-licenses/* /usr/include/stdio.h /usr/include/stdlib.h >"$tmp/corpus.txt" 2>/dev/null
if ! $herd data train-tokenizer --vocab-size 3000 --out "$tmp/ranks.tik" "$tmp/corpus.txt" >"$tmp/log" 2>&1; then
    echo "FAIL tiktoken_train: $(cat "$tmp/log")"; exit 1
fi
echo "PASS tiktoken_train"
$py tests/golden/tiktoken_check.py "$herd" "$tmp/ranks.tik" "$tmp" || exit 1
# every code point's class (\p{L}, \p{N}) as tiktoken's regex tables have it
$py tests/golden/tiktoken_unicode.py "$herd" "$tmp/ranks.tik" "$tmp" || exit 1
