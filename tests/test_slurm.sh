#!/usr/bin/env bash
# test_slurm.sh: a real one-node Slurm cluster on this machine runs slurm/train.sbatch.
# Starts munged (if not running), writes a slurm.conf in a scratch folder (this host as the
# only node, its CPUs/memory from `slurmd -C`), starts slurmctld and slurmd, then submits
#   1. slurm/train.sbatch with comm_selftest as the program, 2 tasks (MPI inside Slurm), and
#   2. slurm/train.sbatch configs/demo.yaml, 2 tasks, made tiny with --set,
# polls `scontrol show job` every 0.1 s, and checks that each job ends COMPLETED with exit
# 0:0 and that the training run wrote its metrics. Daemons are stopped on exit (trap).
# If Slurm cannot run here (packages missing, not root, no munge key, daemons do not
# start), it prints why and exits 77 (SKIP). Needs root (slurmd runs jobs as their user).
# TEST_LABELS: slurm e2e
# TEST_TIMEOUT: 600
set -uo pipefail

B=${VQA_BUILD:?VQA_BUILD not set}
SRC=${VQA_SRC:?VQA_SRC not set}
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; exit 1; }

for c in slurmctld slurmd sbatch scontrol sinfo scancel munged munge unmunge runuser mpirun; do
    command -v "$c" >/dev/null 2>&1 || [[ -x /usr/sbin/$c ]] ||
        skip "$c is not installed (scripts/install_deps.sh installs slurm-wlm, munge and openmpi-bin)"
done
[[ $(id -u) -eq 0 ]] || skip "slurmd must run as root to start jobs; this test runs as $(id -un)"
grep -q "define VQA_HAVE_MPI 1" "$B/generated/vqa_version.h" 2>/dev/null || skip "this build has no MPI"
[[ -x $B/comm/comm_selftest ]] || die "$B/comm/comm_selftest is not built"
[[ -x $B/vqa_train ]] || die "$B/vqa_train is not built"
PATH=$PATH:/usr/sbin

TMP=$(mktemp -d /tmp/vqa_slurm.XXXXXX)
CONF=$TMP/slurm.conf
started_munge=""
cleanup() {
    [[ -n ${JOBS:-} ]] && SLURM_CONF=$CONF scancel $JOBS >/dev/null 2>&1
    for p in slurmd slurmctld; do
        [[ -f $TMP/$p.pid ]] && kill "$(cat "$TMP/$p.pid")" 2>/dev/null
    done
    for pid in ${DAEMONS:-}; do kill "$pid" 2>/dev/null; done
    for pid in ${DAEMONS:-}; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    [[ -n $started_munge ]] && kill "$started_munge" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- munge ----
[[ -r /etc/munge/munge.key ]] || skip "no /etc/munge/munge.key (reinstall munge: its postinst creates the key)"
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged >"$TMP/munged.out" 2>&1 ||
        skip "munged does not start: $(cat "$TMP/munged.out")"
    for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || skip "munged started but munge -n | unmunge fails"
    started_munge=$(cat /run/munge/munged.pid 2>/dev/null || true)
fi

# ---- slurm.conf ----
HOST=$(hostname -s)
NODE=$(slurmd -C 2>/dev/null | head -1)
[[ $NODE == NodeName=* ]] || skip "slurmd -C does not describe this node: $NODE"
NODE=$(sed "s/^NodeName=[^ ]*/NodeName=$HOST/" <<<"$NODE")
# ports of our own, so that a Slurm already running on this host is not disturbed
PORT=$((20000 + ($$ % 20000)))
mkdir -p "$TMP/state" "$TMP/spool" "$TMP/log"
cat >"$CONF" <<CONF
ClusterName=vqatest
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/log/slurmctld.log
SlurmdLogFile=$TMP/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SchedulerType=sched/builtin
$NODE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$CONF

slurmctld -D -f "$CONF" >"$TMP/log/slurmctld.out" 2>&1 &
DAEMONS="$!"
sleep 0.3
slurmd -D -f "$CONF" >"$TMP/log/slurmd.out" 2>&1 &
DAEMONS="$DAEMONS $!"
state=""
for _ in $(seq 1 200); do
    state=$(sinfo -h -o %t 2>/dev/null | head -1)
    [[ $state == idle ]] && break
    sleep 0.1
done
if [[ $state != idle ]]; then
    echo "slurm.conf:"; cat "$CONF"
    echo "--- slurmctld log:"; tail -20 "$TMP/log/slurmctld.log" "$TMP/log/slurmctld.out" 2>/dev/null
    echo "--- slurmd log:"; tail -20 "$TMP/log/slurmd.log" "$TMP/log/slurmd.out" 2>/dev/null
    skip "the one-node cluster did not become idle within 20 s (sinfo state: '${state:-none}'); logs above"
fi
echo "ok   cluster up: $(sinfo -h -o '%P %D %t %c CPUs')"

JOBS=""
# wait_job ID TIMEOUT_S -> prints the final JobState and ExitCode; returns 0 if COMPLETED 0:0
wait_job() {
    local id=$1 limit=$2 info st ex t0
    t0=$(date +%s)
    while :; do
        info=$(scontrol show job "$id" 2>/dev/null)
        st=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info" | head -1)
        case $st in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE) break ;;
        esac
        if (($(date +%s) - t0 > limit)); then
            echo "job $id still $st after ${limit} s"
            return 1
        fi
        sleep 0.1
    done
    ex=$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<<"$info" | head -1)
    echo "job $id: $st, exit $ex, $(($(date +%s) - t0)) s"
    [[ $st == COMPLETED && $ex == 0:0 ]]
}

