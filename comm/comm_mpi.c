/* comm_mpi.c: the MPI transport (host buffers): bootstrap (MPI_Init_thread asking for
 * MULTIPLE, world, node-local rank), sums of float buffers (blocking and non-blocking), broadcasts, small
 * double reductions, barrier and abort. Every MPI call is checked; a failure message names
 * the call, this file and line, and MPI's own error string. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"

_Static_assert(sizeof(MPI_Request) <= COMM_IMPL_BYTES, "MPI_Request does not fit a request slot");

static int mpi_fail(Err *err, int rc, const char *call, const char *file, int line) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
    return err_set(err, "%s:%d: %s failed: %s", file, line, call, s);
}

#define MPI_CHECK(call)                                                      \
    do {                                                                     \
        int mpi_rc_ = (call);                                                \
        if (mpi_rc_ != MPI_SUCCESS) return mpi_fail(err, mpi_rc_, #call, __FILE__, __LINE__); \
    } while (0)

/* MPI counts are int: big buffers go in pieces of 2^30 elements. */
#define MPI_CHUNK ((size_t)1 << 30)

static int env_int(const char *name, int fallback) {
    const char *s = getenv(name);
    if (!s || !*s) return fallback;
    char *end;
    long v = strtol(s, &end, 10);
    return *end ? fallback : (int)v;
}

int cmpi_init(Comm *c, int *argc, char ***argv, Err *err) {
    int inited = 0;
    MPI_CHECK(MPI_Initialized(&inited));
    int provided = 0;
    if (!inited) {
        /* MULTIPLE so the all-reduce thread (comm_thread.c) may run collectives beside the
         * main thread's; FUNNELED is enough for everything else (loader threads never call
         * MPI), so a library that offers less still works, without that thread */
        MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
        c->mpi_owned = 1;
        if (provided < MPI_THREAD_FUNNELED) {
            MPI_Finalize();
            return err_set(err, "comm: MPI provides thread level %d, below MPI_THREAD_FUNNELED", provided);
        }
    } else {
        MPI_CHECK(MPI_Query_thread(&provided));
    }
    c->mpi_thread_multiple = provided >= MPI_THREAD_MULTIPLE;
    c->mpi_up = 1;
    /* errors come back as codes, so our messages (with file:line) reach the user */
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &c->rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &c->world));
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node));
    int nrank = 0, nsize = 1;
    MPI_CHECK(MPI_Comm_rank(node, &nrank));
    MPI_CHECK(MPI_Comm_size(node, &nsize));
    MPI_CHECK(MPI_Comm_free(&node));
    /* the launcher's word first (it is what binds GPUs for the user), MPI's as fallback */
    c->local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", env_int("MPI_LOCALRANKID", nrank)));
    c->local_size = nsize;
    return 0;
}

void cmpi_finalize(Comm *c) {
    if (c->mpi_owned) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Finalize();
    }
    c->mpi_up = 0;
}

int cmpi_allreduce_sum(Comm *c, float *buf, size_t n, Err *err) {
    for (size_t at = 0; at < n; at += MPI_CHUNK) {
        int k = (int)(n - at < MPI_CHUNK ? n - at : MPI_CHUNK);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + at, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
    return 0;
}

int cmpi_comm_dup(Comm *c, void **out, Err *err) {
    (void)c;
    MPI_Comm *d = malloc(sizeof *d);
    if (!d) return err_set(err, "comm: out of memory");
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, d);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(*d, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) {
        free(d);
        return mpi_fail(err, rc, "MPI_Comm_dup(MPI_COMM_WORLD)", __FILE__, __LINE__);
    }
    *out = d;
    return 0;
}

void cmpi_comm_free(void *comm) {
    MPI_Comm *d = comm;
    if (!d) return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Comm_free(d);
    free(d);
}

int cmpi_allreduce_sum_on(void *comm, float *buf, size_t n, Err *err) {
    MPI_Comm d = *(MPI_Comm *)comm;
    for (size_t at = 0; at < n; at += MPI_CHUNK) {
        int k = (int)(n - at < MPI_CHUNK ? n - at : MPI_CHUNK);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + at, k, MPI_FLOAT, MPI_SUM, d));
    }
    return 0;
}

int cmpi_iallreduce_sum(Comm *c, float *buf, size_t n, void *req, Err *err) {
    if (n > (size_t)INT_MAX)
        return err_set(err, "comm_iallreduce: %zu floats exceed MPI's int count (split the buffer)", n);
    MPI_Request r;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r));
    memcpy(req, &r, sizeof r);
    return 0;
}

int cmpi_test(Comm *c, void *req, int *done, Err *err) {
    MPI_Request r;
    memcpy(&r, req, sizeof r);
    int flag = 0;
    MPI_CHECK(MPI_Test(&r, &flag, MPI_STATUS_IGNORE));
    memcpy(req, &r, sizeof r);
    *done = flag;
    return 0;
}

int cmpi_wait(Comm *c, void *req, Err *err) {
    MPI_Request r;
    memcpy(&r, req, sizeof r);
    MPI_CHECK(MPI_Wait(&r, MPI_STATUS_IGNORE));
    memcpy(req, &r, sizeof r);
    return 0;
}

int cmpi_bcast_bytes(Comm *c, void *buf, size_t bytes, int root, Err *err) {
    char *p = buf;
    for (size_t at = 0; at < bytes; at += MPI_CHUNK) {
        int k = (int)(bytes - at < MPI_CHUNK ? bytes - at : MPI_CHUNK);
        MPI_CHECK(MPI_Bcast(p + at, k, MPI_BYTE, root, MPI_COMM_WORLD));
    }
    return 0;
}

int cmpi_allreduce_f64(Comm *c, double *v, int n, CommOp op, Err *err) {
    MPI_Op mop = op == COMM_MAX ? MPI_MAX : op == COMM_MIN ? MPI_MIN : MPI_SUM;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, mop, MPI_COMM_WORLD));
    return 0;
}

int cmpi_gather_f64(Comm *c, const double *send, int n, double *recv, int root, Err *err) {
    MPI_CHECK(MPI_Gather(send, n, MPI_DOUBLE, recv, n, MPI_DOUBLE, root, MPI_COMM_WORLD));
    return 0;
}

int cmpi_barrier(Comm *c, Err *err) {
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    return 0;
}

void cmpi_abort(int code) {
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Abort(MPI_COMM_WORLD, code);
}
