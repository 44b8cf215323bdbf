/* test_safetensors.c: the safetensors reader/writer and the fp16/bf16 conversions.
 * Reference files under tests/ref/ were written by the real Python `safetensors` package
 * (tools/gen_safetensors_refs.py); malformed files are built here byte by byte. */
// TEST_LIBS: vqa_io
// TEST_LABELS: unit
#include "testlib.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <unistd.h>

#include "io/safetensors.h"

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

/* File = u64 LE header length (= strlen(json) unless len_override), json, data_len zero bytes. */
static const char *make_raw(const char *name, const char *json, uint64_t len_override, size_t data_len) {
    size_t jl = strlen(json);
    uint64_t n = len_override ? len_override : jl;
    size_t total = 8 + jl + data_len;
    unsigned char *b = calloc(1, total);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, json, jl);
    const char *p = tmp_path(name);
    write_bytes(p, b, total);
    free(b);
    return p;
}

/* Opens path expecting failure, and checks the message contains every given fragment. */
static void expect_open_error(const char *path, ...) {
    StFile *f = NULL;
    Err e = {{0}};
    int rc = st_open(&f, path, &e);
    CHECK_MSG(rc == -1, "%s opened but should not have", path);
    CHECK(f == NULL);
    st_close(f);
    CHECK_STR_CONTAINS(e.msg, path); /* every message names the file */
    va_list ap;
    va_start(ap, path);
    for (const char *frag; (frag = va_arg(ap, const char *));) CHECK_STR_CONTAINS(e.msg, frag);
    va_end(ap);
}

/* ---------------------------------------------------------------- conversions */

