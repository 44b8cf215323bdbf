/* comm.h: the one communication interface. Nothing outside comm/ includes mpi.h or nccl.h.
 *
 * Implementations (comm.c dispatches):
 *   comm_single.c  world of one: every collective is the identity (always built; stands in
 *                  for the MPI transport in a build without MPI)
 *   comm_mpi.c     MPI on host buffers (Open MPI / any MPI 3), also the bootstrap of NCCL
 *   comm_nccl.c    NCCL on GPU buffers, its unique id broadcast by MPI
 *
 * Life cycle of a run:
 *   comm_init(&c, &argc, &argv, err)        MPI_Init_thread when a launcher started us
 *   comm_install_signal_handlers(c)         SIGTERM/SIGINT on any rank end the whole job
 *   comm_gpu_for_rank(c, n_gpus, &dev, err) GPU runs: which device this rank drives
 *   comm_setup(c, COMM_BACKEND_AUTO, dev, err)   the data backend: none | mpi | nccl
 *   ... comm_bcast / comm_iallreduce + comm_wait / comm_allreduce_f64 ...
 *   comm_abort(c, msg) on a fatal error (never returns when world > 1)
 *   comm_finalize(c)
 *
 * Buffers. "Data" collectives (comm_allreduce, comm_iallreduce, comm_bcast) take float
 * buffers where the data backend wants them: device memory for nccl (comm_device_buffers()
 * = 1), host memory otherwise. The _host / _f64 collectives and comm_barrier always take
 * host memory and always go through MPI (or are the identity in a world of one).
 *
 * Launch detection (comm_init): MPI is initialized only when a launcher's environment is
 * present (OMPI_COMM_WORLD_SIZE from mpirun, PMIX_RANK from srun --mpi=pmix, PMI_SIZE);
 * otherwise the process is a world of one without touching MPI. `srun -n N` with no MPI
 * plugin (SLURM_STEP_NUM_TASKS > 1 but no PMI variables) is an error, not N independent
 * worlds of one writing the same run directory.
 *
 * Threading: only the thread that called comm_init may call comm_* (loader threads never
 * communicate). comm_init asks MPI for MPI_THREAD_MULTIPLE so that comm_set_async can give
 * the non-blocking float all-reduces to a thread of their own (comm_thread.c); with less
 * (but at least FUNNELED) everything else works. */
#ifndef VQA_COMM_H
#define VQA_COMM_H

#include <stddef.h>

#include "util/err.h"

typedef struct Comm Comm;

/* Same values as CfgDistBackend (config/config.h), so a cast converts dist.backend. */
typedef enum CommBackend {
    COMM_BACKEND_AUTO = 0,
    COMM_BACKEND_NCCL = 1,
    COMM_BACKEND_MPI = 2,
    COMM_BACKEND_NONE = 3
} CommBackend;

/* AVG = SUM / world (a true division, not a multiplication by 1/world). Data collectives
 * accept SUM and AVG; the _f64 ones all four. */
typedef enum CommOp { COMM_SUM = 0, COMM_AVG = 1, COMM_MAX = 2, COMM_MIN = 3 } CommOp;

/* ---- start and stop ---- */

/* Starts the communication layer (see launch detection above). argc/argv may be NULL.
 * Until comm_setup the data backend is "mpi" when world > 1 and "none" otherwise. */
int comm_init(Comm **out, int *argc, char ***argv, Err *err);
/* Waits for pending requests, tears down NCCL, MPI_Finalize (if comm_init initialized
 * MPI). NULL allowed. */
void comm_finalize(Comm *c);

/* 1 if the MPI / NCCL transports were compiled in. */
int comm_have_mpi(void);
int comm_have_nccl(void);

int comm_rank(const Comm *c);
int comm_world(const Comm *c);
/* Rank among the ranks on this node (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, else
 * computed by MPI), and how many ranks share this node. */
int comm_local_rank(const Comm *c);
int comm_local_size(const Comm *c);
const char *comm_host(const Comm *c);          /* this node's host name */
const char *comm_backend_name(const Comm *c);  /* data backend: "none", "mpi", "nccl" */
/* 1 when data collectives take device (GPU) buffers (backend nccl). */
int comm_device_buffers(const Comm *c);

/* The CUDA device this rank drives: its local rank. Fails with a message naming the host,
 * the ranks on it and the GPUs visible when the node has more ranks than GPUs. */
int comm_gpu_for_rank(const Comm *c, int n_gpus, int *device, Err *err);

