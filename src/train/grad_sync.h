/* grad_sync.h: data-parallel gradient averaging in buckets, overlapped with backward.
 *
 * The model has ONE flat gradient buffer (model/params.h: trainable parameters only, in
 * registration order). Backward produces the last parameters' gradients first, so the
 * buffer is cut into buckets of about dist.bucket_mb MiB from its END, and each bucket is
 * all-reduced (averaged over ranks, non-blocking) as soon as backward reports that every
 * gradient at offsets >= the bucket's start is final (VqaModel.grad_ready hook →
 * gsync_ready). gsync_finish launches whatever is left and waits for all of them.
 *
 * Bucket boundaries fall on parameter boundaries (a parameter is never split, as in
 * PyTorch DDP): walking the parameters from the last to the first, a parameter joins the
 * current bucket while the bucket stays <= the cap, otherwise it starts the next bucket;
 * a parameter larger than the cap is a bucket of its own. Reported offsets inside a
 * parameter are therefore never needed: the model reports module by module.
 *
 * Per step (every micro-step of gradient accumulation):
 *   gsync_begin(gs, last_micro)   before backward; only the last micro-step reduces
 *   vqa_model_backward(...)       calls gsync_ready(gs, X) through the hook
 *   gsync_finish(gs, err)         after backward: gradients now averaged on every rank
 *
 * Where the buffers live: host for the CPU backend; device for CUDA. With the nccl
 * backend the device buffer is reduced in place; with mpi (no NCCL) each bucket is staged
 * through a host mirror (copy_d2h at launch, copy_h2d after the wait).
 *
 * Who moves the bytes (mpi backend): by default MPI_Iallreduce, moved forward by the
 * comm_progress call each gsync_ready makes — on the core that computes backward. With
 * dist.comm_thread on (gsync_setup_comm_thread), a thread of the rank runs each bucket's
 * all-reduce beside backward (comm_set_async), which hides it when that thread has a core.
 *
 * World of one: nothing happens at all (enabled = 0); tests set enabled = 1 to exercise
 * the launch logic with the identity collectives of a world of one. */
#ifndef VQA_GRAD_SYNC_H
#define VQA_GRAD_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "model/params.h"
#include "ops/backend.h"
#include "util/err.h"

typedef struct GsyncBucket {
    size_t begin, end;   /* [begin, end) of the gradient buffer, in floats */
    int handle;          /* comm request while in flight; -1 otherwise */
} GsyncBucket;

typedef struct GradSync {
    Comm *comm;
    const Backend *be;
    float *grads;        /* the flat gradient buffer (backend memory) */
    size_t n;            /* its length in floats */
    float *host;         /* staging mirror when grads are device memory and comm wants host */
    GsyncBucket *buckets; /* launch order: buckets[0] ends at n, buckets[nb-1] begins at 0 */
    int nb;
    int enabled;         /* world > 1 */
    /* per step */
    int active;          /* this backward ends an optimizer step */
    int next;            /* buckets[0..next) launched */
    int failed;          /* an error inside gsync_ready (reported by gsync_finish) */
    Err err;
    /* launch order of the current step, for tests and the benchmark: the ready offset
     * reported when bucket i was launched (SIZE_MAX: launched by gsync_finish) */
    size_t *launched_at;
    /* statistics, accumulated over steps (gsync_stats_reset zeroes them) */
    double t_comm_start; /* seconds spent launching (staging copies, Iallreduce calls) */
    double t_wait;       /* seconds blocked in gsync_finish waiting for results */
    double t_progress;   /* seconds inside comm_progress from gsync_ready (during backward:
                          * on CPU ranks the copies and sums of the all-reduce run here) */
    long steps, buckets_early; /* reduced steps; buckets launched before gsync_finish */
    long buckets_done_early;   /* buckets already complete when gsync_finish was called */
} GradSync;

