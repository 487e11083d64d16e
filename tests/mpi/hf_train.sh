#!/bin/sh
# Continued training from a Hugging Face checkpoint (train.init_from; the
# Llama 3.1 fixture of tests/fixtures/hf: rope scaling, sharded, GQA): the loss
# of the first step equals transformers' on the same batch (1e-5 relative,
# expected.safetensors train_loss), 3 steps on TP2 x PP2 x DP2 (8 ranks) equal
# the one-process run (every step's loss and the final parameters, 1e-5,
# tests/mpi/compare_runs.py), so do CP2 x PP2 x DP2 and TP4 x DP2 (KV heads
# replicated), and a config whose model disagrees with
# config.json is refused naming both values. `herd ckpt import` makes
# checkpoint step 0 of it, which TP2 x PP2 x DP2 resumes to the same result.
NAME=hf_train
. "$(dirname "$0")/../lib/mpi.sh"
fx=$PWD/tests/fixtures/hf/llama31_sharded
cat >"$tmp/cfg.yaml" <<YAML
model: {n_layers: 2, d_model: 32, n_heads: 4, n_kv_heads: 2, ffn_dim: 64, vocab_size: 96, max_seq_len: 16,
        rope_theta: 10000, norm_eps: 1.0e-5, rope_scale_factor: 8, rope_low_freq_factor: 1,
        rope_high_freq_factor: 4, rope_original_max_pos: 8}
batch:
  micro_batch: 1
  ramp:
    - {after_tokens: 0, batch_tokens: 64, seq_len: 16}
optim: {lr: 1.0e-3, min_lr: 1.0e-4}
schedule: {warmup_steps: 1, decay_steps: 10}
train: {max_steps: 3, log_every: 0, threads: 1, init_from: $fx}
data: {path: $fx/train.bin}
YAML
run() { # run NAME NP [--set ...]
    name=$1; np=$2; shift 2
    timeout 120 mpirun -np "$np" "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/$name" \
        --dump-params "$tmp/$name.st" "$@" >"$tmp/$name.log" 2>&1
}
if ! run ref 1; then fail reference "$(tail -5 "$tmp/ref.log")"; exit 1; fi
first_loss() { # first_loss RUN_DIR: step 1's loss against transformers' train_loss
    $py - "$1/metrics.jsonl" "$fx/expected.safetensors" <<'PY'
import json, struct, sys
first = json.loads(open(sys.argv[1]).readline())
with open(sys.argv[2], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    a, _ = h["train_loss"]["data_offsets"]
    f.seek(8 + n + a)
    want = struct.unpack("<f", f.read(4))[0]
rel = abs(first["loss"] - want) / abs(want)
print(f"step 1 loss herd {first['loss']:.7f} transformers {want:.7f} rel {rel:.2e}")
sys.exit(0 if first["step"] == 1 and rel <= 1e-5 else 1)
PY
}
if out=$(first_loss "$tmp/ref"); then pass "hf_first_step_loss_equals_transformers ($out)"
else fail hf_first_step_loss_equals_transformers "$out"; fi
# the CUDA backend's kernels (emulated on the CPU, tests/cuda_emu) read the same scaled RoPE table
if [ -x build/emu/herd ]; then
    if ! timeout 300 build/emu/herd train "$tmp/cfg.yaml" --set train.out_dir="$tmp/emu" \
            --set train.backend=cuda --set train.max_steps=1 >"$tmp/emu.log" 2>&1; then
        fail hf_cuda_emu_first_step "run failed: $(tail -5 "$tmp/emu.log")"
    elif out=$(first_loss "$tmp/emu"); then pass "hf_cuda_emu_first_step_loss_equals_transformers ($out)"
    else fail hf_cuda_emu_first_step_loss_equals_transformers "$out"; fi
fi

if ! run tp2pp2dp2 8 --set parallel.tp=2 --set parallel.pp=2; then
    fail hf_tp2pp2dp2 "run failed: $(tail -5 "$tmp/tp2pp2dp2.log")"
elif ! grep -q "layout TP2 x CP1 x PP2 x DP2 (8 ranks)" "$tmp/tp2pp2dp2.log"; then
    fail hf_tp2pp2dp2 "layout line missing"
elif out=$($py tests/mpi/compare_runs.py "$tmp/ref" "$tmp/ref.st" "$tmp/tp2pp2dp2" "$tmp/tp2pp2dp2.st" 1e-5); then
    pass "hf_tp2pp2dp2_equals_one_process ($(echo "$out" | tail -1))"
else
    fail hf_tp2pp2dp2 "$out"
fi

# TP4 > 2 KV heads: each KV head read into two TP ranks' copies
if ! run tp4dp2 8 --set parallel.tp=4; then
    fail hf_tp4dp2 "run failed: $(tail -5 "$tmp/tp4dp2.log")"
elif out=$($py tests/mpi/compare_runs.py "$tmp/ref" "$tmp/ref.st" "$tmp/tp4dp2" "$tmp/tp4dp2.st" 1e-5); then
    pass "hf_tp4dp2_replicated_kv_equals_one_process ($(echo "$out" | tail -1))"
else
    fail hf_tp4dp2 "$out"
fi

# context parallelism: the scaled RoPE at each CP rank's global positions
if ! run cp2pp2dp2 8 --set parallel.cp=2 --set parallel.pp=2; then
    fail hf_cp2pp2dp2 "run failed: $(tail -5 "$tmp/cp2pp2dp2.log")"
elif out=$($py tests/mpi/compare_runs.py "$tmp/ref" "$tmp/ref.st" "$tmp/cp2pp2dp2" "$tmp/cp2pp2dp2.st" 1e-5); then
    pass "hf_cp2pp2dp2_equals_one_process ($(echo "$out" | tail -1))"
else
    fail hf_cp2pp2dp2 "$out"
fi

# herd ckpt import: checkpoint step 0 from one process, resumed on TP2 x PP2 x DP2
if ! timeout 120 "$herd" ckpt import "$fx" "$tmp/cfg.yaml" --set train.out_dir="$tmp/imp" >"$tmp/imp.log" 2>&1; then
    fail hf_ckpt_import "import failed: $(tail -5 "$tmp/imp.log")"
elif ! run imp 8 --set parallel.tp=2 --set parallel.pp=2 --set checkpoint.resume=1 --set train.init_from=; then
    fail hf_ckpt_import "resume failed: $(tail -5 "$tmp/imp.log")"
elif ! grep -q "resumed from $tmp/imp/checkpoints/step_00000000 (step 0" "$tmp/imp.log"; then
    fail hf_ckpt_import "did not resume from the imported step 0"
elif out=$($py tests/mpi/compare_runs.py "$tmp/ref" "$tmp/ref.st" "$tmp/imp" "$tmp/imp.st" 1e-5); then
    pass "hf_ckpt_import_resumed_tp2pp2dp2_equals_one_process ($(echo "$out" | tail -1))"
else
    fail hf_ckpt_import "$out"
fi

# the run's model against config.json: refused on every rank, named once with both values
timeout 60 mpirun -np 2 "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/bad" \
    --set model.ffn_dim=128 >"$tmp/bad.out" 2>&1
rc=$?
pat="model.ffn_dim is 128 but $fx/config.json has intermediate_size 64"
n=$(grep -c "$pat" "$tmp/bad.out")
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$n" -eq 1 ]; then pass hf_config_mismatch_refused
else fail hf_config_mismatch_refused "exit $rc, '$pat' printed $n times: $(head -c 600 "$tmp/bad.out")"; fi
