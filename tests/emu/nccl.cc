// nccl.cc: the emulated NCCL (the functions of the real nccl.h that comm/comm_nccl.c and the
// tests call), computed over MPI between the ranks of an mpirun.
//
// A communicator is an MPI communicator split from MPI_COMM_WORLD by the unique id (so
// ncclCommInitRank is collective over the whole world: every rank of the job must create
// the communicator, as comm_nccl.c does). A collective checks its arguments when it is
// called, as NCCL does (a bad datatype / op / root / NULL comm: ncclInvalidArgument; a
// comm that was aborted or destroyed: ncclInvalidUsage; a failed one: its error), checks
// both buffers against the device-memory registry, and queues on the stream a closure
// that runs the MPI collective when the stream runs. Every rank runs its streams' work in
// the order it was queued, so the MPI collectives meet in the same order on all ranks.
// Between ncclGroupStart and ncclGroupEnd the operations are kept and queued, in call
// order, by the outermost ncclGroupEnd (NCCL starts nothing on a stream before it).
//
// Numerics follow NCCL's choices: ncclAvg of a floating type pre-multiplies every rank's
// value by 1/nranks (rounded to the type, as NCCL's PreMulSum) and sums; of an integer
// type it sums and divides (SumPostDiv). fp16 / bf16 are reduced in fp32 and rounded once
// (src/util/half.h). fp8 is not emulated (ncclInvalidArgument).
//
// ncclCommAbort never calls MPI (it cannot block): the MPI communicator is leaked and the
// closures still queued for that communicator do nothing. ncclCommFinalize runs the
// streams that hold this communicator's queued work (NCCL's blocking finalize waits for
// it); ncclCommDestroy frees the MPI communicator (MPI_Comm_free) unless MPI is finalized.
//
// MPI must be initialized (comm/ does that before NCCL); a closure that runs on a thread
// other than MPI's main thread needs MPI_THREAD_MULTIPLE (checked: emu::fatal otherwise).
// NCCL_DEBUG=WARN or INFO prints the messages that ncclGetLastError returns, as NCCL does.
// the C API only: the build links MPI::MPI_C, not Open MPI's C++ bindings
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "emu_internal.h"
#include "util/half.h"

namespace {

// The first bytes of every id this file makes (an id from elsewhere is rejected).
const char kIdMagic[8] = {'v', 'q', 'a', 'e', 'm', 'u', 'N', '1'};

struct CommState {
    MPI_Comm mpi = MPI_COMM_NULL;
    int nranks = 0, rank = 0, device = 0;
    bool thread_multiple = false;   // MPI may be called from any thread
    std::atomic<bool> aborted{false};
    ncclResult_t async = ncclSuccess; // the error of a collective that failed when it ran
    bool finalized = false;
    std::map<cudaStream_t, int> pending; // closures queued and not yet run, per stream
};

} // namespace

// The handle (ncclComm_t = struct ncclComm *): nccl.h leaves the struct opaque.
struct ncclComm {
    std::shared_ptr<CommState> st;
};

namespace {

// Never destroyed (atexit handlers, MPI's included, may still call in after static
// destructors ran), as runtime.cc's state.
struct Globals {
    std::set<ncclComm_t> live;               // handles of this process's live communicators
    std::map<ncclComm_t, const char *> dead; // aborted / destroyed handles: how they ended
    char last_error[1024] = "";              // ncclGetLastError (a fixed buffer, as NCCL's)
    uint64_t id_counter = 0;
};
Globals &G() {
    static Globals *g = new Globals();
    return *g;
}

struct Op {
    std::shared_ptr<CommState> st;
    cudaStream_t stream;
    const char *what; // a string literal
    std::function<void()> body;
};
thread_local int t_group_depth = 0;           // NCCL's group state is per thread
thread_local std::vector<Op> t_group_ops;
thread_local ncclResult_t t_group_error = ncclSuccess;

using Guard = std::lock_guard<std::recursive_mutex>;

int debug_level() { // 0 none, 1 WARN, 2 INFO (or more)
    const char *s = getenv("NCCL_DEBUG");
    if (!s || !*s) return 0;
    if (!strcasecmp(s, "WARN")) return 1;
    if (!strcasecmp(s, "INFO") || !strcasecmp(s, "TRACE")) return 2;
    return 0;
}

void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char *fmt, ...) {
    if (debug_level() < 2) return;
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s:%d NCCL INFO (emulated) %s\n", host, (int)getpid(), msg);
}