/* Cuts a buffer of n floats with parameters starting at bounds[0..nbounds) (ascending,
 * bounds[0] == 0, all < n) into buckets of at most cap floats (see above). *out is
 * malloc'ed, in launch order. */
int gsync_plan(const size_t *bounds, int nbounds, size_t n, size_t cap, GsyncBucket **out, int *nb, Err *e);

/* The parameter starts in the gradient buffer (trainable parameters, ascending). */
int gsync_bounds_from_params(const ParamStore *ps, size_t **bounds, int *nbounds, Err *e);

/* General form: grads[n] in be's memory, parameter starts bounds[nbounds]. */
int gsync_init(GradSync *gs, Comm *comm, const Backend *be, float *grads, size_t n, const size_t *bounds,
               int nbounds, double bucket_mb, Err *e);
/* The model's gradient buffer (ps->grads, ps->be). */
int gsync_init_params(GradSync *gs, Comm *comm, const ParamStore *ps, double bucket_mb, Err *e);
void gsync_free(GradSync *gs);

void gsync_begin(GradSync *gs, int last_micro_step);
/* Every gradient at offset >= ready_offset is final: launch the buckets that are complete.
 * Errors are kept and returned by gsync_finish (a hook cannot return one). */
void gsync_ready(GradSync *gs, size_t ready_offset);
/* The VqaModel.grad_ready hook: ctx is the GradSync. */
void gsync_ready_hook(void *ctx, size_t ready_offset);
/* Launches what is left, waits for every bucket; gradients are then the average over ranks. */
int gsync_finish(GradSync *gs, Err *e);
void gsync_stats_reset(GradSync *gs);

/* The all-reduce thread (comm_set_async) for the mpi backend. mode: 0 auto, 1 on, 2 off
 * (CfgAutoOnOff). auto turns it on when every rank has a core beyond its op_threads
 * compute threads: the cores this process may run on (its affinity mask; a mask that
 * spans the whole node is shared by the node's ranks, so it counts for 1/local_size of
 * them) >= op_threads + 1. The verdicts are combined with a MIN over ranks, so all ranks
 * route alike (comm_set_async is collective). on: an error when MPI lacks
 * MPI_THREAD_MULTIPLE; auto falls back to off. why (cap bytes) says what was decided and
 * why, for the log. Collective; a no-op (off) unless the backend is mpi with world > 1. */
int gsync_setup_comm_thread(Comm *comm, int mode, int op_threads, char *why, size_t cap, Err *e);
/* The cores available to this process (sched_getaffinity), and how many the node has. */
void gsync_cores(int *affinity, int *online);
/* auto's arithmetic: the cores this rank may count as its own (a mask as wide as the node
 * is shared by the node's ranks_here ranks) */
int gsync_rank_cores(int affinity, int online, int ranks_here);

/* Start of training: every rank takes rank 0's parameter values (values[n] in be's memory). */
int gsync_broadcast_params(Comm *comm, const Backend *be, float *values, size_t n, Err *e);
/* Every rank takes the average over ranks of values[n] (be's memory; staged through host
 * memory for a device buffer over a host transport). For the BN running statistics, whose
 * updates each rank computes from its own shard: averaging makes them equal on all ranks
 * (so rank 0's checkpoint holds what every rank used) and, the running-mean update being
 * linear in the batch mean, gives the running means one rank with the whole global batch
 * would have (equal shards; the running variances miss the spread between the ranks'
 * means). PyTorch DDP instead broadcasts rank 0's buffers before each forward. */
int gsync_average_buffers(Comm *comm, const Backend *be, float *values, size_t n, Err *e);
/* Checks that every rank holds bitwise the same values[n] (a 64-bit FNV-1a hash, compared
 * through min/max all-reduces); the error names the first ranks' hashes that differ. */
int gsync_check_same(Comm *comm, const Backend *be, const float *values, size_t n, const char *what, Err *e);
/* FNV-1a 64 of n floats' bytes (host memory). */
uint64_t gsync_hash(const float *x, size_t n);

#endif
