#!/bin/sh
# make demo-data: build data/demo-mix/, a four-source training mix in the
# proportions of the Llama 3 paper, from text on the machine (Debian packages
# of scripts/deps.sh):
#   general       dictionary entries (dict-gcide), English fortunes, licence texts
#   math          generated arithmetic and algebra problems with worked answers
#   code          C headers (/usr/include) and Python modules (/usr/lib/python3*)
#   multilingual  German, Spanish and Italian fortunes (fortunes-de/es/it)
# Each source: raw documents -> herd data clean -> cleaned documents; one BPE
# tokenizer (4096 ids, numbers split into digits) is trained on all of them; each
# source is tokenized into a train shard and a held-out validation shard; post/
# holds the post-training conversations (sft, pref, prompts, test), post-style/sS the demo's task
# of post-training seed S (scripts/make_post_style_data.sh). mix.yaml gives the config
# keys (model.vocab_size, data.sources) for `herd train --config`.
# passkeyL.bin (L = 64, 256, 512, 1024): synthetic retrieval documents of exactly L tokens
# (`herd data passkey`), the retrieval source of the long-context stage of length L.
# Idempotent: does nothing while mix.yaml is newer than build/herd and the passkey
# shards are there (a mix built before them gets only them).
set -eu
cd "$(dirname "$0")/.."
herd=build/herd
out=data/demo-mix
raw=$out/raw
if [ ! -x "$herd" ]; then echo "make_demo_mix: $herd is not built (run make)" >&2; exit 1; fi
# post_style_seeds: the post-training task of each seed S in post-style/sS
post_style_seeds() {
    for s in 1 2 3; do
        HERD=$herd sh scripts/make_post_style_data.sh --out "$out/post-style/s$s" --seed "$s" --questions "$s" || exit 1
    done
}
# passkey_shards: 2^21 tokens of 64-token documents (32768: pre-training reads ~40,000,
# so few are seen more than twice), 2^19 tokens of each longer length (the stages read ~2-4 x 10^5)
passkey_shards() {
    for L in 64 256 512 1024; do
        n=$((524288 / L)); [ "$L" = 64 ] && n=$((2097152 / L))
        "$herd" data passkey --tokenizer "$out/tokenizer.model" --len "$L" --docs "$n" --seed "$L" \
            --out "$out/passkey$L.bin" || exit 1
    done
}
if [ -s "$out/mix.yaml" ] && [ "$out/mix.yaml" -nt "$herd" ]; then
    # a mix from before the passkey shards, or with the earlier 2^19-token passkey64
    if [ ! -s "$out/passkey1024.bin" ] || [ ! -s "$out/passkey64.bin" ] \
       || [ "$(wc -c <"$out/passkey64.bin")" -lt 4194304 ]; then echo "== retrieval documents (passkey) =="; passkey_shards; fi
    # a mix from before the post-training task per seed
    [ -s "$out/post-style/s3/test_restated.jsonl" ] || { echo "== post-training task per seed =="; post_style_seeds; }
    echo "data: $out is up to date"; exit 0
fi
mkdir -p "$raw"
start=$(date +%s)

# fortune files -> documents: '%' lines separate fortunes, a NUL separates documents
fortunes_to_docs() {
    awk 'BEGIN { ORS = "" } /^%$/ { printf "%c", 0; next } { print; print "\n" }' "$@"
}
need() { # need DIR-OR-FILE PACKAGE
    if [ ! -e "$1" ]; then echo "make_demo_mix: $1 is missing: apt-get install $2 (scripts/deps.sh)" >&2; exit 1; fi
}
need /usr/share/dictd/gcide.dict.dz dict-gcide
need /usr/share/games/fortunes/fortunes.u8 fortunes
need /usr/share/games/fortunes/de fortunes-de
need /usr/share/games/fortunes/es fortunes-es
need /usr/share/games/fortunes/it fortunes-it

