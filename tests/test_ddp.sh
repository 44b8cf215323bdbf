#!/usr/bin/env bash
# test_ddp.sh: data parallelism does not change the training. The demo model (tiny
# synthetic data, dropout off, frozen image encoder so BN runs on running statistics)
# trains 20 steps with the same global batch of 16 as
#   1 rank  x batch 16   (mpirun -np 1)
#   2 ranks x batch 8    (mpirun -np 2: sharded data, bucketed gradient all-reduce)
# and the logged losses must agree within 1e-5 (relative) at every step, the final
# checkpoints' tensors within 1e-5 (relative norm per tensor; the attention key biases,
# whose gradient is zero up to round-off, are left out). Then the step-10 checkpoint
# of each run is resumed with the other world size for steps 11..20: losses again within
# 1e-5 of the uninterrupted runs. (BN in train mode or dropout would legitimately differ:
# per-rank batch statistics / per-rank masks.)
# Sharded evaluation: both runs evaluate at steps 10 and 20 (each rank its shard of the 33
# val questions, eval batch 5, so the last batches are padded): the same number of
# questions, the same VQA accuracy and the loss within 1e-5 (the weights differ by
# round-off). Then the 1-rank step-20 checkpoint is predicted with --predict by 1 and by 2
# ranks: the same weights must give the same predictions file byte for byte and the same
# logged accuracy/loss line. A third pair (37 questions, data.drop_last false) ends every
# epoch with a global batch of 5 real rows split 3 + 2: losses and weights as above. The
# 2-rank run is repeated with dist.comm_thread on (buckets reduced on a thread of each rank). Python here is the standard library only.
# TEST_LABELS: mpi e2e
# TEST_TIMEOUT: 300
set -uo pipefail

B=${VQA_BUILD:?VQA_BUILD not set}
SRC=${VQA_SRC:?VQA_SRC not set}
MPIRUN=${VQA_MPIEXEC:-$(command -v mpirun || true)}
[[ -x $B/vqa_train ]] || { echo "FAIL: $B/vqa_train not built"; exit 1; }
grep -q "define VQA_HAVE_MPI 1" "$B/generated/vqa_version.h" 2>/dev/null || { echo "SKIP: this build has no MPI"; exit 77; }
[[ -n $MPIRUN && -x $MPIRUN ]] || { echo "SKIP: no mpirun"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3 to compare metrics and checkpoints"; exit 77; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296
mpi() { local np=$1; shift; "$MPIRUN" --allow-run-as-root --oversubscribe --bind-to none -np "$np" \
        -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -x MALLOC_MMAP_THRESHOLD_ -x MALLOC_TRIM_THRESHOLD_ "$@"; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
cp "$SRC/configs/demo.yaml" demo.yaml
COMMON=(--set data.synth.train_questions=512 --set data.synth.val_questions=33 --set data.workers=1
        --set train.max_steps=20 --set train.warmup_steps=2 --set log.every=1 --set eval.every=10
        --set eval.at_end=true --set eval.batch_size=5 --set checkpoint.every=10 --set checkpoint.keep_last=5 --set train.threads=1
        --set model.image_encoder.freeze=all --set model.fusion.dropout=0 --set model.text_encoder.dropout=0
        --set dist.bucket_mb=0.05)
fails=0
run() { # name np batch [extra args]
    local name=$1 np=$2 bs=$3; shift 3
    if ! mpi "$np" "$B/vqa_train" demo.yaml "${COMMON[@]}" --set train.batch_size="$bs" --set run.out_dir="runs/$name" \
        "$@" >"$name.log" 2>&1; then
        echo "FAIL $name: vqa_train exited non-zero:"; tail -15 "$name.log"; fails=$((fails + 1)); return 1
    fi
}
# compare.py losses A B FIRST_STEP | compare.py params CKPT_A CKPT_B
cat >compare.py <<'PY'
import json, math, struct, sys
from array import array

def losses(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        if r.get("split") == "train" and r.get("loss") is not None:
            out[r["step"]] = r["loss"]
    return out

def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        a, b = v["data_offsets"]
        out[k] = array("f", data[a:b])
    return out

def rel_norm(x, y):
    """|x - y| / |y| over a whole tensor (|x - y| when y is all zeros)."""
    num = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, y)))
    den = math.sqrt(sum(q * q for q in y))
    return num / den if den > 0 else num

def finish(bad, fail=False):
    for m in bad[:10]:
        print("  " + m)
    sys.exit(1 if bad or fail else 0)

def evals(path):
    return {r["step"]: r for r in map(json.loads, open(path)) if r.get("split") == "val"}