static void f16_to_f32_hand_values_incl_subnormal_inf_nan(void) {
    CHECK(st_f16_to_f32(0x0001) == ldexpf(1.0f, -24));           /* smallest subnormal */
    CHECK(st_f16_to_f32(0x03ff) == 1023.0f * ldexpf(1.0f, -24)); /* largest subnormal */
    CHECK(st_f16_to_f32(0x0400) == ldexpf(1.0f, -14));           /* smallest normal */
    CHECK(st_f16_to_f32(0x3c00) == 1.0f);
    CHECK(st_f16_to_f32(0xc100) == -2.5f);
    CHECK(st_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(st_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(st_f16_to_f32(0x7c00)) && st_f16_to_f32(0x7c00) > 0);
    CHECK(isinf(st_f16_to_f32(0xfc00)) && st_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(st_f16_to_f32(0x7e00)));
    CHECK(isnan(st_f16_to_f32(0x7c01)));
    float nz = st_f16_to_f32(0x8000);
    CHECK(nz == 0.0f && signbit(nz));
}

static void f32_to_f16_rounds_to_nearest_even(void) {
    CHECK(st_f32_to_f16(1.0f) == 0x3c00);
    CHECK(st_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00);     /* tie -> even (down) */
    CHECK(st_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02); /* tie -> even (up) */
    CHECK(st_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(st_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(st_f32_to_f16(65520.0f) == 0x7c00); /* overflow -> inf */
    CHECK(st_f32_to_f16(-1e10f) == 0xfc00);
    CHECK(st_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);
    CHECK(st_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000);        /* tie -> even (0) */
    CHECK(st_f32_to_f16(1.5f * ldexpf(1.0f, -25)) == 0x0001);
    CHECK(st_f32_to_f16(3.0f * ldexpf(1.0f, -25)) == 0x0002); /* 1.5 ulp tie -> even 2 */
    CHECK(st_f32_to_f16(ldexpf(1023.5f, -24)) == 0x0400);     /* subnormal rounds up to normal */
    CHECK(st_f32_to_f16(-0.0f) == 0x8000);
    uint16_t n = st_f32_to_f16(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
}

static void f16_every_value_round_trips_through_f32(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_f16_to_f32((uint16_t)h);
        uint16_t back = st_f32_to_f16(f);
        int is_nan = ((h & 0x7c00) == 0x7c00) && (h & 0x3ff);
        if (is_nan ? !isnan(f) : back != h) bad++;
    }
    CHECK_MSG(bad == 0, "%d half values did not round-trip", bad);
}

static void bf16_conversions_round_to_nearest_even(void) {
    CHECK(st_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(st_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80);     /* tie -> even */
    CHECK(st_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82); /* tie -> even (up) */
    CHECK(st_f32_to_bf16(-2.0f) == 0xc000);
    CHECK(st_bf16_to_f32(0x4049) == 3.140625f);
    uint16_t n = st_f32_to_bf16(NAN);
    CHECK(isnan(st_bf16_to_f32(n)));
    CHECK(isinf(st_bf16_to_f32(st_f32_to_bf16(INFINITY))));
}

/* ---------------------------------------------------------------- round trip */

static void writer_round_trip_all_dtypes_and_metadata(void) {
    float f32[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f};
    uint16_t bf[6], h[6];
    st_f32_to_bf16_n(f32, bf, 6);
    st_f32_to_f16_n(f32, h, 6);
    int64_t i64[3] = {-1, INT64_MAX, 5};
    unsigned char u8[5] = {0, 1, 2, 254, 255};
    float scalar = 9.0f;
    int64_t s23[2] = {2, 3}, s6[1] = {6}, s3[1] = {3}, s5[1] = {5}, s03[2] = {0, 3};

    StWriter *w = st_writer_new();
    CHECK(st_writer_add(w, "z.weight", DT_F32, 2, s23, f32) == 0);
    CHECK(st_writer_add(w, "a.bf16", DT_BF16, 1, s6, bf) == 0);
    CHECK(st_writer_add(w, "m.f16", DT_F16, 2, s23, h) == 0);
    CHECK(st_writer_add(w, "ids", DT_I64, 1, s3, i64) == 0);
    CHECK(st_writer_add(w, "bytes", DT_U8, 1, s5, u8) == 0); /* 5 bytes: forces padding logic */
    CHECK(st_writer_add(w, "empty", DT_F32, 2, s03, NULL) == 0);
    CHECK(st_writer_add(w, "scalar", DT_F32, 0, NULL, &scalar) == 0);
    CHECK(st_writer_set_meta(w, "step", "1") == 0);
    CHECK(st_writer_set_meta(w, "step", "77") == 0); /* replaces */
    CHECK(st_writer_set_meta(w, "note", "quote \" and ü") == 0);
    Err e = {{0}};
    const char *p = tmp_path("rt.safetensors");
    CHECK_MSG(st_writer_save(w, p, &e) == 0, "%s", e.msg);
    st_writer_free(w);

    /* header length is a multiple of 8 and the file is exactly 8 + N + data */
    FILE *fp = fopen(p, "rb");
    unsigned char lb[8];
    CHECK(fread(lb, 1, 8, fp) == 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | lb[i];
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    CHECK(n % 8 == 0);
    CHECK((uint64_t)size == 8 + n + 24 + 12 + 12 + 24 + 5 + 0 + 4);

    StFile *f = NULL;
    CHECK_MSG(st_open(&f, p, &e) == 0, "%s", e.msg);
    if (!f) return;
    CHECK(st_count(f) == 7);
    CHECK(strcmp(st_at(f, 0)->name, "a.bf16") == 0); /* sorted by name */
    CHECK(strcmp(st_at(f, 6)->name, "z.weight") == 0);
    CHECK(strcmp(st_metadata(f, "step"), "77") == 0);
    CHECK(strcmp(st_metadata(f, "note"), "quote \" and ü") == 0);
    CHECK(st_metadata(f, "absent") == NULL);
    CHECK(st_metadata_count(f) == 2);

    const StTensor *t = st_find(f, "z.weight");
    CHECK(t && t->dtype == DT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    CHECK(t && t->nbytes == 24 && memcmp(t->data, f32, 24) == 0);
    float got[6];
    CHECK(st_read_f32(t, got, 6, &e) == 0 && memcmp(got, f32, 24) == 0);
    t = st_find(f, "a.bf16");
    CHECK(t && t->dtype == DT_BF16 && memcmp(t->data, bf, 12) == 0);
    CHECK(st_read_f32(t, got, 6, &e) == 0);
    for (int i = 0; i < 6; i++) CHECK(fabsf(got[i] - f32[i]) <= fabsf(f32[i]) * (1.0f / 256));
    t = st_find(f, "m.f16");
    CHECK(t && t->dtype == DT_F16 && memcmp(t->data, h, 12) == 0);
    t = st_find(f, "ids");
    CHECK(t && t->dtype == DT_I64 && memcmp(t->data, i64, 24) == 0);
    CHECK(st_read_f32(t, got, 3, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "'ids' is I64");
    t = st_find(f, "bytes");
    CHECK(t && t->dtype == DT_U8 && memcmp(t->data, u8, 5) == 0);
    t = st_find(f, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[0] == 0 && t->shape[1] == 3);
    t = st_find(f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && memcmp(t->data, &scalar, 4) == 0);
    /* every tensor starts at a multiple of its element size (layout sorted by size) */
    for (int i = 0; i < st_count(f); i++) {
        t = st_at(f, i);
        CHECK_MSG(((uintptr_t)t->data % st_dtype_size(t->dtype)) == 0, "%s misaligned", t->name);
    }
    CHECK(st_read_f32(st_find(f, "z.weight"), got, 5, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "has 6 elements, expected 5");
    st_close(f);

    /* no temp file left behind */
    DIR *d = opendir(g_dir);
    struct dirent *de;
    int tmps = 0;
    while ((de = readdir(d))) tmps += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    CHECK(tmps == 0);
}

static void writer_rejects_duplicates_and_bad_arguments(void) {
    float x[2] = {1, 2};
    int64_t s2[1] = {2}, sneg[1] = {-2};
    Err e = {{0}};
    StWriter *w = st_writer_new();
    CHECK(st_writer_add(w, "a", DT_F32, 1, s2, x) == 0);
    CHECK(st_writer_add(w, "a", DT_F32, 1, s2, x) == 0); /* caught at save */
    CHECK(st_writer_save(w, tmp_path("dup.safetensors"), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'a' added twice");
    st_writer_free(w);
    CHECK(access(tmp_path("dup.safetensors"), F_OK) != 0);

    w = st_writer_new();
    CHECK(st_writer_add(w, "neg", DT_F32, 1, sneg, x) == -1);
    CHECK(st_writer_add(w, "nodata", DT_F32, 1, s2, NULL) == -1);
    CHECK(st_writer_save(w, tmp_path("bad.safetensors"), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'neg': negative dimension"); /* first problem reported */
    st_writer_free(w);
}

/* ---------------------------------------------------------------- Python reference */

static void python_written_file_reads_back_exactly(void) {
    char path[1024], epath[1024];
    test_ref_path(path, sizeof path, "st_ref_mixed.safetensors");
    test_ref_path(epath, sizeof epath, "st_ref_expected.txt");
    StFile *f = NULL;
    Err e = {{0}};
    CHECK_MSG(st_open(&f, path, &e) == 0, "%s", e.msg);
    if (!f) return;
    CHECK(st_count(f) == 9);
    CHECK(strcmp(st_metadata(f, "step"), "123") == 0);
    CHECK(strcmp(st_metadata(f, "format"), "np") == 0);
    CHECK(strcmp(st_metadata(f, "answers"), "[\"yes\", \"no\", \"2\"]") == 0);

    FILE *ef = fopen(epath, "r");
    CHECK(ef != NULL);
    if (!ef) { st_close(f); return; }
    char line[8192];
    int lines = 0;
    while (fgets(line, sizeof line, ef)) {
        if (line[0] == '#') continue;
        lines++;
        char *save = NULL;
        char *name = strtok_r(line, " \n", &save);
        char *dt = strtok_r(NULL, " \n", &save);
        int ndim = atoi(strtok_r(NULL, " \n", &save));
        const StTensor *t = st_find(f, name);
        CHECK_MSG(t != NULL, "tensor %s missing", name);
        if (!t) continue;
        CHECK_MSG(strcmp(st_dtype_str(t->dtype), dt) == 0, "%s: dtype %s vs %s", name, st_dtype_str(t->dtype), dt);
        CHECK_MSG(t->ndim == ndim, "%s: ndim %d vs %d", name, t->ndim, ndim);
        for (int i = 0; i < ndim; i++) CHECK(t->shape[i] == atoll(strtok_r(NULL, " \n", &save)));
        long n = atol(strtok_r(NULL, " \n", &save));
        CHECK(t->numel == n);
        float *fv = calloc((size_t)n + 1, sizeof *fv);
        int is_float = t->dtype == DT_F32 || t->dtype == DT_F16 || t->dtype == DT_BF16;
        if (is_float) CHECK_MSG(st_read_f32(t, fv, (size_t)n, &e) == 0, "%s", e.msg);
        const unsigned char *raw = t->data;
        for (long i = 0; i < n; i++) {
            char *tok = strtok_r(NULL, " \n", &save);
            if (is_float) {
                uint32_t want = (uint32_t)strtoul(tok, NULL, 16), got;
                memcpy(&got, &fv[i], 4);
                CHECK_MSG(got == want, "%s[%ld]: 0x%08x, expected %s", name, i, got, tok);
            } else {
                long long want = strtoll(tok, NULL, 10), got = 0;
                if (t->dtype == DT_I64) { int64_t v; memcpy(&v, raw + 8 * i, 8); got = v; }
                if (t->dtype == DT_I32) { int32_t v; memcpy(&v, raw + 4 * i, 4); got = v; }
                if (t->dtype == DT_U8 || t->dtype == DT_BOOL) got = raw[i];
                CHECK_MSG(got == want, "%s[%ld]: %lld, expected %lld", name, i, got, want);
            }
        }
        free(fv);
    }
    fclose(ef);
    CHECK(lines == 9);
    st_close(f);
}

/* ---------------------------------------------------------------- malformed files */

#define T1 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void a_valid_raw_file_opens(void) { /* the builder itself is right */
    StFile *f = NULL;
    Err e = {{0}};
    CHECK_MSG(st_open(&f, make_raw("ok.st", T1 "}", 0, 8), &e) == 0, "%s", e.msg);
    CHECK(f && st_count(f) == 1 && st_find(f, "a")->nbytes == 8);
    st_close(f);
}

static void truncated_file_is_rejected(void) {
    write_bytes(tmp_path("tiny.st"), "\x10\x00\x00", 3);
    expect_open_error(tmp_path("tiny.st"), "3 bytes", "too short", NULL);
    write_bytes(tmp_path("zero.st"), "", 0);
    expect_open_error(tmp_path("zero.st"), "0 bytes", NULL);
    /* data cut short: the last tensor now ends past the data section */
    expect_open_error(make_raw("cutdata.st", T1 "}", 0, 5), "tensor 'a'", "past the end", "5 bytes", NULL);
}

static void truncated_header_is_rejected(void) {
    /* the length field says 60 but the file ends 20 bytes into the header */
    const char *p = make_raw("cuthdr.st", "{\"a\":{\"dtype\":\"F32\",", 60, 0);
    expect_open_error(p, "header length 60", "only 20 bytes follow", "truncated header", NULL);
}

static void header_length_larger_than_file_is_rejected(void) {
    expect_open_error(make_raw("biglen.st", T1 "}", 5000, 8), "header length 5000", "only", NULL);
}

static void huge_header_length_is_refused_before_allocating(void) {
    /* 2^62 and 2^64-1 bytes: a reader that mallocs N first would fail or crash here */
    expect_open_error(make_raw("huge.st", T1 "}", UINT64_C(1) << 62, 8), "4611686018427387904", "limit", NULL);
    expect_open_error(make_raw("huge2.st", T1 "}", UINT64_MAX, 8), "limit", NULL);
    expect_open_error(make_raw("huge3.st", T1 "}", ST_MAX_HEADER_BYTES + 1u, 8), "limit", NULL);
}

static void invalid_json_is_rejected_with_position(void) {
    expect_open_error(make_raw("badjson.st", "{\"a\":{\"dtype\":\"F32\",,}}", 0, 0), "header JSON invalid",
                      "column", NULL);
    expect_open_error(make_raw("notobj.st", "[1, 2]  ", 0, 0), "must be an object", NULL);
}

static void unknown_dtype_is_rejected(void) {
    expect_open_error(make_raw("dtype.st", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 0, 2),
                      "tensor 'w'", "unsupported dtype 'F8_E4M3'", "F32, F16, BF16, I64, I32, U8, BOOL", NULL);
}

static void wrong_dtype_size_is_rejected(void) {
    /* F32 [2, 3] needs 24 bytes, the offsets give 12 (as if it were BF16) */
    expect_open_error(make_raw("size.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 0, 12),
                      "tensor 'w'", "F32 [2, 3]", "span 12 bytes, expected 24", NULL);
}

static void overlapping_offsets_are_rejected(void) {
    expect_open_error(make_raw("overlap.st", T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 12),
                      "tensor 'b'", "overlap tensor 'a'", NULL);
}

static void gap_between_tensors_is_rejected(void) {
    expect_open_error(make_raw("gap.st", T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 0, 20),
                      "gap of 4 bytes", "'a'", "'b'", NULL);
    expect_open_error(make_raw("gap0.st", "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 0, 4),
                      "gap of 2 bytes at the start", "'b'", NULL);
}

static void trailing_bytes_after_last_tensor_are_rejected(void) {
    expect_open_error(make_raw("trail.st", T1 "}", 0, 12), "4 bytes after the last tensor 'a'", NULL);
}

static void offsets_past_the_end_are_rejected(void) {
    expect_open_error(make_raw("past.st", "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[100,108]}}", 0, 8),
                      "tensor 'a'", "[100, 108]", "past the end", NULL);
}

static void negative_or_fractional_shape_is_rejected(void) {
    expect_open_error(make_raw("neg.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", 0, 8),
                      "tensor 'a'", "shape[0] = -1", "non-negative integer", NULL);
    expect_open_error(make_raw("frac.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 0, 8),
                      "shape[0] = 2.5", NULL);
    expect_open_error(make_raw("strshape.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 0, 8),
                      "\"shape\" must be a list", NULL);
}

static void missing_data_offsets_is_rejected(void) {
    expect_open_error(make_raw("nooff.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, 8),
                      "tensor 'a'", "missing \"data_offsets\"", NULL);
    expect_open_error(make_raw("badoff.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 0, 8),
                      "data_offsets = [0]", NULL);
}

static void duplicate_tensor_names_are_rejected(void) {
    expect_open_error(make_raw("dupname.st", T1 "," "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 0, 16),
                      "duplicate", NULL);
}

static void metadata_values_must_be_strings(void) {
    expect_open_error(make_raw("meta.st", "{\"__metadata__\":{\"step\":5}}", 0, 0), "__metadata__['step']", "string", NULL);
}

static void missing_file_and_missing_tensor_name_the_culprit(void) {
    expect_open_error(tmp_path("does_not_exist.safetensors"), "cannot open", "No such file", NULL);
    StFile *f = NULL;
    Err e = {{0}};
    CHECK(st_open(&f, make_raw("ok2.st", T1 "}", 0, 8), &e) == 0);
    if (!f) return;
    const StTensor *t = (const StTensor *)1;
    CHECK(st_find(f, "nope") == NULL);
    CHECK(st_get(f, "nope", &t, &e) == -1 && t == NULL);
    CHECK_STR_CONTAINS(e.msg, "tensor 'nope' not found");
    CHECK_STR_CONTAINS(e.msg, "ok2.st");
    st_close(f);
}

static void rm_tmpdir(void) {
    DIR *d = opendir(g_dir);
    if (!d) return;
    struct dirent *de;
    char p[1024];
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", g_dir, de->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(g_dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/vqa_test_st_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    RUN(f16_to_f32_hand_values_incl_subnormal_inf_nan);
    RUN(f32_to_f16_rounds_to_nearest_even);
    RUN(f16_every_value_round_trips_through_f32);
    RUN(bf16_conversions_round_to_nearest_even);
    RUN(writer_round_trip_all_dtypes_and_metadata);
    RUN(writer_rejects_duplicates_and_bad_arguments);
    RUN(python_written_file_reads_back_exactly);
    RUN(a_valid_raw_file_opens);
    RUN(truncated_file_is_rejected);
    RUN(truncated_header_is_rejected);
    RUN(header_length_larger_than_file_is_rejected);
    RUN(huge_header_length_is_refused_before_allocating);
    RUN(invalid_json_is_rejected_with_position);
    RUN(unknown_dtype_is_rejected);
    RUN(wrong_dtype_size_is_rejected);
    RUN(overlapping_offsets_are_rejected);
    RUN(gap_between_tensors_is_rejected);
    RUN(trailing_bytes_after_last_tensor_are_rejected);
    RUN(offsets_past_the_end_are_rejected);
    RUN(negative_or_fractional_shape_is_rejected);
    RUN(missing_data_offsets_is_rejected);
    RUN(duplicate_tensor_names_are_rejected);
    RUN(metadata_values_must_be_strings);
    RUN(missing_file_and_missing_tensor_name_the_culprit);
    rm_tmpdir();
    return test_summary();
}
