#!/usr/bin/env bash
# build.sh [CMAKE_ARGS...]: configures and builds vqa_train with CMake into $VQA_BUILD_DIR
# (default build/), with Ninja when installed, else Make. Extra arguments go to cmake,
# e.g. scripts/build.sh -DVQA_CUDA=OFF. Warnings are errors (-DVQA_WERROR=ON): the project
# builds warning-free on Debian 12's gcc; pass -DVQA_WERROR=OFF for another compiler.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VQA_BUILD_DIR:-$root/build}

gen=()
if [[ ! -f "$build/CMakeCache.txt" ]]; then   # a configured folder keeps its generator
    if command -v ninja >/dev/null; then gen=(-G Ninja); else gen=(-G "Unix Makefiles"); fi
fi
cmake -S "$root" -B "$build" "${gen[@]}" -DVQA_WERROR=ON "$@"
cmake --build "$build" --parallel "$(nproc)"
