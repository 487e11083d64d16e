#!/bin/sh
# Install the Debian packages herd needs, when they are missing.
# As root it runs apt-get; otherwise it prints the apt-get line to run.
# Later issues append to PACKAGES; keep it the one list.
set -eu

PACKAGES="build-essential pkg-config libopenblas-openmp-dev libyaml-dev
          python3 python3-numpy python3-torch python3-h5py
          libopenmpi-dev openmpi-bin libpmix-dev libhwloc-dev hwloc
          libhdf5-openmpi-dev hdf5-tools slurm-wlm slurmctld slurmd munge iproute2
          gnuplot-nox python3-prometheus-client xz-utils
          fortunes fortunes-de fortunes-es fortunes-it dict-gcide unicode-data
          clang libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps: missing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: run as root:  apt-get install -y$missing" >&2
    exit 1
fi
