/* comm_single.c: the world-of-one transport, built when MPI is not. comm.c already treats
 * a world of one as the identity for every collective, so these stand-ins for comm_mpi.c
 * are reached only when a launcher asked for more than one rank: cmpi_init then says
 * that this build cannot join it. */
#include "comm/comm_internal.h"

#ifndef VQA_WITH_MPI

#include <stdlib.h>

int cmpi_init(Comm *c, int *argc, char ***argv, Err *err) {
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = getenv("PMI_SIZE");
    if (size && atoi(size) > 1)
        return err_set(err,
                       "comm: launched as one of %s ranks, but this build has no MPI (configure found no "
                       "MPI; install libopenmpi-dev openmpi-bin and rebuild, or run one process)",
                       size);
    /* a launcher with a world of one (or srun --mpi=pmix -n 1): nothing to join */
    c->rank = 0;
    c->world = 1;
    c->local_rank = 0;
    c->local_size = 1;
    c->mpi_up = 0;
    return 0;
}

static int no_mpi(Err *err) { return err_set(err, "comm: this build has no MPI"); }

void cmpi_finalize(Comm *c) {}
int cmpi_allreduce_sum(Comm *c, float *buf, size_t n, Err *err) { return no_mpi(err); }
int cmpi_iallreduce_sum(Comm *c, float *buf, size_t n, void *req, Err *err) { return no_mpi(err); }
int cmpi_test(Comm *c, void *req, int *done, Err *err) { return no_mpi(err); }
int cmpi_wait(Comm *c, void *req, Err *err) { return no_mpi(err); }
int cmpi_bcast_bytes(Comm *c, void *buf, size_t bytes, int root, Err *err) { return no_mpi(err); }
int cmpi_allreduce_f64(Comm *c, double *v, int n, CommOp op, Err *err) { return no_mpi(err); }
int cmpi_gather_f64(Comm *c, const double *send, int n, double *recv, int root, Err *err) { return no_mpi(err); }
int cmpi_barrier(Comm *c, Err *err) { return no_mpi(err); }
void cmpi_abort(int code) {}
int cmpi_comm_dup(Comm *c, void **out, Err *err) { return no_mpi(err); }
void cmpi_comm_free(void *comm) {}
int cmpi_allreduce_sum_on(void *comm, float *buf, size_t n, Err *err) { return no_mpi(err); }

#else
/* ISO C forbids an empty translation unit. */
typedef int comm_single_unused;
#endif
