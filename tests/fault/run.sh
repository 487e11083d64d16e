#!/bin/sh
# make test-fault: the fault-injection tests (a)-(g), one after another, sharing one
# reference run; counts PASS/FAIL/SKIP like tests/run.sh. FAULTS=pattern limits them.
set -u
cd "$(dirname "$0")/../.."
export FAULT_REF_DIR=$(mktemp -d /tmp/herd-fault-ref.XXXXXX)
trap 'rm -rf "$FAULT_REF_DIR"' EXIT
pass=0; fail=0; skip=0
for t in tests/fault/[a-g]_*.sh; do
    case "$t" in *"${FAULTS:-}"*) ;; *) continue ;; esac
    start=$(date +%s)
    out=$(sh "$t" 2>&1); rc=$?
    echo "$out"
    p=$(echo "$out" | grep -c '^PASS '); f=$(echo "$out" | grep -c '^FAIL '); s=$(echo "$out" | grep -c '^SKIP ')
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ] && f=1
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    echo "== $t: $p passed, $f failed, $s skipped ($(( $(date +%s) - start )) s)"
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
