#!/usr/bin/env bash
# compare_cpu.sh: training throughput on the CPU, ours (vqa_train) vs PyTorch
# (bench/compare_pytorch.py --device cpu), run back to back, alternating, per configuration:
#   demo           configs/demo.yaml (ResNet-18 x0.5 / 2 stages at 64 px, BERT 2L-64H, attention
#                  fusion, batch 64)
#   r50-trainable  bench/cpu_r50_tinybert.yaml (ResNet-50 + TinyBERT 4L-312D sizes, mul fusion,
#                  224 px, batch 16), image encoder trainable
#   r50-frozen     the same, image encoder frozen (BN in eval mode, no backward into it)
# and per thread count (train.threads = N, torch.set_num_threads(N)), fp32 on both sides.
#
# Ours: build/vqa_train CONFIG --set train.max_steps=K --set train.threads=N --set eval.every=0
#   --set eval.at_end=false --set checkpoint.every=0 --set run.out_dir=... (and
#   train.cpu_kernels, log.every, train.warmup_steps=1 so that any K is valid; r50:
#   model.image_encoder.freeze). Its samples/s are the per-window rates of the run's log lines
#   (every log.every steps), read at full precision from the run's metrics.jsonl (train.log
#   prints the same numbers rounded to integers, which is 1 samples/s for ResNet-50); the first
#   --skip windows are warm-up; the rest are combined as total samples / total time. A window
#   is wall-clock time over whole steps: the data step (the loader thread decoding the
#   synthetic PNGs, tokenized questions, batch assembly), forward, loss, backward, clipping,
#   AdamW, the accuracy bookkeeping and the log line; not the start-up or the final
#   checkpoint.
# PyTorch: the same model, the same batch, the same number of steps: --skip x log.every warm-up
#   steps, then the measured steps, each zero_grad + forward + BCE + backward + clip + AdamW +
#   LR step on random inputs made once before the timing (no data step). Its parameter count
#   is checked against ours (the "total" of our start-up summary; a difference fails the row).
#
# Usage (from anywhere; runs in the repository root):
#   bash bench/compare_cpu.sh [--threads 1,2] [--configs demo,r50-trainable,r50-frozen]
#        [--steps 30] [--r50-steps 6] [--log-every 10] [--r50-log-every 2] [--skip 1]
#        [--also-reference] [--bin build/vqa_train] [--out /tmp/vqa_compare_cpu]
#        [--quiet-load 0.7] [--quiet-wait 300]
# --also-reference adds a row per measurement with train.cpu_kernels=reference (the default
# rows are auto = oneDNN when the build has it). Needs python3 with torch, torchvision and
# transformers. Prints a markdown table last; warns when the load average (1 minute, read just
# before each measurement) is above 0.7. Before each measurement it waits (at most
# --quiet-wait seconds, default 300; 0: no wait) for the 1-minute load average to fall below
# --quiet-load (default 0.7): the previous run's own load decays in about a minute.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1

THREADS=1,2
CONFIGS=demo,r50-trainable,r50-frozen
STEPS=30
R50_STEPS=6
LOG_EVERY=10
R50_LOG_EVERY=2
SKIP=1
ALSO_REF=
BIN=build/vqa_train
OUT=/tmp/vqa_compare_cpu
PY="${PYTHON:-python3}"
QUIET_LOAD=0.7
QUIET_WAIT=300
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --configs) CONFIGS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --r50-steps) R50_STEPS="$2"; shift 2 ;;
    --log-every) LOG_EVERY="$2"; shift 2 ;;
    --r50-log-every) R50_LOG_EVERY="$2"; shift 2 ;;
    --skip) SKIP="$2"; shift 2 ;;
    --also-reference) ALSO_REF=1; shift ;;
    --bin) BIN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --quiet-load) QUIET_LOAD="$2"; shift 2 ;;
    --quiet-wait) QUIET_WAIT="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_cpu.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "compare_cpu.sh: $BIN not found: build first (scripts/build.sh) or pass --bin" >&2; exit 2; }
