/* grad_sync.c: bucket planning over the flat gradient buffer, launching bucket all-reduces
 * as backward reports final gradients, waiting and averaging at the end of backward;
 * parameter broadcast and the same-weights check at start-up (see grad_sync.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "train/grad_sync.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

int gsync_plan(const size_t *bounds, int nbounds, size_t n, size_t cap, GsyncBucket **out, int *nb, Err *e) {
    *out = NULL;
    *nb = 0;
    if (n == 0) return 0;
    if (nbounds < 1 || bounds[0] != 0)
        return err_set(e, "grad_sync: parameter starts must begin at offset 0 (got %s)", nbounds < 1 ? "none" : "another offset");
    for (int i = 1; i < nbounds; i++)
        if (bounds[i] <= bounds[i - 1] || bounds[i] >= n)
            return err_set(e, "grad_sync: parameter start %d (%zu) is not ascending inside [0, %zu)", i, bounds[i], n);
    if (cap < 1) cap = 1;
    GsyncBucket *b = malloc((size_t)nbounds * sizeof *b); /* at most one bucket per parameter */
    if (!b) return err_set(e, "grad_sync: out of memory (%d buckets)", nbounds);
    int k = 0;
    size_t end = n;  /* the open bucket is [bounds[j+1] or so, end) */
    size_t top = n;  /* start of the parameters already in the open bucket */
    for (int j = nbounds - 1; j >= 0; j--) {
        size_t begin = bounds[j];
        /* parameter j = [begin, top); it joins unless that overfills a non-empty bucket */
        if (end - begin > cap && top < end) {
            b[k++] = (GsyncBucket){top, end, -1};
            end = top;
        }
        top = begin;
    }
    b[k++] = (GsyncBucket){0, end, -1};
    *out = b;
    *nb = k;
    return 0;
}

int gsync_bounds_from_params(const ParamStore *ps, size_t **bounds, int *nbounds, Err *e) {
    *bounds = NULL;
    *nbounds = 0;
    size_t *b = malloc((size_t)(ps->n > 0 ? ps->n : 1) * sizeof *b);
    if (!b) return err_set(e, "grad_sync: out of memory");
    int k = 0;
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->items[i];
        if (p->grad_offset == PS_NO_GRAD || p->numel == 0) continue;
        if (k && p->grad_offset <= b[k - 1]) {
            size_t prev = b[k - 1];
            free(b);
            return err_set(e, "grad_sync: gradient of %s (offset %zu) is not after the previous one (%zu)", p->name,
                           p->grad_offset, prev);
        }
        b[k++] = p->grad_offset;
    }
    *bounds = b;
    *nbounds = k;
    return 0;
}

int gsync_init(GradSync *gs, Comm *comm, const Backend *be, float *grads, size_t n, const size_t *bounds,
               int nbounds, double bucket_mb, Err *e) {
    memset(gs, 0, sizeof *gs);
    gs->comm = comm;
    gs->be = be;
    gs->grads = grads;
    gs->n = n;
    gs->enabled = comm_world(comm) > 1;
    if (!(bucket_mb > 0)) return err_set(e, "dist.bucket_mb must be > 0 (got %g)", bucket_mb);
    double capf = bucket_mb * 1024.0 * 1024.0 / sizeof(float);
    /* MPI counts are ints: keep every bucket addressable in one request */
    size_t cap = capf >= (double)(1u << 30) ? ((size_t)1 << 30) : (size_t)(capf < 1 ? 1 : capf);
    if (gsync_plan(bounds, nbounds, n, cap, &gs->buckets, &gs->nb, e) != 0) return -1;
    gs->launched_at = calloc((size_t)(gs->nb > 0 ? gs->nb : 1), sizeof *gs->launched_at);
    if (!gs->launched_at) {
        gsync_free(gs);
        return err_set(e, "grad_sync: out of memory");
    }
    return 0;
}

int gsync_init_params(GradSync *gs, Comm *comm, const ParamStore *ps, double bucket_mb, Err *e) {
    size_t *b;
    int nb;
    if (gsync_bounds_from_params(ps, &b, &nb, e) != 0) return -1;
    int rc = gsync_init(gs, comm, ps->be, ps->grads, ps->n_grads, b, nb, bucket_mb, e);
    free(b);
    return rc;
}

void gsync_free(GradSync *gs) {
    free(gs->buckets);
    free(gs->launched_at);
    free(gs->host);
    memset(gs, 0, sizeof *gs);
}

void gsync_begin(GradSync *gs, int last_micro_step) {
    gs->active = gs->enabled && last_micro_step && gs->nb > 0;
    gs->next = 0;
    gs->failed = 0;
    for (int i = 0; i < gs->nb; i++) gs->buckets[i].handle = -1;
}