// Records the message for ncclGetLastError and returns rc.
ncclResult_t fail(ncclResult_t rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ncclResult_t fail(ncclResult_t rc, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(G().last_error, sizeof G().last_error, "%s", msg);
    if (debug_level() >= 1) {
        char host[64] = "?";
        gethostname(host, sizeof host - 1);
        fprintf(stderr, "%s:%d NCCL WARN (emulated) %s\n", host, (int)getpid(), msg);
    }
    return rc;
}

std::string mpi_error(int rc) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
    return std::string(s, (size_t)len);
}

ncclResult_t mpi_up(const char *fn) {
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited)
        return fail(ncclInvalidUsage, "%s: MPI is not initialized (the emulated NCCL runs over MPI: "
                                      "call MPI_Init_thread first)", fn);
    if (finalized) return fail(ncclInvalidUsage, "%s: MPI is already finalized", fn);
    return ncclSuccess;
}

// The handle's state, or an error (NULL: invalid argument; aborted / destroyed: invalid
// usage; an earlier collective failed: that error). A pointer that never was a
// communicator is what NCCL would crash on: fatal.
ncclResult_t get(ncclComm_t comm, const char *fn, std::shared_ptr<CommState> *out) {
    if (!comm) return fail(ncclInvalidArgument, "%s: comm argument is NULL", fn);
    if (!G().live.count(comm)) {
        auto d = G().dead.find(comm);
        if (d != G().dead.end())
            return fail(ncclInvalidUsage, "%s: the communicator %p was %s", fn, (void *)comm, d->second);
        emu::fatal("%s: %p is not a communicator (never returned by ncclCommInitRank)", fn, (void *)comm);
    }
    const std::shared_ptr<CommState> &st = comm->st;
    if (st->aborted) return fail(ncclInvalidUsage, "%s: the communicator %p was aborted", fn, (void *)comm);
    if (st->async != ncclSuccess)
        return fail(st->async, "%s: an earlier operation of the communicator failed: %s", fn, G().last_error);
    *out = st;
    return ncclSuccess;
}

size_t type_size(ncclDataType_t t) {
    switch (t) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
    }
}

ncclResult_t check_type(ncclDataType_t t, const char *fn) {
    if ((int)t < 0 || (int)t >= (int)ncclNumTypes) return fail(ncclInvalidArgument, "%s: invalid data type %d", fn, (int)t);
    if (t == ncclFloat8e4m3 || t == ncclFloat8e5m2)
        return fail(ncclInvalidArgument, "%s: fp8 data types are not emulated", fn);
    return ncclSuccess;
}

ncclResult_t check_op(ncclRedOp_t op, const char *fn) {
    if ((int)op < 0 || (int)op >= (int)ncclNumOps)
        return fail(ncclInvalidArgument, "%s: invalid reduction operation %d (user-created operations are not emulated)", fn,
                    (int)op);
    return ncclSuccess;
}

ncclResult_t check_stream(cudaStream_t s, const char *fn) {
    if (!emu::stream_ok(s))
        return fail(ncclUnhandledCudaError, "%s: stream %p is not a live stream of this process", fn, (void *)s);
    return ncclSuccess;
}

bool overlap_not_equal(const void *a, const void *b, size_t bytes) {
    if (a == b || bytes == 0) return false;
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y + bytes && y < x + bytes;
}

// Queues op on its stream; the closure does nothing once the comm is aborted or failed.
void launch(Op op) {
    std::shared_ptr<CommState> st = op.st;
    cudaStream_t s = op.stream;
    st->pending[s]++;
    std::function<void()> body = std::move(op.body);
    const char *what = op.what;
    emu::enqueue(s, what, [st, s, body, what]() {
        Guard g(emu::lock());
        auto it = st->pending.find(s);
        if (it != st->pending.end() && --it->second == 0) st->pending.erase(it);
        if (st->aborted || st->async != ncclSuccess) return;
        if (st->mpi == MPI_COMM_NULL) emu::fatal("%s ran on a communicator that was already destroyed", what);
        if (!st->thread_multiple) {
            int main_thread = 0;
            MPI_Is_thread_main(&main_thread);
            if (!main_thread)
                emu::fatal("%s runs on a thread other than MPI's main thread (the thread that synchronized the stream), "
                           "but MPI was initialized without MPI_THREAD_MULTIPLE",
                           what);
        }
        body();
    });
}

