#!/bin/sh
# Nothing lost, nothing outside the run touched: herd train and herd ckpt
# against planted links, foreign names, a corrupt newest checkpoint, umask 000
# and lying MANIFESTs. Each case plants exactly what an attacker (or an
# accident) would, runs the real binary, and checks the files that must survive.
#   HERD=path/to/herd sh tests/cli/ckpt_safety.sh   (e.g. a sanitizer build)
set -u
cd "$(dirname "$0")/../.."
herd=${HERD:-build/herd}
py=/usr/bin/python3
if [ ! -x "$herd" ]; then echo "SKIP ckpt_safety: $herd not built"; exit 0; fi
if [ ! -x "$py" ]; then echo "SKIP ckpt_safety: $py missing (MANIFEST re-sealing)"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

$herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>"$tmp/prep.err" \
    || { fail data_prepare "$(cat "$tmp/prep.err")"; exit 1; }
cat >"$tmp/cfg.yaml" <<YAML
model:
  preset: tiny
batch:
  micro_batch: 4
  ramp:
    - {after_tokens: 0, batch_tokens: 256, seq_len: 64}
train:
  max_steps: 4
  log_every: 1
  threads: 1
checkpoint:
  every: 2
  resume: 1
data:
  path: $tmp/train.bin
YAML

# train OUT [--set ...]: output in OUT.log, exit status returned
train() {
    out=$1; shift
    $herd train "$tmp/cfg.yaml" --set "train.out_dir=$out" "$@" >>"$out.log" 2>&1
}
verifies() { $herd ckpt verify "$1" >>"$tmp/verify.log" 2>&1; }
# a sanitizer report or a crash is a failure whatever else the case checks
clean_exit() { [ "$1" -lt 128 ] && ! grep -q 'AddressSanitizer\|runtime error:' "$2"; }
secret() { echo "precious $1" >"$2"; }
unchanged() { [ "$(cat "$2")" = "precious $1" ]; }

# a run with checkpoints at steps 2 and 4, copied for the cases that tamper with one
train "$tmp/base" || { fail base_run "$(tail -5 "$tmp/base.log")"; exit 1; }
copy_base() { cp -a "$tmp/base" "$1"; }

# 1. checkpoints/step_00000000 is a link to a directory outside the run:
#    retention must not delete (or even look at) what it points to
mkdir -p "$tmp/outside1" "$tmp/c1/checkpoints"
secret a "$tmp/outside1/a"; secret s "$tmp/outside1/shard_00000.h5"
ln -s "$tmp/outside1" "$tmp/c1/checkpoints/step_00000000"
train "$tmp/c1" --set checkpoint.keep_last=1; rc=$?
if [ "$rc" -eq 0 ] && unchanged a "$tmp/outside1/a" \
   && unchanged s "$tmp/outside1/shard_00000.h5" && [ -L "$tmp/c1/checkpoints/step_00000000" ] \
   && verifies "$tmp/c1/checkpoints/step_00000004" && [ ! -e "$tmp/c1/checkpoints/step_00000002" ]; then
    pass retention_never_follows_step_symlink
else fail retention_never_follows_step_symlink "rc=$rc; outside: $(ls "$tmp/outside1" | tr '\n' ' ') $(tail -3 "$tmp/c1.log")"; fi

# 2. an empty checkpoints/step_4 (not the name of any step) with keep_last 1:
#    step 4 is committed and stays
mkdir -p "$tmp/c2/checkpoints/step_4"
train "$tmp/c2" --set checkpoint.keep_last=1; rc=$?
if [ "$rc" -eq 0 ] && verifies "$tmp/c2/checkpoints/step_00000004" && [ -d "$tmp/c2/checkpoints/step_4" ] \
   && [ ! -e "$tmp/c2/checkpoints/step_00000002" ]; then
    pass noncanonical_step_name_keeps_newest
else fail noncanonical_step_name_keeps_newest "rc=$rc; left: $(ls "$tmp/c2/checkpoints" | tr '\n' ' ')"; fi

# 3. a flipped byte in the newest shard (step 6 of 2, 4, 6; keep_last 3):
#    resume falls back to 4, the bad step 6 is moved aside (kept), step 6 is
#    written again, and the good step 4 is not deleted in favour of the bad one
ck3=$tmp/c3/checkpoints
train "$tmp/c3" --set train.max_steps=6 --set checkpoint.keep_last=3
f=$ck3/step_00000006/shard_00000.h5
size=$(wc -c <"$f")
printf '\377' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
train "$tmp/c3" --set train.max_steps=8 --set checkpoint.keep_last=3; rc=$?
q=$(ls -d "$ck3"/step_00000006.corrupt-* 2>/dev/null | head -1)
if [ "$rc" -eq 0 ] && grep -q 'resumed from .*step_00000004' "$tmp/c3.log" && verifies "$ck3/step_00000006" \
   && verifies "$ck3/step_00000004" && verifies "$ck3/step_00000008" && [ -n "$q" ] \
   && [ -f "$q/shard_00000.h5" ] && [ -f "$q/MANIFEST" ]; then
    pass corrupt_newest_quarantined_and_rewritten
