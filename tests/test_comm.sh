#!/usr/bin/env bash
# test_comm.sh: comm/ across real processes. Runs <build>/comm/comm_selftest (and
# test_grad_sync) under `mpirun -np 2` on this machine: exact all-reduce sum/avg,
# non-blocking requests, broadcast, double reductions and gather, GPU-per-rank mapping,
# backend choice errors, and the failure paths — a rank that calls comm_abort, raises
# SIGTERM, exits non-zero, or is killed from outside (SIGTERM, SIGKILL) ends the whole job
# with a non-zero status within 30 s, the failing rank's message on stderr.
# TEST_LABELS: mpi e2e
# TEST_TIMEOUT: 300
set -uo pipefail

B=${VQA_BUILD:?VQA_BUILD not set}
ST=$B/comm/comm_selftest
GS=$B/tests/test_grad_sync
MPIRUN=${VQA_MPIEXEC:-$(command -v mpirun || true)}
[[ -x $ST ]] || { echo "FAIL: $ST not built (ninja -C $B comm_selftest)"; exit 1; }
if ! grep -q "define VQA_HAVE_MPI 1" "$B/generated/vqa_version.h" 2>/dev/null; then
    echo "SKIP: this build has no MPI (VQA_HAVE_MPI is not 1): multi-rank communication is off"
    exit 77
fi
[[ -n $MPIRUN && -x $MPIRUN ]] || { echo "SKIP: no mpirun found"; exit 77; }

