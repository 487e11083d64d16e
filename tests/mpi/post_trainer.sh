#!/bin/sh
# Post-training as losses of the trainer's step (post.objective sft | dpo | rm,
# docs/post-training.md): each objective on 8 MPI processes, TP2 x PP2 x DP2
# and DP8 (FSDP), against the one-process run of the same config (loss of
# every step and final parameters within 1e-5 relative, compare_runs.py). The
# chain from released weights: SFT -> herd ckpt export --format hf -> DPO and
# RM start from that directory (train.init_from) -> the DPO result exported
# again. DPO's reference log-probabilities are written once and read by the
# rerun; a run stopped and resumed equals the undisturbed one (bitwise), and
# so does DPO from `herd ckpt import` of the same weights.
# Bad configs fail with a message naming the key.
NAME=post_trainer
. "$(dirname "$0")/../lib/mpi.sh"

$herd post demo-data --out "$tmp/d" --train 120 --test 10 --pref 60 >/dev/null 2>&1 &&
    $herd data train-tokenizer --vocab-size 320 --out "$tmp/tok.ranks" "$tmp/d/corpus.txt" >/dev/null 2>&1 ||
    { fail post_trainer_setup "demo data or tokenizer"; exit 1; }
cfg() { # cfg OBJECTIVE DATA: $tmp/OBJECTIVE.yaml, 16 rows of 64 tokens a step, 4 steps
    cat >"$tmp/$1.yaml" <<YAML
model: {n_layers: 4, d_model: 64, n_heads: 8, n_kv_heads: 2, ffn_dim: 128, vocab_size: 576, max_seq_len: 64}
batch:
  micro_batch: 2
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
optim: {lr: 1.0e-3, min_lr: 1.0e-4}
schedule: {warmup_steps: 2, decay_steps: 10}
train: {max_steps: 4, log_every: 0, threads: 1}
post: {objective: $1, data: $tmp/d/$2, tokenizer: $tmp/tok.ranks}
YAML
}
cfg sft sft.jsonl; cfg dpo pref.jsonl; cfg rm pref.jsonl

run() { # run NAME OBJECTIVE NP [--set ...]: trains into $tmp/NAME, dumps $tmp/NAME.st
    name=$1; obj=$2; np=$3; shift 3
    timeout 120 mpirun -np "$np" "$herd" train "$tmp/$obj.yaml" --set train.out_dir="$tmp/$name" \
        --dump-params "$tmp/$name.st" "$@" >"$tmp/$name.log" 2>&1
}
same() { # same NAME REF [TOL]: compare_runs against REF
    if out=$($py tests/mpi/compare_runs.py "$tmp/$2" "$tmp/$2.st" "$tmp/$1" "$tmp/$1.st" "${3:-1e-5}"); then
        pass "$1 ($(echo "$out" | tail -1))"
    else
        fail "$1" "$out"
    fi
}
check() { # check NAME OBJECTIVE REF [--set ...]: 8 ranks against the one-process REF
    name=$1; obj=$2; ref=$3; shift 3
    if run "$name" "$obj" 8 "$@"; then same "$name" "$ref"
    else fail "$name" "run failed: $(tail -3 "$tmp/$name.log")"; fi
}
export_hf() { # export_hf RUN OUT: RUN's step-4 checkpoint as a Hugging Face directory, equal to its dump
    $herd ckpt export "$tmp/$1/checkpoints/step_00000004" "$tmp/$2" --format hf --dtype f32 \
        --tokenizer "$tmp/tok.ranks" >"$tmp/$2.log" 2>&1 &&
    $py - "$tmp/$1.st" "$tmp/$2/model-00001-of-00001.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/mpi")
import numpy as np
from compare_runs import load_st
a, b = load_st(sys.argv[1]), load_st(sys.argv[2])
assert set(a) == set(b) and len(a) == 39, "tensor names differ"
assert all(np.array_equal(a[k], b[k]) for k in a), "exported weights differ from the run's"
PY
}

