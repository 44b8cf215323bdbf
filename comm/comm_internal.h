/* comm_internal.h: what comm.c (the public API and dispatch) shares with the transports
 * comm_mpi.c / comm_single.c (cmpi_*) and comm_nccl.c (cnccl_*). Not for use outside comm/. */
#ifndef VQA_COMM_INTERNAL_H
#define VQA_COMM_INTERNAL_H

#include <stddef.h>

#include "comm/comm.h"

/* Opaque per-request storage of a transport (an MPI_Request, a cudaEvent_t...). */
#define COMM_IMPL_BYTES 32

typedef struct CommSlot {
    int used;
    int done;                 /* transport reported completion (comm_progress) */
    CommBackend via;          /* MPI or NCCL; NONE = completed at start */
    int threaded;             /* MPI through the all-reduce thread (impl holds the job) */
    float *buf;
    size_t n;
    CommOp op;
    unsigned char impl[COMM_IMPL_BYTES];
} CommSlot;

struct Comm {
    int rank, world, local_rank, local_size;
    char host[64];
    CommBackend backend;      /* resolved data backend: NONE, MPI or NCCL */
    int device;               /* CUDA device of the data buffers, -1 = host */
    int mpi_up;               /* MPI initialized (by us or before us) */
    int mpi_owned;            /* we called MPI_Init_thread, so we finalize */
    int mpi_thread_multiple;  /* MPI provides MPI_THREAD_MULTIPLE (the all-reduce thread needs it) */
    void *async;              /* CommAsync (comm_thread.c) once started, else NULL */
    int async_on;             /* comm_iallreduce on the mpi backend goes to that thread */
    void *nccl;               /* CommNccl (comm_nccl.c) */
    void *stream;             /* cudaStream_t of the caller's work (NULL = default) */
    CommSlot *slots;
    int nslots;
};

/* ---- MPI transport (comm_mpi.c, or the world-of-one stubs of comm_single.c) ---- */
/* sets rank/world/local_*, mpi_thread_multiple */
int cmpi_init(Comm *c, int *argc, char ***argv, Err *err);
void cmpi_finalize(Comm *c);
int cmpi_allreduce_sum(Comm *c, float *buf, size_t n, Err *err);
int cmpi_iallreduce_sum(Comm *c, float *buf, size_t n, void *req, Err *err);
int cmpi_test(Comm *c, void *req, int *done, Err *err);
int cmpi_wait(Comm *c, void *req, Err *err);
int cmpi_bcast_bytes(Comm *c, void *buf, size_t bytes, int root, Err *err);
int cmpi_allreduce_f64(Comm *c, double *v, int n, CommOp op, Err *err);
int cmpi_gather_f64(Comm *c, const double *send, int n, double *recv, int root, Err *err);
int cmpi_barrier(Comm *c, Err *err);
void cmpi_abort(int code); /* MPI_Abort(MPI_COMM_WORLD, code); async-signal use tolerated */
/* A duplicate of MPI_COMM_WORLD for the all-reduce thread (*out: a malloc'ed MPI_Comm;
 * collective), its release, and a blocking in-place float sum on it. */
int cmpi_comm_dup(Comm *c, void **out, Err *err);
void cmpi_comm_free(void *comm);
int cmpi_allreduce_sum_on(void *comm, float *buf, size_t n, Err *err);

/* ---- the all-reduce thread (comm_thread.c; MPI backend, comm_set_async) ---- */
int cthread_start(Comm *c, Err *err); /* collective: duplicates the communicator */
void cthread_stop(Comm *c);           /* waits for queued jobs, joins, frees */
int cthread_submit(Comm *c, float *buf, size_t n, int avg, void *req, Err *err);
int cthread_test(Comm *c, void *req, int *done, Err *err);
int cthread_wait(Comm *c, void *req, Err *err); /* also recycles the job: call once per job */

/* ---- NCCL transport (comm_nccl.c; only with VQA_WITH_NCCL) ---- */
int cnccl_init(Comm *c, int device, Err *err);
void cnccl_finalize(Comm *c);
void cnccl_abort(Comm *c);
int cnccl_iallreduce(Comm *c, float *buf, size_t n, CommOp op, void *req, Err *err);
int cnccl_test(Comm *c, void *req, int *done, Err *err);
int cnccl_wait(Comm *c, void *req, Err *err);
int cnccl_bcast(Comm *c, float *buf, size_t n, int root, Err *err);

#endif
