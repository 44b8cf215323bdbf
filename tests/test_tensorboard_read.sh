#!/usr/bin/env bash
# test_tensorboard_read.sh: the event file our writer produces is read back by the real
# TensorBoard package (EventAccumulator) with every scalar, step and tag intact, and every
# record's CRCs pass TensorBoard's own masked_crc32c. SKIP (77) when tensorboard is not
# importable (pip install tensorboard).
# TEST_LABELS: e2e
# TEST_TIMEOUT: 120
set -u
BIN="${VQA_BUILD:?}/tests/test_tensorboard"
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
PY=${PYTHON:-python3}
if ! "$PY" -c "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator" 2>/dev/null; then
    echo "SKIP: the tensorboard Python package is not importable by $PY (pip install tensorboard)"
    exit 77
fi
DIR=$(mktemp -d /tmp/vqa_tb_read.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
"$BIN" --write "$DIR/run" > "$DIR/path" || { echo "FAIL: writer failed"; exit 1; }
"$PY" - "$DIR/run" "$(cat "$DIR/path")" <<'PYEOF'
import struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.compat.proto import event_pb2

run, path = sys.argv[1], sys.argv[2]
# 1. framing and CRCs, record by record, with TensorBoard's own CRC
data = open(path, "rb").read()
off, events = 0, []
while off < len(data):
    (n,) = struct.unpack_from("<Q", data, off)
    (c1,) = struct.unpack_from("<I", data, off + 8)
    assert c1 == masked_crc32c(data[off:off + 8]), "length CRC at %d" % off
    body = data[off + 12: off + 12 + n]
    (c2,) = struct.unpack_from("<I", data, off + 12 + n)
    assert c2 == masked_crc32c(body), "data CRC at %d" % off
    ev = event_pb2.Event()
    ev.ParseFromString(body)
    events.append(ev)
    off += 12 + n + 4
assert off == len(data)
assert events[0].file_version == "brain.Event:2", events[0]
assert len(events) == 12, len(events)

# 2. what TensorBoard itself shows
acc = EventAccumulator(run)
acc.Reload()
tags = sorted(acc.Tags()["scalars"])
assert tags == ["train/acc", "train/loss", "val/vqa_acc"], tags
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
loss = acc.Scalars("train/loss")
acc_ = acc.Scalars("train/acc")
assert [e.step for e in loss] == list(range(0, 100, 10)), [e.step for e in loss]
for s, e in enumerate(loss):
    assert e.value == f32(f32(1.0) / f32(s + 1)), (s, e.value)
for s, e in enumerate(acc_):
    assert e.value == f32(f32(0.1) * f32(s)), (s, e.value)
v = acc.Scalars("val/vqa_acc")
assert len(v) == 1 and v[0].step == 90 and v[0].value == 61.25, v
assert all(e.wall_time > 1.6e9 for e in loss)
print("tensorboard read %d events, tags %s: OK" % (len(events), tags))
PYEOF
rc=$?
[ $rc -eq 0 ] && echo PASS || echo "FAIL: TensorBoard could not read our event file back"
exit $rc
