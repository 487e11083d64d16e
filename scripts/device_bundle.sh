#!/bin/sh
# device_bundle.sh — herd's GPU binaries plus every shared library they need that
# a GPU machine without herd's build deps lacks (Open MPI, HDF5, hwloc, PMIx,
# libyaml, OpenBLAS, and glibc itself with its loader), into build/bundle/.
#
#   sh scripts/device_bundle.sh        (or: make device-bundle)
#   build/bundle/run bench_mfu --tiny --backend cuda       (on the GPU machine)
#
# Built here in build/dev with -march=x86-64-v3 (the GPU machine's CPU is not
# this one's). The libraries are what `ldd` lists, copied with links resolved,
# except the CUDA ones (cudart, cuBLAS, cuBLASLt, NCCL: hundreds of MB, and the
# GPU machine has them in its CUDA toolkit or in the nvidia-* pip packages that
# torch brings) and the driver (libcuda, only the machine's own works).
# glibc and ld-linux are bundled because the GPU machine's glibc may be older
# than this one's; build/bundle/run starts a binary under the bundled loader,
# with the bundle first on the library path and the CUDA directories after it.
# Single-process binaries only: Open MPI's plugins are not bundled, so nothing
# here runs under mpirun on the GPU machine.
set -eu
cd "$(dirname "$0")/.."
DEV=${HERD_DEVICE_BUILD:-build/dev}
OUT=${HERD_BUNDLE:-build/bundle}
BINS="benchmarks/mfu/bench_mfu tests/test_cuda_ops tests/test_attention_flash"

if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "device_bundle.sh: no nvcc here: the bundle needs the CUDA backend built" >&2
    exit 1
fi
targets=""
for b in $BINS; do targets="$targets $DEV/$b"; done
# shellcheck disable=SC2086
make --no-print-directory -j2 BUILD="$DEV" ARCHFLAGS=-march=x86-64-v3 $targets

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
for b in $BINS; do cp "$DEV/$b" "$OUT/bin/"; done
# debug info off the copies: the bundle travels to the GPU machine (64 MiB at most)
strip -g "$OUT"/bin/* 2>/dev/null || true
# shellcheck disable=SC2086
libs=$(for b in $BINS; do ldd "$DEV/$b"; done | awk '/=> \// {print $3} /^[ \t]*\/[^ ]*ld-linux/ {print $1}' | sort -u)
for lib in $libs; do
    case "$(basename "$lib")" in
    libcuda.so*|libcudart.so*|libcublas.so*|libcublasLt.so*|libnccl.so*|libnvidia*) continue ;;
    esac
    cp -L "$lib" "$OUT/lib/"
done
missing=$(for b in $BINS; do ldd "$DEV/$b"; done | grep 'not found' || true)
if [ -n "$missing" ]; then
    echo "device_bundle.sh: libraries not found here:" >&2
    echo "$missing" >&2
    exit 1
fi
loader=$(cd "$OUT/lib" && ls ld-linux*.so* | head -1)
[ -n "$loader" ] || { echo "device_bundle.sh: no ld-linux in ldd's output" >&2; exit 1; }
cuda_major=$(ldd "$DEV/tests/test_cuda_ops" | sed -n 's/.*libcudart\.so\.\([0-9]*\).*/\1/p' | head -1)

cat >"$OUT/run" <<RUN
#!/bin/sh
# run PROGRAM [ARGS...] — a bundled binary (bin/) under the bundled loader and
# libraries; CUDA $cuda_major libraries (cudart, cuBLAS, NCCL) from CUDA_HOME,
# /usr/local/cuda or the nvidia pip packages of the python3 on PATH.
set -eu
here=\$(cd "\$(dirname "\$0")" && pwd)
prog=\$1; shift
case "\$prog" in */*) ;; *) prog="\$here/bin/\$prog" ;; esac
path="\$here/lib"
for d in "\${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "\$d" ] && path="\$path:\$d"
done
if command -v python3 >/dev/null 2>&1; then
    for d in \$(python3 -c 'import glob, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
for s in dirs:
    for p in sorted(glob.glob(s + "/nvidia/*/lib")): print(p)' 2>/dev/null); do
        path="\$path:\$d"
    done
fi
# the driver's libcuda.so.1 (only the machine's own) and anything else system-wide
path="\$path:/usr/lib/x86_64-linux-gnu:/usr/lib64:/lib/x86_64-linux-gnu:/lib64"
exec "\$here/lib/$loader" --library-path "\$path" "\$prog" "\$@"
RUN
chmod +x "$OUT/run"
bins=$(ls "$OUT/bin" | tr '\n' ' ')
nlib=$(ls "$OUT/lib" | wc -l)
size=$(du -sh "$OUT" | cut -f1)
echo "device_bundle.sh: $OUT: $bins+ $nlib libraries, $size (CUDA $cuda_major from the GPU machine)"