if sys.argv[1] == "evals":
    a, b = evals(sys.argv[2]), evals(sys.argv[3])
    bad = []
    if sorted(a) != sorted(b) or not a:
        bad.append(f"evaluated steps differ: {sorted(a)} vs {sorted(b)}")
    for s in sorted(set(a) & set(b)):
        for k in sorted(set(a[s]) | set(b[s])):
            if not (k.startswith("accuracy") or k in ("loss", "target_score")):
                continue
            x, y = a[s].get(k), b[s].get(k)
            tol = 1e-5 if k == "loss" else 0.0  # predictions must be the same: accuracies exact
            if x is None or y is None or abs(x - y) > tol * max(abs(x), 1e-30):
                bad.append(f"step {s} {k}: {x!r} vs {y!r}")
    print(f"eval steps {sorted(a)}: accuracies equal, loss within 1e-5" if not bad else "eval results differ")
    finish(bad)
if sys.argv[1] == "losses":
    a, b, first = losses(sys.argv[2]), losses(sys.argv[3]), int(sys.argv[4])
    worst, bad = 0.0, []
    for s in range(first, 21):
        if s not in a or s not in b:
            bad.append(f"step {s} missing ({s in a}, {s in b})")
            continue
        r = abs(a[s] - b[s]) / max(abs(a[s]), 1e-30)
        worst = max(worst, r)
        if not r <= 1e-5:
            bad.append(f"step {s}: {a[s]!r} vs {b[s]!r} (rel {r:.3g})")
    print(f"steps {first}..20: worst relative loss difference {worst:.3g}")
    finish(bad)
elif sys.argv[1] == "bnmean":
    a, b = tensors(sys.argv[2]), tensors(sys.argv[3])
    # only the stem's BN sees the same input on 1 and 2 ranks (deeper layers' inputs went
    # through BN normalized by per-rank batch statistics)
    keys = [k for k in a if k == "image_encoder.bn1.running_mean"]
    worst, bad = 0.0, []
    for k in keys:
        r = rel_norm(a[k], b[k])
        worst = max(worst, r)
        if not r <= 1e-4:
            bad.append(f"{k}: relative difference {r:.3g}")
    print(f"stem BN running mean: relative difference {worst:.3g}")
    finish(bad, fail=not keys)
else:
    a, b = tensors(sys.argv[2]), tensors(sys.argv[3])
    if set(a) != set(b):
        print("tensor names differ:", sorted(set(a) ^ set(b))[:10]); sys.exit(1)
    worst, bad, skipped = 0.0, [], 0
    for k in sorted(a):
        # softmax(q.(k + b)) does not depend on the key bias b (nor softmax(s + b) on the
        # fusion's attention-score bias): the gradient is zero up to round-off, and Adam
        # turns that noise into full-size steps; nothing to compare
        if "attention.self.key.bias" in k or k == "fusion.att.bias":
            skipped += 1
            continue
        r = rel_norm(a[k], b[k])
        worst = max(worst, r)
        if not r <= 1e-5:
            bad.append(f"{k}: relative difference {r:.3g}")
    print(f"{len(a) - skipped} tensors (key and attention-score biases left out): worst relative difference {worst:.3g}")
    finish(bad)
PY
check() { # name command...
    local name=$1; shift
    if out=$("$@" 2>&1); then echo "ok   $name: $out"; else echo "FAIL $name: $out"; fails=$((fails + 1)); fi
}

run np1 1 16 && run np2 2 8 || { echo "test_ddp: $fails failed"; exit 1; }
grep -q "2 ranks x batch 8" np2.log || { echo "FAIL np2 did not run 2 ranks:"; grep "train:" np2.log; fails=$((fails + 1)); }
check losses_1_rank_vs_2_ranks python3 compare.py losses runs/np1/metrics.jsonl runs/np2/metrics.jsonl 1
check params_1_rank_vs_2_ranks python3 compare.py params runs/np1/checkpoints/step_00000020.safetensors \
    runs/np2/checkpoints/step_00000020.safetensors
check sharded_eval_1_rank_vs_2_ranks python3 compare.py evals runs/np1/metrics.jsonl runs/np2/metrics.jsonl

# the same 2-rank run with the buckets reduced on each rank's all-reduce thread
# (dist.comm_thread on; auto leaves it off on a 2-core machine): the same numbers
if run np2t 2 8 --set dist.comm_thread=on; then
    check comm_thread_is_on grep -o "all-reduce thread: on.*" np2t.log
    check losses_1_rank_vs_2_ranks_comm_thread python3 compare.py losses runs/np1/metrics.jsonl runs/np2t/metrics.jsonl 1
    check params_1_rank_vs_2_ranks_comm_thread python3 compare.py params runs/np1/checkpoints/step_00000020.safetensors \
        runs/np2t/checkpoints/step_00000020.safetensors
