#!/bin/sh
# Parallelism I equivalence: 8 MPI processes on the CPU, each layout against
# the one-process run of the same config (loss of every step and final
# parameters within 1e-5 relative, tests/mpi/compare_runs.py), a layout run
# twice is bitwise identical, and bad layouts / launches fail on every rank
# with one clear message and no hang.
NAME=parallel
. "$(dirname "$0")/../lib/mpi.sh"

small_model 2 5  # tests/lib/mpi.sh: the data, $tmp/cfg.yaml, run_small

if ! run_small ref 1; then fail reference "$(tail -5 "$tmp/ref.log")"; exit 1; fi

check() { # check NAME TP SP: 8 ranks, DP = 8 / TP
    name=$1
    if ! run_small "$name" 8 --set parallel.tp="$2" --set parallel.sequence_parallel="$3"; then
        fail "$name" "run failed: $(tail -5 "$tmp/$name.log")"; return
    fi
    grep -q "layout TP$2 x CP1 x PP1 x DP$((8 / $2)) (8 ranks)" "$tmp/$name.log" \
        || { fail "$name" "layout line missing"; return; }
    if out=$($py tests/mpi/compare_runs.py "$tmp/ref" "$tmp/ref.st" "$tmp/$name" "$tmp/$name.st" 1e-5); then
        pass "$name ($(echo "$out" | tail -1))"
    else
        fail "$name" "$out"
    fi
}
check dp8 1 0
check tp2_dp4 2 0
check tp4_dp2 4 0
check tp8 8 0
check tp2sp_dp4 2 1

# the output projection fused with the cross-entropy in vocabulary chunks
# (train.xent_chunk 100: each rank's 256 vocabulary rows in chunks of 100, 100
# and a short 56; the TP ranks' running max / sum of exp combined) on 2 ranks
if ! run_small tp2sp_xent 2 --set parallel.tp=2 --set parallel.sequence_parallel=1 \
        --set train.xent_chunk=100; then
    fail tp2sp_xent_chunk "run failed: $(tail -5 "$tmp/tp2sp_xent.log")"
elif out=$($py tests/mpi/compare_runs.py "$tmp/ref" "$tmp/ref.st" "$tmp/tp2sp_xent" \
           "$tmp/tp2sp_xent.st" 1e-5); then
    pass "tp2sp_xent_chunk ($(echo "$out" | tail -1))"
else
    fail tp2sp_xent_chunk "$out"
fi

# the same layout twice: bitwise identical losses and parameters
if run_small tp2sp_again 8 --set parallel.tp=2 --set parallel.sequence_parallel=1 &&
   out=$($py tests/mpi/compare_runs.py "$tmp/tp2sp_dp4" "$tmp/tp2sp_dp4.st" "$tmp/tp2sp_again" \
         "$tmp/tp2sp_again.st" 0 --bitwise); then
    pass "tp2sp_dp4_bitwise_repeat"
else
    fail tp2sp_dp4_bitwise_repeat "${out:-run failed}"
fi

# per-rank sharded state falls as 1/DP (header line "sharded state ... = 16 B x N elements")
elems() { sed -n 's/.* = 16 B x \([0-9]*\) elements.*/\1/p' "$tmp/$1.log"; }
e1=$(elems ref); e8=$(elems dp8)
if [ -n "$e1" ] && [ -n "$e8" ] && [ $((e1 / 8)) -le "$e8" ] && [ "$e8" -le $((e1 / 8 + 2000)) ]; then
    pass "fsdp_memory_falls_as_1_over_dp ($e1 -> $e8 elements per rank)"
else
    fail fsdp_memory_falls_as_1_over_dp "ref $e1, dp8 $e8"
fi

# bad input: every rank exits non-zero, rank 0 says why once, nothing hangs
bad() { # bad NAME PATTERN NP [args...]
    name=$1; pat=$2; np=$3; shift 3
    timeout 60 mpirun -np "$np" ${MPIRUN_ARGS:-} "$herd" train "$tmp/cfg.yaml" --set train.out_dir="$tmp/$name" \
        "$@" >"$tmp/$name.out" 2>&1
    rc=$?
    n=$(grep -c "$pat" "$tmp/$name.out")
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$n" -eq 1 ]; then pass "$name"
    else fail "$name" "exit $rc, '$pat' printed $n times: $(head -c 600 "$tmp/$name.out")"; fi
}
bad bad_layout_world "tp 2 x cp 1 x pp 1 x dp 2 = 4 does not equal the world size 8" 8 \
    --set parallel.tp=2 --set parallel.dp=2
bad bad_tp_heads "n_heads (8) is not divisible by tp (3)" 8 --set parallel.tp=3
# srun -n 4 without --mpi=pmix starts 4 one-rank MPI jobs: each must refuse
SLURM_STEP_NUM_TASKS=4 SLURM_NTASKS=4 timeout 60 "$herd" train "$tmp/cfg.yaml" \
    --set train.out_dir="$tmp/launch" >"$tmp/launch.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
   grep -q "SLURM_STEP_NUM_TASKS says 4 tasks but MPI sees a world of 1" "$tmp/launch.out"; then
    pass bad_launch_size
else
    fail bad_launch_size "exit $rc: $(head -c 600 "$tmp/launch.out")"
fi
bad bad_sp_tokens "not divisible by tp" 8 --set parallel.tp=8 --set parallel.sequence_parallel=1 \
    --set batch.ramp='[{after_tokens: 0, batch_tokens: 76, seq_len: 19}]' --set parallel.dp=1 \
    --set batch.micro_batch=1
exit 0
