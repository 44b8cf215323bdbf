/* comm.c: the public communication API (comm.h): launch detection, the choice of data
 * backend, request handles, AVG on host buffers, abort and signal handling. The transports
 * (comm_mpi.c / comm_single.c, comm_nccl.c) only move bytes. */
#include "comm/comm.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm_internal.h"

int comm_have_mpi(void) {
#ifdef VQA_WITH_MPI
    return 1;
#else
    return 0;
#endif
}

int comm_have_nccl(void) {
#ifdef VQA_WITH_NCCL
    return 1;
#else
    return 0;
#endif
}

/* ---- launch detection ---- */

static int env_int(const char *name, int *v) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long x = strtol(s, &end, 10);
    if (*end) return 0;
    *v = (int)x;
    return 1;
}

/* A launcher that sets up an MPI world for us. */
static int mpi_launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return 1;
    }
    return 0;
}

int comm_init(Comm **out, int *argc, char ***argv, Err *err) {
    *out = NULL;
    Comm *c = calloc(1, sizeof *c);
    if (!c) return err_set(err, "comm: out of memory");
    c->world = 1;
    c->local_size = 1;
    c->device = -1;
    c->backend = COMM_BACKEND_NONE;
    if (gethostname(c->host, sizeof c->host - 1) != 0) snprintf(c->host, sizeof c->host, "unknown-host");
    if (!mpi_launched()) {
        int tasks = 0;
        if (env_int("SLURM_STEP_NUM_TASKS", &tasks) && tasks > 1) {
            free(c);
            return err_set(err,
                           "comm: started by srun as one of %d tasks, but without an MPI launch environment "
                           "(no OMPI_COMM_WORLD_SIZE / PMIX_RANK / PMI_SIZE): each task would train alone. "
                           "Use `srun --mpi=pmix ...` or `mpirun ...` inside the allocation (see slurm/README.md)",
                           tasks);
        }
        *out = c;
        return 0;
    }
    if (cmpi_init(c, argc, argv, err) != 0) {
        free(c);
        return -1;
    }
    c->backend = c->world > 1 ? COMM_BACKEND_MPI : COMM_BACKEND_NONE;
    *out = c;
    return 0;
}

void comm_finalize(Comm *c) {
    if (!c) return;
    Err e;
    (void)comm_wait_all(c, &e);
    cthread_stop(c);
#ifdef VQA_WITH_NCCL
    if (c->nccl) cnccl_finalize(c);
#endif
    if (c->mpi_up) cmpi_finalize(c);
    free(c->slots);
    free(c);
}

int comm_rank(const Comm *c) { return c->rank; }
int comm_world(const Comm *c) { return c->world; }
int comm_local_rank(const Comm *c) { return c->local_rank; }
int comm_local_size(const Comm *c) { return c->local_size; }
const char *comm_host(const Comm *c) { return c->host; }
int comm_device_buffers(const Comm *c) { return c->backend == COMM_BACKEND_NCCL; }
void comm_set_stream(Comm *c, void *cuda_stream) { c->stream = cuda_stream; }

const char *comm_backend_name(const Comm *c) {
    switch (c->backend) {
    case COMM_BACKEND_NCCL: return "nccl";
    case COMM_BACKEND_MPI: return "mpi";
    default: return "none";
    }
}

int comm_gpu_for_rank(const Comm *c, int n_gpus, int *device, Err *err) {
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (n_gpus < 1)
        return err_set(err, "comm: rank %d on %s: no GPU visible (CUDA_VISIBLE_DEVICES=%s)", c->rank, c->host,
                       vis ? vis : "(unset)");
    if (c->local_size > n_gpus || c->local_rank >= n_gpus)
        return err_set(err,
                       "comm: host %s runs %d ranks but only %d GPU%s visible (CUDA_VISIBLE_DEVICES=%s); "
                       "vqa_train drives one GPU per rank: start at most %d rank%s per node "
                       "(mpirun -np / --map-by ppr:%d:node, sbatch --ntasks-per-node=%d)",
                       c->host, c->local_size, n_gpus, n_gpus == 1 ? " is" : "s are", vis ? vis : "(unset)", n_gpus,
                       n_gpus == 1 ? "" : "s", n_gpus, n_gpus);
    *device = c->local_rank;
    return 0;
}

