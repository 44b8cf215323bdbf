#!/usr/bin/env bash
# device_check.sh: everything the GPU needs, in ONE call of the device tool (< 8 minutes on a
# lent H100/H200): unpack the carried Debian packages (.debs/, from
# scripts/prepare_device_debs.sh) into a private prefix when the machine lacks libyaml / stb /
# OpenBLAS / jansson, find cuDNN (CUDA toolkit, else PyTorch's nvidia-cudnn wheel), build with
# CUDA for sm_90 without MPI, run `ctest -L gpu` (CPU-vs-GPU parity; test_gpu_train: 50 steps
# of `vqa_train device: cuda` in fp32 and bf16 against the CPU run, --predict on the GPU), the
# throughput benchmark, and the same model in PyTorch; then (bench/device_mpi_step.sh) the CPU
# data-parallel step breakdown on this machine's cores with a carried Open MPI wheel; logs
# under $OUT; a short table last.
#
# Device call (from the repo root):  bash bench/device_check.sh        carry: [".debs"]
# Step timeouts (configure 45 + build 150 + ctest 120 + throughput 100 (4 runs: frozen/trainable x NCHW fp32 / NHWC bf16 activations) + PyTorch 75 + CPU MPI step 90 = 580 s,
# under the device tool's 600 s per command; each step normally ends well before its limit
# (aim: the whole call under 8 minutes); a step that fails or times out is reported in the
# table, which always prints.
# Knobs: BATCH (256), STEPS (10), ARCH (90), OUT (default build-device/out), FORCE_DEBS=1 (use
# .debs even where the machine has the libraries: to test the unpacking here).
# EMULATE=1 runs the same steps on a machine without a GPU against the emulated CUDA build
# (-DVQA_CUDA=EMULATE, tests/emu/), at fast sizes (BATCH 2, STEPS 1, 32-pixel images) and
# with longer time limits, skipping PyTorch and the MPI step: it checks this script and
# the build before a GPU is lent (6.5 minutes on a 2-core Xeon).
set -u
EMULATE="${EMULATE:-}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$ROOT/build-device/out}"
BUILD="${VQA_DEVICE_BUILD:-/tmp/vqa-build-device}"
P=/tmp/vqa_deps
ARCH="${ARCH:-90}"
if [ -n "$EMULATE" ]; then
    BATCH="${BATCH:-2}" STEPS="${STEPS:-1}" IMAGE="${IMAGE:-32}" WARMUP="${WARMUP:-1}"
    BUILD="${VQA_DEVICE_BUILD:-/tmp/vqa-build-device-emu}"
    CUDA_MODE=EMULATE TO_BUILD=900 TO_CTEST=1200 TO_BENCH=600 EXTRA_TARGETS=test_emu
else
    BATCH="${BATCH:-256}" STEPS="${STEPS:-10}" IMAGE="${IMAGE:-224}" WARMUP="${WARMUP:-3}"
    CUDA_MODE=ON TO_BUILD=150 TO_CTEST=120 TO_BENCH=100 EXTRA_TARGETS=
fi
mkdir -p "$OUT"
LOG="$OUT/device_check.log"
: >"$LOG"
T0=$(date +%s)
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
declare -A R # summary rows

# ---- 1. the machine ----
{
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
    else
        echo "no nvidia-smi (no GPU driver?)"
    fi
    nvcc --version 2>&1 | tail -1
    python3 -c 'import torch; print("torch", torch.__version__)' 2>&1
    nproc
} >"$OUT/machine.txt"
DEVICE=$(head -1 "$OUT/machine.txt")
[ -n "$EMULATE" ] && DEVICE="emulated H100 (tests/emu/) on $(nproc) CPU cores of $(hostname -s)"
log "machine: $DEVICE"

# ---- 2. host libraries ----
if [ -z "${FORCE_DEBS:-}" ] && pkg-config --exists yaml-0.1 stb openblas jansson 2>/dev/null; then
    log "libyaml/stb/OpenBLAS/jansson: found on the machine"
