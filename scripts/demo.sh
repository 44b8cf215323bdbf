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
# libgomp's idle threads spin 300000 rounds (about a millisecond) before they sleep; on a
# machine where another process holds one of the cores, the spinning starves the thread the
# team waits for. 10000 rounds: the demo at 2 threads ran ~1.7x faster beside a busy loop on
# one of the 2 cores (200 vs 120 samples/s) and the same on idle cores (~815-820 samples/s;
# tested with perf and 4 alternating runs, 2-core Xeon, 2026-12-07). It must be set before
# the process starts (libgomp reads it when it loads).
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
# Trains the demo model (generating data/synth/ on the first run) and ends with the val
# VQA accuracy next to the answer prior's. A rerun starts fresh in a new run folder.
"$build/vqa_train" configs/demo.yaml --set run.out_dir="runs/demo-$(date +%Y%m%d-%H%M%S)"