int comm_setup(Comm *c, CommBackend want, int cuda_device, Err *err) {
    if (c->nslots) {
        for (int i = 0; i < c->nslots; i++)
            if (c->slots[i].used) return err_set(err, "comm_setup: requests still pending");
    }
    CommBackend b = want;
    if (want == COMM_BACKEND_AUTO) {
        if (c->world == 1)
            b = COMM_BACKEND_NONE;
        else if (cuda_device >= 0 && comm_have_nccl())
            b = COMM_BACKEND_NCCL;
        else
            b = COMM_BACKEND_MPI;
    }
    switch (b) {
    case COMM_BACKEND_NONE:
        if (c->world > 1)
            return err_set(err, "dist.backend none, but this job has %d ranks (use auto, mpi or nccl, or start one process)",
                           c->world);
        break;
    case COMM_BACKEND_MPI:
        if (c->world > 1 && !c->mpi_up) return err_set(err, "dist.backend mpi: MPI is not initialized");
        if (!c->mpi_up) b = COMM_BACKEND_NONE; /* world of one without MPI: nothing to do */
        break;
    case COMM_BACKEND_NCCL:
        if (cuda_device < 0)
            return err_set(err, "dist.backend nccl all-reduces GPU buffers, but this run trains on the CPU (use mpi or auto)");
        if (!comm_have_nccl())
            return err_set(err, "dist.backend nccl: this build has no NCCL (%s); use mpi or auto",
                           comm_have_mpi() ? "nccl.h/libnccl not found at configure time" : "NCCL needs MPI to bootstrap");
#ifdef VQA_WITH_NCCL
        if (!c->nccl && cnccl_init(c, cuda_device, err) != 0) return -1;
#endif
        break;
    default:
        return err_set(err, "comm_setup: unknown backend %d", (int)want);
    }
    c->backend = b;
    c->device = cuda_device;
    return 0;
}

/* ---- the all-reduce thread ---- */

int comm_set_async(Comm *c, int on, Err *err) {
    for (int i = 0; i < c->nslots; i++)
        if (c->slots[i].used) return err_set(err, "comm_set_async: requests still pending");
    if (!on || c->backend != COMM_BACKEND_MPI) {
        c->async_on = 0;
        return 0;
    }
    if (!c->mpi_thread_multiple)
        return err_set(err, "comm: the all-reduce thread needs MPI_THREAD_MULTIPLE, which this MPI library does not "
                            "provide (set dist.comm_thread: off)");
    if (cthread_start(c, err) != 0) return -1;
    c->async_on = 1;
    return 0;
}

int comm_async(const Comm *c) { return c->async_on; }

/* ---- request slots ---- */

static int slot_new(Comm *c, Err *err) {
    for (int i = 0; i < c->nslots; i++)
        if (!c->slots[i].used) {
            memset(&c->slots[i], 0, sizeof c->slots[i]);
            c->slots[i].used = 1;
            return i;
        }
    int n = c->nslots ? 2 * c->nslots : 16;
    CommSlot *s = realloc(c->slots, (size_t)n * sizeof *s);
    if (!s) return err_set(err, "comm: out of memory (request table)");
    memset(s + c->nslots, 0, (size_t)(n - c->nslots) * sizeof *s);
    int i = c->nslots;
    c->slots = s;
    c->nslots = n;
    c->slots[i].used = 1;
    return i;
}

static int check_data_op(CommOp op, Err *err) {
    if (op != COMM_SUM && op != COMM_AVG) return err_set(err, "comm: float all-reduce supports SUM and AVG only (op %d)", (int)op);
    return 0;
}

/* AVG on host buffers: the transports sum, we divide (division, so a world of 2 or 4
 * gives exactly sum / world). */
static void divide(float *buf, size_t n, int world) {
    float w = (float)world;
    for (size_t i = 0; i < n; i++) buf[i] /= w;
}

/* ---- data collectives ---- */

int comm_allreduce(Comm *c, float *buf, size_t n, CommOp op, Err *err) {
    if (check_data_op(op, err) != 0) return -1;
    if (n == 0 || c->backend == COMM_BACKEND_NONE) return 0;
    if (c->backend == COMM_BACKEND_MPI) {
        if (cmpi_allreduce_sum(c, buf, n, err) != 0) return -1;
        if (op == COMM_AVG) divide(buf, n, c->world);
        return 0;
    }
    int h;
    if (comm_iallreduce(c, buf, n, op, &h, err) != 0) return -1;
    return comm_wait(c, h, err);
}

