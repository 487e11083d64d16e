#!/bin/sh
# check_bundle.sh — proves that build/bundle runs `herd train` (one process, CPU
# backend, and `mpirun -np 2` on one node) without this machine's Open MPI,
# PMIx, HDF5, hwloc, libyaml and OpenBLAS: as a GPU machine without herd's build
# deps would run it. Not part of `make test` (it needs the bundle, whose CUDA
# build takes minutes):
#
#   make device-bundle && sh scripts/check_bundle.sh
#
# As root, inside a private mount namespace (unshare -m), it hides
#  - the directories of those packages (a tmpfs over each: plugins, help files,
#    /etc/openmpi),
#  - every system copy of a library the bundle carries (an empty file bound
#    over it: a loader that still reached for it would fail), except glibc's,
#    which the shell that runs the check itself needs,
#  - /etc/ld.so.cache (the loader then searches only its path),
# then copies the bundle to a fresh directory (a new path: relocation; the
# compressed OpenBLAS unpacked by run into a fresh HERD_BUNDLE_CACHE), trains
# 5 steps of the tiny preset with LD_DEBUG=libs, and fails if any library the
# trainer loaded, a plugin included, came from outside the bundle (the CUDA
# toolkit's cudart and cuBLAS excepted: on a GPU machine they are that machine's).
# Without root or unshare it says so and falls back to the LD_DEBUG check alone.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
B=${HERD_BUNDLE:-build/bundle}
case "$B" in /*) ;; *) B="$repo/$B" ;; esac
if [ ! -x "$B/run" ] || [ ! -e "$B/bin/herd" ]; then
    echo "check_bundle.sh: $B/run or $B/bin/herd missing: run make device-bundle first" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the inner part: what runs in the namespace (or as is, in the fallback)
cat >"$tmp/inner.sh" <<'INNER'
set -eu
B=$1 tmp=$2 hide=$3
libdir=/usr/lib/x86_64-linux-gnu
if [ "$hide" = 1 ]; then
    mount --make-rprivate /
    : >"$tmp/empty"
    nfile=0
    # files first: some are links into the directories hidden below
    for f in "$B"/lib/*.so*; do
        name=$(basename "${f%.xz}")
        case "$name" in
        libc.so*|libm.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) continue ;;
        esac
        for d in "$libdir" /lib/x86_64-linux-gnu /usr/lib64 /lib64; do
            if [ -e "$d/$name" ]; then
                mount --bind "$tmp/empty" "$d/$name" && nfile=$((nfile + 1))
                break
            fi
        done
    done
    echo "hid $nfile system copies of the bundle's libraries (empty files over them; glibc kept for the shell)"
    for d in "$libdir/openmpi" "$libdir/pmix2" "$libdir/hdf5" "$libdir/hwloc" \
             "$libdir/openblas-openmp" "$libdir/openblas-pthread" "$libdir/openblas" \
             /usr/share/openmpi /etc/openmpi /usr/share/hwloc; do
        [ -d "$d" ] || continue
        mount -t tmpfs none "$d"
        echo "hid $d/ (empty tmpfs)"
    done
    mount --bind "$tmp/empty" /etc/ld.so.cache
    echo "hid /etc/ld.so.cache"
    for p in /usr/bin/orterun /usr/bin/orted /usr/bin/mpirun; do
        [ -e "$p" ] && mount --bind "$tmp/empty" "$p" && echo "hid $p"
    done
    bad=$(ldd "$B/bin/herd" 2>&1 | grep 'not found\|too short\|error' | head -2 || true)
    [ -n "$bad" ] || { echo "FAIL hiding: the system's loader still resolves herd's libraries"; exit 1; }
    echo "the system's loader on bundle/bin/herd now: $(echo "$bad" | tr '\n\t' '; ')"
fi
# a fresh copy of the bundle at a new path, as it arrives on the GPU machine
cp -a "$B" "$tmp/bundle"
# where run unpacks the compressed OpenBLAS: fresh, as on a new machine
export HERD_BUNDLE_CACHE="$tmp/bundle-cache"
R="$tmp/bundle/run"
"$R" herd data prepare --out "$tmp/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null
cat >"$tmp/cfg.yaml" <<YAML
model:
  preset: tiny
batch:
  micro_batch: 4
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: 64}
train:
  max_steps: 5
  log_every: 1
  threads: 2
  backend: cpu
data:
  path: $tmp/train.bin
YAML
LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld" "$R" herd train "$tmp/cfg.yaml" \
    --set "train.out_dir=$tmp/one" >"$tmp/one.out" 2>&1 || { tail -20 "$tmp/one.out"; echo "FAIL bundle_train_1proc"; exit 1; }
tail -2 "$tmp/one.out"
# every object the loader initialised (the plugins dlopened by Open MPI, PMIx,
# hwloc included): its path
# (LD_DEBUG_OUTPUT writes a file per process id; the run script's shell execs
# herd, so herd's part of that file is what follows the shell's "transferring
# control"; the other files are run's dirname, head and python3)
f=$(grep -l "initialize program: $tmp/bundle/bin/herd" "$tmp"/ld.*)
inits=$(awk '/transferring control: / && !/\/bundle\/bin\// {n = 0; next}
             /calling init: / {sub(/.*calling init: /, ""); a[n++] = $0}
             END {for (i = 0; i < n; i++) print a[i]}' "$f" | sort -u)
n=$(echo "$inits" | wc -l)
outside=$(echo "$inits" | grep -v "^$tmp/bundle/\|^$tmp/bundle-cache/" | grep -v '/cuda[^/]*/' | grep -v '/nvidia/' || true)
nplug=$(echo "$inits" | grep -c "^$tmp/bundle/lib/openmpi/" || true)
ncuda=$(echo "$inits" | grep -c '/cuda[^/]*/\|/nvidia/' || true)
echo "herd train loaded $n objects: $(echo "$inits" | grep -c "^$tmp/bundle/\|^$tmp/bundle-cache/") from the bundle's copy ($nplug Open MPI plugins; OpenBLAS as unpacked by run), $ncuda from the CUDA toolkit"
if [ -n "$outside" ]; then
    echo "from outside the bundle:"; echo "$outside"
    echo "FAIL bundle_libs_inside"; exit 1
