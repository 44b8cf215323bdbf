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
    void *nccl;               /* CommNccl (comm_nccl.c) */
    void *stream;             /* cudaStream_t of the caller's work (NULL = default) */
    CommSlot *slots;
    int nslots;
};

/* ---- MPI transport (comm_mpi.c, or the world-of-one stubs of comm_single.c) ---- */
int cmpi_init(Comm *c, int *argc, char ***argv, Err *err); /* sets rank/world/local_* */
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

/* ---- NCCL transport (comm_nccl.c; only with VQA_WITH_NCCL) ---- */
int cnccl_init(Comm *c, int device, Err *err);
void cnccl_finalize(Comm *c);
void cnccl_abort(Comm *c);
int cnccl_iallreduce(Comm *c, float *buf, size_t n, CommOp op, void *req, Err *err);
int cnccl_test(Comm *c, void *req, int *done, Err *err);
int cnccl_wait(Comm *c, void *req, Err *err);
int cnccl_bcast(Comm *c, float *buf, size_t n, int root, Err *err);

#endif
