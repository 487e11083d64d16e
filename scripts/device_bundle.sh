#!/bin/sh
# device_bundle.sh — herd's GPU binaries (herd itself included) plus every shared
# library and plugin they need that a GPU machine without herd's build deps
# lacks (Open MPI with its MCA plugins and help files, PMIx, HDF5, hwloc,
# libyaml, OpenBLAS, and glibc itself with its loader), into build/bundle/.
#
#   sh scripts/device_bundle.sh        (or: make device-bundle)
#   build/bundle/run bench_mfu --tiny --backend cuda             (on the GPU machine)
#   build/bundle/run herd train cfg.yaml --set train.backend=cuda (one process)
#   build/bundle/run mpirun -np 2 build/bundle/run herd train ... (one node)
#   sh scripts/check_bundle.sh         (proves it runs with the system's copies hidden)
#
# Built here in build/dev with -march=x86-64-v3 (the GPU machine's CPU is not
# this one's). The libraries are what `ldd` lists, copied with links resolved,
# except the CUDA ones (cudart, cuBLAS, cuBLASLt, NCCL: hundreds of MB, and the
# GPU machine has them in its CUDA toolkit or in the nvidia-* pip packages that
# torch brings) and the driver (libcuda, only the machine's own works).
# glibc and ld-linux are bundled because the GPU machine's glibc may be older
# than this one's; build/bundle/run starts a binary under the bundled loader,
# with the bundle first on the library path and the CUDA directories after it.
#
# Open MPI (Debian's 4.1) even as one process dlopens its MCA plugins from its
# pkglibdir and reads its help texts from its pkgdatadir; both are relocated
# into the bundle by the OPAL_* variables that `run` sets (Open MPI's
# installdirs "env" component), PMIx's the same way (PMIX_*), and hwloc's and
# HDF5's plugin paths point into the bundle too, so that no plugin of another
# version on the GPU machine is ever loaded. Only the plugins of the shared
# memory / TCP transports travel (self, vader, tcp BTLs with ob1); those of
# InfiniBand, libfabric, UCX and PSM do not (their libraries are big and a
# one-node run does not use them), and `run` selects the rest by OMPI_MCA_*.
set -eu
cd "$(dirname "$0")/.."
DEV=${HERD_DEVICE_BUILD:-build/dev}
OUT=${HERD_BUNDLE:-build/bundle}
BINS="herd benchmarks/mfu/bench_mfu tests/test_cuda_ops tests/test_attention_flash tests/test_attention_flash_bf16 tests/test_nccl tests/test_bf16"
# Debian's layout (ompi_info --path all; the pmix2 directory of libpmix-dev)
OMPI_PKGLIB=${OMPI_PKGLIB:-/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3}
OMPI_PKGDATA=${OMPI_PKGDATA:-/usr/share/openmpi}
PMIX_DIR=${PMIX_DIR:-/usr/lib/x86_64-linux-gnu/pmix2}
ORTERUN=${ORTERUN:-/usr/bin/orterun}
HWLOC_PCI=${HWLOC_PCI:-/usr/lib/x86_64-linux-gnu/hwloc/hwloc_pci.so}

if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "device_bundle.sh: no nvcc here: the bundle needs the CUDA backend built" >&2
    exit 1
fi
for d in "$OMPI_PKGLIB" "$OMPI_PKGDATA" "$PMIX_DIR/lib/pmix" "$PMIX_DIR/share/pmix"; do
    [ -d "$d" ] || { echo "device_bundle.sh: $d: no such directory (Open MPI / PMIx layout; set OMPI_PKGLIB, OMPI_PKGDATA or PMIX_DIR)" >&2; exit 1; }
done
[ -x "$ORTERUN" ] || { echo "device_bundle.sh: $ORTERUN: not found (ORTERUN: Open MPI's mpirun)" >&2; exit 1; }
targets=""
for b in $BINS; do targets="$targets $DEV/$b"; done
# shellcheck disable=SC2086
make --no-print-directory -j2 BUILD="$DEV" ARCHFLAGS=-march=x86-64-v3 $targets

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib/openmpi" "$OUT/lib/pmix" "$OUT/lib/hwloc" "$OUT/lib/hdf5" \
    "$OUT/share/openmpi" "$OUT/share/pmix" "$OUT/etc"
for b in $BINS; do cp "$DEV/$b" "$OUT/bin/"; done
cp "$ORTERUN" "$OUT/bin/orterun"

