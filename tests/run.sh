#!/bin/sh
# Run every test of herd and count the cases.
#
#   build/tests/test_*   C unit tests (tests/unit), many cases each
#   tests/cli/*.sh       command-line and bad-input tests
#   tests/golden/*.sh    reference tests against PyTorch
#
# Every test prints one line per case: "PASS name", "FAIL name" or
# "SKIP name: why". A test that exits non-zero without printing FAIL counts as
# one failure of its own. The last line is "N passed, N failed, N skipped".
# TESTS="pattern" limits the run to test files whose path matches.
set -u
cd "$(dirname "$0")/.."
log_dir=build/test-logs
mkdir -p "$log_dir"
pass=0; fail=0; skip=0
pattern=${TESTS:-}

run_one() {
    t=$1; shift
    case "$t" in *"$pattern"*) ;; *) return ;; esac
    name=$(echo "$t" | tr '/' '_')
    log="$log_dir/$name.log"
    start=$(date +%s)
    "$@" >"$log.out" 2>"$log.err"
    rc=$?
    secs=$(( $(date +%s) - start ))
    p=$(grep -c '^PASS ' "$log.out"); f=$(grep -c '^FAIL ' "$log.out"); s=$(grep -c '^SKIP ' "$log.out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $t (exit $rc, no case reported a failure)" >>"$log.out"; f=$((f + 1))
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
        echo "FAIL $t (reported no case)" >>"$log.out"; f=1
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    printf '%-44s %3d passed %3d failed %3d skipped  (%ds)\n' "$t" "$p" "$f" "$s" "$secs"
    if [ "$f" -ne 0 ]; then
        # each FAIL/SKIP line, and up to 8 lines of a FAIL message that spans lines
        awk '/^(FAIL|SKIP)/ {print; more = /^FAIL/ ? 8 : 0; next}
             /^PASS/ {more = 0; next}
             more > 0 {print "  " $0; more--}' "$log.out" | sed 's/^/    /'
        tail -n 30 "$log.err" | sed 's/^/    | /'
    else
        grep '^SKIP' "$log.out" | sed 's/^/    /'
    fi
}

for t in build/tests/test_*; do
    [ -x "$t" ] && run_one "$t" "$t"
done
for t in tests/cli/*.sh tests/golden/*.sh tests/mpi/*.sh; do
    [ -f "$t" ] && run_one "$t" sh "$t"
done

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