int comm_iallreduce(Comm *c, float *buf, size_t n, CommOp op, int *handle, Err *err) {
    *handle = -1;
    if (check_data_op(op, err) != 0) return -1;
    int h = slot_new(c, err);
    if (h < 0) return -1;
    CommSlot *s = &c->slots[h];
    s->buf = buf;
    s->n = n;
    s->op = op;
    s->via = (n == 0) ? COMM_BACKEND_NONE : c->backend;
    int rc = 0;
    if (s->via == COMM_BACKEND_MPI && c->async_on) {
        s->threaded = 1;
        rc = cthread_submit(c, buf, n, op == COMM_AVG, s->impl, err);
    } else switch (s->via) {
    case COMM_BACKEND_MPI: rc = cmpi_iallreduce_sum(c, buf, n, s->impl, err); break;
#ifdef VQA_WITH_NCCL
    case COMM_BACKEND_NCCL: rc = cnccl_iallreduce(c, buf, n, op, s->impl, err); break;
#endif
    default: s->done = 1; break;
    }
    if (rc != 0) {
        s->used = 0;
        return -1;
    }
    *handle = h;
    return 0;
}

static int slot_test(Comm *c, CommSlot *s, Err *err) {
    if (s->done) return 0;
    if (s->threaded) return cthread_test(c, s->impl, &s->done, err);
    switch (s->via) {
    case COMM_BACKEND_MPI: return cmpi_test(c, s->impl, &s->done, err);
#ifdef VQA_WITH_NCCL
    case COMM_BACKEND_NCCL: return cnccl_test(c, s->impl, &s->done, err);
#endif
    default: s->done = 1; return 0;
    }
}

int comm_progress(Comm *c, int *n_done, Err *err) {
    int done = 0;
    for (int i = 0; i < c->nslots; i++) {
        CommSlot *s = &c->slots[i];
        if (!s->used) continue;
        if (slot_test(c, s, err) != 0) return -1;
        done += s->done;
    }
    if (n_done) *n_done = done;
    return 0;
}

int comm_wait(Comm *c, int handle, Err *err) {
    if (handle < 0 || handle >= c->nslots || !c->slots[handle].used)
        return err_set(err, "comm_wait: invalid request handle %d", handle);
    CommSlot *s = &c->slots[handle];
    int rc = 0;
    if (s->threaded) {
        /* always: the wait hands the job back and carries its error; the thread divided */
        rc = cthread_wait(c, s->impl, err);
        s->used = 0;
        return rc;
    }
    if (!s->done) {
        switch (s->via) {
        case COMM_BACKEND_MPI: rc = cmpi_wait(c, s->impl, err); break;
#ifdef VQA_WITH_NCCL
        case COMM_BACKEND_NCCL: rc = cnccl_wait(c, s->impl, err); break;
#endif
        default: break;
        }
    }
    if (rc == 0 && s->via == COMM_BACKEND_MPI && s->op == COMM_AVG) divide(s->buf, s->n, c->world);
    s->used = 0;
    return rc;
}

int comm_wait_all(Comm *c, Err *err) {
    int rc = 0;
    for (int i = 0; i < c->nslots; i++)
        if (c->slots[i].used && comm_wait(c, i, rc ? NULL : err) != 0) rc = -1;
    return rc;
}

int comm_bcast(Comm *c, float *buf, size_t n, int root, Err *err) {
    if (root < 0 || root >= c->world) return err_set(err, "comm_bcast: root %d outside world of %d", root, c->world);
    if (n == 0 || c->backend == COMM_BACKEND_NONE) return 0;
#ifdef VQA_WITH_NCCL
    if (c->backend == COMM_BACKEND_NCCL) return cnccl_bcast(c, buf, n, root, err);
#endif
    return cmpi_bcast_bytes(c, buf, n * sizeof *buf, root, err);
}

/* ---- host collectives ---- */