"$PY" -c 'import torch, torchvision, transformers' 2>/dev/null ||
    { echo "compare_cpu.sh: $PY lacks torch / torchvision / transformers" >&2; exit 2; }
mkdir -p "$OUT"

load1() { cut -d' ' -f1 /proc/loadavg; }
# Waits until the 1-minute load average is below QUIET_LOAD, at most QUIET_WAIT seconds.
quiet() {
    local t=0
    while [ "$t" -lt "$QUIET_WAIT" ] && awk -v l="$(load1)" -v q="$QUIET_LOAD" 'BEGIN { exit !(l >= q) }'; do
        sleep 5
        t=$((t + 5))
    done
}
CPU=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //')
MACHINE="$CPU, $(nproc) CPUs, $(uname -sr)"
declare -a ROWS=()
WARN=0
FAILED=0

# ours CONFIG_FILE SETS... -> prints "samples/s data_wait% params answers kernels" from the run
ours() {
    local dir="$1"; shift
    rm -rf "$dir"
    "$BIN" "$@" --set run.out_dir="$dir" >"$dir.log" 2>&1 || { echo "FAILED"; return; }
    "$PY" - "$dir" "$SKIP" <<'EOF'
import json, re, sys
d, skip = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(d + "/metrics.jsonl") if l.strip()]
rows = [r for r in rows if r.get("split") == "train"][skip:]
if not rows:
    print("FAILED"); sys.exit()
log = open(d + "/train.log").read()
# every window has log.every steps of the same batch: total samples / total time
sps = len(rows) / sum(1.0 / r["samples_per_s"] for r in rows)
wait = sum(r["data_wait_pct"] for r in rows) / len(rows)
params = re.search(r"model:\s+total\s+([\d,]+)", log).group(1).replace(",", "")
answers = re.search(r"answer vocabulary (\d+) answers", log).group(1)
kern = re.search(r"image-encoder kernels: ([^\n]*)", log)
kern = kern.group(1).strip() if kern else "?"
print(f"{sps:.2f} {wait:.1f} {params} {answers} {kern.replace(' ', '_')}")
EOF
}

