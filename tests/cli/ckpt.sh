#!/bin/sh
# herd ckpt ls|verify|average|export on real checkpoints written by 2 MPI ranks
# (build/tests/ckpt_make), read back with h5py alone; a flipped byte is found
# and the previous checkpoint used; bad input gets a message and exit 1 or 2.
set -u
cd "$(dirname "$0")/../.."
herd=build/herd
make_ck=build/tests/ckpt_make
if [ ! -x "$herd" ] || [ ! -x "$make_ck" ]; then echo "SKIP ckpt_cli: build/herd or $make_ck not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,tcp \
       OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_mpi_preconnect_mpi=1
ck=$tmp/run/checkpoints
py=/usr/bin/python3
have_h5py=0
$py -c 'import h5py, numpy' 2>/dev/null && have_h5py=1

# three checkpoints: 2 ranks split by rows, by rows, by columns
ok=1
for s in 10:rows 20:rows 30:cols; do
    mpirun -np 2 --oversubscribe "$make_ck" "$ck" "${s%%:*}" "${s#*:}" >>"$tmp/make.out" 2>&1 || ok=0
done
[ "$ok" = 1 ] && pass ckpt_make_mpi2 || { fail ckpt_make_mpi2 "$(tail -5 "$tmp/make.out")"; exit 1; }
mkdir -p "$ck/step_00000040"   # a save that never committed

$herd ckpt ls "$tmp/run" >"$tmp/ls.out" 2>&1
if [ "$(grep -c ' complete$' "$tmp/ls.out")" -eq 3 ] && grep -q '^40 .*incomplete$' "$tmp/ls.out" \
   && grep -q '^30 .* 2 .*complete$' "$tmp/ls.out"; then pass ckpt_ls; else fail ckpt_ls "$(cat "$tmp/ls.out")"; fi

$herd ckpt ls "$ck/step_00000030" >"$tmp/ls2.out" 2>&1
if grep -q '^step 30, written by 2 rank' "$tmp/ls2.out" && grep -q '^adam_m .*model.layers.0.mlp.down_proj.weight .*\[16, 48\]' "$tmp/ls2.out" \
   && [ "$(grep -c '^param ' "$tmp/ls2.out")" -eq 12 ]; then pass ckpt_ls_step; else fail ckpt_ls_step "$(cat "$tmp/ls2.out")"; fi

if $herd ckpt verify "$ck" >"$tmp/v.out" 2>&1 && grep -q '^3 good, 0 bad' "$tmp/v.out"; then
    pass ckpt_verify_good; else fail ckpt_verify_good "$(cat "$tmp/v.out")"; fi

# the global view written again afterwards (as a job above view_max_world needs)
rm "$ck/step_00000010/model.h5"
if $herd ckpt view "$ck/step_00000010" >"$tmp/view.out" 2>&1 && [ -f "$ck/step_00000010/model.h5" ] \
   && $herd ckpt verify "$ck/step_00000010" >/dev/null 2>&1; then
    pass ckpt_view; else fail ckpt_view "$(cat "$tmp/view.out")"; fi
if [ "$have_h5py" = 1 ]; then
    $py tests/cli/ckpt_h5py.py "$ck/step_00000030" 30 --expect-world 2 || fails=$((fails + 1))
    $py tests/cli/ckpt_h5py.py "$ck/step_00000010" 10 --expect-world 2 >/dev/null || fail h5py_step10 "rows layout"
else
    echo "SKIP h5py_read: python3-h5py not installed (scripts/deps.sh)"
fi
if h5ls "$ck/step_00000030/model.h5/param/lm_head.weight" 2>&1 | grep -q 'Dataset {32, 16}'; then
    pass ckpt_h5ls_global_view; else fail ckpt_h5ls_global_view "h5ls does not show lm_head.weight {32, 16}"; fi

# export: the newest good checkpoint of the directory, safetensors and HDF5
if $herd ckpt export "$tmp/run" "$tmp/model.safetensors" >"$tmp/e.out" 2>&1 \
   && $herd ckpt export "$ck/step_00000020" "$tmp/model.h5" >>"$tmp/e.out" 2>&1; then
    pass ckpt_export_runs
else fail ckpt_export_runs "$(cat "$tmp/e.out")"; fi
if [ "$have_h5py" = 1 ]; then
$py - "$tmp" <<'PY' && pass ckpt_export_values || fail ckpt_export_values "values differ"
import json, struct, sys, h5py, numpy as np
tmp = sys.argv[1]
raw = open(tmp + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
t = hdr["lm_head.weight"]
a = np.frombuffer(raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]], "<f4").reshape(t["shape"])
i = np.arange(32)[:, None]; j = np.arange(16)[None, :]
ok = np.array_equal(a, (11000 + 10 * i + 0.5 * j + 0.25 * 30).astype(np.float32))
ok &= hdr["__metadata__"]["herd_step"] == "30" and len(hdr) == 13  # 12 tensors + metadata
with h5py.File(tmp + "/model.h5", "r") as f:
    ok &= np.array_equal(f["lm_head.weight"][...], (11000 + 10 * i + 0.5 * j + 0.25 * 20).astype(np.float32))
    ok &= f["model.norm.weight"].shape == (16,)
