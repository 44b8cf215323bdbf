#!/usr/bin/env bash
# test_cli.sh: the vqa_train command line: help/version/usage errors, the dry run's YAML
# loading back to the same YAML, --set on the command line, and that device: auto names
# its choice and reason in the first log line.
# TEST_LABELS: unit
# TEST_TIMEOUT: 60
set -uo pipefail
BIN=$VQA_BUILD/vqa_train
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
cd "$VQA_SRC"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # check NAME CONDITION-STATUS
    if [[ "$2" == 0 ]]; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}

"$BIN" --help >"$tmp/help" 2>&1; rc=$?
grep -q -- "--resume auto|PATH" "$tmp/help" && grep -q -- "--predict CKPT" "$tmp/help"
check help_lists_the_options $(( rc != 0 || $? != 0 ))

"$BIN" --version >"$tmp/ver" 2>&1; rc=$?
grep -q "^vqa_train [0-9]" "$tmp/ver" && grep -q "^backends: cpu" "$tmp/ver" && grep -q "^communication:" "$tmp/ver"
check version_names_backends_and_comm $(( rc != 0 || $? != 0 ))
grep -q "git [0-9a-f]\{12\}\|git unknown" "$tmp/ver"
check version_names_a_git_hash $?

"$BIN" >/dev/null 2>&1; rc=$?
check no_config_is_a_usage_error $(( rc != 2 ))
"$BIN" configs/demo.yaml --frobnicate >"$tmp/o" 2>&1; rc=$?
grep -q "unknown option --frobnicate" "$tmp/o"
check unknown_option_is_a_usage_error $(( rc != 2 || $? != 0 ))
"$BIN" configs/demo.yaml --resume auto --predict x >"$tmp/o" 2>&1; rc=$?
check resume_and_predict_exclude_each_other $(( rc != 2 ))

# dry run -> YAML -> dry run of that YAML prints the same YAML
"$BIN" --dry-run configs/demo.yaml --set train.lr=2e-3 --set "model.text_encoder.freeze=[layer1, pooler]" \
    >"$tmp/a.yaml" 2>"$tmp/a.err"; rc=$?
check dry_run_of_demo_exits_0 $rc
grep -q "^  lr: 0.002$" "$tmp/a.yaml" && grep -q "^    freeze: \[layer1, pooler\]$" "$tmp/a.yaml"
check dry_run_shows_set_values $?
"$BIN" --dry-run "$tmp/a.yaml" >"$tmp/b.yaml" 2>/dev/null
cmp -s "$tmp/a.yaml" "$tmp/b.yaml"
check dry_run_yaml_loads_back_to_the_same_yaml $?

# device: auto says what it chose and why, in the first log line
"$BIN" --dry-run configs/demo.yaml --set device=auto >/dev/null 2>"$tmp/auto.err"; rc=$?
head -n1 "$tmp/auto.err" | grep -q "device: auto chose \(cpu: .\+\|cuda: [0-9]\+ usable GPU\)"
check device_auto_first_line_names_choice_and_reason $?

# a missing input file fails the dry run and is named with its key
"$BIN" --dry-run configs/demo.yaml --set data.synth.dir=null >/dev/null 2>"$tmp/miss.err"; rc=$?
grep -q "data.train.questions: data/synth/train_questions.json: not found" "$tmp/miss.err" || [[ -e data/synth/train_questions.json ]]
check missing_inputs_are_listed_by_key $(( $? != 0 ))
[[ -e data/synth/train_questions.json ]] || check missing_inputs_fail_the_dry_run $(( rc != 1 ))

echo "$fails failed"
exit $(( fails > 0 ))