T0=$(date +%s)
echo "# compare_cpu: $MACHINE; ours $BIN, PyTorch $("$PY" -c 'import torch; print(torch.__version__)')"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a TLIST <<<"$THREADS"
IFS=, read -r -a CLIST <<<"$CONFIGS"
KERNELS=(auto)
[ -n "$ALSO_REF" ] && KERNELS+=(reference)
ONEDNN=
for c in "${CLIST[@]}"; do
    case "$c" in
    demo) cfg=configs/demo.yaml; K=$STEPS; E=$LOG_EVERY; model=demo; mode=trainable; vocab=data/synth/vocab.txt; extra=() ;;
    r50-trainable | r50-frozen)
        cfg=bench/cpu_r50_tinybert.yaml; K=$R50_STEPS; E=$R50_LOG_EVERY; model=r50; mode=${c#r50-}
        vocab=data/synth224/vocab.txt
        if [ "$mode" = frozen ]; then extra=(--set model.image_encoder.freeze=all); else extra=(--set model.image_encoder.freeze=none); fi ;;
    *) echo "compare_cpu.sh: unknown config '$c' (demo, r50-trainable, r50-frozen)" >&2; exit 2 ;;
    esac
    warm=$((SKIP * E))
    if [ $((K % E)) != 0 ] || [ "$K" -le "$warm" ]; then
        echo "compare_cpu.sh: $c: the steps ($K) must be a multiple of log.every ($E) and above the $warm warm-up steps" >&2
        exit 2
    fi
    for n in "${TLIST[@]}"; do
        declare -A R=() L=()
        for k in "${KERNELS[@]}"; do
            quiet
            L[$k]=$(load1)
            echo "[$(( $(date +%s) - T0 ))s] ours $c threads $n kernels $k (load ${L[$k]})" >&2
            R[$k]=$(ours "$OUT/ours_${c}_t${n}_$k" "$cfg" --set train.max_steps="$K" --set train.threads="$n" \
                --set eval.every=0 --set eval.at_end=false --set checkpoint.every=0 --set train.cpu_kernels="$k" \
                --set log.every="$E" --set train.warmup_steps=1 "${extra[@]}")
            if [ "$k" = auto ]; then
                # the PyTorch run right after ours, with our parameter count, answers and vocabulary
                read -r o_sps o_wait o_params o_answers o_kern <<<"${R[auto]}"
                [ -z "$ONEDNN" ] && [ "$o_sps" != FAILED ] && ONEDNN="${o_kern//_/ }"; ONEDNN="${ONEDNN% (auto)}"
                quiet
                L[pt]=$(load1)
                echo "[$(( $(date +%s) - T0 ))s] pytorch $c threads $n (load ${L[pt]})" >&2
                pt=FAILED
                if [ "$o_sps" != FAILED ]; then
                    ans_arg=--r50-answers; exp_arg=--expect-params-r50
                    [ "$model" = demo ] && { ans_arg=--demo-answers; exp_arg=--expect-params; }
                    "$PY" bench/compare_pytorch.py --device cpu --models "$model" --mode "$mode" --threads "$n" \
                        --steps $((K - warm)) --warmup "$warm" --vocab "$(wc -l <"$vocab")" "$ans_arg" "$o_answers" \
                        "$exp_arg" "$o_params" >"$OUT/pytorch_${c}_t$n.log" 2>&1
                    pt=$(awk '/^pytorch-cpu /{print $8}' "$OUT/pytorch_${c}_t$n.log")
                    [ -z "$pt" ] && pt=FAILED
                    PT_PARAMS=$(grep -m1 '^# params' "$OUT/pytorch_${c}_t$n.log")
                    echo "    ours $o_sps samples/s (data wait $o_wait%), PyTorch $pt samples/s; $PT_PARAMS" >&2
                fi
            fi
        done
        for k in "${KERNELS[@]}"; do
            read -r o_sps o_wait _ <<<"${R[$k]}"
            ratio=$(awk -v o="$o_sps" -v t="$pt" 'BEGIN { if (o + 0 > 0 && t + 0 > 0) printf "%.2f", o / t; else print "-" }')
            [ "$o_sps" = FAILED ] || [ "$pt" = FAILED ] && FAILED=1
            awk -v a="${L[$k]}" -v b="${L[pt]}" 'BEGIN { exit !(a > 0.7 || b > 0.7) }' && WARN=1
            ROWS+=("| $c | $n | $k | ${o_sps} | ${o_wait:--} | ${pt} | ${ratio} | ${L[$k]} | ${L[pt]} |")
        done
        unset R L
    done
done

echo
echo "machine: $MACHINE; ours: fp32, auto = ${ONEDNN:-?}; PyTorch $("$PY" -c 'import torch; print(torch.__version__, "mkldnn", torch.backends.mkldnn.enabled)'), fp32; $(( $(date +%s) - T0 )) s"
echo "steps: demo $STEPS (log every $LOG_EVERY), r50 $R50_STEPS (log every $R50_LOG_EVERY), first $SKIP window(s) of each run skipped as warm-up; load = 1-minute load average just before the run"
echo
echo "| config | threads | our kernels | ours samples/s | ours data wait % | PyTorch samples/s | ours/PyTorch | load (ours) | load (PyTorch) |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
if [ "$WARN" = 1 ]; then
    echo
    echo "WARNING: the load average was above 0.7 during some measurements: other work shared the CPUs; these numbers are not clean"
fi
if [ "$FAILED" = 1 ]; then
    echo "some runs FAILED: logs in $OUT" >&2
    exit 1
fi
