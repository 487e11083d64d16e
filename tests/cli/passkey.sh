#!/bin/sh
# Retrieval data and its evaluation, end to end on a small BPE tokenizer trained here:
#  - `herd data passkey`: every document exactly --len tokens (BOS ... EOT), the key of
#    the fact equal to the answer's, documents rounded up to whole loader blocks; bad
#    input refused with a message naming the option;
#  - a resumed run samples the config's mix, not the checkpoint's: a stage trained on
#    passkey documents only, then resumed with the mix switched to text only, logs a
#    loss on its first step that is the text's, far above the passkey documents';
#  - slurm/recipe_passkey.sh writes the depth x length grid (trials rounded up to
#    the 5 depths, every prompt within its length, accuracy = correct / trials);
#  - `herd report` prints the passkey table and heat-map and embeds them as HTML/SVG;
#    a damaged passkey.json is refused naming the file and the field.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP passkey: build/herd not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

text=/usr/share/common-licenses/GPL-3
$herd data train-tokenizer --vocab-size 600 --split-digits --out "$tmp/tok.model" "$text" >/dev/null 2>"$tmp/err" ||
    { fail passkey_tokenizer "$(cat "$tmp/err")"; exit 1; }
tok=$tmp/tok.model

# ---- herd data passkey ---------------------------------------------------------------
out=$($herd data passkey --tokenizer "$tok" --len 128 --docs 20 --seed 7 --out "$tmp/pk.bin" 2>&1)
if echo "$out" | grep -q "32 documents of 128 tokens" &&
   $herd data inspect --docs 0 "$tmp/pk.bin" | grep -q "n_tokens 4096, n_docs 32"; then
    pass "passkey_docs_exact_length (20 docs rounded up to 32, 2 blocks of 2048)"
