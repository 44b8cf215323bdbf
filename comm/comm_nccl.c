/* comm_nccl.c: the NCCL transport (GPU buffers). Rank 0 creates the NCCL unique id and MPI
 * broadcasts it; every collective runs on a communication stream of its own, ordered after
 * the work already queued on the caller's stream (comm_set_stream) through an event, so
 * bucket all-reduces overlap the rest of backward. Every CUDA / NCCL call is checked with
 * file:line and the library's error string; a failed NCCL call aborts the communicator
 * (ncclCommAbort) so that no rank waits on it forever. Waiting polls the event and
 * ncclCommGetAsyncError, as NCCL recommends, so a peer's failure surfaces as an error
 * instead of a hang. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"

typedef struct CommNccl {
    ncclComm_t comm;
    cudaStream_t stream;   /* communication stream */
    int device;
} CommNccl;

_Static_assert(sizeof(cudaEvent_t) <= COMM_IMPL_BYTES, "cudaEvent_t does not fit a request slot");

#define CUDA_CHECK(call)                                                                 \
    do {                                                                                 \
        cudaError_t cu_rc_ = (call);                                                     \
        if (cu_rc_ != cudaSuccess)                                                       \
            return err_set(err, "%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call,  \
                           cudaGetErrorString(cu_rc_), cudaGetErrorName(cu_rc_));        \
    } while (0)

/* On failure the communicator is aborted: a half-done collective cannot be resumed. */
#define NCCL_CHECK(call)                                                                 \
    do {                                                                                 \
        ncclResult_t nc_rc_ = (call);                                                    \
        if (nc_rc_ != ncclSuccess) {                                                     \
            err_set(err, "%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call,         \
                    ncclGetErrorString(nc_rc_), ncclGetLastError(nn ? nn->comm : NULL)); \
            cnccl_abort(c);                                                              \
            return -1;                                                                   \
        }                                                                                \
    } while (0)

static CommNccl *get(Comm *c) { return (CommNccl *)c->nccl; }

int cnccl_init(Comm *c, int device, Err *err) {
    CommNccl *nn = calloc(1, sizeof *nn);
    if (!nn) return err_set(err, "comm: out of memory (nccl)");
    nn->device = device;
    cudaError_t cu = cudaSetDevice(device);
    if (cu != cudaSuccess) {
        free(nn);
        return err_set(err, "%s:%d: cudaSetDevice(%d) on %s (rank %d) failed: %s", __FILE__, __LINE__, device,
                       c->host, c->rank, cudaGetErrorString(cu));
    }
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (c->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) {
            free(nn);
            /* the other ranks are about to wait in the broadcast: the caller must comm_abort */
            return err_set(err, "%s:%d: ncclGetUniqueId failed: %s", __FILE__, __LINE__, ncclGetErrorString(r));
        }
    }
    if (c->mpi_up && cmpi_bcast_bytes(c, &id, sizeof id, 0, err) != 0) {
        free(nn);
        return -1;
    }
    /* c->nccl is set only once the communicator and its stream exist, so a failed start
     * leaves no half-made transport behind (comm_setup would otherwise take it as ready) */
    ncclResult_t r = ncclCommInitRank(&nn->comm, c->world, id, c->rank);
    if (r != ncclSuccess) {
        err_set(err, "%s:%d: ncclCommInitRank(%d ranks, rank %d) failed: %s (%s)", __FILE__, __LINE__, c->world,
                c->rank, ncclGetErrorString(r), ncclGetLastError(NULL));
        free(nn);
        return -1;
    }
    int lo = 0, hi = 0;
    cu = cudaDeviceGetStreamPriorityRange(&lo, &hi);
    /* highest priority: communication kernels should not queue behind backward's */
    if (cu == cudaSuccess) cu = cudaStreamCreateWithPriority(&nn->stream, cudaStreamNonBlocking, hi);
    if (cu != cudaSuccess) {
        ncclCommAbort(nn->comm);
        free(nn);
        return err_set(err, "%s:%d: creating the NCCL stream on device %d failed: %s", __FILE__, __LINE__, device,
                       cudaGetErrorString(cu));
    }
    c->nccl = nn;
    return 0;
}

void cnccl_finalize(Comm *c) {
    CommNccl *nn = get(c);
    if (!nn) return;
    if (nn->stream) {
        cudaStreamSynchronize(nn->stream);
        cudaStreamDestroy(nn->stream);
    }
    if (nn->comm) {
        /* a communicator in error is aborted: finalizing it may wait for peers that are gone */
        ncclResult_t async = ncclSuccess;
        if (ncclCommGetAsyncError(nn->comm, &async) != ncclSuccess || async != ncclSuccess) {
            ncclCommAbort(nn->comm);
        } else {
            ncclCommFinalize(nn->comm);
            ncclCommDestroy(nn->comm);
        }
    }
    free(nn);
    c->nccl = NULL;
}

void cnccl_abort(Comm *c) {
    CommNccl *nn = get(c);
    if (nn && nn->comm) {
        ncclCommAbort(nn->comm);
        nn->comm = NULL;
    }
}

/* Orders the communication stream after the caller's work queued so far. */
static int after_compute(Comm *c, CommNccl *nn, Err *err) {
    cudaEvent_t ev;
    CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(ev, (cudaStream_t)c->stream));
    CUDA_CHECK(cudaStreamWaitEvent(nn->stream, ev, 0));
    CUDA_CHECK(cudaEventDestroy(ev)); /* safe: destruction is deferred until it completes */
    return 0;
}

int cnccl_iallreduce(Comm *c, float *buf, size_t n, CommOp op, void *req, Err *err) {
    CommNccl *nn = get(c);
    if (!nn || !nn->comm) return err_set(err, "comm: NCCL is not initialized (or was aborted)");
    if (after_compute(c, nn, err) != 0) return -1;
    NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat, op == COMM_AVG ? ncclAvg : ncclSum, nn->comm, nn->stream));
    cudaEvent_t done;
    CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(done, nn->stream));
    memcpy(req, &done, sizeof done);
    return 0;
}

