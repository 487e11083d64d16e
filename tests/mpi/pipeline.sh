#!/bin/sh
# Pipeline and context parallel equivalence on 8 MPI
# processes on the CPU, each layout against the one-process run of the same
# config (loss of every step and final parameters within 1e-5 relative,
# tests/mpi/compare_runs.py); the 1F1B activation bound; the printed schedule;
# bad layouts refused before any step with one message.
NAME=pipeline
. "$(dirname "$0")/../lib/mpi.sh"

# Short documents (7..29 byte tokens each, one per file) so that every
# 32-token window holds document boundaries and, with CP, documents cross the
# 2*CP chunk boundaries (chunks of 8 tokens for CP2, 4 for CP4).
mkdir "$tmp/docs"
$py - "$tmp/docs" <<'PY'
import sys
text = open('/usr/share/common-licenses/GPL-3', 'rb').read()
at, i = 0, 0
while i < 400:
    n = 7 + (i * 11) % 23
    open('%s/d%03d.txt' % (sys.argv[1], i), 'wb').write(text[at:at + n])
    at += n; i += 1
PY
$herd data prepare --out "$tmp/train.bin" "$tmp"/docs/*.txt >/dev/null 2>&1 \
    || { fail prepare "data prepare"; exit 1; }

cfg() { # cfg FILE LAYERS BATCH_TOKENS
    cat >"$1" <<YAML
model: {n_layers: $2, d_model: 64, n_heads: 8, n_kv_heads: 2, ffn_dim: 128, vocab_size: 512, max_seq_len: 64}
batch:
  micro_batch: 1
  ramp:
    - {after_tokens: 0, batch_tokens: $3, seq_len: 32}
optim: {lr: 1.0e-3, min_lr: 1.0e-4}
schedule: {warmup_steps: 2, decay_steps: 10}
train: {max_steps: 5, log_every: 0, threads: 1}
data: {path: $tmp/train.bin}
YAML
}
cfg "$tmp/l4.yaml" 4 512     # 16 sequences
cfg "$tmp/l6.yaml" 6 512
cfg "$tmp/l4n12.yaml" 4 384  # 12 sequences: PP4 x DP2 gets 6 micro-batches

run() { # run NAME CFG NP [--set ...]: trains into $tmp/NAME, dumps $tmp/NAME.st
    name=$1; c=$2; np=$3; shift 3
    timeout 120 mpirun -np "$np" "$herd" train "$tmp/$c.yaml" --set train.out_dir="$tmp/$name" \
        --dump-params "$tmp/$name.st" "$@" >"$tmp/$name.log" 2>&1
}
for c in l4 l6 l4n12; do
    if ! run "ref_$c" "$c" 1; then fail "reference_$c" "$(tail -5 "$tmp/ref_$c.log")"; exit 1; fi
done

check() { # check NAME CFG LAYOUT [--set ...]: 8 ranks against ref_CFG
    name=$1; c=$2; layout=$3; shift 3
    if ! run "$name" "$c" 8 "$@"; then fail "$name" "run failed: $(tail -5 "$tmp/$name.log")"; return; fi
    grep -q "layout $layout (8 ranks)" "$tmp/$name.log" || { fail "$name" "layout line '$layout' missing"; return; }
    if out=$($py tests/mpi/compare_runs.py "$tmp/ref_$c" "$tmp/ref_$c.st" "$tmp/$name" "$tmp/$name.st" 1e-5); then
        pass "$name ($(echo "$out" | tail -1))"
    else
        fail "$name" "$out"
    fi
}
check pp2_dp4 l4 "TP1 x CP1 x PP2 x DP4" --set parallel.pp=2
check pp4_dp2_6micro l4n12 "TP1 x CP1 x PP4 x DP2" --set parallel.pp=4 --print-schedule
check pp2_v2_dp4 l4 "TP1 x CP1 x PP2 x DP4" --set parallel.pp=2 --set parallel.virtual_stages=2
check pp2_v2_fewer_dp4 l6 "TP1 x CP1 x PP2 x DP4" --set parallel.pp=2 --set parallel.virtual_stages=2 \
    --set parallel.pp_first_last_fewer=1
check pp4_fewer_dp2 l6 "TP1 x CP1 x PP4 x DP2" --set parallel.pp=4 --set parallel.pp_first_last_fewer=1
check cp2_dp4 l4 "TP1 x CP2 x PP1 x DP4" --set parallel.cp=2
check cp4_dp2 l4 "TP1 x CP4 x PP1 x DP2" --set parallel.cp=4
check tp2_cp2_pp2 l4 "TP2 x CP2 x PP2 x DP1" --set parallel.tp=2 --set parallel.cp=2 --set parallel.pp=2
check cp2_pp2_dp2 l4 "TP1 x CP2 x PP2 x DP2" --set parallel.cp=2 --set parallel.pp=2
# everything at once: TP2 with sequence parallel, CP2, PP2 interleaved (V 2)
check tp2sp_cp2_pp2v2 l4 "TP2 x CP2 x PP2 x DP1" --set parallel.tp=2 --set parallel.sequence_parallel=1 \
    --set parallel.cp=2 --set parallel.pp=2 --set parallel.virtual_stages=2
# the same layout with activation recomputation: the backward reruns the same
# ops (and, for FULL, the layer's TP/SP/CP collectives) on the same inputs, so
# losses and parameters are bitwise those of the run that keeps everything
for mode in selective full; do
    name=tp2sp_cp2_pp2v2_recompute_$mode
    if run "$name" l4 8 --set parallel.tp=2 --set parallel.sequence_parallel=1 --set parallel.cp=2 \
           --set parallel.pp=2 --set parallel.virtual_stages=2 --set train.recompute=$mode &&
       grep -q "activations: recompute $mode" "$tmp/$name.log" &&
       out=$($py tests/mpi/compare_runs.py "$tmp/tp2sp_cp2_pp2v2" "$tmp/tp2sp_cp2_pp2v2.st" \
             "$tmp/$name" "$tmp/$name.st" 0 --bitwise); then
        pass "$name ($(echo "$out" | tail -1))"
    else
        fail "$name" "$(echo "${out:-run failed: $(tail -3 "$tmp/$name.log")}" | tr '\n' ' ')"
    fi
done

# 1F1B activation memory: no stage holds more than PP micro-batches at once,
# and stage 0 (PP - 1 warm-up forwards + 1) holds exactly PP
peaks=$(sed -n 's/^pipeline: peak activations per stage ([^)]*): \([0-9 ]*\) (.*/\1/p' "$tmp/pp4_dp2_6micro.log")
set -- $peaks
if [ $# -eq 4 ] && [ "$1" -eq 4 ] && [ "$2" -le 4 ] && [ "$3" -le 4 ] && [ "$4" -le 4 ]; then
    pass "pp4_1f1b_peak_activations (per stage: $peaks; bound 4)"
else
    fail pp4_1f1b_peak_activations "per stage '$peaks' (want 4 stages, each <= 4, stage 0 = 4)"
fi
# the printed schedule: 4 timelines, the measured bubble beside the theory
# (PP-1)/(N+PP-1) = 3/9 and the simulated one, equal to it for 1F1B
n=$(grep -c '^stage  [0-3] |' "$tmp/pp4_dp2_6micro.log")
line=$(grep '^pipeline bubble:' "$tmp/pp4_dp2_6micro.log")
case "$line" in
*"theory (PP-1)/(N*V+PP-1) = 0.333, simulated (backward = 2 x forward) 0.333"*)
    if [ "$n" -eq 4 ]; then pass "print_schedule ($line)"; else fail print_schedule "$n timelines"; fi ;;