sys.exit(0 if ok else 1)
PY
fi

# average of steps 10, 20, 30 (written under two layouts): values are linear in the step
if $herd ckpt average "$tmp/avg" "$ck/step_00000010" "$ck/step_00000020" "$ck/step_00000030" >"$tmp/a.out" 2>&1 \
   && $herd ckpt verify "$tmp/avg" >>"$tmp/a.out" 2>&1; then pass ckpt_average_runs
else fail ckpt_average_runs "$(cat "$tmp/a.out")"; fi
if [ "$have_h5py" = 1 ]; then
$py - "$tmp/avg" <<'PY' && pass ckpt_average_is_mean || fail ckpt_average_is_mean "not the mean"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/model.h5", "r") as f:
    i = np.arange(48)[:, None]; j = np.arange(16)[None, :]
    ok = np.array_equal(f["param/model.layers.0.mlp.up_proj.weight"][...],
                        (8000 + 10 * i + 0.5 * j + 0.25 * 20).astype(np.float32))
    ok &= np.array_equal(f["adam_m/model.layers.0.mlp.up_proj.weight"][...],
                         -(8000 + 10 * i + 0.5 * j + 0.25 * 20).astype(np.float32))
sys.exit(0 if ok else 1)
PY
fi
if $herd ckpt average "$tmp/avg" "$ck/step_00000010" >"$tmp/a2.out" 2>&1; then
    fail ckpt_average_no_overwrite "overwrote a committed checkpoint"
elif grep -q "not overwritten" "$tmp/a2.out"; then pass ckpt_average_no_overwrite
else fail ckpt_average_no_overwrite "$(cat "$tmp/a2.out")"; fi

# a flipped byte in step 30's second shard: verify names it, export falls back to step 20
sh_file=$ck/step_00000030/shard_00001.h5
size=$(wc -c <"$sh_file")
printf '\377' | dd of="$sh_file" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
$herd ckpt verify "$ck" >"$tmp/v2.out" 2>&1; rc=$?
if [ "$rc" -eq 1 ] && grep -q 'step_00000030/shard_00001.h5: checksum' "$tmp/v2.out" \
   && grep -q '^2 good, 1 bad' "$tmp/v2.out"; then pass ckpt_verify_flipped_byte
else fail ckpt_verify_flipped_byte "rc=$rc $(cat "$tmp/v2.out")"; fi
$herd ckpt export "$tmp/run" "$tmp/fallback.h5" >"$tmp/e2.out" 2>&1
if grep -q 'falling back' "$tmp/e2.out" && grep -q 'exported .*step_00000020' "$tmp/e2.out"; then
    pass ckpt_fallback_previous; else fail ckpt_fallback_previous "$(cat "$tmp/e2.out")"; fi

# SIGKILL of one rank of a 2-rank job in the middle of a save, at several points:
# the job dies, step 20 stays the newest good checkpoint of the run, and a
# 2-rank save of step 50 then commits over the debris
kill_ok=1
for point in shard_written shard_synced shard_renamed; do
    rm -rf "$tmp/k"; mkdir -p "$tmp/k"; cp -r "$ck/step_00000020" "$tmp/k/"
    rm -f "$tmp/pause"
    HERD_CKPT_PAUSE_AT=$point HERD_CKPT_PAUSE_RANK=1 HERD_CKPT_PAUSE_MARK=$tmp/pause \
        mpirun -np 2 --oversubscribe "$make_ck" "$tmp/k" 50 >"$tmp/kill.out" 2>&1 &
    job=$!
    i=0; while [ ! -s "$tmp/pause" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    if [ ! -s "$tmp/pause" ]; then kill_ok=0; echo "no pause at $point" >>"$tmp/kill.log"; kill "$job"; wait "$job"; continue; fi
    kill -9 "$(cat "$tmp/pause")"
    wait "$job"
    newest=$($herd ckpt verify "$tmp/k" 2>&1 | grep '^OK' | head -1)
    case "$newest" in *step_00000020*) ;; *) kill_ok=0; echo "after kill at $point: $newest" >>"$tmp/kill.log" ;; esac
    mpirun -np 2 --oversubscribe "$make_ck" "$tmp/k" 50 >>"$tmp/kill.out" 2>&1 || kill_ok=0
    $herd ckpt verify "$tmp/k/step_00000050" >/dev/null 2>&1 || { kill_ok=0; echo "re-save at $point failed" >>"$tmp/kill.log"; }
    [ "$(ls -A "$tmp/k/step_00000050" | sort | tr '\n' ' ')" = "MANIFEST model.h5 shard_00000.h5 shard_00001.h5 " ] \
        || { kill_ok=0; echo "debris left after re-save at $point: $(ls -A "$tmp/k/step_00000050")" >>"$tmp/kill.log"; }