// Queues now, or keeps for ncclGroupEnd.
void submit(Op op) {
    if (t_group_depth > 0)
        t_group_ops.push_back(std::move(op));
    else
        launch(std::move(op));
}

// A failed MPI call inside a closure: the communicator is failed (ncclCommGetAsyncError).
void async_fail(CommState *st, const char *what, const char *call, int rc) {
    st->async = ncclSystemError;
    fail(ncclSystemError, "%s (rank %d of %d): %s failed: %s", what, st->rank, st->nranks, call, mpi_error(rc).c_str());
}

// MPI counts are int: big buffers go in pieces.
const size_t kChunk = (size_t)1 << 30;

int allreduce_mpi(void *buf, size_t n, MPI_Datatype type, size_t esize, MPI_Op op, MPI_Comm comm) {
    char *p = (char *)buf;
    for (size_t at = 0; at < n; at += kChunk) {
        int k = (int)(n - at < kChunk ? n - at : kChunk);
        int rc = MPI_Allreduce(MPI_IN_PLACE, p + at * esize, k, type, op, comm);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

MPI_Op mpi_op(ncclRedOp_t op) {
    switch (op) {
    case ncclProd: return MPI_PROD;
    case ncclMax: return MPI_MAX;
    case ncclMin: return MPI_MIN;
    default: return MPI_SUM; // sum, avg
    }
}

// An integer reduction; AVG sums then divides (rounding toward zero), as NCCL does for integers.
template <typename T>
int allreduce_int(T *p, size_t n, MPI_Datatype type, MPI_Op mop, bool avg, const CommState *st) {
    int rc = allreduce_mpi(p, n, type, sizeof(T), mop, st->mpi);
    if (rc == MPI_SUCCESS && avg)
        for (size_t i = 0; i < n; i++) p[i] = (T)(p[i] / (T)st->nranks);
    return rc;
}

// The reduction, in place on recv (send already copied there), on this rank's values.
void run_allreduce(CommState *st, void *recv, size_t n, ncclDataType_t dt, ncclRedOp_t op) {
    const char *what = "ncclAllReduce";
    MPI_Op mop = mpi_op(op);
    int rc = MPI_SUCCESS;
    const bool avg = op == ncclAvg;
    switch (dt) {
    case ncclFloat32: {
        float *p = (float *)recv;
        if (avg) {
            float s = (float)(1.0 / st->nranks);
            for (size_t i = 0; i < n; i++) p[i] *= s;
        }
        rc = allreduce_mpi(p, n, MPI_FLOAT, 4, mop, st->mpi);
        break;
    }
    case ncclFloat64: {
        double *p = (double *)recv;
        if (avg) {
            double s = 1.0 / st->nranks;
            for (size_t i = 0; i < n; i++) p[i] *= s;
        }
        rc = allreduce_mpi(p, n, MPI_DOUBLE, 8, mop, st->mpi);
        break;
    }
    case ncclFloat16:
    case ncclBfloat16: {
        const bool bf = dt == ncclBfloat16;
        uint16_t *p = (uint16_t *)recv;
        std::vector<float> w(n);
        // the scale rounded to the type, the product rounded to the type (NCCL's PreMulSum)
        float s = 1.0f;
        if (avg) s = bf ? bf16_to_f32(f32_to_bf16((float)(1.0 / st->nranks))) : f16_to_f32(f32_to_f16((float)(1.0 / st->nranks)));
        for (size_t i = 0; i < n; i++) {
            float x = bf ? bf16_to_f32(p[i]) : f16_to_f32(p[i]);
            if (avg) x = bf ? bf16_to_f32(f32_to_bf16(x * s)) : f16_to_f32(f32_to_f16(x * s));
            w[i] = x;
        }
        rc = allreduce_mpi(w.data(), n, MPI_FLOAT, 4, mop, st->mpi);
        if (rc == MPI_SUCCESS)
            for (size_t i = 0; i < n; i++) p[i] = bf ? f32_to_bf16(w[i]) : f32_to_f16(w[i]);
        break;
    }
    case ncclInt8: rc = allreduce_int((int8_t *)recv, n, MPI_INT8_T, mop, avg, st); break;
    case ncclUint8: rc = allreduce_int((uint8_t *)recv, n, MPI_UINT8_T, mop, avg, st); break;
    case ncclInt32: rc = allreduce_int((int32_t *)recv, n, MPI_INT32_T, mop, avg, st); break;
    case ncclUint32: rc = allreduce_int((uint32_t *)recv, n, MPI_UINT32_T, mop, avg, st); break;
    case ncclInt64: rc = allreduce_int((int64_t *)recv, n, MPI_INT64_T, mop, avg, st); break;
    case ncclUint64: rc = allreduce_int((uint64_t *)recv, n, MPI_UINT64_T, mop, avg, st); break;
    default: emu::fatal("%s: data type %d reached the queued reduction", what, (int)dt);
    }
    if (rc != MPI_SUCCESS) async_fail(st, what, "MPI_Allreduce", rc);
}

// Runs the streams that hold queued work of st (NCCL's blocking finalize waits for it).
void flush(CommState *st) {
    std::vector<cudaStream_t> streams;
    for (auto &kv : st->pending) streams.push_back(kv.first);
    for (cudaStream_t s : streams)
        if (emu::stream_ok(s)) emu::run_stream(s);
}

void fill_random(unsigned char *p, size_t n) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    if (fd >= 0) {
        while (got < n) {
            ssize_t r = read(fd, p + got, n - got);
            if (r <= 0) {
                if (r < 0 && errno == EINTR) continue;
                break;
            }
            got += (size_t)r;
        }
        close(fd);
    }
    // no /dev/urandom: pid, time and the counter still make the id unique per job
    uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(nullptr);
    for (; got < n; got++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[got] = (unsigned char)x;
    }
}

// The MPI_Comm_split colour of an id: a non-negative int (FNV-1a of the 128 bytes).
int id_color(const ncclUniqueId &id) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof id.internal; i++) h = (h ^ (unsigned char)id.internal[i]) * 1099511628211ull;
    return (int)((h ^ (h >> 32)) & 0x7fffffff);
}

} // namespace