*) fail print_schedule "bubble line '$line'" ;;
esac

# evaluation runs through the stages too (forward only, stage after stage):
# the validation loss of TP2 x CP2 x PP2 equals the one-process value
$herd data prepare --out "$tmp/val.bin" /usr/share/common-licenses/MPL-2.0 >/dev/null 2>&1
ev() { # ev NAME NP [--set ...]: the eval line
    name=$1; np=$2; shift 2
    timeout 120 mpirun -np "$np" "$herd" train "$tmp/l4.yaml" --set train.out_dir="$tmp/$name" \
        --set data.val_path="$tmp/val.bin" --set train.eval_every=5 "$@" 2>&1 | grep '^eval'
}
e1=$(ev eval_ref 1); e8=$(ev eval_tp2cp2pp2 8 --set parallel.tp=2 --set parallel.cp=2 --set parallel.pp=2)
if [ -n "$e1" ] && [ "$e1" = "$e8" ]; then pass "eval_tp2_cp2_pp2 ($e8)"
else fail eval_tp2_cp2_pp2 "one process '$e1', TP2xCP2xPP2 '$e8'"; fi

# a batch ramp (seq_len 16, then 32) with evaluation between the steps: the
# slots an evaluation forward held are given back before the next shape
cfg "$tmp/ramp.yaml" 4 512
sed -i 's/^    - {after_tokens: 0, batch_tokens: 512, seq_len: 32}/    - {after_tokens: 0, batch_tokens: 256, seq_len: 16}\n    - {after_tokens: 512, batch_tokens: 512, seq_len: 32}/' "$tmp/ramp.yaml"
vset="--set data.val_path=$tmp/val.bin --set train.eval_every=1"
if run ref_ramp ramp 1 $vset && run pp2_ramp_eval ramp 8 --set parallel.pp=2 --set parallel.cp=2 $vset &&
   out=$($py tests/mpi/compare_runs.py "$tmp/ref_ramp" "$tmp/ref_ramp.st" "$tmp/pp2_ramp_eval" \
         "$tmp/pp2_ramp_eval.st" 1e-5); then
    pass "pp2_cp2_ramp_with_eval ($(echo "$out" | tail -1))"