else fail corrupt_newest_quarantined_and_rewritten "rc=$rc; left: $(ls "$ck3" | tr '\n' ' ')"; fi
# later retention never deletes the quarantined copy
train "$tmp/c3" --set train.max_steps=10 --set checkpoint.keep_last=1; rc=$?
if [ "$rc" -eq 0 ] && [ -n "$q" ] && [ -f "$q/shard_00000.h5" ] && verifies "$ck3/step_00000010" \
   && [ ! -e "$ck3/step_00000004" ]; then
    pass quarantined_checkpoint_outlives_retention
else fail quarantined_checkpoint_outlives_retention "rc=$rc; left: $(ls "$ck3" | tr '\n' ' ')"; fi

# 4. planted links: config.yaml (fresh run), metrics.jsonl (resumed run), and
#    the temporaries of a step directory left by a killed save
mkdir -p "$tmp/c4a"
secret cfg "$tmp/victim_cfg"; ln -s "$tmp/victim_cfg" "$tmp/c4a/config.yaml"
train "$tmp/c4a"; rc=$?
if [ "$rc" -eq 0 ] && unchanged cfg "$tmp/victim_cfg" && [ -f "$tmp/c4a/config.yaml" ] && [ ! -L "$tmp/c4a/config.yaml" ]; then
    pass config_yaml_symlink_not_followed
else fail config_yaml_symlink_not_followed "rc=$rc; victim: $(head -c 60 "$tmp/victim_cfg")"; fi

train "$tmp/c4b" --set train.max_steps=2
rm -f "$tmp/c4b/metrics.jsonl"; secret metrics "$tmp/victim_metrics"
ln -s "$tmp/victim_metrics" "$tmp/c4b/metrics.jsonl"
: >"$tmp/c4b.log"
train "$tmp/c4b"; rc=$?
if unchanged metrics "$tmp/victim_metrics" && clean_exit "$rc" "$tmp/c4b.log" \
   && { { [ "$rc" -ne 0 ] && grep -q 'metrics.jsonl: is a symbolic link' "$tmp/c4b.log"; } \
        || { [ "$rc" -eq 0 ] && [ ! -L "$tmp/c4b/metrics.jsonl" ]; }; }; then
    pass metrics_symlink_not_appended_on_resume
else fail metrics_symlink_not_appended_on_resume "rc=$rc; victim: $(head -c 80 "$tmp/victim_metrics")"; fi

mkdir -p "$tmp/c4c/checkpoints/step_00000002"
secret shard "$tmp/victim_shard"; secret manifest "$tmp/victim_manifest"; secret model "$tmp/victim_model"
ln -s "$tmp/victim_shard" "$tmp/c4c/checkpoints/step_00000002/.shard_00000.h5.tmp"
ln -s "$tmp/victim_manifest" "$tmp/c4c/checkpoints/step_00000002/.MANIFEST.tmp"
ln -s "$tmp/victim_model" "$tmp/c4c/checkpoints/step_00000002/.model.h5.tmp"
train "$tmp/c4c"; rc=$?
s2=$tmp/c4c/checkpoints/step_00000002
if [ "$rc" -eq 0 ] && unchanged shard "$tmp/victim_shard" && unchanged manifest "$tmp/victim_manifest" \
   && unchanged model "$tmp/victim_model" && [ -f "$s2/shard_00000.h5" ] && [ ! -L "$s2/shard_00000.h5" ] \
   && [ ! -L "$s2/MANIFEST" ] && [ ! -L "$s2/model.h5" ] && verifies "$s2"; then
    pass step_dir_temp_symlinks_not_followed
else fail step_dir_temp_symlinks_not_followed "rc=$rc; $(ls -la "$s2" | tail -n +4 | tr '\n' ' ')"; fi

# 5. umask 000: every directory herd makes is at most 0750, every file 0640
(umask 000; train "$tmp/c5" --set checkpoint.keep_last=0); rc=$?
loose=$(find "$tmp/c5" \( -type d -perm /0027 \) -o \( -type f -perm /0137 \) | head -5)
if [ "$rc" -eq 0 ] && [ -z "$loose" ] && [ -f "$tmp/c5/herd.prom" ] && [ -f "$tmp/c5/metrics.jsonl" ]; then
    pass modes_ignore_umask_000
else fail modes_ignore_umask_000 "rc=$rc; too open: $(for p in $loose; do stat -c '%a %n' "$p"; done | tr '\n' ' ')"; fi