static int launch(GradSync *gs, int i, size_t at) {
    GsyncBucket *b = &gs->buckets[i];
    size_t len = b->end - b->begin;
    double t0 = time_now();
    float *buf = gs->grads + b->begin;
    if (gs->be && gs->be->device != DEV_CPU && !comm_device_buffers(gs->comm) && !gs->host) {
        /* first reduction of a device buffer over a host transport: the mirror, once */
        gs->host = malloc(gs->n * sizeof *gs->host);
        if (!gs->host) {
            err_set(&gs->err, "grad_sync: out of memory (host mirror of %zu gradients)", gs->n);
            gs->failed = 1;
            return -1;
        }
    }
    if (gs->host) {
        gs->be->copy_d2h(gs->be, gs->host + b->begin, buf, len * sizeof(float));
        buf = gs->host + b->begin;
    }
    int rc = comm_iallreduce(gs->comm, buf, len, COMM_AVG, &b->handle, &gs->err);
    gs->t_comm_start += time_now() - t0;
    gs->launched_at[i] = at;
    if (rc != 0) {
        err_prefix(&gs->err, "grad_sync: bucket %d [%zu, %zu)", i, b->begin, b->end);
        gs->failed = 1;
    }
    return rc;
}

void gsync_ready(GradSync *gs, size_t ready_offset) {
    if (!gs->active || gs->failed) return;
    while (gs->next < gs->nb && gs->buckets[gs->next].begin >= ready_offset) {
        if (launch(gs, gs->next, ready_offset) != 0) return;
        gs->next++;
        gs->buckets_early++;
    }
    /* MPI moves non-blocking collectives along only inside MPI calls: give it a turn
     * every time backward comes back to us */
    if (gs->next > 0) {
        double t0 = time_now();
        if (comm_progress(gs->comm, NULL, &gs->err) != 0) gs->failed = 1;
        gs->t_progress += time_now() - t0;
    }
}

void gsync_ready_hook(void *ctx, size_t ready_offset) { gsync_ready((GradSync *)ctx, ready_offset); }

int gsync_finish(GradSync *gs, Err *e) {
    if (!gs->active) return 0;
    gs->active = 0;
    if (gs->failed) {
        /* no waiting here: a failed transport may never complete; the caller aborts */
        if (e) *e = gs->err;
        return -1;
    }
    if (gs->next > 0) {
        int nd = 0;
        if (comm_progress(gs->comm, &nd, e) != 0) return -1;
        gs->buckets_done_early += nd;
    }
    while (gs->next < gs->nb) {
        if (launch(gs, gs->next, SIZE_MAX) != 0) {
            if (e) *e = gs->err;
            return -1;
        }
        gs->next++;
    }
    double t0 = time_now();
    int rc = 0;
    for (int i = 0; i < gs->nb; i++) {
        GsyncBucket *b = &gs->buckets[i];
        if (b->handle < 0) continue;
        if (comm_wait(gs->comm, b->handle, rc ? NULL : e) != 0) {
            if (!rc) err_prefix(e, "grad_sync: bucket %d [%zu, %zu)", i, b->begin, b->end);
            rc = -1;
        }
        b->handle = -1;
        if (gs->host && rc == 0)
            gs->be->copy_h2d(gs->be, gs->grads + b->begin, gs->host + b->begin, (b->end - b->begin) * sizeof(float));
    }
    gs->t_wait += time_now() - t0;
    gs->steps++;
    return rc;
}

void gsync_stats_reset(GradSync *gs) {
    gs->t_comm_start = gs->t_wait = gs->t_progress = 0;
    gs->steps = gs->buckets_early = gs->buckets_done_early = 0;
}

/* ---- the all-reduce thread ---- */

void gsync_cores(int *affinity, int *online) {
    long on = sysconf(_SC_NPROCESSORS_ONLN);
    *online = on > 0 ? (int)on : 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    *affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : *online;
    if (*affinity < 1) *affinity = 1;
}

int gsync_rank_cores(int affinity, int online, int ranks_here) {
    if (ranks_here < 1) ranks_here = 1;
    return affinity >= online ? online / ranks_here : affinity;
}