else
    if ! ls "$ROOT"/.debs/*.deb >/dev/null 2>&1; then
        # no build possible, but the PyTorch number and the table still come back
        R[build]="FAILED: no system libyaml/stb/OpenBLAS/jansson and no .debs/ (run scripts/prepare_device_debs.sh, carry .debs)"
        log "${R[build]}"
    else
        rm -rf "$P" && mkdir -p "$P"
        for f in "$ROOT"/.debs/*.deb; do dpkg-deb -x "$f" "$P" || dpkg -x "$f" "$P"; done
        # .pc files name /usr: point them (and the stb/openblas include dirs) into the prefix
        find "$P" -name '*.pc' -exec sed -i -e "s#=/usr#=$P/usr#g" -e "s#-I/usr#-I$P/usr#g" -e "s#-L/usr#-L$P/usr#g" {} +
        ML=$P/usr/lib/x86_64-linux-gnu
        export PKG_CONFIG_PATH="$ML/pkgconfig:$ML/openblas-pthread/pkgconfig:$P/usr/share/pkgconfig"
        export LD_LIBRARY_PATH="$ML:$ML/openblas-pthread:${LD_LIBRARY_PATH:-}"
        export LIBRARY_PATH="$ML:$ML/openblas-pthread:${LIBRARY_PATH:-}"
        if ! command -v pkg-config >/dev/null; then
            PKGCONF_BIN="$P/usr/bin/pkgconf"
            export PKG_CONFIG="$PKGCONF_BIN"
        fi
        log "unpacked $(ls "$ROOT"/.debs/*.deb | wc -l) .debs into $P"
    fi
fi
PKGARGS=()
[ -n "${PKGCONF_BIN:-}" ] && PKGARGS=(-DPKG_CONFIG_EXECUTABLE="$PKGCONF_BIN")

# ---- 3. cuDNN ----
CUDNN=()
if [ -z "$(ls /usr/local/cuda/lib*/libcudnn.so* /usr/lib/x86_64-linux-gnu/libcudnn.so* 2>/dev/null | head -1)" ]; then
    sp=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
    lib=$(find $sp -name 'libcudnn.so*' 2>/dev/null | sort | head -1)
    if [ -n "$lib" ]; then
        d=$(dirname "$lib")
        inc=$(dirname "$d")/include
        CUDNN=(-DVQA_CUDNN_LIB="$lib" -DVQA_CUDNN_INC="$inc")
        export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
        log "cuDNN from the Python wheel: $lib"
    else
        log "cuDNN: not found in /usr/local/cuda nor in Python site-packages"
    fi
fi

# ---- 4. build ----
if [ -z "${R[build]:-}" ]; then
    log "configure + build (VQA_CUDA=$CUDA_MODE, sm_$ARCH, MPI off) -> $OUT/build.log"
    # ${A[@]+"${A[@]}"}: an empty array under set -u is an error in bash < 4.4
    if timeout 45 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DVQA_CUDA=$CUDA_MODE -DVQA_MPI=OFF -DVQA_WERROR=ON \
            -DCMAKE_CUDA_ARCHITECTURES="$ARCH" ${CUDNN[@]+"${CUDNN[@]}"} ${PKGARGS[@]+"${PKGARGS[@]}"} \
            >"$OUT/build.log" 2>&1 &&
        timeout $TO_BUILD ninja -C "$BUILD" -j"$(nproc)" test_gpu_parity test_gpu_parity_act bench_throughput vqa_train $EXTRA_TARGETS >>"$OUT/build.log" 2>&1; then
        R[build]="ok"
    else
        R[build]="FAILED (see build.log)"
        tail -30 "$OUT/build.log"
    fi
fi
log "build: ${R[build]}"

# ---- 5. GPU tests ----
if [ "${R[build]}" = ok ]; then
    log "ctest -L gpu -> $OUT/ctest_gpu.log"
    timeout -k 10 $TO_CTEST ctest --test-dir "$BUILD" -L gpu -V >"$OUT/ctest_gpu.log" 2>&1
    R[ctest]=$(grep -E "tests passed|tests failed" "$OUT/ctest_gpu.log" | tail -1)
    [ -z "${R[ctest]}" ] && R[ctest]="no summary: ctest timed out after $TO_CTEST s?"
    # ctest -V prefixes every line of a test's output with "<test number>: "
    # the parity programs (test_gpu_parity, test_gpu_parity_act) each end with "N cases, M failed"
    R[parity]=$(grep -hE "^([0-9]+: )?[0-9]+ cases, [0-9]+ failed" "$OUT/ctest_gpu.log" | sed -E 's/^[0-9]+: //' |
        awk '{ c += $1; f += $3; n++ } END { if (n) printf "%d cases, %d failed (%d programs)", c, f, n }')
    # the act formats' cases (NHWC / bf16 / fp16 activation storage) and every failed case, by name
    names() { grep -hoE "^([0-9]+: )?$1 [a-z_0-9]+" "$OUT/ctest_gpu.log" | sed -E 's/^[0-9]+: //; s/^(ok  |FAIL) //'; }
    act_ok=$(names "ok  " | grep -cE "(^|_)act_|plain_format")
    act_fail=$(names FAIL | grep -cE "(^|_)act_|plain_format")
    [ $((act_ok + act_fail)) != 0 ] && R[act]="$((act_ok + act_fail)) cases, $act_fail failed"
    R[fails]=$(names FAIL | tr '\n' ' ')
    nskip=$(grep -c "(Skipped)" "$OUT/ctest_gpu.log")
    [ "$nskip" != 0 ] && R[ctest]="${R[ctest]} ($nskip SKIPPED: $(grep -h -o 'SKIP: .*' "$OUT/ctest_gpu.log" | head -1 | cut -c1-80))"
    # test_gpu_train's comparison lines (fp32 / bf16 loss vs CPU, predictions)
    R[train]=$(grep -hoE "(fp32|bf16)?[^:]*: largest relative loss difference GPU vs CPU [^,]*|predictions: .*differ.*" \
        "$OUT/ctest_gpu.log" | sed -E 's/.*\/(gpu[0-9a-z]+)\.loss: largest relative loss difference GPU vs CPU/\1/' | tr '\n' ';')
    grep -E "^([0-9]+: )?FAIL|rel err|SKIP|largest relative loss|predictions: " "$OUT/ctest_gpu.log" | head -20 | tee -a "$LOG"
    log "ctest: ${R[ctest]:-none}; parity: ${R[parity]:-none}"
