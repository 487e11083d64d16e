"""tiktoken_unicode.py — every code point pre-splits in herd as in tiktoken.

The rank file of herd's test vocabulary gets, for every code point c (all of
0..0x10FFFF but the surrogates), the tokens "a"+c and "1"+c. A piece that is a
whole token encodes as that one token, so "a"+c is one id exactly when the
pre-split keeps c with the letter (c in \\p{L}) and "1"+c when it keeps c with the
digit (c in \\p{N}): a code point whose class differs between herd's Unicode
tables and tiktoken's regex tables gives different ids. Prints PASS/FAIL and
the first differing code points.

usage: python3 tiktoken_unicode.py HERD RANKS WORKDIR
"""
import base64
import subprocess
import sys

import tiktoken

HERD, RANKS, WORK = sys.argv[1:4]
PAT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

ranks = {}
with open(RANKS, "rb") as f:
    for line in f:
        if line.strip():
            tok, r = line.split()
            ranks[base64.b64decode(tok)] = int(r)
cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
for c in cps:
    for lead in (b"a", b"1"):
        t = lead + chr(c).encode()
        if t not in ranks:
            ranks[t] = len(ranks)
path = f"{WORK}/ranks_unicode.tik"
with open(path, "wb") as f:
    for t, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        f.write(base64.b64encode(t) + b" %d\n" % r)
enc = tiktoken.Encoding(name="herd-unicode", pat_str=PAT, mergeable_ranks=ranks, special_tokens={})

# one line per code point: "a"+c, then "1"+c; "\n" keeps the lines apart
lines = ["a" + chr(c) + "\n1" + chr(c) + "\n" for c in cps]
text = "".join(lines)
with open(f"{WORK}/unicode.txt", "wb") as f:
    f.write(text.encode("utf-8", "surrogatepass"))
got = subprocess.run([HERD, "data", "encode", "--tokenizer", path, f"{WORK}/unicode.txt"],
                     check=True, capture_output=True).stdout.decode().split()
got = [int(x) for x in got]
want = enc.encode_ordinary(text)
if got == want:
    print(f"PASS tiktoken_unicode_every_code_point ({len(cps)} code points, tiktoken {tiktoken.__version__})")
    sys.exit(0)


def herd_each(texts, tag):
    """herd's ids of each text (a file each, one herd process)."""
    paths = []
    for k, t in enumerate(texts):
        paths.append(f"{WORK}/{tag}{k}.txt")
        with open(paths[-1], "wb") as f:
            f.write(t.encode("utf-8", "surrogatepass"))
    out = subprocess.run([HERD, "data", "encode", "--tokenizer", path] + paths,
                         check=True, capture_output=True).stdout.decode().split("\n")
    return [[int(x) for x in out[k].split()] for k in range(len(texts))]


# narrow down: chunks of lines, then the lines of the differing chunks
step = 1024
chunks = ["".join(lines[k:k + step]) for k in range(0, len(lines), step)]
bad = []
for k, ids in enumerate(herd_each(chunks, "chunk")):
    if ids != enc.encode_ordinary(chunks[k]) and len(bad) < 10:
        part = lines[k * step:(k + 1) * step]
        for j, ids1 in enumerate(herd_each(part, "line")):
            if ids1 != enc.encode_ordinary(part[j]) and len(bad) < 10:
                bad.append(f"U+{cps[k * step + j]:04X}")
print(f"FAIL tiktoken_unicode_every_code_point: differ at {' '.join(bad) or '(a chunk boundary)'}")
sys.exit(1)
