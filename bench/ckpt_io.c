/* ckpt_io.c: checkpoint I/O throughput — atomic safetensors save (fsync + rename) vs a
 * plain fwrite + fsync of the same bytes, open+validate, and fp32/bf16/fp16 reads vs memcpy.
 * Usage: bench_ckpt_io [MB=256] [dir=/tmp]. Prints one table; the machine is named. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "io/safetensors.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void cpu_name(char *buf, size_t cap) {
    snprintf(buf, cap, "?");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            snprintf(buf, cap, "%s", c ? c + 2 : line);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
}

static void row(const char *what, double mb, double ours, double base, const char *base_name) {
    printf("| %-28s | %7.0f MB | %8.1f MB/s | %-18s %8.1f MB/s | %9.2f |\n", what, mb, mb / ours, base_name,
           mb / base, base / ours);
}

int main(int argc, char **argv) {
    int mb = argc > 1 ? atoi(argv[1]) : 256;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    size_t n = (size_t)mb * 262144;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    uint16_t *h = malloc(n * 2);
    if (!x || !y || !h) return 1;
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 1000) * 0.001f;
    Err e;
    char cdir[1024], path[CKPT_PATH_MAX], plain[1100];
    snprintf(cdir, sizeof cdir, "%s/vqa_bench_ckpt_%ld", dir, (long)getpid());
    snprintf(plain, sizeof plain, "%s/plain.bin", cdir);

    /* ours: atomic checkpoint save */
    int64_t shape[2] = {(int64_t)(n / 1024), 1024};
    StWriter *w = st_writer_new();
    st_writer_add(w, "w", DT_F32, 2, shape, x);
    double t0 = now();
    if (ckpt_save(w, cdir, 1, path, sizeof path, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double t_save = now() - t0;
    st_writer_free(w);
    /* baseline: the same bytes with fwrite + fsync, no rename */
    t0 = now();
    FILE *f = fopen(plain, "wb");
    fwrite(x, 4, n, f);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    double t_plain = now() - t0;

    t0 = now();
    StFile *sf = NULL;
    if (ckpt_open(&sf, path, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double t_open = now() - t0;
    const StTensor *t = st_find(sf, "w");
    t0 = now();
    st_read_f32(t, y, n, &e); /* page-cache read through the map */
    double t_read = now() - t0;
    t0 = now();
    memcpy(x, y, n * 4);
    double t_memcpy = now() - t0;
    st_close(sf);

    /* conversions: read of a bf16 / f16 tensor vs memcpy of the same fp32 output size */
    st_f32_to_bf16_n(x, h, n);
    StTensor tb = {.name = "b", .dtype = DT_BF16, .ndim = 1, .shape = {(int64_t)n}, .numel = (int64_t)n,
                   .data = h, .nbytes = n * 2, .file = "mem"};
    t0 = now();
    st_read_f32(&tb, y, n, &e);
    double t_bf = now() - t0;
    tb.dtype = DT_F16;
    t0 = now();
    st_read_f32(&tb, y, n, &e);
    double t_f16 = now() - t0;
    t0 = now();
    st_f32_to_bf16_n(x, h, n);
    double t_tobf = now() - t0;

    struct utsname u;
    uname(&u);
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    printf("checkpoint I/O, %d MB of fp32, dir %s, machine: %s, %s (%ld cores)\n", mb, dir, u.nodename, cpu,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("| %-28s | %10s | %13s | %-29s | %9s |\n", "what", "size", "ours", "baseline (same run)", "ours/base");
    row("save: atomic ckpt (fsync)", mb, t_save, t_plain, "fwrite+fsync");
    row("load: F32 via map (faults)", mb, t_read, t_memcpy, "memcpy");
    row("load: st_read_f32 BF16", mb, t_bf, t_memcpy, "memcpy fp32");
    row("load: st_read_f32 F16", mb, t_f16, t_memcpy, "memcpy fp32");
    row("convert: f32 -> bf16", mb, t_tobf, t_memcpy, "memcpy fp32");
    printf("open + validate header: %.3f ms\n", t_open * 1e3);
    unlink(path);
    unlink(plain);
    rmdir(cdir);
    free(x);
    free(y);
    free(h);
    return 0;
}