extern "C" {

ncclResult_t ncclGetVersion(int *version) {
    Guard g(emu::lock());
    if (!version) return fail(ncclInvalidArgument, "ncclGetVersion: version argument is NULL");
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
    Guard g(emu::lock());
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (see ncclGetLastError)";
    case ncclSystemError: return "unhandled system error (see ncclGetLastError)";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument (see ncclGetLastError)";
    case ncclInvalidUsage: return "invalid usage (see ncclGetLastError)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

// NCCL keeps one last-error text per process, whatever comm is passed (it may be NULL or
// a handle already aborted: not dereferenced).
const char *ncclGetLastError(ncclComm_t comm) {
    (void)comm;
    Guard g(emu::lock());
    return G().last_error;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
    Guard g(emu::lock());
    if (!uniqueId) return fail(ncclInvalidArgument, "ncclGetUniqueId: uniqueId argument is NULL");
    memset(uniqueId, 0, sizeof *uniqueId);
    unsigned char *p = (unsigned char *)uniqueId->internal;
    memcpy(p, kIdMagic, sizeof kIdMagic);
    uint64_t fields[3];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fields[0] = (uint64_t)getpid();
    fields[1] = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    fields[2] = ++G().id_counter;
    memcpy(p + 8, fields, sizeof fields);
    gethostname((char *)p + 32, 32);
    p[63] = 0;
    fill_random(p + 64, 64);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) {
    Guard g(emu::lock());
    const char *fn = "ncclCommInitRank";
    if (!comm) return fail(ncclInvalidArgument, "%s: comm argument is NULL", fn);
    *comm = nullptr;
    ncclResult_t r = mpi_up(fn);
    if (r != ncclSuccess) return r;
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) device = 0;

    // Every rank takes part in the split (it is collective over MPI_COMM_WORLD) even with
    // bad arguments, and the ranks of one id agree on the outcome, so none is left waiting.
    char why[512] = "";
    if (nranks < 1 || rank < 0 || rank >= nranks)
        snprintf(why, sizeof why, "invalid rank %d of %d ranks", rank, nranks);
    else if (memcmp(commId.internal, kIdMagic, sizeof kIdMagic) != 0)
        snprintf(why, sizeof why, "the unique id was not made by ncclGetUniqueId (not broadcast to this rank?)");
    MPI_Comm mc = MPI_COMM_NULL;
    int rc = MPI_Comm_split(MPI_COMM_WORLD, id_color(commId), rank, &mc);
    if (rc != MPI_SUCCESS)
        return fail(ncclSystemError, "%s: MPI_Comm_split(MPI_COMM_WORLD) failed: %s", fn, mpi_error(rc).c_str());
    MPI_Comm_set_errhandler(mc, MPI_ERRORS_RETURN);
    int size = 0, me = 0;
    MPI_Comm_size(mc, &size);
    MPI_Comm_rank(mc, &me);
    if (!why[0] && size != nranks)
        snprintf(why, sizeof why, "%d processes hold this unique id, but nranks is %d", size, nranks);
    else if (!why[0] && me != rank)
        snprintf(why, sizeof why, "rank %d is given twice or a rank below it is missing (this process is rank %d of the %d "
                                  "that hold the id)", rank, me, size);
    // the same full id on every member (two ids whose colours collide would share a comm)
    ncclUniqueId root_id = commId;
    rc = MPI_Bcast(root_id.internal, (int)sizeof root_id.internal, MPI_BYTE, 0, mc);
    if (rc == MPI_SUCCESS && !why[0] && memcmp(root_id.internal, commId.internal, sizeof root_id.internal) != 0)
        snprintf(why, sizeof why, "ranks holding different unique ids were grouped together (id hash collision)");
    int ok = why[0] ? 0 : 1, all_ok = 0;
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, mc);
    if (rc != MPI_SUCCESS) {
        MPI_Comm_free(&mc);
        return fail(ncclSystemError, "%s: MPI collective on the new communicator failed: %s", fn, mpi_error(rc).c_str());
    }
    if (!all_ok) {
        MPI_Comm_free(&mc);
        if (why[0]) return fail(ncclInvalidArgument, "%s: %s", fn, why);
        return fail(ncclInvalidArgument, "%s: another rank was given invalid arguments", fn);
    }
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);

    auto st = std::make_shared<CommState>();
    st->mpi = mc;
    st->nranks = nranks;
    st->rank = rank;
    st->device = device;
    st->thread_multiple = provided >= MPI_THREAD_MULTIPLE;
    ncclComm_t c = new ncclComm;
    c->st = st;
    G().live.insert(c);
    G().dead.erase(c);
    if (rank == 0) info("NCCL version %d.%d.%d+emulated (over MPI)", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
    info("comm %p rank %d nranks %d cudaDev %d - Init COMPLETE", (void *)c, rank, nranks, device);
    *comm = c;
    return ncclSuccess;
}

