/* comm_selftest.c: the multi-rank checks of comm/ (run by tests/test_comm.sh under
 * `mpirun -np 2`, and without a launcher as a world of one). Built by comm/CMakeLists.txt
 * into <build>/comm/comm_selftest, linked with vqa_comm only.
 *
 *   comm_selftest basic          every collective, exact expected values (any world size),
 *                                also through the all-reduce thread
 *   comm_selftest abort          rank 1 calls comm_abort while rank 0 waits in an all-reduce
 *   comm_selftest signal         rank 1 gets SIGTERM while rank 0 waits in an all-reduce
 *   comm_selftest exit           rank 1 exits(3) without finalizing while rank 0 waits
 *   comm_selftest thread-exit    the same while rank 0's all-reduce thread is in the collective
 *   comm_selftest wait           prints "rank R pid P", then rank 1 sleeps (for the test to
 *                                kill it from outside) while rank 0 waits in an all-reduce
 *   comm_selftest gpu-map N      prints the device comm_gpu_for_rank picks with N GPUs visible
 *   comm_selftest setup B DEV    comm_setup(B = auto|nccl|mpi|none, cuda device DEV), prints
 *                                the backend (or the error, exit 1)
 * Every rank prints "comm_selftest <mode>: ok (rank r/N)" on success. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm/comm.h"
#include "testlib.h"

static Comm *g_comm; /* the test's one communicator (test code; the library has no globals) */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* value rank r contributes at index i: small integers, so every sum is exact in float */
static float contrib(int r, size_t i) { return (float)((r + 1) * (int)(i % 1000)) - 300.0f; }
static float expect_sum(int world, size_t i) {
    double s = 0;
    for (int r = 0; r < world; r++) s += contrib(r, i);
    return (float)s;
}

static void allreduce_sum_is_exact(void) {
    int W = comm_world(g_comm), R = comm_rank(g_comm);
    size_t n = 1000003; /* not a multiple of anything MPI splits by */
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = contrib(R, i);
    Err e = {{0}};
    CHECK_MSG(comm_allreduce(g_comm, x, n, COMM_SUM, &e) == 0, "%s", e.msg);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += x[i] != expect_sum(W, i);
    CHECK_MSG(bad == 0, "%zu of %zu elements differ", bad, n);
    free(x);
}

static void allreduce_avg_divides_by_world(void) {
    int W = comm_world(g_comm), R = comm_rank(g_comm);
    size_t n = 4099;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = contrib(R, i);
    Err e = {{0}};
    CHECK_MSG(comm_allreduce(g_comm, x, n, COMM_AVG, &e) == 0, "%s", e.msg);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += x[i] != expect_sum(W, i) / (float)W;
    CHECK_MSG(bad == 0, "%zu of %zu elements differ from sum / %d", bad, n, W);
    CHECK(comm_allreduce(g_comm, x, n, COMM_MAX, &e) != 0); /* floats: SUM and AVG only */
    CHECK_STR_CONTAINS(e.msg, "SUM and AVG");
    free(x);
}

/* Several requests in flight, driven by comm_progress between pieces of "computation"
 * (no comm_wait until all report completion), then waited in reverse order. */
static void nonblocking_requests_progress_and_complete(void) {
    int W = comm_world(g_comm), R = comm_rank(g_comm);
    enum { K = 6 };
    size_t n[K] = {1, 17, 4096, 65536, 1 << 20, 3 << 20};
    float *x[K];
    int h[K];
    Err e = {{0}};
    for (int k = 0; k < K; k++) {
        x[k] = malloc(n[k] * sizeof *x[k]);
        for (size_t i = 0; i < n[k]; i++) x[k][i] = contrib(R, i + (size_t)k);
        CHECK_MSG(comm_iallreduce(g_comm, x[k], n[k], k % 2 ? COMM_AVG : COMM_SUM, &h[k], &e) == 0, "%s", e.msg);
    }
    volatile double sink = 0;
    int done = 0;
    double t0 = now();
    while (done < K && now() - t0 < 20) {
        for (int j = 0; j < 20000; j++) sink += j * 1e-9; /* computation between progress calls */
        CHECK_MSG(comm_progress(g_comm, &done, &e) == 0, "%s", e.msg);
    }
    CHECK_MSG(done == K, "only %d of %d requests completed through comm_progress in 20 s", done, K);
    for (int k = K - 1; k >= 0; k--) {
        CHECK_MSG(comm_wait(g_comm, h[k], &e) == 0, "%s", e.msg);
        size_t bad = 0;
        for (size_t i = 0; i < n[k]; i++) {
            float s = expect_sum(W, i + (size_t)k);
            bad += x[k][i] != (k % 2 ? s / (float)W : s);
        }
        CHECK_MSG(bad == 0, "request %d: %zu of %zu elements wrong", k, bad, n[k]);
        free(x[k]);
    }
    CHECK(comm_wait(g_comm, h[0], &e) != 0); /* a handle is freed by its wait */
    CHECK_STR_CONTAINS(e.msg, "invalid request handle");
}

