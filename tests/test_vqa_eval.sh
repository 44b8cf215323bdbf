#!/usr/bin/env bash
# test_vqa_eval.sh: the vqa_eval command on the crafted set (tests/ref/data/metric_*.json):
# printed accuracies (hand-checked: 69.00 overall; number 75.00, other 70.00, yes/no 63.33),
# the --json file against the Python port's values, and clear errors with exit 1.
# TEST_LABELS: e2e
# TEST_TIMEOUT: 60
set -u
BIN="$VQA_BUILD/vqa_eval"
D="$VQA_SRC/tests/ref/data"
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
T=$(mktemp -d /tmp/test_vqa_eval.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
check() {  # check NAME CONDITION-COMMAND...
    local name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fail=1; fi
}
run() { "$BIN" "$@" >"$T/out" 2>"$T/err"; echo $? >"$T/rc"; }
rc() { [ "$(cat "$T/rc")" = "$1" ]; }
has() { grep -qF -- "$2" "$T/$1"; }

Q=(--questions "$D/metric_questions.json" --annotations "$D/metric_annotations.json")

run "${Q[@]}" --results "$D/metric_results.json" --json "$T/acc.json"
check prints_overall_and_answer_types bash -c "
  [ \"\$(cat '$T/rc')\" = 0 ] &&
  diff <(printf 'Overall Accuracy is: 69.00\n\nPer Answer Type Accuracy is the following:\nnumber : 75.00\nother : 70.00\nyes/no : 63.33\n') '$T/out'"
check json_output_matches_python_port python3 -c "
import json, sys
got = json.load(open('$T/acc.json')); exp = json.load(open('$D/metric_expected.json'))
ok = got['overall'] == exp['overall'] and got['perAnswerType'] == exp['perAnswerType'] \
     and got['perQuestionType'] == exp['perQuestionType'] and got['n_questions'] == 20
sys.exit(0 if ok else 1)"

run "${Q[@]}" --results "$D/metric_results.json" --question-types
check question_types_printed bash -c "grep -qx 'what is the : 66.67' '$T/out' && grep -qx 'how many : 75.00' '$T/out'"

run --help
check help_exits_0 bash -c "[ \"\$(cat '$T/rc')\" = 0 ] && grep -q -- '--annotations' '$T/out'"

run "${Q[@]}"
check missing_results_argument bash -c "[ \"\$(cat '$T/rc')\" = 1 ] && grep -q 'required' '$T/err'"

run "${Q[@]}" --results "$D/metric_results.json" --bogus
check unknown_argument bash -c "[ \"\$(cat '$T/rc')\" = 1 ] && grep -q \"unknown argument '--bogus'\" '$T/err'"

printf '[{"question_id": 1000, "answer": "yes"},\n {"question_id": 1001 "answer": "no"}]' >"$T/bad.json"
run "${Q[@]}" --results "$T/bad.json"
check malformed_results_located bash -c "[ \"\$(cat '$T/rc')\" = 1 ] && grep -q '$T/bad.json:2:' '$T/err' && grep -q 'byte' '$T/err'"

printf '[{"question_id": 1000, "answer": "yes"}]' >"$T/few.json"
run "${Q[@]}" --results "$T/few.json"
check missing_results_named bash -c "[ \"\$(cat '$T/rc')\" = 1 ] && grep -q 'no result for 19 of the 20 questions, the first question_id 1001' '$T/err'"

python3 -c "
import json; r = json.load(open('$D/metric_results.json')); r.append({'question_id': 1000, 'answer': 'no'})
json.dump(r, open('$T/dup.json', 'w'))"
run "${Q[@]}" --results "$T/dup.json"
check duplicate_result bash -c "[ \"\$(cat '$T/rc')\" = 1 ] && grep -q 'question_id 1000 given twice' '$T/err'"

python3 -c "
import json; r = json.load(open('$D/metric_results.json')); r[3]['question_id'] = 77
json.dump(r, open('$T/unknown.json', 'w'))"
run "${Q[@]}" --results "$T/unknown.json"
check unknown_question_id bash -c "[ \"\$(cat '$T/rc')\" = 1 ] && grep -q 'question_id 77 is not among' '$T/err'"

run --questions "$D/metric_questions.json" --annotations "$T/none.json" --results "$D/metric_results.json"
check missing_annotations_file bash -c "[ \"\$(cat '$T/rc')\" = 1 ] && grep -q '$T/none.json: cannot open' '$T/err'"

exit $fail