fi
echo "PASS bundle_libs_inside"
steps=$(wc -l <"$tmp/one/metrics.jsonl")
[ "$steps" -eq 5 ] && echo "PASS bundle_train_1proc (5 steps, metrics.jsonl)" \
    || { echo "FAIL bundle_train_1proc: $steps lines in metrics.jsonl"; exit 1; }
# two ranks on one node through the bundle's mpirun (data parallel)
if OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$R" mpirun --oversubscribe -np 2 \
        "$R" herd train "$tmp/cfg.yaml" --set "train.out_dir=$tmp/two" >"$tmp/two.out" 2>&1; then
    l1=$(sed -n '5s/.*"loss":\([^,]*\),.*/\1/p' "$tmp/one/metrics.jsonl")
    l2=$(sed -n '5s/.*"loss":\([^,]*\),.*/\1/p' "$tmp/two/metrics.jsonl")
    echo "step 5 loss: 1 process $l1, mpirun -np 2 $l2"
    awk -v a="$l1" -v b="$l2" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 * a)}' \
        && echo "PASS bundle_mpirun_np2" || { echo "FAIL bundle_mpirun_np2: losses differ"; exit 1; }
else
    tail -20 "$tmp/two.out"; echo "FAIL bundle_mpirun_np2"; exit 1
fi
INNER

if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
    unshare -m sh "$tmp/inner.sh" "$B" "$tmp" 1
else
    echo "check_bundle.sh: not root or unshare -m not permitted: nothing hidden, the LD_DEBUG check alone"
    sh "$tmp/inner.sh" "$B" "$tmp" 0
fi
