#!/bin/sh
# The CUDA backend on the CPU emulation (test tooling, tests/cuda_emu;
# docs/cuda.md "Kernel checks without a GPU"):
#   1. the emulator's own checks (build/emu/emu_selftest): correct kernels,
#      shuffles, WMMA and cuBLAS against naive loops, and deliberately wrong
#      kernels that it must catch (each case must abort with its message);
#   2. tests/unit/test_cuda_ops.c linked against the emulated backend
#      (build/emu/test_cuda_ops): every CUDA op against the CPU oracle, each
#      case reported as "emu:NAME";
#   3. test_ckpt's snapshot_from_cuda_backend on the emulated backend, and
#      test_nccl on the emulated NCCL;
#   4. `herd train` of a small tiny-preset run on backend cuda (build/emu/herd)
#      against backend cpu (build/herd), fp32 and bf16: the loss of every step
#      within TOL (fp32 1e-4, bf16 1e-3 relative) -- benchmarks/mfu/gpu_vs_cpu.sh
#      in miniature, on the emulator.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

st=build/emu/emu_selftest
if [ -x "$st" ]; then
    "$st" >"$tmp/st.out" 2>"$tmp/st.err"
    rc=$?
    sed -n 's/^\(PASS\|FAIL\|SKIP\) /\1 emu_selftest:/p' "$tmp/st.out"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL' "$tmp/st.out"; then
        echo "FAIL emu_selftest (exit $rc): $(tail -n 5 "$tmp/st.err" | tr '\n' ' ')"
    fi
    # the must-abort cases: each runs alone and must die with its message
    for c in $("$st" --list-bad); do
        "$st" --bad "$c" >"$tmp/bad.out" 2>"$tmp/bad.err"
        rc=$?
        want=$("$st" --expect "$c")
        if [ "$rc" -ne 0 ] && grep -qF -- "$want" "$tmp/bad.err"; then
            echo "PASS emu_selftest:catches_$c"
        else
            echo "FAIL emu_selftest:catches_$c: exit $rc, stderr lacks '$want': $(head -c 400 "$tmp/bad.err")"
        fi
    done
    # several devices: HERD_CUDA_EMU_DEVICES physical GPUs with the bus ids of the
    # DGX fixture, CUDA_VISIBLE_DEVICES filtering and renumbering them; "-" unsets it
    while read -r ndev cvd want; do
        if [ "$cvd" = - ]; then
            got=$(env -u CUDA_VISIBLE_DEVICES HERD_CUDA_EMU_DEVICES=$ndev "$st" --devices 2>&1)
        else
            got=$(HERD_CUDA_EMU_DEVICES=$ndev CUDA_VISIBLE_DEVICES=$cvd "$st" --devices 2>&1)
        fi
        rc=$?
        name="devices_${ndev}_visible_$(echo "$cvd" | tr ',' '_')"
        if [ "$rc" -eq 0 ] && [ "$(echo "$got" | head -n 1)" = "devices $want" ] && ! echo "$got" | grep -q '^FAIL'; then
            echo "PASS emu_selftest:$name ($(echo "$got" | grep -c '^PASS') checks)"
        else
            echo "FAIL emu_selftest:$name: want 'devices $want', got: $(echo "$got" | tr '\n' ' ' | head -c 400)"
        fi
    done <<'CASES'
1 - 1 0000:11:00.0
2 - 2 0000:11:00.0 0000:91:00.0
8 - 8 0000:11:00.0 0000:21:00.0 0000:51:00.0 0000:61:00.0 0000:91:00.0 0000:A1:00.0 0000:D1:00.0 0000:E1:00.0
4 3,1 2 0000:D1:00.0 0000:51:00.0
2 1 1 0000:91:00.0
4 2,7,0 1 0000:91:00.0
4 1,1 1 0000:51:00.0
2 -1 0
CASES
else
    echo "FAIL emu_selftest: $st not built (make emu)"
fi

