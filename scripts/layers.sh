#!/bin/sh
# The layers of herd and what each folder may include (docs/architecture.md).
#
#   sh scripts/layers.sh check   every #include "..." of every folder against
#                                its rule; prints "FOLDER ok" or
#                                "FOLDER FILE:LINE includes PATH"; exit 1 if any
#   sh scripts/layers.sh edges   folder -> folder include counts ("A B N")
#   sh scripts/layers.sh dot     the same as a Graphviz digraph (docs/architecture.dot)
#
# A folder's rule lists the folders it may include besides itself. The
# libraries (kernels, checkpoint, monitoring, topology) are the bottom: they
# include one another and nothing of src/; inside src/ each layer includes
# only the libraries and the layers below it. tests/ and benchmarks/ may
# include anything.
set -eu
self=$(readlink -f "$0")
cd "${LAYERS_ROOT:-$(dirname "$0")/..}"   # LAYERS_ROOT: another tree (the test plants includes in a copy)
LIBS="kernels checkpoint monitoring topology"
rules() {
    cat <<RULES
kernels      $LIBS
checkpoint   $LIBS
monitoring   $LIBS
topology     $LIBS
src/base     $LIBS
src/config   src/base $LIBS
src/data     src/base src/config $LIBS
src/model    src/base src/config $LIBS
src/parallel src/base src/config src/model $LIBS
src/train    src/base src/config src/data src/model src/parallel $LIBS
src/post     src/base src/config src/data src/model src/parallel src/train $LIBS
src/cli      src/base src/config src/data src/model src/parallel src/train src/post $LIBS
RULES
}
# the folder of a path: src/X for src/X/..., else the top-level folder
folder() { case $1 in src/*) echo "$1" | cut -d/ -f1-2 ;; *) echo "$1" | cut -d/ -f1 ;; esac; }

# "FROM_FILE LINE INCLUDED_PATH" for every quoted include of the layered folders
includes() {
    rules | while read -r dir _; do
        [ -d "$dir" ] || continue
        find "$dir" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) | sort |
            while read -r f; do
                grep -n '^[ \t]*#[ \t]*include[ \t]*"' "$f" | sed "s|^\([0-9]*\):[^\"]*\"\([^\"]*\)\".*|$f \1 \2|"
            done
    done
}

case ${1:-check} in
check)
    bad=0
    tab=$(rules)
    out=$(includes | while read -r f line inc; do
        from=$(folder "$f")
        case $inc in */*) ;; *) echo "$from $f:$line includes \"$inc\" (write the path from the repository root)"; continue ;; esac
        to=$(folder "$inc")
        [ "$to" = "$from" ] && continue
        allowed=$(echo "$tab" | awk -v d="$from" '$1 == d { $1 = ""; print }')
        case " $allowed " in *" $to "*) ;; *) echo "$from $f:$line includes $inc" ;; esac
    done)
    for dir in $(rules | awk '{print $1}'); do
        if [ ! -d "$dir" ]; then echo "$dir missing (the layer's folder is not there)"; bad=1; continue; fi
        v=$(echo "$out" | awk -v d="$dir" '$1 == d { $1 = ""; print }' | sed 's/^ //')
        if [ -z "$v" ]; then echo "$dir ok"; else echo "$v" | sed "s|^|$dir |"; bad=1; fi
    done
    exit $bad
    ;;
edges)
    includes | while read -r f _ inc; do
        case $inc in */*) echo "$(folder "$f") $(folder "$inc")" ;; esac
    done | awk '$1 != $2' | sort | uniq -c | awk '{print $2, $3, $1}'
    ;;
dot)
    echo 'digraph herd_layers {'
    echo '  rankdir=BT; node [shape=box, fontname="Helvetica"]; edge [color="#555555"];'
    echo '  { rank=same; "kernels"; "checkpoint"; "monitoring"; "topology"; }'
    echo '  { rank=same; "src/data"; "src/model"; }'
    sh "$self" edges | while read -r a b n; do echo "  \"$a\" -> \"$b\" [label=\"$n\"];"; done
    echo '}'
    ;;
*) echo "usage: sh scripts/layers.sh [check|edges|dot]" >&2; exit 2 ;;
esac