int comm_bcast_host(Comm *c, void *buf, size_t bytes, int root, Err *err) {
    if (root < 0 || root >= c->world) return err_set(err, "comm_bcast_host: root %d outside world of %d", root, c->world);
    if (!c->mpi_up || bytes == 0) return 0;
    return cmpi_bcast_bytes(c, buf, bytes, root, err);
}

int comm_allreduce_f64(Comm *c, double *v, int n, CommOp op, Err *err) {
    if (op < COMM_SUM || op > COMM_MIN) return err_set(err, "comm_allreduce_f64: unknown op %d", (int)op);
    if (!c->mpi_up || n <= 0) return 0;
    if (cmpi_allreduce_f64(c, v, n, op == COMM_AVG ? COMM_SUM : op, err) != 0) return -1;
    if (op == COMM_AVG)
        for (int i = 0; i < n; i++) v[i] /= (double)c->world;
    return 0;
}

int comm_gather_f64(Comm *c, const double *send, int n, double *recv, int root, Err *err) {
    if (root < 0 || root >= c->world) return err_set(err, "comm_gather_f64: root %d outside world of %d", root, c->world);
    if (n <= 0) return 0;
    if (!c->mpi_up) {
        memcpy(recv, send, (size_t)n * sizeof *send);
        return 0;
    }
    return cmpi_gather_f64(c, send, n, recv, root, err);
}

int comm_barrier(Comm *c, Err *err) {
    if (!c->mpi_up) return 0;
    return cmpi_barrier(c, err);
}

/* ---- failure ---- */

void comm_abort(Comm *c, const char *msg) {
    if (!c || c->world <= 1 || !c->mpi_up) return;
    fprintf(stderr, "[rank %d/%d %s] fatal: %s; aborting all ranks\n", c->rank, c->world, c->host,
            msg && *msg ? msg : "(no message)");
    fflush(stderr);
#ifdef VQA_WITH_NCCL
    if (c->nccl) cnccl_abort(c);
#endif
    cmpi_abort(1);
    _exit(1); /* MPI_Abort does not return; if it ever does, do not linger */
}

/* Process-wide by nature: a signal handler gets no context. Written once by
 * comm_install_signal_handlers before the handlers are installed, then only read. */
static char s_sig_prefix[160];
static volatile sig_atomic_t s_sig_prefix_len;

static size_t put_str(char *dst, size_t at, size_t cap, const char *s) {
    while (*s && at + 1 < cap) dst[at++] = *s++;
    return at;
}

static void on_fatal_signal(int sig, siginfo_t *info, void *uctx) {
    (void)uctx;
    /* From our parent (mpirun's orted, slurmstepd): the launcher is already tearing the
     * job down (another rank failed, scancel, Ctrl-C on mpirun); die of the signal
     * quietly instead of adding a second, misleading "aborting" story. */
    if (info && info->si_code == SI_USER && info->si_pid == getppid()) {
        signal(sig, SIG_DFL);
        raise(sig);
        _exit(128 + sig);
    }
    /* async-signal-safe only: write, alarm, signal, raise, _exit (and MPI_Abort, which
     * is not, hence the alarm as a backstop: if it stalls, SIGALRM ends the process and
     * the launcher sees a rank die, which also ends the job) */
    char buf[256];
    size_t n = 0;
    const char *name = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "a signal";
    for (sig_atomic_t i = 0; i < s_sig_prefix_len && n + 1 < sizeof buf; i++) buf[n++] = s_sig_prefix[i];
    n = put_str(buf, n, sizeof buf, "caught ");
    n = put_str(buf, n, sizeof buf, name);
    n = put_str(buf, n, sizeof buf, "; aborting all ranks\n");
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
    signal(SIGALRM, SIG_DFL);
    alarm(5);
    cmpi_abort(128 + sig);
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

int comm_install_signal_handlers(Comm *c, Err *err) {
    if (c->world <= 1 || !c->mpi_up) return 0; /* a world of one dies of signals as usual */
    int n = snprintf(s_sig_prefix, sizeof s_sig_prefix, "[rank %d/%d %s] ", c->rank, c->world, c->host);
    s_sig_prefix_len = (sig_atomic_t)(n < (int)sizeof s_sig_prefix ? n : (int)sizeof s_sig_prefix - 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND; /* a second signal kills outright */
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0) return err_errno(err, "comm: sigaction(%d)", sigs[i]);
    return 0;
}
