#!/usr/bin/env bash
# test.sh [--all] [CTEST_ARGS...]: the second quick-start command, and what CI runs:
# installs the missing packages, builds with warnings as errors, runs the CTest suite.
# By default every test except those labelled `slow`; --all includes them. Other
# arguments go to ctest (e.g. -R config, -L unit, -j2). Exit status: ctest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
select=(-LE slow)
args=()
for a in "$@"; do
    if [[ "$a" == "--all" ]]; then select=(); else args+=("$a"); fi
done
scripts/install_deps.sh
scripts/build.sh
build=${VQA_BUILD_DIR:-$root/build}
ctest --test-dir "$build" --output-on-failure "${select[@]}" "${args[@]}"
