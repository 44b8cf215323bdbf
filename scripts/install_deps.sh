#!/usr/bin/env bash
# install_deps.sh: installs the Debian 12 packages vqa_train needs to build and test.
# Does nothing (no apt-get at all) when every package is already installed. Runs apt-get
# as root, or through sudo when available. README.md says why each package is there.
# CUDA (nvcc, cuBLAS, cuDNN, NCCL) is not a Debian package here: the build finds it in
# /usr/local/cuda when present and builds CPU-only otherwise.
set -euo pipefail

PACKAGES=(
    gcc make cmake ninja-build pkg-config   # compiler and build
    libyaml-dev                             # configs
    libjansson-dev                          # JSON datasets, results, safetensors headers
    libstb-dev                              # stb_image: JPEG/PNG decode
    libopenblas-dev                         # CPU matrix products
    libdnnl-dev                             # oneDNN: CPU convolutions, BN, pooling, ReLU (optional)
    libopenmpi-dev openmpi-bin              # multi-rank on CPU, NCCL bootstrap
    slurm-wlm munge                         # the one-node Slurm test
    python3                                 # test scripts compare JSON / metrics (stdlib only)
)

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]]; then
        missing+=("$p")
    fi
done
if (( ${#missing[@]} == 0 )); then
    echo "install_deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "install_deps: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null; then
    SUDO=(sudo)
else
    echo "install_deps: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y "${missing[@]}"
