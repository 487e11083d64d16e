#!/bin/sh
# (e) corrupt the newest checkpoint's shard, then SIGKILL a rank: the corrupt
# checkpoint is refused (herd ckpt verify in the driver, or the trainer's own
# checksums) and the run resumes from the one before; bitwise equal.
set -u; cd "$(dirname "$0")/../.."; . tests/fault/lib.sh
fault_setup fault_e_corrupt_checkpoint
submit
wait_steps $((2 * CKPT_EVERY + 2))
# the newest COMMITTED checkpoint (a MANIFEST): a newer one may still be in flight
newest=$(for d in $(ls -d "$T"/run/checkpoints/step_* 2>/dev/null | sort); do
             [ -f "$d/MANIFEST" ] && echo "$d"; done | tail -n 1)
shard=$(ls "$newest"/shard_*.h5 2>/dev/null | head -n 1)
[ -f "$shard" ] || { fail "$NAME" "no shard in $newest"; exit 1; }
size=$(stat -c %s "$shard")
pid=$(rank_pid "$JOB" 2 "$HERD_EXE") || { fail "$NAME" "rank 2 not found"; exit 1; }
mark_fault
dd if=/dev/urandom of="$shard" bs=1 count=64 seek=$((size / 2)) conv=notrunc 2>/dev/null
kill -KILL "$pid"
echo "$NAME: corrupted 64 bytes of $(basename "$newest")/$(basename "$shard") and killed rank 2"
wait_training_again 120
ok=1
finish_and_compare 0 || ok=0
grep -q "fails verification" "$T/run/recovery.log" || grep -rqi "checksum" "$T"/run/step-*.err \
    || { fail "$NAME" "neither the driver nor the trainer reported the corrupt checkpoint"; ok=0; }
[ "$ok" = 1 ] && pass "$NAME"
show_log
[ "$fails" -eq 0 ]
