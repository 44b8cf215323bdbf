#!/usr/bin/env bash
# test_gpu_train.sh: 50 optimizer steps of the tiny demo run on the GPU track the same run on
# the CPU: same seed and data, losses within 2% relative at every logged step (fp32 on the
# GPU; dropout masks are the same hash on both backends, so the curves differ only by float
# rounding and atomics). SKIP (77) without a usable GPU, or while the trainer has no CUDA
# path (it refuses device: cuda with "CPU backend only").
# TEST_LABELS: gpu
# TEST_TIMEOUT: 300
set -u
. "$VQA_SRC/tests/trainer_lib.sh"
probe=$("$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" --set "run.out_dir=$T/probe" --set device=cuda \
        --set train.max_steps=3 --set eval.every=0 --set checkpoint.every=0 2>&1)
rc=$?
if [ $rc != 0 ]; then
    case "$probe" in
        *"no usable GPU"*|*"without the CUDA backend"*|*"CUDA backend"*"start-up"*)
            echo "SKIP: no usable GPU: $(echo "$probe" | grep -m1 -iE 'GPU|CUDA')"; exit 77 ;;
        *"CPU backend only"*)
            echo "SKIP: the trainer has no CUDA path yet: $(echo "$probe" | grep -m1 'CPU backend only')"; exit 77 ;;
        *) echo "$probe" | tail -5; echo "FAIL gpu_run_starts"; exit 1 ;;
    esac
fi
common=(--set train.max_steps=50 --set train.precision=fp32 --set eval.every=0 --set checkpoint.every=0
        --set log.every=5)
"$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" "${common[@]}" --set device=cpu --set "run.out_dir=$T/cpu" \
    >"$T/cpu.log" 2>&1
check cpu_run_succeeds [ $? = 0 ]
"$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" "${common[@]}" --set device=cuda --set "run.out_dir=$T/gpu" \
    >"$T/gpu.log" 2>&1
check gpu_run_succeeds [ $? = 0 ]
train_losses "$T/cpu/metrics.jsonl" >"$T/cpu.loss"
train_losses "$T/gpu/metrics.jsonl" >"$T/gpu.loss"
check same_logged_steps cmp -s <(cut -d' ' -f1 "$T/cpu.loss") <(cut -d' ' -f1 "$T/gpu.loss")
check ten_logged_steps [ "$(wc -l <"$T/gpu.loss")" -ge 10 ]
check losses_within_2_percent awk 'NR == FNR { c[$1] = $2; next }
    { d = $2 - c[$1]; if (d < 0) d = -d; r = d / (c[$1] > 0 ? c[$1] : 1); if (r > m) m = r }
    END { printf "largest relative loss difference GPU vs CPU: %.3g\n", m; exit !(NR > 0 && m < 0.02) }' \
    "$T/cpu.loss" "$T/gpu.loss"
[ $fail = 1 ] && { tail -5 "$T/cpu.log"; tail -5 "$T/gpu.log"; }
exit $fail
