#!/usr/bin/env bash
# demo.sh: the first quick-start command on a fresh Debian 12 machine (as root, or with
# sudo): installs the missing packages, builds, and runs the demo config (CPU, synthetic
# data written to data/synth/ on the first run; nothing is downloaded).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install_deps.sh
scripts/build.sh
build=${VQA_BUILD_DIR:-$root/build}
# For now the demo checks the config, devices and inputs; it trains once the training
# loop lands (then: "$build/vqa_train" configs/demo.yaml).
"$build/vqa_train" --dry-run configs/demo.yaml
