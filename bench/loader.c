/* bench/loader.c: images/s of the image input paths, per core (one thread):
 *   jpeg decode + resize:  stb_image decode of a COCO-like 640x480 JPEG, PIL-exact
 *                          antialiased resize (shorter side 224 + centre crop), normalize
 *   prepared (raw):        the same image already 224x224 uint8 in a memory-mapped
 *                          vqa_prep file: copy + normalize
 * and the same two through the threaded loader (1 worker, batch 16), which adds the
 * batch bookkeeping. The JPEG path is the baseline measured in the same run.
 *   bench_loader [--images N] [--seconds S] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <stb_image_write.h>

#include "data/image.h"
#include "data/loader.h"
#include "data/prep.h"
#include "util/log.h"

#define DIR "/tmp/vqa_bench_loader"

static void cpu_name(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(buf, cap, "%s", c + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    fclose(f);
}

/* A photo-like 640x480 image: smooth gradients, a few blobs, sensor-like noise, so the
 * JPEG has COCO-like size (~60-120 KB at quality 90). */
static void make_jpeg(const char *path, int seed) {
    const int W = 640, H = 480;
    uint8_t *px = malloc((size_t)W * H * 3);
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 1);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            int n = (int)(s % 25) - 12;
            double cx = x - 320.0 - 40 * seed % 200, cy = y - 240.0;
            int blob = cx * cx + cy * cy < 9000.0;
            int v[3] = {x * 255 / W + n, y * 255 / H + n, blob ? 220 + n : (x ^ y) % 64 + 60 + n};
            for (int c = 0; c < 3; c++) px[((size_t)y * W + x) * 3 + c] = (uint8_t)(v[c] < 0 ? 0 : v[c] > 255 ? 255 : v[c]);
        }
    stbi_write_jpg(path, W, H, 3, px, 90);
    free(px);
}

static double bench_jpeg(char (*paths)[256], int n, double min_s, int S) {
    float *out = malloc(sizeof(float) * 3 * S * S);
    uint8_t *resized = malloc((size_t)S * S * 3);
    void *scratch = malloc(img_pipeline_scratch_size(640, 480, S));
    double t0 = time_now(), t;
    long done = 0;
    do {
        for (int i = 0; i < n; i++) {
            Image im;
            Err e;
            if (img_decode_file(&im, paths[i], &e) != 0) { fprintf(stderr, "%s\n", e.msg); exit(1); }
            img_pipeline(im.px, im.w, im.h, S, IMG_RESIZE_SHORTER_CROP, NULL, scratch, resized, out);
            img_free(&im);
            done++;
        }
        t = time_now() - t0;
    } while (t < min_s);
    free(out); free(resized); free(scratch);
    return done / t;
}

static double bench_prep(const PrepFile *p, int n, double min_s, int S) {
    float *out = malloc(sizeof(float) * 3 * S * S);
    uint8_t *px = malloc((size_t)S * S * 3);
    double t0 = time_now(), t;
    long done = 0;
    do {
        for (int i = 0; i < n; i++) {
            Err e;
            prep_image(p, i, px, &e);
            img_normalize(px, S, S, NULL, out);
            done++;
        }
        t = time_now() - t0;
    } while (t < min_s);
    free(out); free(px);
    return done / t;
}

static double bench_loader(const VqaDataset *ds, const char *prepared, double min_s, int S) {
    LoaderOpts o;
    loader_opts_default(&o);
    o.batch_size = 16;
    o.image_size = S;
    o.max_len = 16;
    o.workers = 1;
    o.prefetch = 2;
    o.prepared = prepared;
    Loader *l;
    Err e;
    if (loader_open(&l, &o, ds, NULL, NULL, &e) != 0) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    double t0 = time_now(), t;
    long done = 0;
    int64_t epoch = 0;
    do {
        loader_start_epoch(l, epoch++, 0, &e);
        Batch *b;
        while (loader_next(l, &b, &e) == 1) {
            done += b->size;
            loader_release(l, b);
        }
        t = time_now() - t0;
    } while (t < min_s);
    loader_close(l);
    return done / t;
}

int main(int argc, char **argv) {
    int n = 48;
    double secs = 2.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--images")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
    }
    if (n < 16) n = 16;
    const int S = 224;
    mkdir(DIR, 0755);
    char (*paths)[256] = calloc((size_t)n, sizeof *paths);
    VqaSample *smp = calloc((size_t)n, sizeof *smp);
    long jpeg_bytes = 0;
    for (int i = 0; i < n; i++) {
        snprintf(paths[i], sizeof paths[i], DIR "/COCO_bench_%012d.jpg", i);
        make_jpeg(paths[i], i);
        struct stat st;
        if (stat(paths[i], &st) == 0) jpeg_bytes += st.st_size;
        smp[i].question_id = i;
        smp[i].image_id = i;
        smp[i].question = "what is this?";
        smp[i].image_path = paths[i];
        smp[i].question_type = "";
    }
    VqaDataset ds;
    memset(&ds, 0, sizeof ds);
    ds.samples = smp;
    ds.n = n;
    PrepOpts po = {S, 16, IMG_RESIZE_SHORTER_CROP, 0, 1};
    PrepStats ps;
    Err e;
    if (prep_write(DIR "/bench.vqaprep", &ds, NULL, NULL, &po, NULL, NULL, &ps, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    PrepFile *p;
    if (prep_open(&p, DIR "/bench.vqaprep", &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double jpeg = bench_jpeg(paths, n, secs, S);
    double prep = bench_prep(p, n, secs, S);
    double ljpeg = bench_loader(&ds, NULL, secs, S);
    double lprep = bench_loader(&ds, DIR "/bench.vqaprep", secs, S);
    prep_close(p);

    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    struct utsname u;
    uname(&u);
    printf("bench_loader: %s (%s), 1 thread, %d synthetic 640x480 JPEGs (q90, mean %.0f KB) -> %dx%d\n",
           cpu, u.machine, n, jpeg_bytes / 1024.0 / n, S, S);
    printf("| path | what | images/s per core | vs jpeg |\n|---|---|---:|---:|\n");
    printf("| jpeg decode + resize (baseline) | stb decode, PIL-exact resize, normalize | %.1f | 1.0x |\n", jpeg);
    printf("| prepared raw | mmap copy + normalize | %.1f | %.1fx |\n", prep, prep / jpeg);
    printf("| loader, jpeg (1 worker, B=16) | + batch bookkeeping | %.1f | %.1fx |\n", ljpeg, ljpeg / jpeg);
    printf("| loader, prepared raw (1 worker, B=16) | + batch bookkeeping | %.1f | %.1fx |\n", lprep, lprep / jpeg);
    printf("prepared file: %.1f MiB for %d images (%.0f KB each)\n", ps.file_bytes / 1048576.0, n,
           ps.file_bytes / 1024.0 / n);
    free(paths);
    free(smp);
    return 0;
}
