#!/usr/bin/env bash
# test_predict.sh: --predict CKPT writes the official results JSON for a split (with or
# without answers) covering every question once, vqa_eval on that file gives the accuracy
# the trainer logged, and submission.npy has a valid NumPy v1.0 header ('<U..', shape (n,))
# with the answers in question order.
# TEST_LABELS: e2e
# TEST_TIMEOUT: 240
set -u
. "$VQA_SRC/tests/trainer_lib.sh"
EVAL="$VQA_BUILD/vqa_eval"
CFG=("$VQA_SRC/configs/demo.yaml" "${TINY[@]}" --set "run.out_dir=$T/run" --set train.max_steps=16
     --set checkpoint.every=8 --set eval.every=8)
"$BIN" "${CFG[@]}" >"$T/train.log" 2>&1
check training_succeeds [ $? = 0 ]
CK="$T/run/checkpoints/best.safetensors"
check best_checkpoint_exists [ -f "$CK" ]
best_acc=$(sed -nE 's/.*best ([0-9.]+)% at step.*/\1/p' "$T/train.log" | tail -1)

# val split (has answers): accuracy printed by --predict == vqa_eval on the file == trainer's best
"$BIN" "${CFG[@]}" --predict "$CK" >"$T/pred.log" 2>&1
check predict_val_succeeds [ $? = 0 ]
P="$T/run/predictions_val.json"
pred_acc=$(sed -nE 's/.*val VQA accuracy ([0-9.]+)%.*/\1/p' "$T/pred.log")
"$EVAL" --questions "$T/synth/val_questions.json" --annotations "$T/synth/val_annotations.json" --results "$P" >"$T/eval.out" 2>&1
check vqa_eval_reads_results [ $? = 0 ]
eval_acc=$(sed -nE 's/^Overall Accuracy is: ([0-9.]+)/\1/p' "$T/eval.out")
echo "trainer best $best_acc%, --predict $pred_acc%, vqa_eval $eval_acc%"
check vqa_eval_equals_predict_accuracy [ -n "$eval_acc" ] && [ "$eval_acc" = "$pred_acc" ]
check vqa_eval_equals_trainer_best_accuracy [ "$eval_acc" = "$best_acc" ]
n_q=$(grep -o '"question_id"' "$T/synth/val_questions.json" | wc -l)
check results_cover_every_question [ "$(grep -o '"question_id"' "$P" | wc -l)" = "$n_q" ]

# a split without answers (test: questions only)
"$BIN" "${CFG[@]}" --set "data.test={questions: $T/synth/val_questions.json, annotations: null, images: $T/synth/images/val}" \
    --set predict.split=test --set "predict.out=$T/out/test_results.json" --predict "$CK" >"$T/pred_test.log" 2>&1
check predict_without_answers_succeeds [ $? = 0 ]
check test_results_cover_every_question [ "$(grep -o '"question_id"' "$T/out/test_results.json" 2>/dev/null | wc -l)" = "$n_q" ]
check test_answers_equal_val_answers diff <(sed 's/}, {/}\n{/g' "$P") <(sed 's/}, {/}\n{/g' "$T/out/test_results.json")
NPY="$T/out/submission.npy"
check submission_npy_written [ -f "$NPY" ]
# header: magic, version 1.0, then the dict with '<U' and the shape
check npy_magic_and_version bash -c "[ \"\$(head -c 8 '$NPY' | od -An -tx1 | tr -d ' \n')\" = 934e554d50590100 ]"
check npy_header_dict bash -c "head -c 128 '$NPY' | tr -d '\000' | grep -q \"{'descr': '<U[0-9]*', 'fortran_order': False, 'shape': ($n_q,), }\""
if python3 -c "import numpy" 2>/dev/null; then
    check npy_loads_with_numpy_in_question_order python3 - "$NPY" "$T/out/test_results.json" <<'PY'
import json, sys, numpy as np
a = np.load(sys.argv[1])
r = json.load(open(sys.argv[2]))
assert a.dtype.kind == "U" and a.shape == (len(r),), (a.dtype, a.shape)
assert list(a) == [x["answer"] for x in r]
PY
else
    echo "skip npy_loads_with_numpy_in_question_order: numpy not importable"
fi
if [ $fail = 1 ]; then tail -5 "$T/train.log" "$T/pred.log" "$T/pred_test.log" "$T/eval.out"; fi
exit $fail