/* The same requests through the all-reduce thread (comm_set_async), interleaved with
 * blocking collectives of the main thread on the world communicator (the thread has its
 * own), then back to MPI_Iallreduce. A world of one has no thread (backend none). */
static void allreduce_thread_gives_the_same_results(void) {
    Err e = {{0}};
    int world = comm_world(g_comm);
    CHECK_MSG(comm_set_async(g_comm, 1, &e) == 0, "%s", e.msg);
    CHECK(comm_async(g_comm) == (world > 1));
    if (world > 1) {
        /* a request in flight: switching now would make the ranks route differently */
        float one = 1.0f;
        int h;
        CHECK_MSG(comm_iallreduce(g_comm, &one, 1, COMM_SUM, &h, &e) == 0, "%s", e.msg);
        double d = 2.0;
        CHECK_MSG(comm_allreduce_f64(g_comm, &d, 1, COMM_SUM, &e) == 0, "%s", e.msg); /* main thread, meanwhile */
        CHECK(d == 2.0 * world);
        Err e2 = {{0}};
        CHECK(comm_set_async(g_comm, 0, &e2) != 0);
        CHECK_STR_CONTAINS(e2.msg, "pending");
        CHECK_MSG(comm_wait(g_comm, h, &e) == 0, "%s", e.msg);
        CHECK(one == (float)world);
    }
    nonblocking_requests_progress_and_complete();
    CHECK_MSG(comm_set_async(g_comm, 0, &e) == 0, "%s", e.msg);
    CHECK(comm_async(g_comm) == 0);
    nonblocking_requests_progress_and_complete();
}