// ncclCommCount / ncclCommUserRank / ncclCommCuDevice: one int field of a live communicator
static ncclResult_t comm_int(const ncclComm_t comm, const char *fn, const char *arg, int *out,
                             int CommState::*field) {
    Guard g(emu::lock());
    std::shared_ptr<CommState> st;
    if (ncclResult_t r = get(comm, fn, &st)) return r;
    if (!out) return fail(ncclInvalidArgument, "%s: %s argument is NULL", fn, arg);
    *out = (*st).*field;
    return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
    return comm_int(comm, "ncclCommCount", "count", count, &CommState::nranks);
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
    return comm_int(comm, "ncclCommUserRank", "rank", rank, &CommState::rank);
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device) {
    return comm_int(comm, "ncclCommCuDevice", "device", device, &CommState::device);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
    Guard g(emu::lock());
    const char *fn = "ncclCommGetAsyncError";
    if (!comm) return fail(ncclInvalidArgument, "%s: comm argument is NULL", fn);
    if (!asyncError) return fail(ncclInvalidArgument, "%s: asyncError argument is NULL", fn);
    if (!G().live.count(comm)) {
        auto d = G().dead.find(comm);
        if (d != G().dead.end())
            return fail(ncclInvalidUsage, "%s: the communicator %p was %s", fn, (void *)comm, d->second);
        emu::fatal("%s: %p is not a communicator (never returned by ncclCommInitRank)", fn, (void *)comm);
    }
    const CommState &st = *comm->st;
    *asyncError = st.aborted ? ncclInvalidUsage : st.async;
    return ncclSuccess;
}