fi

# ---- 6. throughput: ours, then PyTorch on the same GPU ----
if [ "${R[build]}" = ok ]; then
    log "bench_throughput --batch $BATCH -> $OUT/throughput.log"
    timeout $TO_BENCH "$BUILD/bench/bench_throughput" --batch "$BATCH" --steps "$STEPS" --precision bf16 \
        --image-size "$IMAGE" --warmup "$WARMUP" \
        >"$OUT/throughput.log" 2>&1
    log "bench_throughput exit $?"
    cat "$OUT/throughput.log" | tee -a "$LOG"
fi
if [ -z "$EMULATE" ]; then
    log "compare_pytorch.py --batch $BATCH -> $OUT/pytorch.log"
    PYTHONUNBUFFERED=1 timeout 75 python3 "$ROOT/bench/compare_pytorch.py" --batch "$BATCH" --steps "$STEPS" \
        >"$OUT/pytorch.log" 2>&1
    log "compare_pytorch exit $?"
    tail -4 "$OUT/pytorch.log" | tee -a "$LOG"

    # ---- 6b. the CPU data-parallel overlap on this machine's many cores ----
    R[mpi]=$(OUT="$OUT" timeout 90 bash "$ROOT/bench/device_mpi_step.sh" 2>&1 | tail -1)
    log "${R[mpi]:-mpi step: no output}"
else
    : >"$OUT/pytorch.log"
    log "emulated: no PyTorch comparison, no MPI step"
fi

# ---- 7. summary table (last) ----
# ours MODE ACT: samples/s of the row "| MODE | ACT ..." (ACT: NHWC = the trainer's choice on a
# GPU in bf16, NCHW = fp32 NCHW activation storage, the trainer before activation formats)
ours() { grep -E "^\| $1 +\| $2 " "$OUT/throughput.log" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $6); print $6}'; }
theirs() { grep -E "^pytorch $1 " "$OUT/pytorch.log" 2>/dev/null | awk '{print $4}'; }
{
    echo
    echo "== device_check: $DEVICE, batch $BATCH, ${IMAGE}px, bf16, $(( $(date +%s) - T0 )) s =="
    echo "build:        ${R[build]}"
    echo "ctest -L gpu: ${R[ctest]:-not run}"
    echo "parity:       ${R[parity]:-not run}"
    echo "  act (NHWC/bf16/fp16 activations): ${R[act]:-not run}"
    [ -n "${R[fails]:-}" ] && echo "  failed cases: ${R[fails]}"
    echo "gpu train:    ${R[train]:-not run} (gpu32 = fp32, gpu32nhwc = fp32 NHWC, gpu16 = bf16 NHWC: largest relative loss difference vs CPU)"
    echo "cpu ddp:      ${R[mpi]:-not run}"
    printf "%-22s %12s %12s %8s %14s\n" "samples/s" "ours" "pytorch" "ratio" "ours NCHW f32"
    for m in frozen trainable; do
        o=$(ours $m NHWC); t=$(theirs $m); p=$(ours $m NCHW)
        r=$(awk -v o="${o:-0}" -v t="${t:-0}" 'BEGIN { if (o > 0 && t > 0) printf "%.2f", o / t; else print "-" }')
        printf "%-22s %12s %12s %8s %14s\n" "image encoder $m" "${o:--}" "${t:--}" "$r" "${p:--}"
    done
} | tee -a "$LOG"
