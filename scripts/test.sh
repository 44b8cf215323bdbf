#!/usr/bin/env bash
# test.sh [--all] [--no-emu] [CTEST_ARGS...]: the second quick-start command, and what CI
# runs: installs the missing packages, builds with warnings as errors, runs the CTest suite.
# By default every test except those labelled `slow`; --all includes them. Other arguments
# go to ctest (e.g. -R config, -L unit, -j2).
# Where the CUDA and cuDNN headers are installed (/usr/local/cuda/include, or the folder in
# VQA_CUDA_INCLUDE), it then builds the GPU backend a second time against the emulated CUDA
# libraries (-DVQA_CUDA=EMULATE, into build-emu/, tests/emu/) and runs the `gpu` tests there,
# so the CUDA code runs on a machine without a GPU (--no-emu skips this part;
# VQA_EMU_BUILD_DIR moves it).
# Exit status: non-zero when any test failed; the last line sums both runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
select=(-LE slow)
args=()
emu=1
for a in "$@"; do
    case "$a" in
        --all) select=() ;;
        --no-emu) emu=0 ;;
        *) args+=("$a") ;;
    esac
done
scripts/install_deps.sh
scripts/build.sh
build=${VQA_BUILD_DIR:-$root/build}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
ctest --test-dir "$build" --output-on-failure "${select[@]}" "${args[@]}" 2>&1 | tee "$log" || rc=1

cuda_inc=${VQA_CUDA_INCLUDE:-/usr/local/cuda/include}
if (( emu )) && [[ -f $cuda_inc/cuda_runtime.h && -f $cuda_inc/cudnn.h ]]; then
    ebuild=${VQA_EMU_BUILD_DIR:-$root/build-emu}
    echo "== the gpu tests on the emulated CUDA build ($ebuild)"
    VQA_BUILD_DIR=$ebuild scripts/build.sh -DVQA_CUDA=EMULATE -DVQA_CUDA_INC="$cuda_inc" -DVQA_CUDNN_INC="$cuda_inc"
    ctest --test-dir "$ebuild" --output-on-failure -L gpu "${select[@]}" "${args[@]}" 2>&1 | tee -a "$log" || rc=1
elif (( emu )); then
    echo "== no CUDA headers in $cuda_inc: the emulated gpu tests are not run"
fi

# one closing line for both runs (ctest prints "N tests failed out of M" per run)
python3 - "$log" <<'PY' || true
import re, sys
text = open(sys.argv[1], errors="replace").read()
runs = re.findall(r"tests passed, (\d+) tests? failed out of (\d+)", text)
failed = sum(int(f) for f, _ in runs)
total = sum(int(t) for _, t in runs)
skipped = len(re.findall(r"\*\*\*Skipped", text))
print(f"suite: {total - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