# general: ~2 MB
{
    # dictionary: paragraphs (entries) of the middle of the dictionary, one document each
    zcat /usr/share/dictd/gcide.dict.dz | head -c 3000000 | tail -c 1200000 |
        awk 'BEGIN { RS = ""; ORS = "" } { print; printf "\n%c", 0 }'
    fortunes_to_docs /usr/share/games/fortunes/*.u8 | head -c 700000
    for f in /usr/share/common-licenses/*; do
        [ -f "$f" ] && [ ! -L "$f" ] && { cat "$f"; printf '\0'; }
    done
} >"$raw/general.docs"

# math: ~1.4 MB of generated problems, 4 per document, deterministic (Park-Miller generator)
awk 'function rnd(n) { x = (x * 16807) % 2147483647; return int(x / 2147483647 * n) }
function gcd(a, b,   t) { while (b) { t = a % b; a = b; b = t }; return a }
BEGIN {
    x = 20241125; ORS = ""
    for (d = 0; d < 3000; d++) {
        for (k = 0; k < 4; k++) {
            t = rnd(5)
            if (t == 0) {
                a = 10 + rnd(90); b = 10 + rnd(90); t1 = int(b / 10) * 10; t2 = b % 10
                print "Problem: What is " a " x " b "?\nSolution: " a " x " b " = " a " x " t1 " + " a " x " t2 \
                      " = " a * t1 " + " a * t2 " = " a * b ".\nAnswer: " a * b "\n\n"
            } else if (t == 1) {
                a = 2 + rnd(9); s = rnd(41) - 20; b = rnd(61) - 30; c = a * s + b
                print "Problem: Solve for x: " a "x + " b " = " c ".\nSolution: Subtract " b " from both sides: " \
                      a "x = " c - b ". Divide by " a ": x = " s ".\nAnswer: x = " s "\n\n"
            } else if (t == 2) {
                a = 20 + rnd(980); b = 20 + rnd(980); p = a; q = b
                print "Problem: Find the greatest common divisor of " a " and " b ".\nSolution: "
                while (q) { r = p % q; print p " = " int(p / q) " x " q " + " r ". "; p = q; q = r }
                print "\nAnswer: gcd(" a ", " b ") = " p "\n\n"
            } else if (t == 3) {
                a = 1 + rnd(9); b = 2 + rnd(9); c = 1 + rnd(9); e = 2 + rnd(9)
                n = a * e + c * b; m = b * e; g = gcd(n, m)
                print "Problem: Compute " a "/" b " + " c "/" e ".\nSolution: " a "/" b " + " c "/" e " = (" a " x " e \
                      " + " c " x " b ")/(" b " x " e ") = " n "/" m
                if (g > 1) print " = " n / g "/" m / g
                print ".\nAnswer: " n / g "/" m / g "\n\n"
            } else {
                p = 5 * (1 + rnd(19)); a = 20 * (1 + rnd(50))
                print "Problem: What is " p "% of " a "?\nSolution: " a " x " p " / 100 = " a * p / 100 \
                      ".\nAnswer: " a * p / 100 "\n\n"
            }
        }
        printf "%c", 0
    }
}' >"$raw/math.docs"

# code: ~1.2 MB of C headers and Python modules, one file a document
{
    for f in $(find /usr/include -maxdepth 2 -name '*.h' -size -40k | sort | head -n 400); do
        cat "$f"; printf '\0'
    done | head -c 700000
    for f in $(find /usr/lib/python3* -maxdepth 1 -name '*.py' -size -60k 2>/dev/null | sort | head -n 200); do
        cat "$f"; printf '\0'
    done | head -c 500000
} >"$raw/code.docs"

# multilingual: ~1.2 MB
{
    fortunes_to_docs /usr/share/games/fortunes/de/*.u8 | head -c 500000
    fortunes_to_docs /usr/share/games/fortunes/es/*.u8 | head -c 350000
    fortunes_to_docs /usr/share/games/fortunes/it/*.u8 | head -c 350000
} >"$raw/multilingual.docs"

echo "== clean =="
for s in general math code multilingual; do
    sets=""
    # code keeps its '#' lines and its repeated idioms; math documents repeat by design
    [ "$s" = code ] && sets="--set curate.max_symbol_ratio=1000 --set curate.max_dup_ngram_frac=0.9"
    [ "$s" = math ] && sets="--set curate.max_dup_ngram_frac=1"
    echo "-- $s"
    # shellcheck disable=SC2086
    "$herd" data clean $sets --report "$out/$s.clean.json" --out "$out/$s.docs" "$raw/$s.docs"
done

echo "== tokenizer (3840 regular + 256 special = 4096 ids) =="
# --split-digits: numbers are encoded one digit per token (LLaMA 1/2's choice),
# so that the post-training demo's arithmetic is learnable by a tiny model
"$herd" data train-tokenizer --vocab-size 3840 --split-digits --out "$out/tokenizer.model" \
    "$out/general.docs" "$out/math.docs" "$out/code.docs" "$out/multilingual.docs"

echo "== shards =="
for s in general math code multilingual; do
    "$herd" data tokenize --tokenizer "$out/tokenizer.model" --out "$out/$s.bin" \
        --val "$out/$s.val.bin" --val-fraction 0.05 "$out/$s.docs"
done

echo "== retrieval documents for the long-context stages (herd data passkey) =="
passkey_shards

echo "== post-training data (herd post demo-data: no-carry arithmetic in the chat format) =="
rm -rf "$out/post"
"$herd" post demo-data --out "$out/post" --digits 2 --train 1000 --pref 2000 --prompts 2000 --test 500
# the demo's task, one instance per post-training seed (post.env's SEEDS): the
# seed's own questions, half of the SFT answers restating the question, the
# preference for the bare number in the pairs only
rm -rf "$out/post-style"
post_style_seeds

cat >"$out/mix.yaml.tmp" <<YAML
# The demo mix (make demo-data): the paper's default proportions.
model:
  vocab_size: 4096
data:
  sources:
    - {name: general,      path: $out/general.bin,      val_path: $out/general.val.bin,      weight: 0.50}
    - {name: math,         path: $out/math.bin,         val_path: $out/math.val.bin,         weight: 0.25}
    - {name: code,         path: $out/code.bin,         val_path: $out/code.val.bin,         weight: 0.17}
    - {name: multilingual, path: $out/multilingual.bin, val_path: $out/multilingual.val.bin, weight: 0.08}
YAML
mv "$out/mix.yaml.tmp" "$out/mix.yaml"
rm -rf "$raw" "$out"/*.docs
echo "data: $out built in $(( $(date +%s) - start )) s: $(du -sh "$out" | cut -f1); config keys in $out/mix.yaml"