fi

# sharded --predict: the same checkpoint on 1 and 2 ranks gives the same file and line
pred_line() { sed -nE 's/.*\] (val VQA accuracy .*)$/\1/p' "$1"; }
same_predictions() {
    local a=runs/p1/predictions_val.json b=runs/p2/predictions_val.json la lb
    la=$(pred_line p1.log); lb=$(pred_line p2.log)
    [[ -s $a && -s $b ]] || { echo "missing predictions ($a, $b)"; return 1; }
    cmp -s "$a" "$b" || { echo "predictions files differ"; return 1; }
    [[ -n $la && $la == "$lb" ]] || { echo "logged lines differ: '$la' vs '$lb'"; return 1; }
    echo "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$a") predictions equal; $la"
}
if run p1 1 16 --predict runs/np1/checkpoints/step_00000020.safetensors &&
    run p2 2 8 --predict runs/np1/checkpoints/step_00000020.safetensors; then
    grep -q "predictions:" p2.log && [[ $(grep -c "predictions:" p2.log) -eq 1 ]] ||
        { echo "FAIL predict on 2 ranks: expected one 'predictions:' line (rank 0 writes)"; fails=$((fails + 1)); }
    check predict_1_rank_vs_2_ranks same_predictions
fi

# a padded last batch split unevenly over the ranks: 37 questions = global batches of 16,
# 16 and 5 real rows (3 on rank 0, 2 on rank 1); the loss and gradient must be the mean
# over the 5 real rows of the whole global batch, not the mean of the two ranks' means
PAD=(--set data.synth.train_questions=37 --set data.drop_last=false --set train.epochs=10 --set eval.every=0 --set eval.at_end=false
     --set checkpoint.every=20)
if run pad1 1 16 "${PAD[@]}" && run pad2 2 8 "${PAD[@]}"; then
    check padded_last_batch_losses python3 compare.py losses runs/pad1/metrics.jsonl runs/pad2/metrics.jsonl 1
    check padded_last_batch_params python3 compare.py params runs/pad1/checkpoints/step_00000020.safetensors \
        runs/pad2/checkpoints/step_00000020.safetensors
fi

# BN in train mode (image encoder trainable): each rank updates the running statistics
# from its shard; the trainer averages them every step and checks at every checkpoint
# that all ranks hold the same parameters and statistics (a mismatch is an error). The
# averaged running mean of the stem's BN (the one BN whose input does not depend on
# per-rank batch statistics) must also be the one of 1 rank with the whole batch (linear
# in the batch means; equal shards) within 1e-4 after the first step (same weights).
BN=(--set model.image_encoder.freeze=none --set eval.every=0 --set eval.at_end=false --set checkpoint.every=1
    --set train.max_steps=3)
if run bn1 1 16 "${BN[@]}" && run bn2 2 8 "${BN[@]}"; then
    check bn_stats_same_on_all_ranks grep -q "checkpoint runs/bn2/checkpoints/step_00000003" bn2.log
    check bn_running_means_1_rank_vs_2_ranks python3 compare.py bnmean runs/bn1/checkpoints/step_00000001.safetensors \
        runs/bn2/checkpoints/step_00000001.safetensors
fi

# resume across world sizes: 2-rank checkpoint on 1 rank, 1-rank checkpoint on 2 ranks
if run r21 1 16 --resume runs/np2/checkpoints/step_00000010.safetensors; then
    check resume_2_rank_checkpoint_on_1_rank python3 compare.py losses runs/np2/metrics.jsonl runs/r21/metrics.jsonl 11
    check resume_2_on_1_final_params python3 compare.py params runs/np1/checkpoints/step_00000020.safetensors \
        runs/r21/checkpoints/step_00000020.safetensors
fi
if run r12 2 8 --resume runs/np1/checkpoints/step_00000010.safetensors; then
    check resume_1_rank_checkpoint_on_2_ranks python3 compare.py losses runs/np1/metrics.jsonl runs/r12/metrics.jsonl 11
    check resume_1_on_2_final_params python3 compare.py params runs/np2/checkpoints/step_00000020.safetensors \
        runs/r12/checkpoints/step_00000020.safetensors
fi
echo "test_ddp: $fails failed"
[[ $fails -eq 0 ]]
