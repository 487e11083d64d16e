#!/bin/sh
# The fuzz targets of tests/fuzz in `make test`: every saved input of
# tests/fuzz/regress/NAME (crashes found and fixed) runs again as a case of its
# own, then each target fuzzes briefly (FUZZ_TEST_SECONDS, default 3) from its
# seeds on a scratch copy. Needs clang with libFuzzer (Debian: clang,
# libclang-rt-14-dev); without it every case is skipped, saying so.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_TEST_SECONDS:-3}
# leaks are findings here, whatever the suite's sanitizer settings say
export ASAN_OPTIONS=detect_leaks=1
unset UBSAN_OPTIONS
targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
skip_all() { for t in $targets; do echo "SKIP fuzz_$t: $1"; done; exit 0; }
command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 || skip_all "${FUZZ_CC:-clang} not installed (scripts/deps.sh)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! make --no-print-directory -s SANITIZE= fuzz-build >"$tmp/build.log" 2>&1; then
    if grep -q 'libclang_rt.fuzzer\|-lclang_rt\|fsanitize=fuzzer' "$tmp/build.log"; then
        skip_all "clang cannot link libFuzzer (libclang-rt-14-dev missing?)"
    fi
    for t in $targets; do echo "FAIL fuzz_$t: make fuzz-build failed: $(tail -n 3 "$tmp/build.log")"; done
    exit 1
fi
fails=0
for t in $targets; do
    bin=build/fuzz/fuzz_$t
    # saved inputs: each must run clean (no crash, leak, sanitizer report, 10 s hang)
    for f in tests/fuzz/regress/$t/*; do
        [ -f "$f" ] || continue
        if "$bin" -timeout=10 -rss_limit_mb=2048 "$f" >"$tmp/out" 2>&1; then
            echo "PASS fuzz_regress_${t}_$(basename "$f")"
        else
            echo "FAIL fuzz_regress_${t}_$(basename "$f"): $(grep -m1 -E 'ERROR|SUMMARY' "$tmp/out")"
            fails=$((fails + 1))
        fi
    done
    # a short run from the seeds; what it finds is kept in build/fuzz/crashes/NAME/
    crashes=build/fuzz/crashes/$t
    mkdir -p "$tmp/corpus_$t" "$crashes"
    cp tests/fuzz/corpus/$t/* "$tmp/corpus_$t/" 2>/dev/null
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -seed=1 -print_final_stats=1 \
            -artifact_prefix="$crashes/" "$tmp/corpus_$t" >"$tmp/out" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_[a-z]*: *//p' "$tmp/out" | tail -n 1)
        echo "PASS fuzz_$t (${runs:-?} inputs in ${secs} s)"
    else
        input=$(sed -n 's/.*Test unit written to //p' "$tmp/out" | tail -n 1)
        echo "FAIL fuzz_$t: $(grep -m1 -E 'ERROR|SUMMARY' "$tmp/out" | sed 's/^==[0-9]*==//'); input ${input:-?}"
        grep -A 12 -m1 -E '^==[0-9]+==ERROR' "$tmp/out" | sed 's/^/    /' >&2
        fails=$((fails + 1))
    fi
done
[ "$fails" -eq 0 ]
