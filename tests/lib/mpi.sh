# tests/lib/mpi.sh — sourced by the multi-process tests (tests/mpi): the checks that make
# them skip with a reason, Open MPI's settings for root and for more ranks than
# cores, a temporary directory, and the PASS/FAIL lines that tests/run.sh counts.
#   NAME=... ; . "$(dirname "$0")/../lib/mpi.sh"
set -u
cd "$(dirname "$0")/../.."
herd=$PWD/build/herd
py=/usr/bin/python3
if [ ! -x "$herd" ]; then echo "SKIP $NAME: build/herd not built"; exit 0; fi
if ! command -v mpirun >/dev/null; then echo "SKIP $NAME: mpirun not found (scripts/deps.sh)"; exit 0; fi
if ! $py -c 'import numpy' 2>/dev/null; then echo "SKIP $NAME: python3-numpy missing"; exit 0; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
