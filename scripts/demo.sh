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
# Trains the demo model (generating data/synth/ on the first run) and ends with the val
# VQA accuracy next to the answer prior's. A rerun starts fresh in a new run folder.
"$build/vqa_train" configs/demo.yaml --set run.out_dir="runs/demo-$(date +%Y%m%d-%H%M%S)"