fails=0
# ---- 1. MPI inside Slurm: the comm self test through train.sbatch ----
mkdir -p "$TMP/job1"
id=$(VQA_TRAIN=$B/comm/comm_selftest sbatch --parsable --ntasks=2 --chdir="$TMP/job1" \
    --output="$TMP/job1/out.txt" "$SRC/slurm/train.sbatch" basic 2>&1) || die "sbatch refused job 1: $id"
JOBS="$id"
if wait_job "$id" 60 && [[ $(grep -c "basic: ok (rank ./2)" "$TMP/job1/out.txt") -eq 2 ]]; then
    echo "ok   train.sbatch runs 2 MPI ranks (comm_selftest)"
else
    echo "FAIL train.sbatch with comm_selftest:"; cat "$TMP/job1/out.txt"; fails=$((fails + 1))
fi

# ---- 2. the demo trainer, 2 ranks, a few steps ----
mkdir -p "$TMP/job2"
cp "$SRC/configs/demo.yaml" "$TMP/job2/demo.yaml"
[[ -f $SRC/data/synth/vocab.txt ]] && true # the synthetic data is generated in the job's folder
SETS=(--set data.synth.train_questions=256 --set data.synth.val_questions=64 --set data.workers=1
      --set train.batch_size=8 --set train.max_steps=6 --set train.warmup_steps=2 --set log.every=1
      --set eval.every=0 --set checkpoint.every=0 --set run.out_dir=runs/slurm)
id=$(VQA_TRAIN=$B/vqa_train sbatch --parsable --ntasks=2 --chdir="$TMP/job2" --output="$TMP/job2/out.txt" \
    "$SRC/slurm/train.sbatch" demo.yaml "${SETS[@]}" 2>&1) || die "sbatch refused job 2: $id"
JOBS="$JOBS $id"
M=$TMP/job2/runs/slurm/metrics.jsonl
if wait_job "$id" 400 && [[ -s $M ]] && grep -q '"loss"' "$M"; then
    echo "ok   train.sbatch trains the demo on 2 ranks ($(grep -c '"loss"' "$M") metrics lines with a loss)"
else
    echo "FAIL train.sbatch with vqa_train:"; tail -30 "$TMP/job2/out.txt"
    [[ -f $M ]] && { echo "--- metrics:"; tail -3 "$M"; }
    fails=$((fails + 1))
fi

echo "test_slurm: $fails failed"
[[ $fails -eq 0 ]]
