/* comm_single.c: the world-of-one communication layer (always built). With MPI compiled
 * in, comm_mpi.c provides the multi-rank path; this file is its fallback. */
#include "comm/comm.h"

#include <stdlib.h>

struct Comm {
    int rank, world, local_rank;
};

#ifndef VQA_WITH_MPI
int comm_init(Comm **out, int *argc, char ***argv, Err *err) {
    Comm *c = calloc(1, sizeof *c);
    if (!c) return err_set(err, "out of memory");
    c->world = 1;
    *out = c;
    return 0;
}
void comm_finalize(Comm *c) { free(c); }
int comm_rank(const Comm *c) { return c->rank; }
int comm_world(const Comm *c) { return c->world; }
int comm_local_rank(const Comm *c) { return c->local_rank; }
const char *comm_backend_name(const Comm *c) { return "none"; }
#endif
