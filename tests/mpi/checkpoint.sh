#!/bin/sh
# Checkpoints through the trainer: exact resume (bitwise, one process and 8
# ranks), resharding on resume (4 ranks DP4 <-> 8 ranks TP2+SP x DP4 and
# TP2 x PP2 x DP2, CP2 x PP2 x DP2 -> TP2 x DP4, TP8 -> 1 rank), a
# SIGKILL at each point of a shard write leaves the previous checkpoint as the
# newest and the resume works, a flipped byte in the newest shard makes the
# resume fall back to the previous checkpoint, SIGUSR1 to one rank stops every
# rank with a committed checkpoint and exit 75, and the resumed run ends
# bitwise equal to an undisturbed one.
NAME=checkpoint
. "$(dirname "$0")/../lib/mpi.sh"
cmp_runs() { $py tests/mpi/compare_runs.py "$@"; }

$herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 \
    /usr/share/common-licenses/Apache-2.0 >/dev/null 2>&1 || { fail prepare "data prepare"; exit 1; }
cat >"$tmp/cfg.yaml" <<YAML
model: {n_layers: 2, d_model: 64, n_heads: 8, n_kv_heads: 2, ffn_dim: 128, vocab_size: 512, max_seq_len: 64}
batch:
  micro_batch: 1
  ramp:
    - {after_tokens: 0, batch_tokens: 512, seq_len: 32}
optim: {lr: 1.0e-3, min_lr: 1.0e-4}
schedule: {warmup_steps: 2, decay_steps: 30}
train: {max_steps: 20, log_every: 0, threads: 1}
checkpoint: {every: 5, keep_last: 3}
data: {path: $tmp/train.bin}
YAML
train() { # train NP OUT_NAME [args...]
    np=$1; name=$2; shift 2
    timeout 120 mpirun -np "$np" "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/$name" "$@" \
        >>"$tmp/$name.log" 2>&1
}

# the undisturbed runs
train 1 straight --dump-params "$tmp/straight.st" || { fail straight "$(tail -3 "$tmp/straight.log")"; exit 1; }
train 8 straight8 --set parallel.tp=2 --dump-params "$tmp/straight8.st" \
    || { fail straight8 "$(tail -3 "$tmp/straight8.log")"; exit 1; }

# K steps, stop, resume, K more: bitwise
if train 1 resumed --set train.max_steps=10 &&
   train 1 resumed --dump-params "$tmp/resumed.st" &&
   grep -q "resumed from .*step_00000010" "$tmp/resumed.log" &&
   out=$(cmp_runs "$tmp/straight" "$tmp/straight.st" "$tmp/resumed" "$tmp/resumed.st" 0 --bitwise); then
    pass "resume_1rank_bitwise (10 + 10 steps vs 20)"
else fail resume_1rank_bitwise "${out:-$(tail -3 "$tmp/resumed.log")}"; fi
if train 8 resumed8 --set parallel.tp=2 --set train.max_steps=10 &&
   train 8 resumed8 --set parallel.tp=2 --dump-params "$tmp/resumed8.st" &&
   out=$(cmp_runs "$tmp/straight8" "$tmp/straight8.st" "$tmp/resumed8" "$tmp/resumed8.st" 0 --bitwise); then
    pass "resume_tp2_dp4_bitwise"
else fail resume_tp2_dp4_bitwise "${out:-$(tail -3 "$tmp/resumed8.log")}"; fi

# resharding: the checkpoint of one layout resumed by another
reshard() { # reshard NAME NP1 "ARGS1" NP2 "ARGS2"
    name=$1
    # shellcheck disable=SC2086
    if train "$2" "$name" $3 --set train.max_steps=10 &&
       train "$4" "$name" $5 --dump-params "$tmp/$name.st" &&
       grep -q "resumed from .*written by" "$tmp/$name.log" &&
       out=$(cmp_runs "$tmp/straight" "$tmp/straight.st" "$tmp/$name" "$tmp/$name.st" 1e-5); then
        pass "$name ($(echo "$out" | tail -1))"
    else fail "$name" "${out:-$(tail -3 "$tmp/$name.log")}"; fi
}
reshard reshard_dp4_to_tp2sp_dp4 4 "" 8 "--set parallel.tp=2 --set parallel.sequence_parallel=1"
reshard reshard_tp2sp_dp4_to_dp4 8 "--set parallel.tp=2 --set parallel.sequence_parallel=1" 4 ""
reshard reshard_tp8_to_1rank 8 "--set parallel.tp=8" 1 ""
reshard reshard_dp4_to_tp2_pp2_dp2 4 "" 8 "--set parallel.tp=2 --set parallel.pp=2"
reshard reshard_tp2_pp2_dp2_to_dp4 8 "--set parallel.tp=2 --set parallel.pp=2" 4 ""
reshard reshard_cp2_pp2_dp2_to_tp2_dp4 8 "--set parallel.cp=2 --set parallel.pp=2" 8 "--set parallel.tp=2"

