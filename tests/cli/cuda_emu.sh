#!/bin/sh
# The CUDA backend on the CPU emulation (test tooling, tests/cuda_emu;
# docs/cuda.md "Kernel checks without a GPU"):
#   1. the emulator's own checks (build/emu/emu_selftest): correct kernels,
#      shuffles, WMMA and cuBLAS against naive loops, and deliberately wrong
#      kernels that it must catch (each case must abort with its message);
#   2. tests/unit/test_cuda_ops.c linked against the emulated backend
#      (build/emu/test_cuda_ops): every CUDA op against the CPU oracle, each
#      case reported as "emu:NAME".
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
exit 0
