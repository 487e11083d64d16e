#!/bin/sh
# List the longest functions of C files, longest first: LINES FILE:LINE NAME.
#   sh scripts/function_lengths.sh [N] [DIR...]   (default: 10, src)
# A function is a body that opens with "{" in column 0 and closes with "}" in
# column 0 (the project's style); its length counts from the line that names
# it to the closing brace. Generated tables (src/data/unicode_tab.c) are left
# out.
set -eu
n=${1:-10}
[ $# -gt 0 ] && shift
dirs=${*:-src}
# shellcheck disable=SC2086
find $dirs -name '*.c' ! -name unicode_tab.c | sort | while read -r f; do
    awk -v file="$f" '
        /^[A-Za-z_].*\(/ && !/;[ \t]*$/ { sig = FNR; name = $0; sub(/\(.*/, "", name); sub(/.*[ *]/, "", name) }
        /^\{/ { start = sig ? sig : FNR; body = 1 }
        /^\}/ && body { printf "%5d %s:%d %s\n", FNR - start + 1, file, start, name; body = 0; sig = 0 }
    ' "$f"
done | sort -rn | head -n "$n"