// A failed argument check inside ncclGroupStart/End also fails the group, as NCCL does.
static ncclResult_t group_fail(ncclResult_t r) {
    if (r != ncclSuccess && t_group_depth > 0) t_group_error = r;
    return r;
}

// The bytes of count elements of dt, or an error when that overflows.
static ncclResult_t buffer_bytes(const char *fn, size_t count, ncclDataType_t dt, size_t *bytes) {
    if (count > SIZE_MAX / type_size(dt)) return group_fail(fail(ncclInvalidArgument, "%s: count %zu overflows", fn, count));
    *bytes = count * type_size(dt);
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    Guard g(emu::lock());
    const char *fn = "ncclAllReduce";
    std::shared_ptr<CommState> st;
    ncclResult_t r = get(comm, fn, &st);
    if (r == ncclSuccess) r = check_type(datatype, fn);
    if (r == ncclSuccess) r = check_op(op, fn);
    if (r == ncclSuccess) r = check_stream(stream, fn);
    if (r != ncclSuccess) return group_fail(r);
    size_t bytes = 0;
    if (count == 0) return ncclSuccess;
    if ((r = buffer_bytes(fn, count, datatype, &bytes)) != ncclSuccess) return r;
    emu::check_device(sendbuff, bytes, "ncclAllReduce(sendbuff)");
    emu::check_device(recvbuff, bytes, "ncclAllReduce(recvbuff)");
    if (overlap_not_equal(sendbuff, recvbuff, bytes))
        emu::fatal("ncclAllReduce: sendbuff %p and recvbuff %p overlap without being equal (%zu bytes)", sendbuff, recvbuff,
                   bytes);
    CommState *raw = st.get();
    submit(Op{st, stream, "ncclAllReduce", [raw, sendbuff, recvbuff, count, bytes, datatype, op]() {
                  // the buffers may have been freed since the call: that is a fault on a GPU
                  emu::check_device(sendbuff, bytes, "ncclAllReduce(sendbuff), when the stream ran it");
                  emu::check_device(recvbuff, bytes, "ncclAllReduce(recvbuff), when the stream ran it");
                  if (sendbuff != recvbuff) memcpy(recvbuff, sendbuff, bytes);
                  run_allreduce(raw, recvbuff, count, datatype, op);
              }});
    return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
    Guard g(emu::lock());
    const char *fn = "ncclBroadcast";
    std::shared_ptr<CommState> st;
    ncclResult_t r = get(comm, fn, &st);
    if (r == ncclSuccess) r = check_type(datatype, fn);
    if (r == ncclSuccess && (root < 0 || root >= st->nranks))
        r = fail(ncclInvalidArgument, "%s: invalid root %d (communicator of %d ranks)", fn, root, st->nranks);
    if (r == ncclSuccess) r = check_stream(stream, fn);
    if (r != ncclSuccess) return group_fail(r);
    size_t bytes = 0;
    if (count == 0) return ncclSuccess;
    if ((r = buffer_bytes(fn, count, datatype, &bytes)) != ncclSuccess) return r;
    const bool is_root = st->rank == root;
    // sendbuff is read on the root only
    if (is_root) emu::check_device(sendbuff, bytes, "ncclBroadcast(sendbuff)");
    emu::check_device(recvbuff, bytes, "ncclBroadcast(recvbuff)");
    if (is_root && overlap_not_equal(sendbuff, recvbuff, bytes))
        emu::fatal("ncclBroadcast: sendbuff %p and recvbuff %p overlap without being equal (%zu bytes)", sendbuff, recvbuff,
                   bytes);
    CommState *raw = st.get();
    submit(Op{st, stream, "ncclBroadcast", [raw, sendbuff, recvbuff, bytes, root, is_root]() {
                  if (is_root) emu::check_device(sendbuff, bytes, "ncclBroadcast(sendbuff), when the stream ran it");
                  emu::check_device(recvbuff, bytes, "ncclBroadcast(recvbuff), when the stream ran it");
                  if (is_root && sendbuff != recvbuff) memcpy(recvbuff, sendbuff, bytes);
                  char *p = (char *)recvbuff;
                  for (size_t at = 0; at < bytes; at += kChunk) {
                      int k = (int)(bytes - at < kChunk ? bytes - at : kChunk);
                      int rc = MPI_Bcast(p + at, k, MPI_BYTE, root, raw->mpi);
                      if (rc != MPI_SUCCESS) {
                          async_fail(raw, "ncclBroadcast", "MPI_Bcast", rc);
                          return;
                      }
                  }
              }});
    return ncclSuccess;
}

