#!/usr/bin/env bash
# test_tensorboard_train.sh: a training run's event file, read back with the `tensorboard`
# Python package, holds the scalars the trainer logs (train/loss, train/lr,
# train/grad_norm, train/accuracy, train/samples_per_s, val/accuracy, val/prior_accuracy)
# at the logged steps, with the values metrics.jsonl has. SKIP when tensorboard is not
# importable (it is a test-only reference, never a dependency).
# TEST_LABELS: e2e
# TEST_TIMEOUT: 240
set -u
python3 -c "import tensorboard" 2>/dev/null || { echo "SKIP: the tensorboard Python package is not importable"; exit 77; }
. "$VQA_SRC/tests/trainer_lib.sh"
"$BIN" "$VQA_SRC/configs/demo.yaml" "${TINY[@]}" --set "run.out_dir=$T/run" --set train.max_steps=6 \
    --set eval.every=3 --set log.tensorboard=true >"$T/log" 2>&1
check run_succeeds [ $? = 0 ]
check event_file_written compgen -G "$T/run/events.out.tfevents.*"
check scalars_read_back_by_tensorboard python3 - "$T/run" <<'PY'
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
run = sys.argv[1]
ea = EventAccumulator(run, size_guidance={"scalars": 0})
ea.Reload()
tags = set(ea.Tags()["scalars"])
want = ["train/loss", "train/lr", "train/grad_norm", "train/accuracy", "train/samples_per_s",
        "val/accuracy", "val/loss", "val/prior_accuracy"]
missing = [t for t in want if t not in tags]
assert not missing, f"missing tags {missing}; have {sorted(tags)}"
steps = [e.step for e in ea.Scalars("train/loss")]
assert steps == [1, 2, 3, 4, 5, 6], steps
assert [e.step for e in ea.Scalars("val/accuracy")] == [3, 6]
rows = [json.loads(l) for l in open(run + "/metrics.jsonl")]
for r in rows:
    split = r["split"]
    for k in ("loss", "lr", "accuracy"):
        if k in r and r[k] is not None:
            ev = [e for e in ea.Scalars(f"{split}/{k}") if e.step == r["step"]]
            assert ev and abs(ev[-1].value - r[k]) <= 1e-6 * max(1.0, abs(r[k])), (split, k, r["step"], ev, r[k])
print("tags:", len(tags), "train/loss steps:", steps)
PY
[ $fail = 1 ] && tail -5 "$T/log"
exit $fail
