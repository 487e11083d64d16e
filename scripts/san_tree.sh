#!/bin/sh
# san_tree.sh BUILD_DIR: BUILD_DIR/tree, a tree of links to this checkout in
# which build/ is BUILD_DIR (`make test SANITIZE=1`: the tests name build/herd
# and build/tests/, and run there on the sanitized build without touching the
# normal one).
set -eu
cd "$(dirname "$0")/.."
build=$1
tree=$build/tree
rm -rf "$tree"
mkdir -p "$tree"
for e in * .git; do
    case "$e" in build|build-*|"$build") continue ;; esac
    [ -e "$e" ] && ln -s "$PWD/$e" "$tree/$e"
done
ln -s "$PWD/$build" "$tree/build"