int gsync_setup_comm_thread(Comm *comm, int mode, int op_threads, char *why, size_t cap, Err *e) {
    if (comm_world(comm) == 1 || strcmp(comm_backend_name(comm), "mpi") != 0) {
        snprintf(why, cap, "off (only the mpi backend with several ranks uses it)");
        return comm_set_async(comm, 0, e);
    }
    if (op_threads < 1) op_threads = 1;
    int aff, online;
    gsync_cores(&aff, &online);
    int ranks_here = comm_local_size(comm) > 0 ? comm_local_size(comm) : 1;
    int mine = gsync_rank_cores(aff, online, ranks_here);
    double ok = mode == 1 || (mode == 0 && mine >= op_threads + 1);
    if (comm_allreduce_f64(comm, &ok, 1, COMM_MIN, e) != 0) return err_prefix(e, "dist.comm_thread");
    char cores[160];
    snprintf(cores, sizeof cores, "%d core%s for this rank (%d in its affinity mask, %d online, %d rank%s on the node), "
             "%d op thread%s", mine, mine == 1 ? "" : "s", aff, online, ranks_here, ranks_here == 1 ? "" : "s",
             op_threads, op_threads == 1 ? "" : "s");
    if (mode == 2 || !ok) {
        snprintf(why, cap, "off (%s; %s)", mode == 2 ? "dist.comm_thread: off" : "auto: some rank has no spare core", cores);
        return comm_set_async(comm, 0, e);
    }
    Err te = {{0}};
    /* the ranks must route alike: a thread that failed to start anywhere means off everywhere */
    double started = comm_set_async(comm, 1, &te) == 0;
    if (comm_allreduce_f64(comm, &started, 1, COMM_MIN, e) != 0) return err_prefix(e, "dist.comm_thread");
    if (!started) {
        if (!te.msg[0]) snprintf(te.msg, sizeof te.msg, "another rank could not start its all-reduce thread");
        if (mode == 1) {
            if (e) *e = te;
            return err_prefix(e, "dist.comm_thread: on");
        }
        snprintf(why, cap, "off (auto: %s)", te.msg);
        return comm_set_async(comm, 0, e);
    }
    snprintf(why, cap, "on (%s; %s)", mode == 1 ? "dist.comm_thread: on" : "auto", cores);
    return 0;
}

/* ---- start-up ---- */

/* A start-up or per-step collective on `values` (backend memory): in place when the comm
 * takes these buffers (host memory, or device memory with NCCL), else through a host copy.
 * avg = 0: broadcast from rank 0; 1: average over the ranks. */
static int collective_in_place_or_staged(Comm *comm, const Backend *be, float *values, size_t n, int avg,
                                         const char *what, Err *e) {
    if (comm_world(comm) == 1 || n == 0) return 0;
    int direct = !be || be->device == DEV_CPU || comm_device_buffers(comm);
    float *buf = values;
    if (!direct) {
        if (!(buf = malloc(n * sizeof *buf))) return err_set(e, "grad_sync: out of memory (host copy of %zu %s)", n, what);
        be->copy_d2h(be, buf, values, n * sizeof *buf);
    }
    int rc = avg ? comm_allreduce(comm, buf, n, COMM_AVG, e) : comm_bcast(comm, buf, n, 0, e);
    if (!direct) {
        if (rc == 0) be->copy_h2d(be, values, buf, n * sizeof *buf);
        free(buf);
    }
    if (rc != 0) return err_prefix(e, avg ? "averaging the %s" : "broadcasting the %s from rank 0", what);
    return 0;
}

int gsync_broadcast_params(Comm *comm, const Backend *be, float *values, size_t n, Err *e) {
    return collective_in_place_or_staged(comm, be, values, n, 0, "parameters", e);
}

int gsync_average_buffers(Comm *comm, const Backend *be, float *values, size_t n, Err *e) {
    return collective_in_place_or_staged(comm, be, values, n, 1, "BN running statistics", e);
}

uint64_t gsync_hash(const float *x, size_t n) {
    const unsigned char *p = (const unsigned char *)x;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n * sizeof *x; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int gsync_check_same(Comm *comm, const Backend *be, const float *values, size_t n, const char *what, Err *e) {
    if (comm_world(comm) == 1) return 0;
    uint64_t h;
    if (!be || be->device == DEV_CPU) {
        h = gsync_hash(values, n);
    } else {
        float *tmp = malloc((n ? n : 1) * sizeof *tmp);
        if (!tmp) return err_set(e, "grad_sync: out of memory (host copy of %zu values)", n);
        be->copy_d2h(be, tmp, values, n * sizeof *tmp);
        h = gsync_hash(tmp, n);
        free(tmp);
    }
    /* two exact 32-bit halves per double: min and max agree iff every rank has the same */
    double lo[2] = {(double)(h >> 32), (double)(h & 0xffffffffu)}, hi[2] = {lo[0], lo[1]};
    if (comm_allreduce_f64(comm, lo, 2, COMM_MIN, e) != 0 || comm_allreduce_f64(comm, hi, 2, COMM_MAX, e) != 0)
        return err_prefix(e, "checking that all ranks hold the same %s", what);
    if (lo[0] != hi[0] || lo[1] != hi[1])
        return err_set(e,
                       "%s differ between ranks (rank %d hash %016llx; hashes range %08llx%08llx..%08llx%08llx): "
                       "the ranks do not hold the same values",
                       what, comm_rank(comm), (unsigned long long)h, (unsigned long long)lo[0], (unsigned long long)lo[1],
                       (unsigned long long)hi[0], (unsigned long long)hi[1]);
    return 0;
}