# 6. a MANIFEST naming a shard outside its directory (checksum re-sealed, the
#    outside file a true copy): verify refuses it, resume falls back
ck6=$tmp/c6/checkpoints
copy_base "$tmp/c6"
mv "$ck6/step_00000004/shard_00000.h5" "$tmp/outside.h5"
sed -i 's| shard_00000.h5 | ../../../outside.h5 |' "$ck6/step_00000004/MANIFEST"
$py tests/cli/manifest_reseal.py "$ck6/step_00000004/MANIFEST"
$herd ckpt verify "$ck6/step_00000004" >"$tmp/v6.out" 2>&1; vrc=$?
train "$tmp/c6" --set train.max_steps=6; rc=$?
if [ "$vrc" -eq 1 ] && grep -q "MANIFEST: field 'shard'.*outside.h5" "$tmp/v6.out" && [ "$rc" -eq 0 ] \
   && grep -q 'resumed from .*step_00000002' "$tmp/c6.log" && [ -f "$tmp/outside.h5" ]; then
    pass manifest_shard_outside_refused
else fail manifest_shard_outside_refused "verify rc=$vrc: $(head -3 "$tmp/v6.out"); train rc=$rc"; fi

# 7. an index that contradicts itself, re-sealed so that every checksum holds:
#    in a format-1 MANIFEST (slice lines, still read), world 2, a slice of
#    rank 1, then world 1 (the audit's case), and a slice larger than its whole
#    tensor; in format 2, a shard's own /index with a slice larger than its
#    tensor (the shard's size and XXH64 re-sealed in the MANIFEST). verify,
#    export and resume refuse each cleanly.
contradict() { # contradict KIND MANIFEST
    PYTHONPATH=tests/cli $py - "$1" "$2" <<'PY'
import os, sys
import h5py, numpy as np
from manifest_reseal import xxh64
kind, path = sys.argv[1], sys.argv[2]
lines = open(path).read().split("\n")
head, step, shard = lines[0], lines[1], lines[3]
shard_path = os.path.join(os.path.dirname(path), "shard_00000.h5")
with h5py.File(shard_path, "r+") as f:
    index = bytes(f["index"][...]).decode().splitlines()
    first = index[0].split(" ")   # KIND NDIM G0 G1 O0 O1 S0 S1 NAME
    if kind == "index_outside_tensor":
        first[2] = str(int(first[6]) // 2)   # the whole tensor half as long as its slice
        del f["index"]
        text = "\n".join([" ".join(first)] + index[1:]) + "\n"
        f.create_dataset("index", data=np.frombuffer(text.encode(), dtype=np.uint8))
if kind == "index_outside_tensor":
    data = open(shard_path, "rb").read()
    out = [head, step, lines[2], "shard 0 shard_00000.h5 %d %016x" % (len(data), xxh64(data))]
else:
    head = "herd-checkpoint 1"
    slices = ["slice 0 " + l for l in index[1:]]
    first = ["slice", "0"] + first
    if kind == "world_twice":
        first[1] = "1"
        out = [head, step, "world 2", " ".join(first), "world 1", shard] + slices
    else:
        first[4] = str(int(first[8]) // 2)
        out = [head, step, "world 1", shard, " ".join(first)] + slices
open(path, "w").write("\n".join(out) + "\nend 0000000000000000\n")
PY
    $py tests/cli/manifest_reseal.py "$2"
}
for kind in world_twice slice_outside_tensor index_outside_tensor; do
    rm -rf "$tmp/c7" "$tmp/c7.log" "$tmp/c7.safetensors"
    ck7=$tmp/c7/checkpoints
    copy_base "$tmp/c7"
    contradict "$kind" "$ck7/step_00000004/MANIFEST"
    $herd ckpt verify "$ck7/step_00000004" >"$tmp/v7.out" 2>&1; vrc=$?
    $herd ckpt export "$ck7/step_00000004" "$tmp/c7.safetensors" >"$tmp/e7.out" 2>&1; erc=$?
    train "$tmp/c7" --set train.max_steps=6; rc=$?
    if [ "$vrc" -eq 1 ] && grep -q "step_00000004/\(MANIFEST: field '\(world\|slice\)'\|shard_00000.h5: /index (\)" "$tmp/v7.out" \
       && clean_exit "$vrc" "$tmp/v7.out" && [ "$erc" -eq 1 ] && clean_exit "$erc" "$tmp/e7.out" \
       && [ ! -e "$tmp/c7.safetensors" ] && [ "$rc" -eq 0 ] && clean_exit "$rc" "$tmp/c7.log" \
       && grep -q 'resumed from .*step_00000002' "$tmp/c7.log"; then
        pass "manifest_contradiction_refused_$kind"
    else fail "manifest_contradiction_refused_$kind" "verify rc=$vrc $(head -2 "$tmp/v7.out"); export rc=$erc $(head -2 "$tmp/e7.out"); train rc=$rc"; fi
done

[ "$fails" -eq 0 ]