# root may run mpirun (containers, CI); 2 ranks on 2 cores: one thread each
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1
MPI=("$MPIRUN" --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- a world of one, no launcher ---
if out=$("$ST" basic 2>&1) && grep -q "basic: ok (rank 0/1)" <<<"$out"; then
    pass world_of_one_without_launcher
else
    fail world_of_one_without_launcher "$out"
fi

# --- srun without an MPI plugin would start N separate trainers: refused ---
out=$(SLURM_STEP_NUM_TASKS=2 "$ST" basic 2>&1); rc=$?
if [[ $rc -ne 0 ]] && grep -q "srun --mpi=pmix" <<<"$out"; then
    pass srun_without_mpi_plugin_is_an_error
else
    fail srun_without_mpi_plugin_is_an_error "rc=$rc: $out"
fi

# --- 2 ranks: every collective ---
out=$("${MPI[@]}" "$ST" basic 2>&1); rc=$?
if [[ $rc -eq 0 ]] && [[ $(grep -c "basic: ok (rank ./2)" <<<"$out") -eq 2 ]] && ! grep -q FAIL <<<"$out"; then
    pass two_ranks_collectives_exact
else
    fail two_ranks_collectives_exact "rc=$rc: $out"
fi

if [[ -x $GS ]]; then
    out=$("${MPI[@]}" "$GS" 2>&1); rc=$?
    if [[ $rc -eq 0 ]] && [[ $(grep -cE "^[0-9]+ cases, 0 failed" <<<"$out") -eq 2 ]]; then
        pass two_ranks_grad_sync
    else
        fail two_ranks_grad_sync "rc=$rc: $out"
    fi
else
    fail two_ranks_grad_sync "$GS not built"
fi

# --- one GPU per rank ---
out=$("${MPI[@]}" "$ST" gpu-map 2 2>&1); rc=$?
if [[ $rc -eq 0 ]] && grep -q "local 0 device 0" <<<"$out" && grep -q "local 1 device 1" <<<"$out"; then
    pass local_rank_picks_the_gpu
else
    fail local_rank_picks_the_gpu "rc=$rc: $out"
fi
out=$("${MPI[@]}" "$ST" gpu-map 1 2>&1); rc=$?
if [[ $rc -ne 0 ]] && grep -q "runs 2 ranks but only 1 GPU is visible" <<<"$out"; then
    pass more_ranks_than_gpus_is_an_error
else
    fail more_ranks_than_gpus_is_an_error "rc=$rc: $out"
fi

# --- backend choice ---
out=$("${MPI[@]}" "$ST" setup auto -1 2>&1); rc=$?
if [[ $rc -eq 0 ]] && [[ $(grep -c "backend mpi" <<<"$out") -eq 2 ]]; then
    pass auto_backend_on_cpu_is_mpi
else
    fail auto_backend_on_cpu_is_mpi "rc=$rc: $out"
fi
out=$("${MPI[@]}" "$ST" setup none -1 2>&1); rc=$?
if [[ $rc -ne 0 ]] && grep -q "dist.backend none, but this job has 2 ranks" <<<"$out"; then
    pass backend_none_with_two_ranks_is_an_error
else
    fail backend_none_with_two_ranks_is_an_error "rc=$rc: $out"
fi
out=$("${MPI[@]}" "$ST" setup nccl -1 2>&1); rc=$?
if [[ $rc -ne 0 ]] && grep -q "nccl all-reduces GPU buffers" <<<"$out"; then
    pass nccl_on_cpu_is_an_error
else
    fail nccl_on_cpu_is_an_error "rc=$rc: $out"
fi

# --- failures end the whole job, quickly, with the failing rank's message ---
check_fail() { # name mode expected-message
    local t0 rc secs
    t0=$(now)
    timeout 60 "${MPI[@]}" "$ST" "$2" >"$TMP/$2.out" 2>&1; rc=$?
    secs=$(elapsed "$t0")
    if [[ $rc -eq 124 ]]; then
        fail "$1" "the job hung (killed by timeout after 60 s): $(tail -5 "$TMP/$2.out")"
    elif [[ $rc -eq 0 ]]; then
        fail "$1" "exit status 0"
    elif awk -v s="$secs" 'BEGIN { exit !(s > 30) }'; then
        fail "$1" "took ${secs} s (> 30 s)"
    elif ! grep -qF "$3" "$TMP/$2.out"; then
        fail "$1" "no \"$3\" in: $(cat "$TMP/$2.out")"
    else
        pass "$1 (exit $rc after ${secs} s)"
    fi
}
check_fail comm_abort_ends_job abort "[rank 1/2 $(hostname)] fatal: rank 1 failed on purpose (comm_selftest abort); aborting all ranks"
check_fail sigterm_on_one_rank_ends_job signal "[rank 1/2 $(hostname)] caught SIGTERM; aborting all ranks"
check_fail nonzero_exit_of_one_rank_ends_job exit "rank 1 exits with status 3 without finalizing"
check_fail exit_while_allreduce_thread_waits_ends_job thread-exit "rank 1 exits with status 3 without finalizing"

# killed from outside: find rank 1's pid, send the signal, time the job's end
check_kill() { # name signal expected-message
    local t0 rc secs pid="" i
    "${MPI[@]}" "$ST" wait >"$TMP/kill.out" 2>&1 &
    local job=$!
    for i in $(seq 1 100); do
        pid=$(sed -n 's/^rank 1 pid \([0-9]*\)$/\1/p' "$TMP/kill.out")
        [[ -n $pid ]] && break
        sleep 0.1
    done
    if [[ -z $pid ]]; then
        kill "$job" 2>/dev/null; wait "$job" 2>/dev/null
        fail "$1" "rank 1 never printed its pid: $(cat "$TMP/kill.out")"
        return
    fi
    t0=$(now)
    kill -s "$2" "$pid"
    for i in $(seq 1 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$job" 2>/dev/null; then
        kill -9 "$job" 2>/dev/null; wait "$job" 2>/dev/null
        fail "$1" "the job still runs 30 s after $2 to rank 1"
        return
    fi
    wait "$job"; rc=$?
    secs=$(elapsed "$t0")
    if [[ $rc -eq 0 ]]; then
        fail "$1" "exit status 0"
    elif [[ -n $3 ]] && ! grep -qF "$3" "$TMP/kill.out"; then
        fail "$1" "no \"$3\" in: $(cat "$TMP/kill.out")"
    else
        pass "$1 (exit $rc after ${secs} s)"
    fi
}
check_kill sigterm_from_outside_ends_job TERM "[rank 1/2 $(hostname)] caught SIGTERM; aborting all ranks"
check_kill sigkill_of_one_rank_ends_job KILL ""

echo "test_comm: $fails failed"
[[ $fails -eq 0 ]]