int cnccl_test(Comm *c, void *req, int *done, Err *err) {
    CommNccl *nn = get(c);
    if (!nn || !nn->comm) /* aborted after the request was queued: it will never complete */
        return err_set(err, "comm: the NCCL communicator was aborted while an all-reduce was pending");
    cudaEvent_t ev;
    memcpy(&ev, req, sizeof ev);
    cudaError_t q = cudaEventQuery(ev);
    if (q != cudaSuccess && q != cudaErrorNotReady) { /* the peers would wait for this rank */
        err_set(err, "%s:%d: cudaEventQuery of a pending all-reduce failed: %s (%s)", __FILE__, __LINE__,
                cudaGetErrorString(q), cudaGetErrorName(q));
        cnccl_abort(c);
        return -1;
    }
    if (q == cudaErrorNotReady) {
        ncclResult_t async = ncclSuccess;
        NCCL_CHECK(ncclCommGetAsyncError(nn->comm, &async));
        if (async != ncclSuccess) {
            err_set(err, "%s:%d: NCCL reported an asynchronous error on rank %d (%s): %s", __FILE__, __LINE__,
                    c->rank, c->host, ncclGetErrorString(async));
            cnccl_abort(c);
            return -1;
        }
        *done = 0;
        return 0;
    }
    CUDA_CHECK(cudaEventDestroy(ev));
    *done = 1;
    return 0;
}

int cnccl_wait(Comm *c, void *req, Err *err) {
    int done = 0;
    while (!done) {
        if (cnccl_test(c, req, &done, err) != 0) return -1;
        if (!done) sched_yield();
    }
    /* the caller's stream may now use the result (the event has completed) */
    return 0;
}

int cnccl_bcast(Comm *c, float *buf, size_t n, int root, Err *err) {
    CommNccl *nn = get(c);
    if (!nn || !nn->comm) return err_set(err, "comm: NCCL is not initialized (or was aborted)");
    if (after_compute(c, nn, err) != 0) return -1;
    NCCL_CHECK(ncclBroadcast(buf, buf, n, ncclFloat, root, nn->comm, nn->stream));
    cudaEvent_t done;
    CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(done, nn->stream));
    unsigned char req[COMM_IMPL_BYTES];
    memcpy(req, &done, sizeof done);
    return cnccl_wait(c, req, err);
}
