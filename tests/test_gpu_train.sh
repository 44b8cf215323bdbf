#!/usr/bin/env bash
# test_gpu_train.sh: the trainer's CUDA path on a real GPU: 50 optimizer steps of the tiny
# demo run (trainer_lib.sh: batch 8, 2 micro-batches per step with a padded last one) with
# device: cuda track the same run on the CPU (same seed, data and dropout masks: the CUDA
# dropout uses the CPU's hash), at every logged step (log.every 5):
#   fp32 on the GPU (no TF32): losses within 2% relative of the CPU's (float rounding,
#        atomics and cuDNN algorithm differences compound over 50 steps of training);
#   fp32 on the GPU with model.image_encoder.layout nhwc (the act entries in fp32
#        channels-last: cuDNN NHWC descriptors, the NHWC batch-norm and pooling kernels):
#        within 2% as well;
#   bf16 on the GPU (bf16 GEMM/conv operands, fp32 accumulation; the ResNet's activations
#        stored NHWC bf16 by layout auto): within 10% at every logged step and the mean of
#        the logged losses within 5% — bf16 carries 8 bits of mantissa, so the curve is
#        expected to wander, not to diverge.
# The tolerances are the issue's "loss tracks the CPU run"; they were set before any GPU
# run (none was lent while this was written): widen them only with a measured reason.
# Also: the run evaluates at the end and writes a checkpoint on the GPU, and --predict with
# that checkpoint on the GPU writes the predictions the CPU writes from the same checkpoint
# (arg-max of logits that agree to float rounding: at most 2 of the 24 answers may differ).
# SKIP (77) without a usable GPU (or a build without CUDA).
# TEST_LABELS: gpu
# TEST_TIMEOUT: 300
set -u
. "$VQA_SRC/tests/trainer_lib.sh"
probe=$("$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" --set "run.out_dir=$T/probe" --set device=cuda \
        --set train.max_steps=3 --set eval.every=0 --set eval.at_end=false --set checkpoint.every=0 2>&1)
rc=$?
if [ $rc != 0 ]; then
    case "$probe" in
        *"no usable GPU"*|*"without the CUDA backend"*|*"CUDA backend"*"start-up"*|*"device: cuda, but"*)
            echo "SKIP: no usable GPU: $(echo "$probe" | grep -m1 -iE 'GPU|CUDA')"; exit 77 ;;
        *) echo "$probe" | tail -5; echo "FAIL gpu_run_starts"; exit 1 ;;
    esac
fi
echo "$probe" | grep -m1 "device: cuda device"
common=(--set train.max_steps=50 --set eval.every=0 --set eval.at_end=true --set checkpoint.every=0
        --set log.every=5)
run() {  # run NAME DEVICE PRECISION [LAYOUT]
    "$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" "${common[@]}" --set device="$2" --set train.precision="$3" \
        --set model.image_encoder.layout="${4:-auto}" --set "run.out_dir=$T/$1" >"$T/$1.log" 2>&1
    check "$1_run_succeeds" [ $? = 0 ]
    train_losses "$T/$1/metrics.jsonl" >"$T/$1.loss"
}
run cpu cpu fp32
run gpu32 cuda fp32
run gpu32nhwc cuda fp32 nhwc
run gpu16 cuda bf16
check gpu32nhwc_uses_nhwc grep -q "image encoder activations: NHWC fp32" "$T/gpu32nhwc.log"
check gpu16_uses_nhwc_bf16 grep -q "image encoder activations: NHWC bf16" "$T/gpu16.log"
# compare CPU_LOSSES GPU_LOSSES MAX_STEP_REL MAX_MEAN_REL
compare() {
    awk -v tol="$3" -v mtol="$4" -v name="$2" 'NR == FNR { c[$1] = $2; next }
        { d = $2 - c[$1]; if (d < 0) d = -d; r = d / (c[$1] > 0 ? c[$1] : 1); if (r > m) m = r; sc += c[$1]; sg += $2 }
        END { mr = (sc > 0) ? (sg - sc) / sc : 1; if (mr < 0) mr = -mr;
              printf "%s: largest relative loss difference GPU vs CPU %.3g (limit %g), of the mean %.3g (limit %g)\n",
                     name, m, tol, mr, mtol;
              exit !(NR > FNR && m < tol && mr < mtol) }' "$1" "$2"
}
for g in gpu32 gpu32nhwc gpu16; do
    check "${g}_same_logged_steps" cmp -s <(cut -d' ' -f1 "$T/cpu.loss") <(cut -d' ' -f1 "$T/$g.loss")
    check "${g}_ten_logged_steps" [ "$(wc -l <"$T/$g.loss")" -ge 10 ]
    check "${g}_evaluated_and_saved" grep -q '"split": "val"' "$T/$g/metrics.jsonl"
done
check fp32_losses_within_2_percent compare "$T/cpu.loss" "$T/gpu32.loss" 0.02 0.02
check fp32_nhwc_losses_within_2_percent compare "$T/cpu.loss" "$T/gpu32nhwc.loss" 0.02 0.02
check bf16_losses_within_10_percent compare "$T/cpu.loss" "$T/gpu16.loss" 0.10 0.05
# --predict on the GPU and on the CPU from the GPU's fp32 checkpoint
ck=$(ls "$T/gpu32/checkpoints"/step_*.safetensors 2>/dev/null | tail -1)
check gpu_checkpoint_written [ -n "$ck" ]
for d in cpu cuda; do
    "$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" --set device=$d --set train.precision=fp32 \
        --set "run.out_dir=$T/pred_$d" --set "predict.out=$T/pred_$d/p.json" --predict "$ck" >"$T/pred_$d.log" 2>&1
    check "predict_on_${d}_succeeds" [ $? = 0 ]
done
check predictions_agree python3 - "$T/pred_cpu/p.json" "$T/pred_cuda/p.json" <<'PY'
import json, sys
a = {r["question_id"]: r["answer"] for r in json.load(open(sys.argv[1]))}
b = {r["question_id"]: r["answer"] for r in json.load(open(sys.argv[2]))}
diff = sum(a[q] != b.get(q) for q in a)
print(f"predictions: {len(a)} answers, {diff} differ between CPU and GPU")
sys.exit(0 if len(a) == len(b) and len(a) > 0 and diff <= 2 else 1)
PY
[ $fail = 1 ] && for f in cpu gpu32 gpu32nhwc gpu16 pred_cuda; do echo "== $f"; tail -5 "$T/$f.log"; done
exit $fail