// The deprecated in-place broadcast.
ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream) {
    return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

ncclResult_t ncclGroupStart() {
    Guard g(emu::lock());
    if (t_group_depth == 0) t_group_error = ncclSuccess;
    t_group_depth++;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
    Guard g(emu::lock());
    if (t_group_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd: not inside a group (no ncclGroupStart)");
    if (--t_group_depth > 0) return ncclSuccess;
    std::vector<Op> ops;
    ops.swap(t_group_ops);
    ncclResult_t r = t_group_error;
    t_group_error = ncclSuccess;
    if (r != ncclSuccess) // NCCL launches nothing of a group in which a call failed
        return fail(r, "ncclGroupEnd: an operation of the group failed (%s); none was started", G().last_error);
    for (Op &op : ops) {
        if (op.st->aborted) continue; // aborted between the call and the group's end
        launch(std::move(op));
    }
    return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
    Guard g(emu::lock());
    const char *fn = "ncclCommFinalize";
    if (!comm) return fail(ncclInvalidArgument, "%s: comm argument is NULL", fn);
    if (!G().live.count(comm)) {
        auto d = G().dead.find(comm);
        if (d != G().dead.end()) return fail(ncclInvalidUsage, "%s: the communicator %p was %s", fn, (void *)comm, d->second);
        emu::fatal("%s: %p is not a communicator (never returned by ncclCommInitRank)", fn, (void *)comm);
    }
    CommState *st = comm->st.get();
    if (st->finalized) return fail(ncclInvalidUsage, "%s: the communicator %p is already finalized", fn, (void *)comm);
    if (!st->aborted && st->async == ncclSuccess) flush(st);
    st->finalized = true;
    if (!st->pending.empty() && !st->aborted && st->async == ncclSuccess)
        return fail(ncclInvalidUsage, "%s: operations are queued on a stream that was destroyed before they ran", fn);
    return st->async;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    Guard g(emu::lock());
    const char *fn = "ncclCommDestroy";
    if (!comm) return ncclSuccess; // NCCL: destroying NULL is a no-op
    if (!G().live.count(comm)) {
        auto d = G().dead.find(comm);
        if (d != G().dead.end()) return fail(ncclInvalidUsage, "%s: the communicator %p was %s", fn, (void *)comm, d->second);
        emu::fatal("%s: %p is not a communicator (never returned by ncclCommInitRank)", fn, (void *)comm);
    }
    std::shared_ptr<CommState> st = comm->st;
    if (!st->finalized && !st->aborted && st->async == ncclSuccess) flush(st.get()); // destroy without finalize
    if (st->mpi != MPI_COMM_NULL) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Comm_free(&st->mpi);
        st->mpi = MPI_COMM_NULL;
    }
    st->aborted = true; // anything still queued (a destroyed stream's) does nothing
    G().live.erase(comm);
    G().dead[comm] = "destroyed (ncclCommDestroy)";
    delete comm;
    return ncclSuccess;
}

// Never blocks: no MPI call. If another thread holds the emulation's lock (a collective of
// this comm waiting for a peer, say), the comm is only marked aborted (its queued and
// future work does nothing) and the handle is left allocated.
ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (!comm) return ncclSuccess; // NCCL: aborting NULL is a no-op
    std::unique_lock<std::recursive_mutex> g(emu::lock(), std::try_to_lock);
    if (!g.owns_lock()) {
        comm->st->aborted = true;
        return ncclSuccess;
    }
    if (!G().live.count(comm)) {
        auto d = G().dead.find(comm);
        if (d != G().dead.end())
            return fail(ncclInvalidUsage, "ncclCommAbort: the communicator %p was %s", (void *)comm, d->second);
        emu::fatal("ncclCommAbort: %p is not a communicator (never returned by ncclCommInitRank)", (void *)comm);
    }
    comm->st->aborted = true; // the MPI communicator is leaked: freeing it could wait for peers
    info("comm %p rank %d - Abort COMPLETE", (void *)comm, comm->st->rank);
    G().live.erase(comm);
    G().dead[comm] = "aborted (ncclCommAbort)";
    delete comm;
    return ncclSuccess;
}

} // extern "C"