static void bcast_copies_root_buffer(void) {
    int W = comm_world(g_comm), R = comm_rank(g_comm);
    int root = W - 1;
    size_t n = 300001;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(R * 1000003 + (int)i);
    Err e = {{0}};
    CHECK_MSG(comm_bcast(g_comm, x, n, root, &e) == 0, "%s", e.msg);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += x[i] != (float)(root * 1000003 + (int)i);
    CHECK_MSG(bad == 0, "%zu of %zu elements are not root %d's", bad, n, root);
    char word[16];
    snprintf(word, sizeof word, "%s", R == 0 ? "from-zero" : "other");
    CHECK_MSG(comm_bcast_host(g_comm, word, sizeof word, 0, &e) == 0, "%s", e.msg);
    CHECK(strcmp(word, "from-zero") == 0);
    CHECK(comm_bcast(g_comm, x, 1, W, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "outside world");
    free(x);
}

static void f64_reductions_and_gather(void) {
    int W = comm_world(g_comm), R = comm_rank(g_comm);
    double v[4] = {R + 0.5, -R, 1e300 * (R == 0), 3.0};
    Err e = {{0}};
    double s[4], mx[4], mn[4], av[4];
    memcpy(s, v, sizeof v);
    memcpy(mx, v, sizeof v);
    memcpy(mn, v, sizeof v);
    memcpy(av, v, sizeof v);
    CHECK_MSG(comm_allreduce_f64(g_comm, s, 4, COMM_SUM, &e) == 0, "%s", e.msg);
    CHECK_MSG(comm_allreduce_f64(g_comm, mx, 4, COMM_MAX, &e) == 0, "%s", e.msg);
    CHECK_MSG(comm_allreduce_f64(g_comm, mn, 4, COMM_MIN, &e) == 0, "%s", e.msg);
    CHECK_MSG(comm_allreduce_f64(g_comm, av, 4, COMM_AVG, &e) == 0, "%s", e.msg);
    double tri = W * (W - 1) / 2.0;
    CHECK(s[0] == tri + 0.5 * W && s[1] == -tri && s[2] == 1e300 && s[3] == 3.0 * W);
    CHECK(mx[0] == W - 0.5 && mx[1] == 0 && mx[2] == 1e300);
    CHECK(mn[0] == 0.5 && mn[1] == -(W - 1) && mn[2] == (W > 1 ? 0 : 1e300));
    CHECK(av[0] == (tri + 0.5 * W) / W && av[3] == 3.0);
    double send[2] = {R, 10.0 * R + comm_local_rank(g_comm)};
    double *recv = calloc((size_t)2 * W, sizeof *recv);
    CHECK_MSG(comm_gather_f64(g_comm, send, 2, recv, 0, &e) == 0, "%s", e.msg);
    if (R == 0) {
        /* all ranks run on this one host: local ranks are 0..W-1, each once */
        int seen = 0;
        for (int r = 0; r < W; r++) {
            CHECK(recv[2 * r] == r);
            int lr = (int)(recv[2 * r + 1] - 10.0 * r);
            CHECK(lr >= 0 && lr < W);
            if (lr >= 0 && lr < 30) seen |= 1 << lr;
        }
        CHECK(seen == (1 << W) - 1);
    }
    free(recv);
    CHECK(comm_local_size(g_comm) == W);
    CHECK_MSG(comm_barrier(g_comm, &e) == 0, "%s", e.msg);
}

static void backend_matches_world(void) {
    int W = comm_world(g_comm);
    CHECK_STR_CONTAINS(comm_backend_name(g_comm), W > 1 ? "mpi" : "none");
    CHECK(comm_device_buffers(g_comm) == 0);
}

/* Rank 1 fails; rank 0 sits in a collective that can never complete. */
static int fail_mode(const char *mode) {
    Err e = {{0}};
    if (comm_install_signal_handlers(g_comm, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    /* thread-exit: as exit, but rank 0 waits for its all-reduce thread, which sits in the
     * collective (comm_set_async is collective: both ranks start it) */
    int threaded = !strncmp(mode, "thread-", 7);
    if (threaded) {
        if (comm_set_async(g_comm, 1, &e) != 0) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        mode += 7;
    }
    if (comm_barrier(g_comm, &e) != 0) return 1;
    float x[4] = {1, 2, 3, 4};
    if (comm_rank(g_comm) == 1) {
        usleep(200 * 1000);
        if (!strcmp(mode, "abort")) comm_abort(g_comm, "rank 1 failed on purpose (comm_selftest abort)");
        if (!strcmp(mode, "signal")) raise(SIGTERM);
        if (!strcmp(mode, "wait")) {
            printf("rank 1 pid %ld\n", (long)getpid());
            fflush(stdout);
        }
        if (!strcmp(mode, "exit")) {
            fprintf(stderr, "rank 1 exits with status 3 without finalizing (comm_selftest exit)\n");
            exit(3);
        }
        sleep(60);
        return 1;
    }
    if (threaded) {
        int h;
        if (comm_iallreduce(g_comm, x, 4, COMM_SUM, &h, &e) == 0) comm_wait(g_comm, h, &e); /* never completes */
    } else {
        comm_allreduce(g_comm, x, 4, COMM_SUM, &e); /* never completes: rank 1 never joins */
    }
    fprintf(stderr, "rank %d: the all-reduce returned, which it must not\n", comm_rank(g_comm));
    return 1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "basic";
    Err e = {{0}};
    if (comm_init(&g_comm, &argc, &argv, &e) != 0) {
        fprintf(stderr, "comm_selftest: %s\n", e.msg);
        return 1;
    }
    int rc = 0;
    if (!strcmp(mode, "basic")) {
        RUN(backend_matches_world);
        RUN(allreduce_sum_is_exact);
        RUN(allreduce_avg_divides_by_world);
        RUN(nonblocking_requests_progress_and_complete);
        RUN(allreduce_thread_gives_the_same_results);
        RUN(bcast_copies_root_buffer);
        RUN(f64_reductions_and_gather);
        rc = test_summary();
    } else if (!strcmp(mode, "abort") || !strcmp(mode, "signal") || !strcmp(mode, "exit") ||
               !strcmp(mode, "wait") || !strcmp(mode, "thread-exit")) {
        if (comm_world(g_comm) < 2) {
            fprintf(stderr, "comm_selftest %s: needs 2 ranks\n", mode);
            rc = 1;
        } else {
            rc = fail_mode(mode);
        }
    } else if (!strcmp(mode, "gpu-map") && argc > 2) {
        int dev = -1;
        if (comm_gpu_for_rank(g_comm, atoi(argv[2]), &dev, &e) != 0) {
            fprintf(stderr, "comm_selftest: %s\n", e.msg);
            rc = 1;
        } else {
            printf("rank %d local %d device %d\n", comm_rank(g_comm), comm_local_rank(g_comm), dev);
        }
    } else if (!strcmp(mode, "setup") && argc > 3) {
        static const char *const names[] = {"auto", "nccl", "mpi", "none"};
        int b = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(argv[2], names[i])) b = i;
        if (b < 0 || comm_setup(g_comm, (CommBackend)b, atoi(argv[3]), &e) != 0) {
            fprintf(stderr, "comm_selftest: %s\n", b < 0 ? "unknown backend" : e.msg);
            rc = 1;
        } else {
            printf("rank %d backend %s\n", comm_rank(g_comm), comm_backend_name(g_comm));
        }
    } else {
        fprintf(stderr, "usage: comm_selftest basic|abort|signal|exit|wait|gpu-map N|setup BACKEND DEVICE\n");
        rc = 2;
    }
    if (rc == 0) printf("comm_selftest %s: ok (rank %d/%d)\n", mode, comm_rank(g_comm), comm_world(g_comm));
    fflush(stdout);
    comm_finalize(g_comm);
    return rc;
}