t=build/emu/test_cuda_ops
if [ ! -x "$t" ]; then echo "FAIL emu:test_cuda_ops: $t not built (make emu)"; exit 0; fi
"$t" >"$tmp/out" 2>"$tmp/err"
rc=$?
sed -n 's/^\(PASS\|FAIL\|SKIP\) /\1 emu:/p' "$tmp/out"
# a kernel bug the emulator catches aborts the run: say where
if [ "$rc" -ne 0 ] && ! grep -q '^FAIL' "$tmp/out"; then
    echo "FAIL emu:test_cuda_ops (exit $rc, after $(grep -c '^PASS' "$tmp/out") passed): $(grep 'cuda-emu' "$tmp/err" | head -n 4 | tr '\n' ' ')"
fi
grep -v '^ *$' "$tmp/err" | head -n 40 >&2

# test_ckpt's case on the CUDA backend (a checkpoint saved from device memory);
# its other cases are the CPU ones, run by tests/run.sh already
t=build/emu/test_ckpt
if [ -x "$t" ]; then
    "$t" >"$tmp/ck.out" 2>"$tmp/ck.err"
    rc=$?
    sed -n 's/^\(PASS\|FAIL\|SKIP\) \([a-z_]*cuda[a-z_]*\)/\1 emu:\2/p' "$tmp/ck.out"
    [ "$rc" -eq 0 ] || echo "FAIL emu:test_ckpt (exit $rc): $(grep -E '^FAIL|cuda-emu' "$tmp/ck.out" "$tmp/ck.err" | head -n 3 | tr '\n' ' ')"
else
    echo "FAIL emu:test_ckpt: $t not built (make emu)"
fi

# comm_nccl.cu on the emulated NCCL (tests/cuda_emu/nccl.cpp: MPI on host copies)
t=build/emu/test_nccl
if [ -x "$t" ]; then
    "$t" >"$tmp/nc.out" 2>"$tmp/nc.err"
    rc=$?
    sed -n 's/^\(PASS\|FAIL\|SKIP\) /\1 emu:/p' "$tmp/nc.out"
    [ "$rc" -eq 0 ] || echo "FAIL emu:test_nccl (exit $rc): $(grep -E '^FAIL|cuda-emu' "$tmp/nc.out" "$tmp/nc.err" | head -n 3 | tr '\n' ' ')"
else
    echo "FAIL emu:test_nccl: $t not built (make emu)"
fi

# which GPU each rank takes, under mpirun (no Slurm): 2 emulated devices with
# the bus ids of gpu2.xml, CUDA_VISIBLE_DEVICES=1,0 renumbering them; `herd topo`
# prints every rank's start-up line. Then 3 ranks on 2 GPUs: refused.
if [ -x build/emu/herd ]; then
    xml=tests/fixtures/topology/gpu2.xml
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HERD_CUDA_EMU_DEVICES=2 HWLOC_XMLFILE=$xml \
        CUDA_VISIBLE_DEVICES=1,0 timeout 120 mpirun --oversubscribe --bind-to none -np 2 \
        -x HERD_CUDA_EMU_DEVICES -x HWLOC_XMLFILE -x CUDA_VISIBLE_DEVICES build/emu/herd topo >"$tmp/topo.out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] \
       && grep -q '^device: rank 0: .* GPU 0 (0000:91:00.0, by local rank), .* NIC mlx5_1$' "$tmp/topo.out" \
       && grep -q '^device: rank 1: .* GPU 1 (0000:11:00.0, by local rank), .* NIC mlx5_0$' "$tmp/topo.out"; then
        echo "PASS emu:mpirun_2_ranks_own_gpu_by_bus_id"
    else
        echo "FAIL emu:mpirun_2_ranks_own_gpu_by_bus_id: rc $rc: $(grep -E '^device|herd' "$tmp/topo.out" | head -n 4)"
    fi
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HERD_CUDA_EMU_DEVICES=2 HWLOC_XMLFILE=$xml \
        timeout 120 mpirun --oversubscribe --bind-to none -np 3 -x HERD_CUDA_EMU_DEVICES -x HWLOC_XMLFILE \
        build/emu/herd train configs/tiny.yaml --set train.backend=cuda --set train.out_dir="$tmp/shared" \
        >"$tmp/shared.out" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ] && grep -q "node .*: ranks 0 and 2 both use GPU 0000:11:00.0" "$tmp/shared.out" \
       && [ ! -e "$tmp/shared/metrics.jsonl" ]; then
        echo "PASS emu:mpirun_3_ranks_on_2_gpus_refused"
    else
        echo "FAIL emu:mpirun_3_ranks_on_2_gpus_refused: rc $rc: $(grep herd "$tmp/shared.out" | head -n 4)"
    fi
    # herd check on the emulated CUDA backend: its collectives over (emulated)
    # NCCL, each rank's GPU in the binding table, one GPU each
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HERD_CUDA_EMU_DEVICES=2 HWLOC_XMLFILE=$xml \
        timeout 300 mpirun --oversubscribe --bind-to none -np 2 -x HERD_CUDA_EMU_DEVICES -x HWLOC_XMLFILE \
        build/emu/herd check configs/tiny.yaml --set train.backend=cuda --set train.out_dir="$tmp/chk" \
        --set parallel.dp=2 --reps 1 --out "$tmp/chk/o" >"$tmp/check.out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q 'backend cuda' "$tmp/check.out" \
       && grep -Eq '^  0 .* GPU 0 0000:11:00.0 NIC mlx5_0' "$tmp/check.out" \
       && grep -Eq '^  1 .* GPU 1 0000:91:00.0 NIC mlx5_1' "$tmp/check.out" \
       && grep -q 'dp reduce_scatter' "$tmp/check.out" && [ -s "$tmp/chk/o/links" ]; then
        echo "PASS emu:check_2_ranks_gpu_column_and_nccl"
    else
        echo "FAIL emu:check_2_ranks_gpu_column_and_nccl: rc $rc: $(grep -E 'herd|GPU' "$tmp/check.out" | head -n 6)"
    fi
