/* comm.h: the one communication interface. Nothing outside comm/ includes mpi.h or nccl.h.
 * Implementations: comm_single.c (world of one), comm_mpi.c (MPI, CPU buffers),
 * comm_nccl.c (NCCL on GPU buffers, bootstrapped by MPI). */
#ifndef VQA_COMM_H
#define VQA_COMM_H

#include <stddef.h>

#include "util/err.h"

typedef struct Comm Comm;

/* Starts the communication layer (MPI_Init when launched under mpirun/srun with MPI
 * compiled in; otherwise a world of one). argc/argv may be NULL. */
int comm_init(Comm **out, int *argc, char ***argv, Err *err);
void comm_finalize(Comm *c);
int comm_rank(const Comm *c);
int comm_world(const Comm *c);
int comm_local_rank(const Comm *c);
const char *comm_backend_name(const Comm *c); /* "none", "mpi", "nccl" */

#endif
