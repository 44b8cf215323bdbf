#!/usr/bin/env bash
# test_ckpt_kill_train.sh: SIGKILL at arbitrary moments of a training run that writes a
# checkpoint every step never leaves a corrupt checkpoint under a real name: after each
# kill every step_*.safetensors / best.safetensors is a complete safetensors file (header
# JSON parses, offsets contiguous, size = 8 + header + data), `--resume auto` continues,
# and the run finally completes.
# TEST_LABELS: e2e
# TEST_TIMEOUT: 300
set -u
. "$VQA_SRC/tests/trainer_lib.sh"
N=40
RUN=("$VQA_SRC/configs/demo.yaml" "${TINY[@]}" --set "run.out_dir=$T/run" --set train.max_steps=$N
     --set checkpoint.every=1 --set checkpoint.keep_last=0 --set eval.every=5)
# Structural validation of one safetensors file, in shell + od (no Python needed).
valid_st() {
    local f=$1 size hl
    size=$(stat -c %s "$f") || return 1
    [ "$size" -ge 8 ] || return 1
    hl=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
    [ "$((8 + hl))" -le "$size" ] || return 1
    # the largest end offset in the header must be exactly the data size
    local maxend
    maxend=$(head -c $((8 + hl)) "$f" | tail -c "$hl" | grep -o '"data_offsets": *\[[0-9]*, *[0-9]*\]' |
             sed -E 's/.*, *([0-9]+)\]/\1/' | sort -n | tail -1)
    [ -n "$maxend" ] && [ "$((8 + hl + maxend))" = "$size" ] || return 1
    head -c $((8 + hl)) "$f" | tail -c "$hl" | grep -q '"__metadata__"'
}
all_valid=1
resumed_ok=1
for i in $(seq 1 8); do
    "$BIN" "${RUN[@]}" --resume auto >>"$T/log" 2>&1 &
    pid=$!
    # a kill time spread over a step (steps take ~10-100 ms here)
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    sleep 0.3
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    for f in "$T/run/checkpoints/"step_*.safetensors "$T/run/checkpoints/best.safetensors"; do
        [ -e "$f" ] || continue
        if ! valid_st "$f"; then echo "corrupt after kill $i: $f ($(stat -c %s "$f") bytes)"; all_valid=0; fi
    done
done
echo "$(ls "$T/run/checkpoints" | grep -c '^step_') checkpoints, $(ls "$T/run/checkpoints" | grep -c '\.tmp\.') temp files left by kills"
check no_corrupt_checkpoint_under_a_real_name [ $all_valid = 1 ]
"$BIN" "${RUN[@]}" --resume auto >"$T/final.log" 2>&1
check final_resume_completes [ $? = 0 ]
check final_run_resumed_or_finished grep -qE "resumed from|nothing left to train" "$T/final.log"
check last_checkpoint_valid valid_st "$T/run/checkpoints/step_000000$N.safetensors"
check temp_files_cleaned bash -c "! ls '$T/run/checkpoints' | grep -q '\.tmp\.'"
[ $fail = 1 ] && tail -20 "$T/final.log"
exit $fail
