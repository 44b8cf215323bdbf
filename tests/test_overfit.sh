#!/usr/bin/env bash
# test_overfit.sh: the whole training path can fit a tiny set: 64 training questions,
# 200 optimizer steps (no dropout, constant lr), then the official VQA accuracy of the
# model on those same training questions (eval.split: train) is at least 95%.
# TEST_LABELS: e2e
# TEST_TIMEOUT: 240
set -u
. "$VQA_SRC/tests/trainer_lib.sh"
"$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" --set "run.out_dir=$T/run" \
    --set data.synth.train_questions=64 --set train.batch_size=32 --set train.grad_accum=1 \
    --set train.max_steps=200 --set train.lr=3e-3 --set train.schedule=constant --set train.weight_decay=0 \
    --set model.text_encoder.dropout=0 --set model.fusion.dropout=0 \
    --set eval.split=train --set eval.every=0 --set eval.at_end=true --set checkpoint.every=0 \
    --set log.every=10 >"$T/log" 2>&1
check run_succeeds [ $? = 0 ]
acc=$(sed -nE 's/.*eval step 200: train loss [0-9.]+, VQA accuracy ([0-9.]+)%.*/\1/p' "$T/log")
echo "train VQA accuracy after 200 steps: ${acc:-none}%"
check train_accuracy_at_least_95 awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 95) }'
# the loss fell from the first logged step (10: with fusion.prior_bias the BCE starts near
# its plateau, and by step 50 much of the fall has already happened) to the last
check train_loss_fell awk -v f="$(train_losses "$T/run/metrics.jsonl" | head -1 | cut -d' ' -f2)" \
    -v l="$(train_losses "$T/run/metrics.jsonl" | tail -1 | cut -d' ' -f2)" 'BEGIN { exit !(l < f / 3) }'
[ $fail = 1 ] && tail -20 "$T/log"
exit $fail
