#!/usr/bin/env bash
# check_config_case.sh VQA_TRAIN CASE.yaml: one bad-config (or good-config) test.
# Runs `VQA_TRAIN --dry-run CASE.yaml ARGS...` in this folder and checks the case's header:
#   # EXPECT_EXIT: 1          exit status (default 1)
#   # EXPECT: words           the output (stdout + stderr) must contain these words; repeatable
#   # ARGS: --set k=v ...     extra arguments (split on spaces)
#   # REQUIRES: no_gpu        SKIP (77) where this vqa_train sees a usable GPU
set -uo pipefail
bin=$1
case_file=$2
cd "$(dirname "$case_file")"
name=$(basename "$case_file")

want_exit=$(sed -n 's/^# EXPECT_EXIT: *//p' "$name" | head -n1)
want_exit=${want_exit:-1}
read -r -a extra <<<"$(sed -n 's/^# ARGS: *//p' "$name" | head -n1)"
if grep -q '^# REQUIRES: no_gpu' "$name" && "$bin" --version | grep -q '^gpu: usable'; then
    echo "SKIP: this machine has a usable GPU"
    exit 77
fi

out=$("$bin" --dry-run "$name" "${extra[@]}" 2>&1)
rc=$?
fail=0
if [[ "$rc" != "$want_exit" ]]; then
    echo "FAIL: exit status $rc, expected $want_exit"
    fail=1
fi
while IFS= read -r want; do
    if [[ "$out" != *"$want"* ]]; then
        echo "FAIL: output lacks: $want"
        fail=1
    fi
done < <(sed -n 's/^# EXPECT: *//p' "$name")
if (( fail )); then
    echo "---- output of: vqa_train --dry-run $name ${extra[*]}"
    echo "$out"
    exit 1
fi
echo "ok: $name (exit $rc)"
echo "$out" | grep -E '(^|\] )error' | head -n3
exit 0
