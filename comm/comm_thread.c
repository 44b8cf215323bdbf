/* comm_thread.c: the all-reduce thread of the MPI transport (comm_set_async).
 *
 * Why a thread: Open MPI moves a non-blocking collective forward only inside MPI calls
 * made by the rank, so with MPI_Iallreduce the copies and sums of a bucket run inside the
 * MPI_Test calls that backward's hook makes, on the core that is computing backward: the
 * communication moves into backward instead of beside it (bench/RESULTS.md). Here one
 * thread per rank takes the buckets in the order they were started and runs a BLOCKING
 * MPI_Allreduce on each (Open MPI's tuned blocking algorithms, 1.7-5x faster than libnbc's
 * non-blocking ones from 8 MB on: bench/RESULTS.md), then divides for AVG; the computing thread only
 * queues work and later waits for it. This is the design of PyTorch's gloo backend, which
 * also runs collectives on worker threads. It pays off when the rank has a core to spare
 * (or computes on a GPU); on a node whose cores all compute, the thread only competes for
 * them (train/trainer.c decides "auto" by counting cores).
 *
 * Order and matching: the thread reduces on its own duplicate of MPI_COMM_WORLD, so its
 * collectives never interleave with the ones the main thread makes at the same time, and
 * it takes jobs first-in first-out, so every rank issues the same all-reduces in the same
 * order (the buckets are started in the same order on every rank). Needs
 * MPI_THREAD_MULTIPLE (comm_mpi.c asks for it at MPI_Init_thread).
 *
 * Memory: jobs are nodes recycled through a free list, so a training step allocates
 * nothing once the first step has made as many nodes as there are buckets. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"

typedef struct CommJob {
    struct CommJob *next;
    float *buf;
    size_t n;
    int avg;     /* divide by the world size after the sum */
    int done;    /* set by the thread under the lock */
    int rc;
    Err err;
} CommJob;

_Static_assert(sizeof(CommJob *) <= COMM_IMPL_BYTES, "a job pointer does not fit a request slot");

typedef struct CommAsync {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;  /* a job was queued, or stop */
    pthread_cond_t done;  /* a job finished */
    CommJob *head, *tail; /* queued, not yet taken by the thread */
    CommJob *spare;       /* recycled nodes */
    int stop;
    void *mpi_comm;       /* the duplicate communicator (comm_mpi.c owns its type) */
    int world;
} CommAsync;

static void *worker(void *arg) {
    CommAsync *a = arg;
    /* signals belong to the main thread (comm_install_signal_handlers) */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->head && !a->stop) pthread_cond_wait(&a->work, &a->mu);
        if (!a->head) { /* stop, and nothing left */
            pthread_mutex_unlock(&a->mu);
            return NULL;
        }
        CommJob *j = a->head;
        a->head = j->next;
        if (!a->head) a->tail = NULL;
        pthread_mutex_unlock(&a->mu);

        Err e = {{0}};
        int rc = cmpi_allreduce_sum_on(a->mpi_comm, j->buf, j->n, &e);
        if (rc == 0 && j->avg) {
            /* a true division, as comm.c does for the other MPI paths */
            float w = (float)a->world;
            for (size_t i = 0; i < j->n; i++) j->buf[i] /= w;
        }
        pthread_mutex_lock(&a->mu);
        j->rc = rc;
        j->err = e;
        j->done = 1;
        pthread_cond_broadcast(&a->done);
        pthread_mutex_unlock(&a->mu);
    }
}

int cthread_start(Comm *c, Err *err) {
    if (c->async) return 0;
    CommAsync *a = calloc(1, sizeof *a);
    if (!a) return err_set(err, "comm: out of memory (all-reduce thread)");
    a->world = c->world;
    if (cmpi_comm_dup(c, &a->mpi_comm, err) != 0) {
        free(a);
        return -1;
    }
    int prc = pthread_mutex_init(&a->mu, NULL);
    if (prc == 0) prc = pthread_cond_init(&a->work, NULL);
    if (prc == 0) prc = pthread_cond_init(&a->done, NULL);
    if (prc == 0) prc = pthread_create(&a->thread, NULL, worker, a);
    if (prc != 0) {
        cmpi_comm_free(a->mpi_comm);
        free(a);
        return err_set(err, "comm: cannot start the all-reduce thread: %s", strerror(prc));
    }
    c->async = a;
    return 0;
}

void cthread_stop(Comm *c) {
    CommAsync *a = c->async;
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    /* jobs still queued were drained by the thread before it stopped; recycled nodes remain */
    while (a->spare) {
        CommJob *j = a->spare;
        a->spare = j->next;
        free(j);
    }
    cmpi_comm_free(a->mpi_comm);
    pthread_cond_destroy(&a->done);
    pthread_cond_destroy(&a->work);
    pthread_mutex_destroy(&a->mu);
    free(a);
    c->async = NULL;
}

int cthread_submit(Comm *c, float *buf, size_t n, int avg, void *req, Err *err) {
    CommAsync *a = c->async;
    pthread_mutex_lock(&a->mu);
    CommJob *j = a->spare;
    if (j) a->spare = j->next;
    pthread_mutex_unlock(&a->mu);
    if (!j && !(j = malloc(sizeof *j))) return err_set(err, "comm: out of memory (all-reduce job)");
    memset(j, 0, sizeof *j);
    j->buf = buf;
    j->n = n;
    j->avg = avg;
    pthread_mutex_lock(&a->mu);
    if (a->tail) a->tail->next = j;
    else a->head = j;
    a->tail = j;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->mu);
    memcpy(req, &j, sizeof j);
    return 0;
}

int cthread_test(Comm *c, void *req, int *done, Err *err) {
    (void)err;
    CommAsync *a = c->async;
    CommJob *j;
    memcpy(&j, req, sizeof j);
    pthread_mutex_lock(&a->mu);
    *done = j->done;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int cthread_wait(Comm *c, void *req, Err *err) {
    CommAsync *a = c->async;
    CommJob *j;
    memcpy(&j, req, sizeof j);
    pthread_mutex_lock(&a->mu);
    while (!j->done) pthread_cond_wait(&a->done, &a->mu);
    int rc = j->rc;
    if (rc != 0 && err) *err = j->err;
    j->next = a->spare;
    a->spare = j;
    pthread_mutex_unlock(&a->mu);
    return rc;
}
