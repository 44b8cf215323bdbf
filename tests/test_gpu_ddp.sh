#!/usr/bin/env bash
# test_gpu_ddp.sh: data parallelism on GPUs through NCCL does not change the training
# (test_ddp.sh's check, for the CUDA backend with dist.backend nccl). The tiny demo run of
# trainer_lib.sh (dropout off, frozen image encoder so BN runs on running statistics, one
# micro-batch per step, fp32) trains STEPS steps with the same global batch of 8 as
#   1 rank  x batch 8   (mpirun -np 1, device cuda, no all-reduce)
#   2 ranks x batch 4   (mpirun -np 2, device cuda, dist.backend nccl: sharded data,
#                        bucketed gradient all-reduce of device buffers on NCCL's stream)
# and the logged losses must agree within 1e-5 (relative) at every step, and the final
# checkpoints' tensors within 1e-5 (relative norm per tensor; the key and attention-score
# biases, whose gradient is zero up to round-off, are left out, as in test_ddp.sh). The
# 2-rank log must show that NCCL made a 2-rank communicator (NCCL_DEBUG=INFO: "Init
# COMPLETE" on each rank) and that the MPI all-reduce thread stayed off.
# Under an emulated CUDA build (VQA_CUDA=EMULATE) every rank gets its own emulated GPU
# (VQA_EMU_DEVICES=2) and NCCL is tests/emu/nccl.cc over MPI; kernels run on the CPU, so the
# runs are kept tiny (32x32 images, 12 steps: one epoch of 60 questions is 7.5 global
# batches, so the padded last batch of the epoch, 4 real rows, is in it).
# SKIP (77): a build without the CUDA backend, MPI or NCCL; no mpirun; no usable GPU; fewer
# than 2 GPUs on this node for the 2 ranks.
# TEST_LABELS: gpu mpi e2e
# TEST_TIMEOUT: 600
set -u

B=${VQA_BUILD:?VQA_BUILD not set}
: "${VQA_SRC:?VQA_SRC not set}"
H="$B/generated/vqa_version.h"
[[ -x $B/vqa_train ]] || { echo "FAIL: $B/vqa_train not built"; exit 1; }
have() { grep -q "define VQA_HAVE_$1 1" "$H" 2>/dev/null; }
have CUDA || { echo "SKIP: this build has no CUDA backend"; exit 77; }
have MPI || { echo "SKIP: this build has no MPI"; exit 77; }
have NCCL || { echo "SKIP: this build has no NCCL"; exit 77; }
MPIRUN=${VQA_MPIEXEC:-$(command -v mpirun || true)}
[[ -n $MPIRUN && -x $MPIRUN ]] || { echo "SKIP: no mpirun"; exit 77; }

. "$VQA_SRC/tests/trainer_lib.sh" # BIN, T (removed at exit), TINY, check, fail, train_losses

STEPS=12
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296
export NCCL_DEBUG=INFO # NCCL (real or emulated) logs its communicators: the proof it was used
xs=(-x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -x MALLOC_MMAP_THRESHOLD_ -x MALLOC_TRIM_THRESHOLD_ -x NCCL_DEBUG)
if grep -q "define VQA_CUDA_EMULATED 1" "$H"; then
    export VQA_EMU_DEVICES=${VQA_EMU_DEVICES:-2} # one emulated GPU per rank (local rank r: device r)
    xs+=(-x VQA_EMU_DEVICES)
fi
for v in ASAN_OPTIONS VQA_EMU_SEED CUDA_VISIBLE_DEVICES; do [[ -n ${!v+x} ]] && xs+=(-x "$v"); done
mpi() { local np=$1; shift; "$MPIRUN" --allow-run-as-root --oversubscribe --bind-to none -np "$np" "${xs[@]}" "$@"; }

COMMON=(--set device=cuda --set train.precision=fp32 --set train.grad_accum=1
        --set model.image_encoder.freeze=all --set model.fusion.dropout=0 --set model.text_encoder.dropout=0
        --set train.max_steps=$STEPS --set eval.every=0 --set eval.at_end=false
        --set checkpoint.every=$STEPS --set dist.bucket_mb=0.05)
run() { # run NAME NP BATCH [args]: vqa_train under mpirun; the log in $T/NAME.log
    local name=$1 np=$2 bs=$3; shift 3
    local t0=$SECONDS
    mpi "$np" "$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" "${COMMON[@]}" --set train.batch_size="$bs" \
        --set "run.out_dir=$T/$name" "$@" >"$T/$name.log" 2>&1
    local rc=$?
    echo "$name: $np rank(s) x batch $bs, $STEPS steps: exit $rc in $((SECONDS - t0)) s"
    return $rc
}
no_gpu() { grep -m1 -E "no usable GPU|device: cuda, but|without the CUDA backend|GPUs? (is|are) visible|no GPU visible" "$1"; }

