#!/usr/bin/env bash
# test_ckpt_kill.sh: SIGKILL a process again and again while it writes 32 MB checkpoints
# (save + rotate + mark best, resuming from the newest valid one each time), then assert
# after each kill that every file under a real name validates and holds its step's data.
# TEST_LABELS: e2e
# TEST_TIMEOUT: 120
set -u
BIN="${VQA_BUILD:?}/tests/test_checkpoint"
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
DIR=$(mktemp -d /tmp/vqa_ckpt_kill.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
CK="$DIR/ckpt"
ROUNDS=${ROUNDS:-12}
for i in $(seq 1 "$ROUNDS"); do
    "$BIN" --writer-loop "$CK" 32 > "$DIR/out.$i" 2> "$DIR/err.$i" &
    pid=$!
    # 0.15 .. 0.75 s: long enough for a few saves, short enough to land mid-write often
    sleep "0.$(( 15 + RANDOM % 60 ))"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ -s "$DIR/err.$i" ]; then
        echo "FAIL: writer round $i reported an error:"; cat "$DIR/err.$i"; exit 1
    fi
    # check after every kill: the next writer would overwrite a broken newest file
    if [ -d "$CK" ] && ls "$CK" | grep -qv '\.tmp\.'; then
        "$BIN" --validate "$CK" > "$DIR/val.$i" 2>&1 ||
            { echo "FAIL: after kill $i a file under a real name did not validate:"; cat "$DIR/val.$i"; ls -l "$CK"; exit 1; }
    fi
done
saves=$(cat "$DIR"/out.* | grep -c '^saved' || true)
temps=$(ls "$CK" | grep -c '\.tmp\.' || true)
echo "$ROUNDS kills, $saves completed saves, $temps temp files left by kills mid-write"
ls -l "$CK"
if [ "$saves" -lt 2 ]; then echo "FAIL: the writer never completed 2 saves"; exit 1; fi
"$BIN" --validate "$CK" || { echo "FAIL: a file under a real name did not validate"; exit 1; }
echo PASS