else
    fail pp2_cp2_ramp_with_eval "${out:-run failed: $(tail -3 "$tmp/pp2_ramp_eval.log")}"
fi

# bad input: every rank exits non-zero, rank 0 says why once, before any step
bad() { # bad NAME PATTERN CFG [args...]
    name=$1; pat=$2; c=$3; shift 3
    timeout 60 mpirun -np 8 "$herd" train "$tmp/$c.yaml" --set train.out_dir="$tmp/$name" \
        "$@" >"$tmp/$name.out" 2>&1
    rc=$?
    n=$(grep -c "$pat" "$tmp/$name.out")
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$n" -eq 1 ] && ! grep -q '^step ' "$tmp/$name.out"; then
        pass "$name"
    else
        fail "$name" "exit $rc, '$pat' printed $n times: $(head -c 600 "$tmp/$name.out")"
    fi
}
bad bad_pp_layers "6 layers cannot be split into pp (4) x virtual_stages (1) = 4 pipeline stages" l6 \
    --set parallel.pp=4
bad bad_pp_fewer_layers "4 layers cannot be split into pp (2) x virtual_stages (2) = 4 pipeline stages with the first and last one layer fewer" \
    l4 --set parallel.pp=2 --set parallel.virtual_stages=2 --set parallel.pp_first_last_fewer=1
bad bad_pp_micro "3 micro-batches per DP rank are fewer than the 4 pipeline stages" l4 \
    --set parallel.pp=4 --set batch.ramp='[{after_tokens: 0, batch_tokens: 192, seq_len: 32}]'
bad bad_cp_seq "seq_len 36 is not divisible by 2 x cp (8)" l4 --set parallel.cp=4 \
    --set batch.ramp='[{after_tokens: 0, batch_tokens: 576, seq_len: 36}]'
exit 0