else fail passkey_docs_exact_length "$out; $($herd data inspect --docs 0 "$tmp/pk.bin" 2>&1)"; fi
bad=""
i=0
while [ "$i" -lt 32 ]; do
    d=$($herd data decode --tokenizer "$tok" --shard "$tmp/pk.bin" --start $((i * 128)) --count 128)
    k1=$(echo "$d" | sed -n 's/.*The pass key is \([0-9]*\)\. Remember it\..*/\1/p')
    k2=$(echo "$d" | sed -n 's/.*What is the pass key? The pass key is \([0-9]*\)\.<|end_of_text|>$/\1/p')
    case "$d" in "<|begin_of_text|>"*) ;; *) bad="$bad doc $i: no BOS;" ;; esac
    [ -n "$k1" ] && [ "$k1" = "$k2" ] && [ ${#k1} -eq 5 ] &&
        [ "$(echo "$k1" | fold -w1 | sort -u | wc -l)" -eq 5 ] || bad="$bad doc $i: key '$k1' answer '$k2';"
    i=$((i + 1))
done
[ -z "$bad" ] && pass "passkey_docs_fact_and_answer (32 docs: BOS, the fact's key = the answer, 5 different digits)" ||
    fail passkey_docs_fact_and_answer "$bad"
$herd data passkey --tokenizer "$tok" --len 128 --docs 32 --seed 7 --out "$tmp/pk2.bin" >/dev/null 2>&1
$herd data passkey --tokenizer "$tok" --len 128 --docs 32 --seed 8 --out "$tmp/pk3.bin" >/dev/null 2>&1
if cmp -s "$tmp/pk.bin" "$tmp/pk2.bin" && ! cmp -s "$tmp/pk.bin" "$tmp/pk3.bin"; then
    pass "passkey_docs_seeded (same seed: same bytes; another seed: other keys)"
else fail passkey_docs_seeded "seed 7 twice differ, or seed 8 equals seed 7"; fi
# expect NAME STATUS PATTERN ARGS...
expect() {
    name=$1; want=$2; pattern=$3; shift 3
    "$herd" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" -eq "$want" ] && grep -qF -- "$pattern" "$tmp/err"; then pass "$name"
    else fail "$name" "exit $rc (want $want), stderr: $(cat "$tmp/err")"; fi
}
expect passkey_bad_len_block 2 "--len: must divide 2048" data passkey --tokenizer "$tok" --len 100 --docs 1 --out "$tmp/x.bin"
expect passkey_bad_len_small 2 "--len: expected an integer from 64" data passkey --tokenizer "$tok" --len 32 --docs 1 --out "$tmp/x.bin"
expect passkey_bad_docs 2 "--docs: expected a positive count" data passkey --tokenizer "$tok" --len 64 --docs 0 --out "$tmp/x.bin"
expect passkey_missing_tokenizer 1 "$tmp/none.model" data passkey --tokenizer "$tmp/none.model" --len 64 --docs 1 --out "$tmp/x.bin"

# ---- a resumed stage samples its own mix -----------------------------------------------
printf '%s\0' "$(cat "$text")" >"$tmp/text.docs"
$herd data tokenize --tokenizer "$tok" --out "$tmp/text.bin" "$tmp/text.docs" >/dev/null 2>"$tmp/err" ||
    fail passkey_text_shard "$(cat "$tmp/err")"
stage() { # stage NAME TEXT_WEIGHT PASSKEY_WEIGHT MAX_STEPS
    cat >"$tmp/$1.yaml" <<YAML
model: {preset: tiny, vocab_size: 856, max_seq_len: 1024}
batch: {micro_batch: 4, ramp: [{after_tokens: 0, batch_tokens: 512, seq_len: 128}]}
optim: {lr: 1.0e-2, min_lr: 1.0e-2}
schedule: {warmup_steps: 2}
train: {max_steps: $4, log_every: 1, threads: 1, out_dir: $tmp/run}
checkpoint: {every: 20, resume: 1}
data:
  sources:
    - {name: text,    path: $tmp/text.bin, weight: $2}
    - {name: passkey, path: $tmp/pk.bin,   weight: $3}
YAML
    $herd train "$tmp/$1.yaml" >"$tmp/$1.log" 2>&1
}
if stage a 0 1 20 && stage b 1 0 21; then
    la=$(awk '$1 == "step" && $2 == 20 {print $5}' "$tmp/a.log")
    lb=$(awk '$1 == "step" && $2 == 21 {print $5}' "$tmp/b.log")
    if [ -n "$la" ] && [ -n "$lb" ] && awk -v a="$la" -v b="$lb" 'BEGIN { exit !(b > a + 1.5) }'; then
        pass "resume_takes_config_mix (passkey only: step 20 loss $la; resumed on text: step 21 loss $lb)"
    else fail resume_takes_config_mix "step 20 loss '$la', step 21 loss '$lb' (text should be far above)"; fi
else fail resume_takes_config_mix "training failed: $(tail -n 3 "$tmp/a.log" "$tmp/b.log")"; fi

# ---- slurm/recipe_passkey.sh: the grid ----------------------------------------------------
ck=$tmp/run/checkpoints/step_00000020
if sh slurm/recipe_passkey.sh "$ck" "$tmp/a.yaml" "$tok" "$tmp/pk.json" 7 >/dev/null 2>"$tmp/err"; then
    if /usr/bin/python3 - "$tmp/pk.json" <<'EOF'; then
import json, sys
j = json.load(open(sys.argv[1]))
assert j["trials"] == 10 and j["depths"] == [0, 25, 50, 75, 100], (j["trials"], j["depths"])
assert sorted(int(k) for k in j["lengths"]) == [128, 256, 512, 1024], j["lengths"].keys()
for L, v in j["lengths"].items():
    assert v["skipped"] == 0 and v["tokens"] <= int(L), (L, v)
    cells = v["by_depth"]
    assert sorted(int(d) for d in cells) == j["depths"], cells
    assert all(c["trials"] == 2 for c in cells.values()), cells
    assert sum(c["correct"] for c in cells.values()) == v["correct"], v
    assert abs(v["accuracy"] - v["correct"] / 10) < 1e-3, v
EOF
        pass "recipe_passkey_grid (7 trials -> 10: 2 per depth x 5 depths x 4 lengths, prompts within L)"
    else fail recipe_passkey_grid "$(cat "$tmp/pk.json")"; fi
else fail recipe_passkey_grid "$(cat "$tmp/err")"; fi

# ---- herd report: table and heat-map -----------------------------------------------------
if command -v gnuplot >/dev/null 2>&1; then
    mkdir -p "$tmp/s1" "$tmp/s2"
    cp "$tmp/run/metrics.jsonl" "$tmp/s1/"; cp "$tmp/run/metrics.jsonl" "$tmp/s2/"
    cp "$tmp/pk.json" "$tmp/s1/passkey.json"
    # a known grid for stage 2: 1.0 at every depth of 128, 0.5 at 256, 0 beyond
    /usr/bin/python3 - "$tmp/pk.json" "$tmp/s2/passkey.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for L, v in j["lengths"].items():
    a = {"128": 1.0, "256": 0.5}.get(L, 0.0)
    for c in v["by_depth"].values(): c["accuracy"] = a
    v["accuracy"] = a
json.dump(j, open(sys.argv[2], "w"))
EOF
    if $herd report --out "$tmp/rep" "$tmp/s1" "$tmp/s2" >"$tmp/rep.out" 2>"$tmp/err"; then
        row=$(grep -E '^ +2 s2 +1\.00 +0\.50 +0\.00 +0\.00$' "$tmp/rep.out")
        heat=$(grep -cE '^ +(0|25|50|75|100)% +\|[^|]{4}\| +\|@[+]  \|$' "$tmp/rep.out")
        rects=$(grep -c '<rect' "$tmp/rep/report.html")
        if [ -n "$row" ] && [ "$heat" -eq 5 ] && [ "$rects" -eq 40 ] && grep -q '<svg' "$tmp/rep/report.html"; then
            pass "report_passkey_table_and_heatmap (text row and 5 heat-map rows; 40 SVG cells)"
        else fail report_passkey_table_and_heatmap "row '$row', heat rows $heat, rects $rects: $(cat "$tmp/rep.out")"; fi
    else fail report_passkey_table_and_heatmap "$(cat "$tmp/err")"; fi
    sed 's/"accuracy": [0-9.]*/"accuracy": 7/' "$tmp/s2/passkey.json" >"$tmp/s2/x" && mv "$tmp/s2/x" "$tmp/s2/passkey.json"
    expect report_passkey_bad_json 1 "$tmp/s2/passkey.json: lengths.accuracy" report --out "$tmp/rep" "$tmp/s1" "$tmp/s2"
else
    echo "SKIP report_passkey: gnuplot missing (apt-get install gnuplot-nox)"
fi
[ "$fails" -eq 0 ]
