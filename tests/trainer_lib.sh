# trainer_lib.sh: shared set-up of the trainer's end-to-end tests (sourced, not a test).
# A tiny synthetic dataset and model from configs/demo.yaml with --set overrides, so a run
# takes seconds: 60 train / 24 val questions of 32x32 images, batch 8, 2 micro-batches per
# step (4 steps per epoch, the last micro-batch padded), one op thread, one loader thread.
BIN="$VQA_BUILD/vqa_train"
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
T=$(mktemp -d /tmp/vqa_trainer_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
S="$T/synth"
TINY=(--set "data.synth.dir=$S" --set data.synth.train_questions=60 --set data.synth.val_questions=24
      --set data.synth.seed=3
      --set "data.train={questions: $S/train_questions.json, annotations: $S/train_annotations.json, images: $S/images/train}"
      --set "data.val={questions: $S/val_questions.json, annotations: $S/val_annotations.json, images: $S/images/val}"
      --set "model.text_encoder.vocab=$S/vocab.txt"
      --set data.image_size=32 --set data.workers=1 --set data.drop_last=false
      --set data.synth.min_radius=0 --set data.synth.max_radius=0
      --set model.text_encoder.dropout=0.1 --set model.fusion.dropout=0.1
      --set model.image_encoder.width=0.125 --set model.text_encoder.hidden=32 --set model.text_encoder.heads=2
      --set model.text_encoder.ffn=64 --set model.fusion.hidden=64
      --set train.batch_size=8 --set train.grad_accum=2 --set train.threads=1 --set train.warmup_steps=2
      --set train.epochs=100 --set log.every=1)
fail=0
check() {  # check NAME COMMAND...
    local name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fail=1; fi
}
# "step loss" of every train line of a metrics.jsonl (the exact shortest decimal the
# writer printed, so equal text = equal bits)
train_losses() { grep '"split": "train"' "$1" | sed -E 's/^\{"step": ([0-9]+),.*"loss": ([^,]*),.*/\1 \2/'; }
eval_lines() { grep '"split": "val"' "$1" | sed -E 's/"(samples_per_s|data_wait_pct)": [^,}]*,? ?//g'; }
