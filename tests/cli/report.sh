#!/bin/sh
# herd report on run directories made by `herd train`: two stages (the second
# a fresh run, laid after the first), a validation shard, restart and
# checkpoint event lines appended the way the checkpoint issue writes them;
# the HTML page must embed the four PNGs, and bad input must be refused.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
if [ ! -x "$herd" ]; then echo "SKIP report_cli: build/herd not built"; exit 0; fi
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "SKIP report_cli: gnuplot missing (apt-get install gnuplot-nox; scripts/deps.sh)"; exit 0
fi
tmp=$(mktemp -d)
trap '[ -n "${KEEP_REPORT:-}" ] && cp -r "$tmp/rep" "$KEEP_REPORT"; rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

$herd data prepare --out "$tmp/train.bin" --val "$tmp/val.bin" /usr/share/common-licenses/GPL-3 \
    /usr/share/common-licenses/Apache-2.0 >/dev/null 2>"$tmp/prep.err" \
    || { fail data_prepare "$(cat "$tmp/prep.err")"; exit 1; }
cat >"$tmp/cfg.yaml" <<YAML
model:
  preset: tiny
batch:
  micro_batch: 4
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
    - {after_tokens: 6144, batch_tokens: 2048, seq_len: 64}
optim:
  lr: 3.0e-3
  min_lr: 3.0e-4
schedule:
  warmup_steps: 3
  decay_steps: 20
train:
  max_steps: 10
  log_every: 0
  threads: 2
  eval_every: 5
  eval_batches: 1
data:
  path: $tmp/train.bin
  val_path: $tmp/val.bin
YAML
if ! $herd train "$tmp/cfg.yaml" --set "train.out_dir=$tmp/stage1" >"$tmp/s1.out" 2>&1 ||
   ! $herd train "$tmp/cfg.yaml" --set "train.out_dir=$tmp/stage2" --set train.max_steps=6 \
       --set optim.lr=1.0e-3 >"$tmp/s2.out" 2>&1; then
    fail report_train "$(tail -3 "$tmp/s1.out" "$tmp/s2.out")"; exit 1
fi
now=$(date +%s)
cat >>"$tmp/stage1/metrics.jsonl" <<EOF2
{"event":"checkpoint","step":5,"time":$now.0,"stall_s":0.250000,"write_s":1.500000}
{"event":"restart","step":5,"time":$now.5,"restarts":1}
{"event":"checkpoint","step":10,"time":$now.9,"stall_s":0.300000,"write_s":1.400000}
EOF2

if $herd report --out "$tmp/rep" "$tmp/stage1" "$tmp/stage2" >"$tmp/rep.out" 2>"$tmp/rep.err"; then
    ok=1
    for p in loss lr_batch breakdown mfu; do
        # a real PNG: the 8-byte signature and a plausible size
        sig=$(head -c 8 "$tmp/rep/$p.png" | od -An -tx1 | tr -d ' \n')
        size=$(wc -c <"$tmp/rep/$p.png")
        [ "$sig" = "89504e470d0a1a0a" ] && [ "$size" -gt 5000 ] || { ok=0; echo "  $p.png: sig $sig size $size" >&2; }
        grep -q "alt=\"$p.png\" src=\"data:image/png;base64,iVBORw0KGgo" "$tmp/rep/report.html" || ok=0
    done
    [ "$ok" -eq 1 ] && pass report_pngs_embedded || fail report_pngs_embedded "missing or bad PNG"
    # the summary table: two stages, 10 and 6 steps, one restart and two checkpoints on stage 1
    grep -q '<td>1</td><td>[^<]*stage1</td><td>10</td>' "$tmp/rep/report.html" &&
    grep -q '<td>2</td><td>[^<]*stage2</td><td>6</td>' "$tmp/rep/report.html" &&
    grep -q '<td>1</td><td>2</td><td>0.55</td></tr>' "$tmp/rep/report.html" \
        && pass report_summary_table || fail report_summary_table "$(grep '<tr><td>' "$tmp/rep/report.html")"
    # stage 2 laid after stage 1 (steps 11..16), events marked at steps 5 and 10
    [ "$(awk 'NR==1{print $1}' "$tmp/rep/stage1.dat")" = 11 ] &&
    [ "$(grep -c 'set arrow from 5,' "$tmp/rep/events.gp")" -eq 2 ] &&
    grep -q "lc rgb 'red'" "$tmp/rep/events.gp" && [ "$(wc -l <"$tmp/rep/ckpt.dat")" -eq 2 ] &&
    [ "$(wc -l <"$tmp/rep/val0.dat")" -eq 2 ] \
        && pass report_timeline || fail report_timeline "offsets, events or val points wrong"
else
    fail report_runs "$(cat "$tmp/rep.err")"
fi
# default output directory: RUN_DIR/report
$herd report "$tmp/stage2" >/dev/null 2>&1 && [ -s "$tmp/stage2/report/report.html" ] \
    && pass report_default_out || fail report_default_out "no stage2/report/report.html"

expect_error() { # NAME PATTERN args...
    name=$1; pattern=$2; shift 2
    if $herd report "$@" >/dev/null 2>"$tmp/err"; then fail "$name" "exit status 0"
    elif grep -q -- "$pattern" "$tmp/err"; then pass "$name"
    else fail "$name" "stderr: $(cat "$tmp/err")"; fi
}
expect_error report_missing_dir "$tmp/nope/metrics.jsonl: cannot open" "$tmp/nope"
mkdir -p "$tmp/bad"; head -3 "$tmp/stage1/metrics.jsonl" >"$tmp/bad/metrics.jsonl"
echo '{"step":4,"loss":"x"}' >>"$tmp/bad/metrics.jsonl"
expect_error report_bad_field "bad/metrics.jsonl:4: field 'tokens_seen'" "$tmp/bad"
echo '{"step":4,' >"$tmp/bad/metrics.jsonl"
expect_error report_bad_json "bad/metrics.jsonl:1: expected a \"key\"" "$tmp/bad"
echo '{"event":"explode","step":1}' >"$tmp/bad/metrics.jsonl"
expect_error report_bad_event "field 'event': unknown event 'explode'" "$tmp/bad"
if $herd report >/dev/null 2>&1; then fail report_usage "exit 0 without a run dir"
else [ $? -eq 2 ] && pass report_usage || fail report_usage "exit status not 2"; fi
[ "$fails" -eq 0 ]