# MCA plugins: everything but the fabrics a one-node run does not use (their
# libraries: libfabric, UCX, verbs, PSM), OpenSHMEM's and the debugger's
for p in "$OMPI_PKGLIB"/mca_*.so; do
    case "$(basename "$p")" in
    *ofi*|*ucx*|*openib*|*psm*|*usnic*|*verbs*|mca_pml_cm.so) continue ;;
    mca_atomic_*|mca_memheap_*|mca_scoll_*|mca_spml_*|mca_sshmem_*) continue ;;
    esac
    cp -L "$p" "$OUT/lib/openmpi/"
done
cp -L "$PMIX_DIR"/lib/pmix/*.so "$OUT/lib/pmix/"
# hwloc's PCI plugin: GPUs and NICs by bus id for placement (docs/topology.md)
if [ -e "$HWLOC_PCI" ]; then cp -L "$HWLOC_PCI" "$OUT/lib/hwloc/"; fi
cp "$OMPI_PKGDATA"/help-*.txt "$OUT/share/openmpi/"
cp "$PMIX_DIR"/share/pmix/help-*.txt "$OUT/share/pmix/"
# text to train on (benchmarks/mfu/gpu_vs_cpu.sh): the two license texts of
# tests/cli/train.sh, 46 KB (with three more, 140 KB, the tiny preset's loss
# spikes near step 80 at lr 1e-3 and amplifies any rounding difference)
mkdir -p "$OUT/share/text"
for t in GPL-3 Apache-2.0; do
    cp /usr/share/common-licenses/$t "$OUT/share/text/"
done

# debug info off the copies: the bundle travels to the GPU machine (64 MiB at most)
strip -g "$OUT"/bin/* "$OUT"/lib/openmpi/*.so "$OUT"/lib/pmix/*.so 2>/dev/null || true

# every library the binaries and the plugins link, ld-linux included
objs="$OUT/bin/orterun $OUT/lib/openmpi/*.so $OUT/lib/pmix/*.so $(ls "$OUT"/lib/hwloc/*.so 2>/dev/null || true)"
for b in $BINS; do objs="$objs $DEV/$b"; done
# shellcheck disable=SC2086
lddout=$(for o in $objs; do ldd "$o"; done)
libs=$(echo "$lddout" | awk '/=> \// {print $3} /^[ \t]*\/[^ ]*ld-linux/ {print $1}' | sort -u)
for lib in $libs; do
    case "$(basename "$lib")" in
    libcuda.so*|libcudart.so*|libcublas.so*|libcublasLt.so*|libnccl.so*|libnvidia*) continue ;;
    esac
    cp -L "$lib" "$OUT/lib/"
done
missing=$(echo "$lddout" | grep 'not found' || true)
if [ -n "$missing" ]; then
    echo "device_bundle.sh: libraries not found here:" >&2
    echo "$missing" >&2
    exit 1
fi
# OpenBLAS (36 MB: kernels for every x86 generation) travels xz-compressed (4 MB)
# and `run` unpacks it on first use (into TMPDIR): the bundle must fit a 64 MiB carry
for lib in "$OUT"/lib/*.so*; do
    if [ "$(wc -c <"$lib")" -gt 8388608 ]; then xz -T2 -6 "$lib"; fi
done
loader=$(cd "$OUT/lib" && ls ld-linux*.so* | head -1)
[ -n "$loader" ] || { echo "device_bundle.sh: no ld-linux in ldd's output" >&2; exit 1; }
cuda_major=$(ldd "$DEV/tests/test_cuda_ops" | sed -n 's/.*libcudart\.so\.\([0-9]*\).*/\1/p' | head -1)

# Open MPI's system-wide defaults (Debian's /etc/openmpi) replaced by the
# bundle's: the GPU machine's /etc may hold another version's, or none
cat >"$OUT/etc/openmpi-mca-params.conf" <<'CONF'
# build/bundle: one node, shared memory and TCP only (scripts/device_bundle.sh)
btl_base_warn_component_unused = 0
btl = self,vader,tcp
pml = ob1
osc = ^ucx,pt2pt
CONF
: >"$OUT/etc/pmix-mca-params.conf"

# mpirun: Open MPI's launcher under the bundled loader; it starts the ranks with
# fork/exec, so a rank's command line is `build/bundle/run herd ...` too
cat >"$OUT/bin/mpirun" <<'MPIRUN'
#!/bin/sh
# mpirun ARGS... — the bundle's orterun (Open MPI 4.1) under the bundled loader.
# A rank's program goes through the bundle's run too: mpirun -np 2 RUN herd ...
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/run" orterun "$@"
MPIRUN
chmod +x "$OUT/bin/mpirun"