/* Chooses the data backend. cuda_device: the device this rank's buffers live on, or -1
 * for host buffers (CPU training).
 *   auto: nccl when cuda_device >= 0, world > 1 and NCCL is compiled in; else mpi when
 *         world > 1; else none.  (A GPU run without NCCL returns "mpi": the caller stages
 *         device buffers through host memory; grad_sync does.)
 *   nccl: needs cuda_device >= 0 and NCCL compiled in (works with world 1 too).
 *   mpi:  needs MPI compiled in when world > 1.
 *   none: needs world == 1.
 * Collective: every rank must call it with the same `want`. */
int comm_setup(Comm *c, CommBackend want, int cuda_device, Err *err);

/* NCCL: the CUDA stream (cudaStream_t) on which the buffers are produced and consumed;
 * NULL = the legacy default stream. comm_iallreduce makes the communication stream wait
 * for the work queued on it so far; comm_wait makes it wait for the result. Ignored by
 * the other backends. */
void comm_set_stream(Comm *c, void *cuda_stream);

/* All-reduce thread (backend mpi; ignored by none and nccl). on = 1: from now on
 * comm_iallreduce queues the reduction for a thread of this rank, which runs it as a
 * blocking MPI_Allreduce on its own duplicate of the world communicator, in the order the
 * requests were started, and divides for AVG; comm_progress only looks at flags and
 * comm_wait sleeps until the thread is done. So the copies and sums run beside the caller's
 * computation instead of inside its comm_progress calls — a gain when the rank has a spare
 * core (or computes on a GPU), a loss when every core computes. on = 0: back to
 * MPI_Iallreduce (the thread stays, idle). Collective: every rank must call it with the
 * same `on` (the first call duplicates the communicator, and ranks that route differently
 * would never match), with no request pending. Fails when MPI lacks MPI_THREAD_MULTIPLE. */
int comm_set_async(Comm *c, int on, Err *err);
int comm_async(const Comm *c); /* 1 while comm_iallreduce uses the thread */

/* ---- data collectives (float buffers; device memory when comm_device_buffers) ---- */

/* In place, blocking: buf[i] = op over ranks of buf[i]. */
int comm_allreduce(Comm *c, float *buf, size_t n, CommOp op, Err *err);
/* In place, non-blocking: starts the reduction and returns a handle (>= 0). buf must not
 * be touched until comm_wait(handle) returns. n <= 2^31 - 1 for mpi. */
int comm_iallreduce(Comm *c, float *buf, size_t n, CommOp op, int *handle, Err *err);
/* Drives outstanding requests forward without blocking (MPI progresses non-blocking
 * collectives only inside MPI calls, so call this between pieces of computation).
 * Sets *n_done (may be NULL) to the number of started requests that have completed. */
int comm_progress(Comm *c, int *n_done, Err *err);
/* Blocks until the request completes (then AVG divides on the host for mpi); frees the
 * handle. */
int comm_wait(Comm *c, int handle, Err *err);
/* Waits for every outstanding request. */
int comm_wait_all(Comm *c, Err *err);
/* In place: every rank gets root's buf. */
int comm_bcast(Comm *c, float *buf, size_t n, int root, Err *err);

/* ---- host collectives (always host memory, always MPI) ---- */

int comm_bcast_host(Comm *c, void *buf, size_t bytes, int root, Err *err);
/* In place over n doubles (evaluation counts, losses, hashes as doubles). */
int comm_allreduce_f64(Comm *c, double *v, int n, CommOp op, Err *err);
/* recv (on root only; world * n doubles, rank-major) = every rank's send[n]. */
int comm_gather_f64(Comm *c, const double *send, int n, double *recv, int root, Err *err);
int comm_barrier(Comm *c, Err *err);

/* ---- failure ---- */

/* A fatal error on this rank. world > 1: writes "[rank r/N host] fatal: msg; aborting all
 * ranks" to stderr, aborts NCCL, then MPI_Abort(1): the whole job ends, no rank is left
 * hanging in a collective; never returns. World of one: writes nothing and returns (the
 * main prints its error and exits 1 as usual). This and the signal handler are the only
 * places comm/ writes to stderr: there is nobody to return to. */
void comm_abort(Comm *c, const char *msg);
/* SIGTERM / SIGINT / SIGHUP (world > 1): write "[rank r/N host] caught SIGTERM; aborting
 * all ranks" and MPI_Abort, so one killed rank ends the whole job. A signal sent by our
 * parent (mpirun's daemon, slurmstepd) means the launcher is already ending the job: the
 * rank then dies of it quietly. World of one: nothing installed (signals act as usual).
 * Process-wide (signal dispositions are), so it keeps the "[rank r/N host]" prefix in
 * static storage. */
int comm_install_signal_handlers(Comm *c, Err *err);

#endif
