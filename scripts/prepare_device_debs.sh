#!/usr/bin/env bash
# prepare_device_debs.sh: downloads (does not install) the Debian packages that a GPU machine
# without a package manager needs to build vqa_train (libyaml, stb, OpenBLAS + its Fortran
# runtime, jansson, pkgconf) into .debs/ (git-ignored). bench/device_check.sh unpacks them
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
ls -1 ./*.deb
du -sh .