cat >"$OUT/run" <<RUN
#!/bin/sh
# run PROGRAM [ARGS...] — a bundled binary (bin/) under the bundled loader and
# libraries; CUDA $cuda_major libraries (cudart, cuBLAS, NCCL) from CUDA_HOME,
# /usr/local/cuda or the nvidia pip packages of the python3 on PATH.
# Open MPI, PMIx, hwloc and HDF5 find their plugins and data in the bundle.
set -eu
here=\$(cd "\$(dirname "\$0")" && pwd)
prog=\$1; shift
case "\$prog" in */*) ;; *) prog="\$here/bin/\$prog" ;; esac
[ -f "\$prog" ] || { echo "run: \$prog: no such program (bundled: \$(ls "\$here/bin" | tr '\n' ' '))" >&2; exit 1; }
# a shell script in bin/ (mpirun) runs as itself
if [ "\$(head -c 2 "\$prog")" = "#!" ]; then exec "\$prog" "\$@"; fi
# big libraries unpacked once, outside the bundle (which stays the size that a
# carry allows, and may be read-only), into a directory named by the archive's
# checksum; to a temporary name, then renamed: ranks that start together do
# not read a half-written file
path="\$here/lib"
for z in "\$here"/lib/*.xz; do
    [ -e "\$z" ] || continue
    dir="\${HERD_BUNDLE_CACHE:-\${TMPDIR:-/tmp}/herd-bundle-\$(id -u)}/\$(cksum <"\$z" | cut -d' ' -f1)"
    lib="\$dir/\$(basename "\${z%.xz}")"
    if [ ! -e "\$lib" ]; then
        mkdir -p "\$dir"
        if command -v xz >/dev/null 2>&1; then
            xz -dc "\$z" >"\$lib.\$\$"
        else
            python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "\$z" "\$lib.\$\$"
        fi || { echo "run: \$z: cannot unpack into \$dir (xz or python3's lzma; HERD_BUNDLE_CACHE)" >&2; exit 1; }
        mv -f "\$lib.\$\$" "\$lib"
    fi
    case ":\$path:" in *":\$dir:"*) ;; *) path="\$path:\$dir" ;; esac
done
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
# Open MPI relocated into the bundle (its installdirs env component)
export OPAL_PREFIX="\$here" OPAL_EXEC_PREFIX="\$here" OPAL_BINDIR="\$here/bin" \\
    OPAL_LIBDIR="\$here/lib" OPAL_PKGLIBDIR="\$here/lib/openmpi" \\
    OPAL_DATAROOTDIR="\$here/share" OPAL_DATADIR="\$here/share" \\
    OPAL_PKGDATADIR="\$here/share/openmpi" OPAL_SYSCONFDIR="\$here/etc"
# PMIx the same; PMIX_INSTALL_PREFIX also silences Open MPI's warning about it
export PMIX_INSTALL_PREFIX="\$here" PMIX_PREFIX="\$here" PMIX_LIBDIR="\$here/lib" \\
    PMIX_PKGLIBDIR="\$here/lib/pmix" PMIX_PKGDATADIR="\$here/share/pmix" \\
    PMIX_DATADIR="\$here/share" PMIX_DATAROOTDIR="\$here/share" PMIX_SYSCONFDIR="\$here/etc" \\
    PMIX_MCA_mca_base_component_path="\$here/lib/pmix"
export OMPI_MCA_mca_base_component_path="\$here/lib/openmpi"
# one process: no orted forked to serve it (nothing spawns)
export OMPI_MCA_ess_singleton_isolated="\${OMPI_MCA_ess_singleton_isolated:-1}"
export HWLOC_PLUGINS_PATH="\$here/lib/hwloc" HDF5_PLUGIN_PATH="\$here/lib/hdf5"
exec "\$here/lib/$loader" --library-path "\$path" "\$prog" "\$@"
RUN
chmod +x "$OUT/run"
bins=$(ls "$OUT/bin" | tr '\n' ' ')
nlib=$(ls "$OUT/lib" | wc -l)
nplug=$(ls "$OUT/lib/openmpi" | wc -l)
size=$(du -sh "$OUT" | cut -f1)
echo "device_bundle.sh: $OUT: $bins+ $nlib libraries, $nplug Open MPI plugins, $size (CUDA $cuda_major from the GPU machine)"
