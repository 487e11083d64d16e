#!/bin/sh
# `make fuzz`: run each fuzz target (default: all of tests/fuzz/fuzz_*.c) for
# FUZZ_SECONDS (default 120), or until FUZZ_RUNS inputs if set and reached
# first, with a 10 s limit per input, and print per target the inputs executed
# and any crash. The seeds of tests/fuzz/corpus/NAME and
# the saved inputs of tests/fuzz/regress/NAME are copied into the scratch corpus
# build/fuzz/corpus/NAME, which grows there between runs and never in git.
# Crashes, leaks, timeouts and out-of-memory inputs go to build/fuzz/crashes/NAME/,
# logs to build/fuzz/logs/NAME.log. Exit status 1 if any target found something.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-120}
runs_flag=${FUZZ_RUNS:+-runs=$FUZZ_RUNS}
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}
mkdir -p build/fuzz/logs
found=0
printf '%-12s %12s %8s  %s\n' target inputs exec/s result
for t in $targets; do
    bin=build/fuzz/fuzz_$t
    if [ ! -x "$bin" ]; then echo "$t: $bin not built (make fuzz-build)"; found=1; continue; fi
    corpus=build/fuzz/corpus/$t crashes=build/fuzz/crashes/$t log=build/fuzz/logs/$t.log
    mkdir -p "$corpus" "$crashes"
    for d in tests/fuzz/corpus/$t tests/fuzz/regress/$t; do
        [ -d "$d" ] && find "$d" -maxdepth 1 -type f -exec cp {} "$corpus/" \;
    done
    before=$(ls "$crashes" | wc -l)
    # hwloc's target forks per input (topology/hwloc_discover.c probes the XML in a
    # child): ASan's 256 MB quarantine of freed memory is page tables every fork
    # copies; 16 MB ran 69 inputs/s against 52 (60 s each, same corpus)
    asan=${ASAN_OPTIONS:-}
    [ "$t" = hwloc ] && [ -z "$asan" ] && asan=quarantine_size_mb=16
    ASAN_OPTIONS=$asan "$bin" -max_total_time="$secs" $runs_flag -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_[a-z]*: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    new=$(( $(ls "$crashes" | wc -l) - before ))
    if [ "$rc" -eq 0 ] && [ "$new" -eq 0 ]; then
        result="no crash"
    else
        found=1
        what=$(grep -m1 -E '^==[0-9]+==ERROR|^SUMMARY|ERROR: libFuzzer' "$log" | sed 's/^==[0-9]*==//')
        result="FOUND (exit $rc): ${what:-see $log}; inputs in $crashes/"
    fi
    printf '%-12s %12s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$result"
done
exit "$found"