fi

if [ ! -x build/emu/herd ] || [ ! -x build/herd ]; then
    echo "FAIL emu:train_cuda_vs_cpu: build/emu/herd or build/herd not built (make emu)"; exit 0
fi
build/herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 \
    /usr/share/common-licenses/Apache-2.0 >"$tmp/prep.log" 2>&1 || {
    echo "FAIL emu:train_cuda_vs_cpu: herd data prepare: $(tail -n 3 "$tmp/prep.log")"; exit 0; }
cat >"$tmp/cfg.yaml" <<YAML
model:
  preset: tiny
train:
  max_steps: 2
  log_every: 1
batch:
  micro_batch: 4
  ramp: [{after_tokens: 0, batch_tokens: 512, seq_len: 64}]
data:
  path: $tmp/train.bin
YAML
for p in fp32 bf16; do
    tol=1e-4; [ "$p" = bf16 ] && tol=1e-3
    ok=1
    for be in cuda cpu; do
        herd=build/herd; [ "$be" = cuda ] && herd=build/emu/herd
        if ! $herd train "$tmp/cfg.yaml" --set train.backend=$be --set train.precision=$p \
                --set train.threads=1 --set train.out_dir="$tmp/$p-$be" >"$tmp/$p-$be.log" 2>&1; then
            echo "FAIL emu:train_${p}_cuda_vs_cpu: herd train on $be: $(grep -i 'error\|cuda-emu\|herd:' "$tmp/$p-$be.log" | head -n 3 | tr '\n' ' ')"
            ok=0
        fi
    done
    [ "$ok" = 1 ] || continue
    sed 's/.*"loss":\([^,}]*\).*/\1/' "$tmp/$p-cuda/metrics.jsonl" >"$tmp/a"
    sed 's/.*"loss":\([^,}]*\).*/\1/' "$tmp/$p-cpu/metrics.jsonl" >"$tmp/b"
    paste "$tmp/a" "$tmp/b" | awk -v tol="$tol" -v p="$p" '
        { d = $1 - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > w) w = r; n++
          s = s sprintf(" %s/%s", $1, $2) }
        END { if (n == 2 && w <= tol) printf "PASS emu:train_%s_cuda_vs_cpu (losses cuda/cpu%s; largest rel diff %.2e)\n", p, s, w
              else printf "FAIL emu:train_%s_cuda_vs_cpu: %d steps, losses cuda/cpu%s, largest rel diff %.2e > %s\n", p, n, s, w, tol }'
done
exit 0