done
[ "$kill_ok" = 1 ] && pass ckpt_sigkill_rank_mpi || fail ckpt_sigkill_rank_mpi "$(cat "$tmp/kill.log" 2>/dev/null)"

# 8 ranks TP2 x PP2 x DP2 write; one process reads every tensor whole (export),
# and h5py checks the shards and the global view: resharding 8 -> 1
if mpirun -np 8 --oversubscribe "$make_ck" "$tmp/3d" 60 3d >"$tmp/3d.out" 2>&1 \
   && $herd ckpt export "$tmp/3d" "$tmp/3d.safetensors" >>"$tmp/3d.out" 2>&1; then
    pass ckpt_tp2pp2dp2_write_export
else fail ckpt_tp2pp2dp2_write_export "$(tail -5 "$tmp/3d.out")"; fi
if [ "$have_h5py" = 1 ]; then
    $py tests/cli/ckpt_h5py.py "$tmp/3d/step_00000060" 60 --expect-world 8 >"$tmp/3dpy.out" 2>&1 \
        && pass ckpt_tp2pp2dp2_h5py || fail ckpt_tp2pp2dp2_h5py "$(grep FAIL "$tmp/3dpy.out")"
    $py - "$tmp/3d.safetensors" <<'PY' && pass ckpt_tp2pp2dp2_values || fail ckpt_tp2pp2dp2_values "export differs"
import json, struct, sys, numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
t = hdr["model.layers.0.mlp.down_proj.weight"]   # tensor 9, split by columns over TP
a = np.frombuffer(raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]], "<f4").reshape(t["shape"])
i = np.arange(16)[:, None]; j = np.arange(48)[None, :]
sys.exit(0 if np.array_equal(a, (9000 + 10 * i + 0.5 * j + 0.25 * 60).astype(np.float32)) else 1)
PY
fi

# signals: SIGUSR1 to one rank, or to mpirun (which forwards it to every rank):
# every rank stops at one step, that step's checkpoint commits with the right
# values, and the job exits 75 (HERD_EXIT_REQUEUE) for Slurm to requeue it
for target in rank1 mpirun; do
    d=$tmp/sig_$target; mkdir -p "$d"
    CKPT_MAKE_PIDDIR=$d mpirun -np 2 --oversubscribe "$make_ck" "$d/ck" 3000 loop >"$d/out" 2>&1 &
    job=$!
    i=0; while [ ! -s "$d/pid.1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    sleep 0.5
    if [ "$target" = rank1 ]; then kill -USR1 "$(cat "$d/pid.1")"; else kill -USR1 "$job"; fi
    wait "$job"; rc=$?
    newest=$(ls "$d/ck" 2>/dev/null | grep '^step_' | tail -1)
    stop=$(sed -n 's/.*stopped at step \([0-9]*\) with a checkpoint.*/\1/p' "$d/out")
    why="rc=$rc newest=$newest stop=$stop"
    if [ "$rc" -eq 75 ] && [ -n "$stop" ] && [ "$newest" = "$(printf 'step_%08d' "$stop")" ] \
       && $herd ckpt verify "$d/ck/$newest" >/dev/null 2>&1; then
        if [ "$have_h5py" = 1 ]; then
            $py tests/cli/ckpt_h5py.py "$d/ck/$newest" "$stop" --expect-world 2 >"$d/py" 2>&1 \
                && pass "ckpt_signal_$target" || fail "ckpt_signal_$target" "$(grep FAIL "$d/py")"
        else pass "ckpt_signal_$target"; fi
    else fail "ckpt_signal_$target" "$why $(tail -3 "$d/out")"; fi
done

# bad input
$herd ckpt ls "$tmp/nowhere" >"$tmp/b1" 2>&1; rc=$?
[ "$rc" -eq 1 ] && grep -q "$tmp/nowhere" "$tmp/b1" && pass ckpt_bad_dir || fail ckpt_bad_dir "rc=$rc $(cat "$tmp/b1")"
$herd ckpt export "$ck/step_00000020" "$tmp/model.txt" >"$tmp/b2" 2>&1; rc=$?
[ "$rc" -eq 1 ] && grep -q "must end in" "$tmp/b2" && pass ckpt_bad_export_name || fail ckpt_bad_export_name "rc=$rc"
$herd ckpt frobnicate >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] && pass ckpt_usage || fail ckpt_usage "rc=$rc, want 2"
$herd ckpt verify "$ck/step_00000040" >"$tmp/b3" 2>&1; rc=$?
[ "$rc" -eq 1 ] && pass ckpt_verify_incomplete || fail ckpt_verify_incomplete "rc=$rc $(cat "$tmp/b3")"

[ "$fails" -eq 0 ]
