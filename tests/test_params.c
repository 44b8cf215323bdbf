/* test_params.c: the parameter store: flat layout, freezing (no gradient slot), counts and
 * optimizer facts, seeded PyTorch-default initialization, safetensors load (prefix mapping,
 * F16/BF16/I64 conversion, unused summary, missing / mis-shaped errors) and save. */
// TEST_LIBS: vqa_model
// TEST_LABELS: unit
#include <unistd.h>

#include "io/safetensors.h"
#include "model/params.h"
#include "testlib.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[2][512];
    static int k = 0;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* a tiny model: conv + BN (with buffers) + linear head, two groups */
static void build_tiny(ParamStore *ps) {
    Err e;
    ps_init(ps);
    CHECK(ps_add(ps, "enc.conv.weight", 4, (int64_t[]){4, 3, 3, 3}, PK_WEIGHT, PG_IMAGE, pinit_kaiming_fanout(), &e) == 0);
    CHECK(ps_add(ps, "enc.bn.weight", 1, (int64_t[]){4}, PK_NORM, PG_IMAGE, pinit_ones(), &e) == 1);
    CHECK(ps_add(ps, "enc.bn.bias", 1, (int64_t[]){4}, PK_NORM, PG_IMAGE, pinit_zeros(), &e) == 2);
    CHECK(ps_add(ps, "enc.bn.running_mean", 1, (int64_t[]){4}, PK_BUFFER, PG_IMAGE, pinit_zeros(), &e) == 3);
    CHECK(ps_add(ps, "enc.bn.running_var", 1, (int64_t[]){4}, PK_BUFFER, PG_IMAGE, pinit_ones(), &e) == 4);
    int nbt = ps_add(ps, "enc.bn.num_batches_tracked", 0, NULL, PK_BUFFER, PG_IMAGE, pinit_zeros(), &e);
    CHECK(nbt == 5);
    ps_set_file_dtype(ps, nbt, DT_I64);
    CHECK(ps_add(ps, "head.weight", 2, (int64_t[]){5, 4}, PK_WEIGHT, PG_CLASSIFIER, pinit_uniform(0.5f), &e) == 6);
    CHECK(ps_add(ps, "head.bias", 1, (int64_t[]){5}, PK_BIAS, PG_CLASSIFIER, pinit_uniform(0.5f), &e) == 7);
}