# SIGKILL in the middle of writing step 10's shard, at each point
for point in shard_open shard_written shard_synced shard_renamed before_manifest; do
    name=kill_$point
    train 1 "$name" --set train.max_steps=5 || { fail "$name" "first 5 steps"; continue; }
    HERD_CKPT_PAUSE_AT=$point HERD_CKPT_PAUSE_MARK="$tmp/$name.pid" \
        timeout 120 "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/$name" >>"$tmp/$name.log" 2>&1 &
    bg=$!
    i=0; while [ ! -s "$tmp/$name.pid" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    if [ -s "$tmp/$name.pid" ]; then kill -9 "$(cat "$tmp/$name.pid")"; fi
    wait $bg 2>/dev/null
    newest=$(ls "$tmp/$name/checkpoints" | grep '^step_' | sort | tail -1)
    if train 1 "$name" --dump-params "$tmp/$name.st" &&
       grep -q "resumed from .*step_00000005" "$tmp/$name.log" &&
       out=$(cmp_runs "$tmp/straight" "$tmp/straight.st" "$tmp/$name" "$tmp/$name.st" 0 --bitwise); then
        pass "$name (left $newest behind; resumed from step 5, bitwise equal at the end)"
    else fail "$name" "${out:-$(tail -5 "$tmp/$name.log")}"; fi
done

# a flipped byte in the newest checkpoint's shard: fall back to the previous one
name=flip
if train 1 $name --set train.max_steps=10; then
    shard=$tmp/$name/checkpoints/step_00000010/shard_00000.h5
    size=$(stat -c %s "$shard")
    $py -c "import sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0xff])); f.close()" "$shard" $((size / 2))
    if train 1 $name --dump-params "$tmp/$name.st" &&
       grep -q "resumed from .*step_00000005" "$tmp/$name.log" && grep -q "shard_00000.h5" "$tmp/$name.log" &&
       out=$(cmp_runs "$tmp/straight" "$tmp/straight.st" "$tmp/$name" "$tmp/$name.st" 0 --bitwise); then
        pass "flipped_byte_falls_back"
    else fail flipped_byte_falls_back "${out:-$(tail -5 "$tmp/$name.log")}"; fi
else fail flipped_byte_falls_back "first run"; fi

# SIGUSR1 to one rank of four: all stop at one step, checkpoint, exit 75; the resume ends equal
name=usr1
sed 's/max_steps: 20/max_steps: 300/' "$tmp/cfg.yaml" >"$tmp/cfg300.yaml"
timeout 300 mpirun -np 4 "$herd" train "$tmp/cfg300.yaml" --set train.out_dir="$tmp/straight300" \
    --dump-params "$tmp/straight300.st" >"$tmp/straight300.log" 2>&1
timeout 120 mpirun -np 4 "$herd" train "$tmp/cfg300.yaml" --set train.out_dir="$tmp/$name" >"$tmp/$name.log" 2>&1 &
mp=$!
i=0; while ! grep -qs '"step":3,' "$tmp/$name/metrics.jsonl" && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
child=$(ps -o pid= --ppid $mp | head -2 | tail -1)
[ -n "$child" ] && kill -USR1 $child
wait $mp
rc=$?
stopped=$(sed -n 's/^stopping at step \([0-9]*\).*/\1/p' "$tmp/$name.log")
if [ "$rc" -eq 75 ] && [ -n "$stopped" ] && [ "$stopped" -lt 300 ] &&
   [ -f "$tmp/$name/checkpoints/step_$(printf %08d "$stopped")/MANIFEST" ] &&
   timeout 300 mpirun -np 4 "$herd" train "$tmp/cfg300.yaml" --set train.out_dir="$tmp/$name" \
       --dump-params "$tmp/$name.st" >>"$tmp/$name.log" 2>&1 &&
   out=$(cmp_runs "$tmp/straight300" "$tmp/straight300.st" "$tmp/$name" "$tmp/$name.st" 0 --bitwise); then
    pass "sigusr1_stop_checkpoint_requeue_exit (stopped at step $stopped, exit 75, resumed bitwise)"
else fail sigusr1_stop_checkpoint_requeue_exit "exit $rc, stopped '$stopped': ${out:-$(tail -5 "$tmp/$name.log")}"; fi
exit 0