# SFT from the seed's init; its checkpoint, exported, is where DPO and RM start
if ! run sft_1 sft 1 --set checkpoint.every=4; then fail sft_1 "$(tail -3 "$tmp/sft_1.log")"; exit 1; fi
grep -q "post data .*sft.jsonl: 120 records" "$tmp/sft_1.log" || fail sft_data_line "$(head -c 400 "$tmp/sft_1.log")"
check sft_tp2pp2dp2 sft sft_1 --set parallel.tp=2 --set parallel.pp=2
check sft_dp8 sft sft_1
if export_hf sft_1 hf_sft; then pass "sft_export_hf (checkpoint -> Hugging Face directory, weights equal)"
else fail sft_export_hf "$(tail -3 "$tmp/hf_sft.log")"; exit 1; fi

# DPO from the exported SFT model (train.init_from): the reference pass, then the steps
init="--set train.init_from=$tmp/hf_sft"
if ! run dpo_1 dpo 1 $init --set checkpoint.every=4; then fail dpo_1 "$(tail -3 "$tmp/dpo_1.log")"; exit 1; fi
grep -q "dpo: reference log-probabilities of 60 pairs in .* (0 read, 60 computed" "$tmp/dpo_1.log" ||
    fail dpo_reference_written "$(grep dpo: "$tmp/dpo_1.log")"
check dpo_tp2pp2dp2 dpo dpo_1 $init --set parallel.tp=2 --set parallel.pp=2
check dpo_dp8 dpo dpo_1 $init
# stopped after 2 steps, resumed to 4 (the reference file read, the pairs replayed): bitwise
if run dpo_resumed dpo 1 $init --set checkpoint.every=2 --set train.max_steps=2 &&
   run dpo_resumed dpo 1 $init --set checkpoint.every=2 &&
   grep -q "resumed from" "$tmp/dpo_resumed.log" &&
   grep -q "dpo: reference log-probabilities of 60 pairs in .* (60 read, 0 computed" "$tmp/dpo_resumed.log" &&
   out=$($py tests/mpi/compare_runs.py "$tmp/dpo_1" "$tmp/dpo_1.st" "$tmp/dpo_resumed" \
         "$tmp/dpo_resumed.st" 0 --bitwise); then
    pass "dpo_resume_bitwise (reference read again, not recomputed)"
else
    fail dpo_resume_bitwise "${out:-$(tail -3 "$tmp/dpo_resumed.log")}"
fi
# the same start as a herd checkpoint (`herd ckpt import`: step 0, resumed):
# the reference is that checkpoint's model, the run equals dpo_1 bitwise
if $herd ckpt import "$tmp/hf_sft" "$tmp/dpo.yaml" --set train.out_dir="$tmp/dpo_import" \
       >"$tmp/dpo_import.imp" 2>&1 &&
   run dpo_import dpo 1 && grep -q "resumed from .*step_00000000" "$tmp/dpo_import.log" &&
   out=$($py tests/mpi/compare_runs.py "$tmp/dpo_1" "$tmp/dpo_1.st" "$tmp/dpo_import" \
         "$tmp/dpo_import.st" 0 --bitwise); then
    pass "dpo_from_herd_ckpt_import_bitwise"
else
    fail dpo_from_herd_ckpt_import_bitwise "${out:-$(tail -3 "$tmp/dpo_import.imp" "$tmp/dpo_import.log")}"
fi
# the reference pass cut short (10 pairs and a torn record written): a rerun
# computes the other 50 and writes the same file
mkdir "$tmp/dpo_cut"
head -c $((24 + 10 * 16 + 5)) "$tmp/dpo_1/dpo_reference.bin" >"$tmp/dpo_cut/dpo_reference.bin"
if run dpo_cut dpo 1 $init --set train.max_steps=1 &&
   grep -q "(10 read, 50 computed" "$tmp/dpo_cut.log" &&
   cmp -s "$tmp/dpo_1/dpo_reference.bin" "$tmp/dpo_cut/dpo_reference.bin"; then
    pass "dpo_reference_resumable (10 of 60 pairs written: 50 computed, the same file)"
else
    fail dpo_reference_resumable "$(grep "dpo:" "$tmp/dpo_cut.log"; tail -2 "$tmp/dpo_cut.log")"
fi
# another starting model: the file is refused, not used
bad_ref() {
    timeout 60 "$herd" train "$tmp/dpo.yaml" --set train.out_dir="$tmp/dpo_cut" --set train.max_steps=1 \
        >"$tmp/bad_ref.out" 2>&1
}
if ! bad_ref && grep -q "dpo_reference.bin: written by another starting model" "$tmp/bad_ref.out"; then
    pass dpo_reference_of_another_model_refused