static void layout_is_flat_and_frozen_params_have_no_grad(void) {
    ParamStore ps;
    Err e;
    build_tiny(&ps);
    CHECK(ps_set_trainable_prefix(&ps, "enc.", 0) == 3); /* buffers are not counted */
    CHECK(ps_finalize(&ps, backend_cpu(), &e) == 0);
    CHECK(ps.n_values == 108 + 4 + 4 + 20 + 5);
    CHECK(ps.n_grads == 25);      /* only head.* */
    CHECK(ps.n_buffers == 4 + 4 + 1);
    CHECK(ps_grad(&ps, 0) == NULL && ps_grad(&ps, 1) == NULL && ps_grad(&ps, 3) == NULL);
    CHECK(ps_grad(&ps, 6) == ps.grads && ps_grad(&ps, 7) == ps.grads + 20);
    CHECK(ps_value(&ps, 0) == ps.values && ps_value(&ps, 6) == ps.values + 116);
    CHECK(ps_value(&ps, 3) == ps.buffers && ps_value(&ps, 5) == ps.buffers + 8);
    CHECK(ps_info(&ps, 7)->grad_offset == 20 && ps_info(&ps, 0)->grad_offset == PS_NO_GRAD);
    CHECK(ps_numel(&ps, -1, 0) == 141 && ps_numel(&ps, -1, 1) == 25);
    CHECK(ps_numel(&ps, PG_IMAGE, 0) == 116 && ps_numel(&ps, PG_CLASSIFIER, 0) == 25);
    CHECK(ps_find(&ps, "head.bias") == 7 && ps_find(&ps, "nope") == -1);
    /* registration after finalize and freezing after finalize are refused */
    CHECK(ps_add(&ps, "late", 1, (int64_t[]){1}, PK_BIAS, PG_FUSION, pinit_zeros(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "finalized");
    CHECK(ps_set_trainable_prefix(&ps, "head.", 0) == -1);
    ps_free(&ps);
}

static void duplicate_names_and_bad_shapes_are_refused(void) {
    ParamStore ps;
    Err e;
    build_tiny(&ps);
    CHECK(ps_add(&ps, "head.bias", 1, (int64_t[]){5}, PK_BIAS, PG_CLASSIFIER, pinit_zeros(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "head.bias registered twice");
    CHECK(ps_add(&ps, "zero", 2, (int64_t[]){3, 0}, PK_WEIGHT, PG_FUSION, pinit_zeros(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "zero");
    ps_free(&ps);
}

static void optimizer_facts_decay_and_lr_mult(void) {
    ParamStore ps;
    build_tiny(&ps);
    CHECK(ps_decay(ps_info(&ps, 0)) == 1);  /* conv weight */
    CHECK(ps_decay(ps_info(&ps, 1)) == 0);  /* BN weight */
    CHECK(ps_decay(ps_info(&ps, 7)) == 0);  /* bias */
    CHECK(ps_lr_mult(ps_info(&ps, 0), 0.1f) == 0.1f);
    CHECK(ps_lr_mult(ps_info(&ps, 6), 0.1f) == 1.0f);
    CHECK(strcmp(ps_group_name(PG_TEXT), "text_encoder") == 0);
    ps_free(&ps);
}

static void init_follows_pytorch_defaults_and_is_seeded(void) {
    ParamStore ps, ps2;
    Err e;
    ps_init(&ps);
    /* big enough for statistics: kaiming fan_out = 64*3*3 = 576 -> std sqrt(2/576) */
    int w = ps_add(&ps, "c.weight", 4, (int64_t[]){64, 32, 3, 3}, PK_WEIGHT, PG_IMAGE, pinit_kaiming_fanout(), &e);
    int u = ps_add(&ps, "l.weight", 2, (int64_t[]){100, 200}, PK_WEIGHT, PG_FUSION, pinit_uniform(0.25f), &e);
    ParamInit emb = pinit_normal(0.02f);
    emb.padding_idx = 3;
    int t = ps_add(&ps, "emb.weight", 2, (int64_t[]){10, 500}, PK_EMBEDDING, PG_TEXT, emb, &e);
    int o = ps_add(&ps, "ln.weight", 1, (int64_t[]){7}, PK_NORM, PG_TEXT, pinit_ones(), &e);
    CHECK(ps_finalize(&ps, backend_cpu(), &e) == 0);
    CHECK(ps_init_values(&ps, 1234, &e) == 0);
    const float *x = ps_value(&ps, w);
    double s = 0, s2 = 0;
    size_t n = ps_info(&ps, w)->numel;
    for (size_t i = 0; i < n; i++) s += x[i], s2 += (double)x[i] * x[i];
    double sd = sqrt(s2 / n - (s / n) * (s / n));
    CHECK_NEAR(s / n, 0.0, 0.004);
    CHECK_NEAR(sd, sqrt(2.0 / 576.0), 0.02 * sqrt(2.0 / 576.0));
    x = ps_value(&ps, u);
    float lo = 1, hi = -1;
    for (size_t i = 0; i < 20000; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    CHECK(lo >= -0.25f && hi <= 0.25f && lo < -0.249f && hi > 0.249f);
    x = ps_value(&ps, t);
    double z = 0;
    for (int i = 0; i < 500; i++) z += fabs(x[3 * 500 + i]);
    CHECK(z == 0.0); /* padding row */
    s2 = 0;
    for (int i = 0; i < 500; i++) s2 += (double)x[i] * x[i];
    CHECK_NEAR(sqrt(s2 / 500), 0.02, 0.002);
    CHECK(ps_value(&ps, o)[6] == 1.0f);

    /* same seed, different registration order -> the same tensor values */
    ps_init(&ps2);
    ps_add(&ps2, "ln.weight", 1, (int64_t[]){7}, PK_NORM, PG_TEXT, pinit_ones(), &e);
    int u2 = ps_add(&ps2, "l.weight", 2, (int64_t[]){100, 200}, PK_WEIGHT, PG_FUSION, pinit_uniform(0.25f), &e);
    CHECK(ps_finalize(&ps2, backend_cpu(), &e) == 0);
    CHECK(ps_init_values(&ps2, 1234, &e) == 0);
    CHECK(memcmp(ps_value(&ps2, u2), ps_value(&ps, u), 20000 * sizeof(float)) == 0);
    CHECK(ps_init_values(&ps2, 99, &e) == 0);
    CHECK(memcmp(ps_value(&ps2, u2), ps_value(&ps, u), 20000 * sizeof(float)) != 0);
    ps_free(&ps);
    ps_free(&ps2);
}

static void save_then_load_round_trips_with_prefixes(void) {
    ParamStore a, b;
    Err e;
    build_tiny(&a);
    CHECK(ps_finalize(&a, backend_cpu(), &e) == 0);
    CHECK(ps_init_values(&a, 7, &e) == 0);
    ps_value(&a, 3)[2] = 0.5f;   /* running_mean */
    ps_value(&a, 5)[0] = 1234.f; /* num_batches_tracked */
    /* store "enc." -> file "backbone." (as a converter with a different prefix would) */
    CHECK(ps_save_safetensors(&a, tmp_path("enc.safetensors"), "enc.", "backbone.", &e) == 0);
    StFile *f = NULL;
    CHECK(st_open(&f, tmp_path("enc.safetensors"), &e) == 0);
    if (f) {
        CHECK(st_count(f) == 6);
        const StTensor *t = st_find(f, "backbone.bn.num_batches_tracked");
        CHECK(t && t->dtype == DT_I64 && t->ndim == 0);
        if (t) {
            int64_t v;
            memcpy(&v, t->data, 8);
            CHECK(v == 1234);
        }
        CHECK(st_find(f, "head.weight") == NULL);
        st_close(f);
    }
    build_tiny(&b);
    CHECK(ps_finalize(&b, backend_cpu(), &e) == 0);
    PsLoadReport rep;
    CHECK(ps_load_safetensors(&b, tmp_path("enc.safetensors"), "enc.", "backbone.", &rep, &e) == 0);
    CHECK(rep.loaded == 6 && rep.unused == 0);
    CHECK(memcmp(ps_value(&a, 0), ps_value(&b, 0), 108 * sizeof(float)) == 0);
    CHECK(ps_value(&b, 3)[2] == 0.5f && ps_value(&b, 5)[0] == 1234.f);
    CHECK(ps_value(&b, 6)[0] == 0.0f); /* outside the prefix: untouched */
    ps_free(&a);
    ps_free(&b);
}

/* writes a file in which the conv weight is F16 and the head BF16, plus extra tensors */
static void write_mixed_file(const char *path, int bad_shape, int drop_bias) {
    float w[108], g[4] = {1, 2, 3, 4}, bb[4] = {0}, hw[20], hb[5] = {1, 2, 3, 4, 5}, extra[3] = {0};
    for (int i = 0; i < 108; i++) w[i] = (float)(i % 17) * 0.25f - 2.0f; /* exact in f16 */
    for (int i = 0; i < 20; i++) hw[i] = (float)i * 0.5f;                  /* exact in bf16 */
    uint16_t w16[108], hw16[20];
    st_f32_to_f16_n(w, w16, 108);
    st_f32_to_bf16_n(hw, hw16, 20);
    int64_t nbt = 77;
    StWriter *wr = st_writer_new();
    st_writer_add(wr, "bert.enc.conv.weight", DT_F16, 4, (int64_t[]){4, 3, 3, 3}, w16);
    st_writer_add(wr, "bert.enc.bn.weight", DT_F32, 1, (int64_t[]){bad_shape ? 3 : 4}, g);
    st_writer_add(wr, "bert.enc.bn.bias", DT_F32, 1, (int64_t[]){4}, bb);
    st_writer_add(wr, "bert.enc.bn.running_mean", DT_F32, 1, (int64_t[]){4}, bb);
    st_writer_add(wr, "bert.enc.bn.running_var", DT_F32, 1, (int64_t[]){4}, g);
    st_writer_add(wr, "bert.enc.bn.num_batches_tracked", DT_I64, 0, NULL, &nbt);
    st_writer_add(wr, "bert.head.weight", DT_BF16, 2, (int64_t[]){5, 4}, hw16);
    if (!drop_bias) st_writer_add(wr, "bert.head.bias", DT_F32, 1, (int64_t[]){5}, hb);
    st_writer_add(wr, "cls.predictions.bias", DT_F32, 1, (int64_t[]){3}, extra);
    st_writer_add(wr, "fit_dense.weight", DT_F32, 1, (int64_t[]){3}, extra);
    Err e;
    CHECK(st_writer_save(wr, path, &e) == 0);
    st_writer_free(wr);
}

static void load_converts_f16_bf16_i64_and_summarizes_unused(void) {
    ParamStore ps;
    Err e;
    write_mixed_file(tmp_path("mixed.safetensors"), 0, 0);
    build_tiny(&ps);
    CHECK(ps_finalize(&ps, backend_cpu(), &e) == 0);
    PsLoadReport rep;
    CHECK(ps_load_safetensors(&ps, tmp_path("mixed.safetensors"), "", "bert.", &rep, &e) == 0);
    CHECK(rep.loaded == 8);
    CHECK(rep.unused == 2);
    CHECK_STR_CONTAINS(rep.unused_summary, "2 unused tensors:");
    CHECK_STR_CONTAINS(rep.unused_summary, "cls.predictions.bias");
    CHECK_STR_CONTAINS(rep.unused_summary, "fit_dense.weight");
    CHECK(ps_value(&ps, 0)[5] == 5 * 0.25f - 2.0f);
    CHECK(ps_value(&ps, 0)[20] == 3 * 0.25f - 2.0f);
    CHECK(ps_value(&ps, 6)[7] == 3.5f);
    CHECK(ps_value(&ps, 5)[0] == 77.0f);
    CHECK(ps_value(&ps, 1)[3] == 4.0f);
    ps_free(&ps);
}

static void missing_and_misshaped_tensors_are_named(void) {
    ParamStore ps;
    Err e;
    write_mixed_file(tmp_path("bad_shape.safetensors"), 1, 0);
    write_mixed_file(tmp_path("missing.safetensors"), 0, 1);
    build_tiny(&ps);
    CHECK(ps_finalize(&ps, backend_cpu(), &e) == 0);
    CHECK(ps_load_safetensors(&ps, tmp_path("bad_shape.safetensors"), "", "bert.", NULL, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "bad_shape.safetensors");
    CHECK_STR_CONTAINS(e.msg, "bert.enc.bn.weight");
    CHECK_STR_CONTAINS(e.msg, "[3]");
    CHECK_STR_CONTAINS(e.msg, "expects [4]");
    CHECK(ps_load_safetensors(&ps, tmp_path("missing.safetensors"), "", "bert.", NULL, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "missing tensor 'bert.head.bias'");
    CHECK_STR_CONTAINS(e.msg, "[5]");
    CHECK(ps_load_safetensors(&ps, tmp_path("does_not_exist.safetensors"), "", "", NULL, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "does_not_exist.safetensors");
    ps_free(&ps);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vqa_test_params_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(layout_is_flat_and_frozen_params_have_no_grad);
    RUN(duplicate_names_and_bad_shapes_are_refused);
    RUN(optimizer_facts_decay_and_lr_mult);
    RUN(init_follows_pytorch_defaults_and_is_seeded);
    RUN(save_then_load_round_trips_with_prefixes);
    RUN(load_converts_f16_bf16_i64_and_summarizes_unused);
    RUN(missing_and_misshaped_tensors_are_named);
    const char *names[] = {"enc.safetensors", "mixed.safetensors", "bad_shape.safetensors", "missing.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(tmp_path(names[i]));
    rmdir(tmpdir);
    return test_summary();
}
