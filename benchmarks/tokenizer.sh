#!/bin/sh
# Tokenizer throughput: herd's C encoder against Python tiktoken, on the same
# text with the same rank file and pattern, one thread each, in the same run.
# The rank file is trained here (vocab 16384) on the text itself: licences,
# English and German fortunes, C headers (about 4 MB).
# usage: sh benchmarks/tokenizer.sh   (prints JSON lines; benchmarks/run.sh logs them)
set -eu
cd "$(dirname "$0")/.."
herd=build/herd
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    cat /usr/share/common-licenses/* 2>/dev/null
    cat /usr/share/games/fortunes/*.u8 /usr/share/games/fortunes/de/*.u8 2>/dev/null | head -c 2500000
    for f in $(find /usr/include -maxdepth 1 -name '*.h' | sort | head -n 300); do cat "$f"; done | head -c 1000000
} >"$tmp/text.txt"
"$herd" data train-tokenizer --vocab-size 16384 --out "$tmp/ranks.tik" "$tmp/text.txt" >/dev/null
OMP_NUM_THREADS=1 build/benchmarks/bench_tokenizer "$tmp/ranks.tik" "$tmp/text.txt" 5
if ! $py -c 'import tiktoken' 2>/dev/null; then
    echo "tokenizer bench: Python tiktoken not installed (pip install tiktoken); herd's number alone" >&2
    exit 0
fi
RAYON_NUM_THREADS=1 $py - "$tmp/ranks.tik" "$tmp/text.txt" <<'PY'
import base64, json, sys, time
import tiktoken
ranks = {}
for line in open(sys.argv[1], "rb"):
    if line.strip():
        tok, r = line.split()
        ranks[base64.b64decode(tok)] = int(r)
pat = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
enc = tiktoken.Encoding(name="bench", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
raw = open(sys.argv[2], "rb").read()
text = raw.decode("utf-8", errors="replace")
nbytes = len(text.encode("utf-8"))
best, n = 1e30, 0
for _ in range(5):
    t0 = time.perf_counter()
    ids = enc.encode_ordinary(text)   # one thread: encode_ordinary does not use the batch pool
    best = min(best, time.perf_counter() - t0)
    n = len(ids)
print(json.dumps({"bench": "tokenizer", "impl": "tiktoken " + tiktoken.__version__, "vocab": len(ranks),
                  "bytes": nbytes, "tokens": n, "seconds": round(best, 4), "MB_per_s": round(nbytes / best / 1e6, 2)}))
PY
