#!/usr/bin/env bash
# test_resume.sh: a run killed with SIGKILL mid-run and resumed with --resume auto logs
# the same per-step losses, bit for bit, as a run that was never interrupted, and ends
# with the same evaluation (loss, accuracy) and the same final weights. A fresh run into a
# folder that holds an earlier run's checkpoints is refused (it points to --resume auto).
# TEST_LABELS: e2e
# TEST_TIMEOUT: 240
set -u
. "$VQA_SRC/tests/trainer_lib.sh"
N=24
RUN=("${TINY[@]}" --set train.max_steps=$N --set checkpoint.every=4 --set checkpoint.keep_last=2
     --set eval.every=8 --set model.text_encoder.dropout=0.1 --set model.fusion.dropout=0.2)

"$BIN" "$VQA_SRC/configs/demo.yaml" "${RUN[@]}" --set "run.out_dir=$T/a" >"$T/a.log" 2>&1
check uninterrupted_run_succeeds [ $? = 0 ]
check uninterrupted_run_logged_every_step [ "$(train_losses "$T/a/metrics.jsonl" | wc -l)" = $N ]

# the same run, killed once it has logged step 11 (past the checkpoint of step 8)
"$BIN" "$VQA_SRC/configs/demo.yaml" "${RUN[@]}" --set "run.out_dir=$T/b" >"$T/b1.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    [ -f "$T/b/metrics.jsonl" ] && grep -q '"step": 11,' "$T/b/metrics.jsonl" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
killed_at=$(train_losses "$T/b/metrics.jsonl" | tail -1 | cut -d' ' -f1)
check killed_mid_run [ -n "$killed_at" ] && [ "$killed_at" -lt $N ]
echo "killed after step $killed_at"
"$BIN" "$VQA_SRC/configs/demo.yaml" "${RUN[@]}" --set "run.out_dir=$T/b" --resume auto >"$T/b2.log" 2>&1
check resumed_run_succeeds [ $? = 0 ]
check resumed_from_a_checkpoint grep -q "resumed from .*step_000000" "$T/b2.log"
check per_step_losses_bit_identical diff <(train_losses "$T/a/metrics.jsonl") <(train_losses "$T/b/metrics.jsonl")
check evaluations_identical diff <(eval_lines "$T/a/metrics.jsonl") <(eval_lines "$T/b/metrics.jsonl")
# the tensor bytes after the safetensors header (the header's metadata names the run's
# own history, e.g. when it was resumed)
tensor_bytes() { local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +$((n + 9)) "$1"; }
check final_weights_identical cmp <(tensor_bytes "$T/a/checkpoints/step_000000$N.safetensors") \
                                  <(tensor_bytes "$T/b/checkpoints/step_000000$N.safetensors")
check final_predictions_identical cmp "$T/a/predictions_val.json" "$T/b/predictions_val.json"
check resume_past_the_end_does_nothing bash -c "'$BIN' '$VQA_SRC/configs/demo.yaml' ${RUN[*]@Q} --set run.out_dir=$T/b --resume auto 2>&1 | grep -q 'nothing left to train'"
"$BIN" "$VQA_SRC/configs/demo.yaml" "${RUN[@]}" --set "run.out_dir=$T/a" >"$T/a2.log" 2>&1
check fresh_run_over_old_checkpoints_is_refused [ $? = 1 ]
check refusal_names_resume grep -q "holds checkpoints of an earlier run.*--resume auto" "$T/a2.log"
check refused_run_left_metrics_alone [ "$(train_losses "$T/a/metrics.jsonl" | wc -l)" = $N ]
if [ $fail = 1 ]; then echo "--- a.log"; tail -5 "$T/a.log"; echo "--- b2.log"; tail -20 "$T/b2.log"; fi
exit $fail