else
    fail dpo_reference_of_another_model_refused "$(tail -3 "$tmp/bad_ref.out")"
fi
if export_hf dpo_1 hf_dpo; then pass "dpo_export_hf (the result exported, weights equal)"
else fail dpo_export_hf "$(tail -3 "$tmp/hf_dpo.log")"; fi

# RM from the SFT model. optim.eps 1e-5: the reward reaches the body through
# one scalar per row, and with AdamW's default eps 1e-8 the fp32 rounding of
# near-zero gradient elements becomes steps of order lr (TP2 x PP2 x DP2 at
# eps 1e-8: parameters within 3.3e-05, losses within 1e-08)
check_rm() { check "$@" $init --set optim.eps=1e-5; }
if ! run rm_1 rm 1 $init --set optim.eps=1e-5; then fail rm_1 "$(tail -3 "$tmp/rm_1.log")"; exit 1; fi
check_rm rm_tp2pp2dp2 rm rm_1 --set parallel.tp=2 --set parallel.pp=2
check_rm rm_dp8 rm rm_1

# one step of each objective equals one step of `herd post OBJ` (the one-rank
# path whose losses and gradients tests/golden/post.sh holds against PyTorch)
# from the same weights on the same rows: constant lr, micro_batch 8 pairs
# (dpo, rm; 2 responses a record) or 16 packed rows (sft) there
one="--set schedule.warmup_steps=0 --set optim.min_lr=1.0e-3 --set train.max_steps=1"
as_post() { # as_post OBJECTIVE POST_MICRO_BATCH DATA [--set ...]
    obj=$1; mb=$2; data=$3; shift 3
    if run "${obj}_one" "$obj" 1 $init $one "$@" &&
       $herd post "$obj" "$tmp/$obj.yaml" --tokenizer "$tmp/tok.ranks" --data "$tmp/d/$data"            --weights "$tmp/hf_sft" --out "$tmp/${obj}_post.st" --steps 1 --set batch.micro_batch="$mb"            $one "$@" >"$tmp/${obj}_post.log" 2>&1 &&
       out=$($py - "$tmp/${obj}_one.st" "$tmp/${obj}_post.st" "$tmp/hf_sft/model-00001-of-00001.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/mpi")
import numpy as np
from compare_runs import load_st
a, b, w = (load_st(p) for p in sys.argv[1:4])
rel = lambda x, y: max(float(np.linalg.norm(x[k] - y[k]) / np.linalg.norm(y[k])) for k in y)
err, moved = rel(a, b), rel(a, w)
assert set(a) == set(b) and err <= 1e-5 and moved > 1e-3, f"params differ by {err:.3e} (the step moved them {moved:.3e})"
print(f"params within {err:.2e}, the step moved them {moved:.2e}")
PY
       ); then pass "${obj}_equals_herd_post ($out)"
    else fail "${obj}_equals_herd_post" "${out:-$(tail -3 "$tmp/${obj}_post.log")}"; fi
}
as_post sft 16 sft.jsonl
as_post dpo 8 pref.jsonl
as_post rm 8 pref.jsonl --set optim.eps=1e-5

# bad configs: the key named, a non-zero exit
bad() { # bad NAME PATTERN OBJECTIVE [--set ...]
    name=$1; pat=$2; obj=$3; shift 3
    timeout 60 "$herd" train "$tmp/$obj.yaml" --set train.out_dir="$tmp/$name" "$@" >"$tmp/$name.out" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "$pat" "$tmp/$name.out"; then pass "$name"
    else fail "$name" "exit $rc: $(head -c 400 "$tmp/$name.out")"; fi
}
bad bad_no_data "post.data: objective sft needs post.data" sft --set post.data=
bad bad_dpo_odd_micro "batch.micro_batch: objective dpo needs an even micro_batch" dpo \
    --set batch.micro_batch=1
bad bad_rm_xent_chunk "key 'train.xent_chunk': objective rm scores the stored logits" rm \
    --set train.xent_chunk=100
bad bad_objective "post.objective" sft --set post.objective=ppo
printf '{"messages": [{"role": "bot", "content": "x"}]}\n' >"$tmp/bad.jsonl"
bad bad_role "bad.jsonl:1: messages\[0\].role: unknown role 'bot'" sft --set post.data="$tmp/bad.jsonl"
exit 0
