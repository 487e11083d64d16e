#!/bin/sh
# The include direction of the layers (docs/architecture.md, scripts/layers.sh):
# each folder of the tree against its rule, then a copy of the tree with an
# upward include planted, which the check must refuse.
set -u
cd "$(dirname "$0")/../.."
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

out=$(sh scripts/layers.sh check 2>&1); rc=$?
echo "$out" | while read -r dir rest; do
    if [ "$rest" = ok ]; then pass "layers:$dir"; else fail "layers:$dir" "$rest"; fi
done
[ "$rc" -eq 0 ] || fails=$((fails + 1))

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the folders with a trailing slash: under `make test SANITIZE=1` they are links
# (scripts/san_tree.sh), which find does not enter when named bare
find src/ kernels/ checkpoint/ monitoring/ topology/ -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) |
    tar -cf - -T - | tar -xf - -C "$tmp"
printf '#include "src/train/train.h"\n' >>"$tmp/topology/topo.h"
printf '#include "src/cli/commands.h"\n' >>"$tmp/src/model/model.h"
bad=$(LAYERS_ROOT=$tmp sh scripts/layers.sh check 2>&1); brc=$?
if [ "$brc" -ne 0 ] && echo "$bad" | grep -q '^topology topology/topo.h:[0-9]* includes src/train/train.h' &&
   echo "$bad" | grep -q '^src/model src/model/model.h:[0-9]* includes src/cli/commands.h'; then
    pass layers:planted_upward_includes_refused
else
    fail layers:planted_upward_includes_refused "the check let them through: $bad"
fi
[ "$fails" -eq 0 ]