# 1 rank: the reference (world of one: no all-reduce). No GPU here: SKIP.
if ! run np1 1 8; then
    if why=$(no_gpu "$T/np1.log"); then echo "SKIP: no usable GPU: $why"; exit 77; fi
    tail -15 "$T/np1.log"; echo "FAIL np1_run_succeeds"; exit 1
fi
# 2 ranks through NCCL. Fewer than 2 GPUs on this node: SKIP.
if ! run np2 2 4 --set dist.backend=nccl; then
    if why=$(no_gpu "$T/np2.log"); then echo "SKIP: 2 ranks need 2 GPUs on this node: $why"; exit 77; fi
    tail -15 "$T/np2.log"; echo "FAIL np2_run_succeeds"; exit 1
fi
grep -m1 -h "device: cuda" "$T/np1.log"
check np2_ran_2_ranks_x_batch_4 grep -q "2 ranks x batch 4" "$T/np2.log"
check np2_nccl_made_2_rank_communicators \
    [ "$(grep -cE "NCCL INFO.* nranks 2 .*Init COMPLETE" "$T/np2.log")" = 2 ]
check np2_mpi_all_reduce_thread_off grep -q "all-reduce thread: off (only the mpi backend" "$T/np2.log"

# the logged losses, step by step: STEPS lines each, within 1e-5 relative
train_losses "$T/np1/metrics.jsonl" >"$T/np1.loss"
train_losses "$T/np2/metrics.jsonl" >"$T/np2.loss"
logged_every_step() { [ "$(wc -l <"$1")" = $STEPS ] && cmp -s <(cut -d' ' -f1 "$1") <(cut -d' ' -f1 "$2"); }
check losses_logged_at_the_same_steps logged_every_step "$T/np1.loss" "$T/np2.loss"
same_losses() {
    awk 'NR == FNR { a[$1] = $2; next }
         { if (!($1 in a)) { printf "step %s only in the 2-rank run\n", $1; bad = 1; next }
           d = $2 - a[$1]; if (d < 0) d = -d; m = a[$1] < 0 ? -a[$1] : a[$1]; r = d / (m > 1e-30 ? m : 1e-30)
           if (r > w) w = r; if (!(r <= 1e-5)) { printf "step %s: %s vs %s (rel %.3g)\n", $1, a[$1], $2, r; bad = 1 }; n++ }
         END { printf "%d steps: worst relative loss difference 1 vs 2 ranks %.3g\n", n, w; exit bad || n == 0 }' "$1" "$2"
}
check losses_1_rank_vs_2_ranks_nccl same_losses "$T/np1.loss" "$T/np2.loss"

# the final weights (python3: the safetensors header is JSON)
ck=$(printf "step_%08d.safetensors" $STEPS)
if command -v python3 >/dev/null; then
    check params_1_rank_vs_2_ranks_nccl python3 - "$T/np1/checkpoints/$ck" "$T/np2/checkpoints/$ck" <<'PY'
import json, math, struct, sys
from array import array

def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    return {k: array("f", data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in head.items() if k != "__metadata__" and v["dtype"] == "F32"}

a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if set(a) != set(b) or not a:
    print("tensor names differ:", sorted(set(a) ^ set(b))[:10]); sys.exit(1)
worst, bad, n = 0.0, [], 0
for k in sorted(a):
    # zero gradient up to round-off (softmax ignores these biases): see test_ddp.sh
    if "attention.self.key.bias" in k or k == "fusion.att.bias":
        continue
    num = math.sqrt(sum((p - q) ** 2 for p, q in zip(a[k], b[k])))
    den = math.sqrt(sum(q * q for q in b[k]))
    r = num / den if den > 0 else num
    worst, n = max(worst, r), n + 1
    if not r <= 1e-5:
        bad.append(f"{k}: relative difference {r:.3g}")
print(f"{n} tensors: worst relative difference 1 vs 2 ranks {worst:.3g}")
for m in bad[:10]:
    print("  " + m)
sys.exit(1 if bad else 0)
PY
else
    echo "skip params_1_rank_vs_2_ranks_nccl: no python3"
fi
if [ $fail = 1 ]; then
    for f in np1 np2; do echo "== $f"; tail -8 "$T/$f.log"; done
    paste "$T/np1.loss" "$T/np2.loss" | head -20
fi
exit $fail
