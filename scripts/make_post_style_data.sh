#!/bin/sh
# The post-training demo's task: no-carry arithmetic (herd post demo-data) where
# the wanted answer is the number alone, and the SFT data does not say so.
#
#   sh scripts/make_post_style_data.sh --out DIR [--seed S] [--questions Q] [--restated F]
#
# DIR gets the files of `herd post demo-data --seed Q` (default 1; the demo's sizes:
# 2-digit operands, 1000 SFT, 2000 preference, 2000 prompts, 500 held-out), then:
#   sft.jsonl     a fraction F (default 0.5) of the answers restate the question
#                 ("15+20=35", "x=56" instead of "35", "56"): demonstrations of
#                 two writers, and nothing in them says which form is wanted
#   pref.jsonl    half of the pairs are correct bare answer vs the same answer
#                 restated (the preference for the bare form: information only
#                 the preference data carries), half correct vs a near miss
#   pref_val.jsonl  the last 200 pairs, their questions out of pref.jsonl and
#                 of pref_questions.jsonl: held-out pairs of the reward model
#   test_restated.jsonl  the held-out questions with the restated answers:
#                 exact accuracy on it + on test.jsonl = the share of questions
#                 answered with the right number in either form
# test.jsonl, pref_questions.jsonl and prompts.jsonl are demo-data's (bare
# answers: the wanted form). The choices are made by a Park-Miller generator
# seeded by S, so any awk gives the same files.
set -eu
cd "$(dirname "$0")/.."
herd=${HERD:-build/herd}
out=""; seed=1; frac=0.5; questions=1
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --questions) questions=${2:?}; shift 2 ;;
        --restated) frac=${2:?}; shift 2 ;;
        *) echo "make_post_style_data: unexpected argument '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { echo "usage: make_post_style_data.sh --out DIR [--seed S] [--questions Q] [--restated F]" >&2; exit 2; }
for v in "--seed $seed" "--questions $questions"; do
    case ${v#* } in ''|*[!0-9]*|0) echo "make_post_style_data: ${v% *}: expected an integer >= 1, got '${v#* }'" >&2; exit 2 ;; esac
done
awk -v f="$frac" 'BEGIN { exit !(f ~ /^(0|1|0?\.[0-9]+)$/ && f >= 0 && f <= 1) }' ||
    { echo "make_post_style_data: --restated: expected a fraction in [0, 1], got '$frac'" >&2; exit 2; }
[ -x "$herd" ] || { echo "make_post_style_data: $herd is not built (run make)" >&2; exit 1; }

mkdir -p "$out"
"$herd" post demo-data --out "$out" --digits 2 --train 1000 --pref 2000 --prompts 2000 --test 500 --seed "$questions"

# restate(question, answer): "15+20=?" -> "15+20=35", "x+13=69, x=?" -> "x=56".
# The files are demo-data's fixed JSON lines: split on '"', the question is
# field 10 and the answer field 18 (sft: the assistant's content; pref: the
# rejected answer, the chosen one is field 14).
style='function rnd() { x = (x * 16807) % 2147483647; return x / 2147483647 }
function restate(q, a) { if (q ~ /^x\+/) return "x=" a; sub(/\?$/, a, q); return q }
BEGIN { FS = OFS = "\""; x = 1 + (seed * 48271) % 2147483646; for (i = 0; i < 10; i++) rnd() }'
for f in sft.jsonl pref.jsonl test.jsonl; do
    [ "$(awk -F'"' 'NF != 19' "$out/$f" | wc -l)" = 0 ] ||
        { echo "make_post_style_data: $out/$f: a line not in the form of herd post demo-data" >&2; exit 1; }
done
awk -v seed="$seed" -v frac="$frac" "$style"'
    { if (rnd() < frac) $18 = restate($10, $18); n += $18 !~ /^[0-9]+$/; print }
    END { printf "make_post_style_data: sft.jsonl: %d of %d answers restated\n", n, NR > "/dev/stderr" }' \
    "$out/sft.jsonl" >"$out/sft.jsonl.tmp"
awk -v seed="$((seed + 1))" "$style"'
    { if (rnd() < 0.5) { $18 = restate($10, $14); n++ }; print }
    END { printf "make_post_style_data: pref.jsonl: %d of %d pairs bare vs restated\n", n, NR > "/dev/stderr" }' \
    "$out/pref.jsonl" >"$out/pref.jsonl.tmp"
awk "$style"'{ $18 = restate($10, $18); print }' "$out/test.jsonl" >"$out/test_restated.jsonl"
mv "$out/sft.jsonl.tmp" "$out/sft.jsonl"
# the last 200 pairs of the preference set are the reward model's held-out
# pairs: their questions leave every training file (the pairs and the
# annotation questions; demo-data's stream can repeat a question)
keep=$(( $(wc -l <"$out/pref.jsonl.tmp") - 200 ))
awk -v n="$keep" 'NR > n' "$out/pref.jsonl.tmp" >"$out/pref_val.jsonl"
awk -F'"' -v n="$keep" 'FNR == NR { val[$10] = 1; next } FNR <= n && !($10 in val)' \
    "$out/pref_val.jsonl" "$out/pref.jsonl.tmp" >"$out/pref.jsonl"
awk -F'"' 'FNR == NR { val[$10] = 1; next } !($10 in val)' \
    "$out/pref_val.jsonl" "$out/pref_questions.jsonl" >"$out/pref_questions.jsonl.tmp"
mv "$out/pref_questions.jsonl.tmp" "$out/pref_questions.jsonl"
rm "$out/pref.jsonl.tmp"
