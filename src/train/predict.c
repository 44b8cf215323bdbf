/* predict.c: prediction with a checkpoint (predict.h). */
#include "train/predict.h"

#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/answers.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "data/vqa_metric.h"
#include "model/vqa_model.h"
#include "train/evaluate.h"
#include "train/npy.h"
#include "train/run_dir.h"
#include "train/setup.h"
#include "train/train_device.h"
#include "train/train_state.h"

int predict_write(const char *json_path, const char *npy_path, const VqaDataset *ds, const char *const *preds, Err *e) {
    if (vqa_metric_write_results(json_path, ds, preds, e) != 0) return -1;
    return npy_write_unicode(npy_path, preds, ds->n, e);
}

static int predict_impl(const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, const Backend *given, Err *e);

int predict_run(const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, Err *e) {
    return predict_impl(cfg, cli, log, comm, NULL, e);
}

int predict_run_on(const Config *cfg, const CliArgs *cli, Log *log, const Backend *given, Err *e) {
    return predict_impl(cfg, cli, log, NULL, given, e);
}

/* What one prediction holds; predictor_free releases it. */
typedef struct Predictor {
    TrainDevice dev;
    const Backend *be; /* = dev.be */
    VqaDataset ds;
    Tokenizer *tok;
    AnswerVocab *vocab; /* the checkpoint's */
    VqaModel model;
    int model_ready;
    Loader *l;
    TdevFeed feed; /* tdev_feed_free of a feed never opened does nothing */
    Arena arena;
    EvalResult r;
} Predictor;

static void predictor_free(Predictor *p) {
    eval_result_free(&p->r);
    tdev_feed_free(&p->feed); /* hands its slots back: before the loader frees them */
    loader_close(p->l);
    if (p->model_ready) vqa_model_free(&p->model);
    ans_vocab_free(p->vocab);
    tok_free(p->tok);
    if (p->ds.samples) ds_free(&p->ds);
    arena_free(&p->arena);
    tdev_close(&p->dev); /* last: the model and the arena were backend memory */
}

/* The split, the tokenizer and the checkpoint's answer vocabulary. Collective (barrier). */
static int predict_load_data(Predictor *p, const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, int rank,
                             Err *e) {
    /* rank 0 generates the synthetic data if needed; the others read it after the barrier */
    if (rank == 0 && setup_synth(cfg, log, e) != 0) return -1;
    if (comm && comm_barrier(comm, e) != 0) return -1;
    if (setup_load_split(cfg, cfg->predict.split, &p->ds, e) != 0) return -1;
    if (tok_load(&p->tok, cfg->model.text_encoder.vocab, e) != 0) return err_prefix(e, "model.text_encoder.vocab");
    if (tstate_load_vocab(cli->predict, &p->vocab, e) != 0) return err_prefix(e, "--predict");
    return 0;
}

/* The model the config describes, with the checkpoint's parameters (sets model_ready). */
static int predict_load_model(Predictor *p, const Config *cfg, const CliArgs *cli, Log *log, Err *e) {
    VqaModelConfig mc;
    if (setup_model_config(cfg, ans_vocab_size(p->vocab), tok_vocab_size(p->tok), tok_pad_id(p->tok), &mc, e) != 0)
        return -1;
    /* weights come from the checkpoint: no pretrained files needed */
    mc.image_weights[0] = mc.text_weights[0] = '\0';
    char why[160];
    tdev_image_format(cfg, p->be, &mc.image_fmt, why, sizeof why); /* as the trainer would run it */
    if (vqa_model_init(&p->model, &mc, p->be, e) != 0) return -1;
    p->model_ready = 1;
    if (tstate_load(cli->predict, &p->model.ps, NULL, NULL, NULL, e) != 0) return err_prefix(e, "--predict");
    uint64_t h = tstate_config_hash(cli->predict);
    if (h && h != cfg_hash(cfg))
        log_info(log, "--predict: the checkpoint was trained with another config (hash %016llx); the model shape matched",
                 (unsigned long long)h);
    return 0;
}

/* This rank's shard of the split in order, and its feed to the backend. */
static int predict_open_loader(Predictor *p, const Config *cfg, int rank, int world, Err *e) {
    LoaderOpts o;
    setup_loader_opts(&o, cfg, 0, rank, world);
    o.alloc = tdev_loader_alloc(p->be);
    if (!tdev_on_host(p->be)) o.prefetch += 1; /* the feed holds two slots: one uploading ahead */
    /* targets only when the split has answers (for the loss) */
    if (loader_open(&p->l, &o, &p->ds, p->tok, p->ds.has_answers ? p->vocab : NULL, e) != 0) return -1;
    if (tdev_feed_init(&p->feed, p->be, p->l, o.batch_size, o.image_size, ans_vocab_size(p->vocab), e) != 0) return -1;
    return 0;
}

/* Rank 0: the predictions as JSON (predict.out, else in run.out_dir) and submission.npy
 * beside it; the accuracy when the split has answers. */
static int predict_write_outputs(const Predictor *p, const Config *cfg, Log *log, Err *e) {
    const char *sname = setup_split_name(cfg->predict.split);
    char json[4200], npy[4200];
    if (cfg->predict.out && cfg->predict.out[0]) {
        snprintf(json, sizeof json, "%s", cfg->predict.out);
    } else {
        if (run_mkdirs(cfg->run.out_dir, e) != 0) return -1;
        snprintf(json, sizeof json, "%s/predictions_%s.json", cfg->run.out_dir, sname);
    }
    char dirbuf[4200];
    snprintf(dirbuf, sizeof dirbuf, "%s", json);
    const char *dir = dirname(dirbuf);
    if (run_mkdirs(dir, e) != 0) return -1;
    snprintf(npy, sizeof npy, "%s/submission.npy", dir);
    if (predict_write(json, npy, &p->ds, p->r.preds, e) != 0) return -1;
    log_info(log, "predictions: %s (%lld answers), %s", json, (long long)p->ds.n, npy);
    if (p->r.has_accuracy) {
        const EvalResult *r = &p->r;
        char types[512] = "";
        size_t off = 0;
        for (int i = 0; i < r->acc.n_answer_types; i++)
            off += (size_t)snprintf(types + off, off < sizeof types ? sizeof types - off : 0, "%s%s %.2f", i ? ", " : "",
                                    r->acc.answer_types[i].name, r->acc.answer_types[i].accuracy);
        log_info(log, "%s VQA accuracy %.2f%% (%s), loss %.4f", sname, r->accuracy, types, r->loss);
    }
    return 0;
}

static int predict_impl(const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, const Backend *given, Err *e) {
    int rank = comm ? comm_rank(comm) : 0, world = comm ? comm_world(comm) : 1;
    Predictor p;
    memset(&p, 0, sizeof p);
    if (tdev_open(&p.dev, cfg, cli->device, cli->n_gpus, comm, given, e) != 0) return -1;
    p.be = p.dev.be;
    log_info(log, "predict on %s", p.dev.desc);
    p.be->set_threads(p.be, cfg->train.threads);
    tdev_arena_init(p.be, &p.arena, 1 << 20);
    int rc = -1;
    if (predict_load_data(&p, cfg, cli, log, comm, rank, e) != 0 || predict_load_model(&p, cfg, cli, log, e) != 0 ||
        predict_open_loader(&p, cfg, rank, world, e) != 0)
        goto done;
    log_info(log, "predict: %s split, %lld questions, checkpoint %s (%d answers)", setup_split_name(cfg->predict.split),
             (long long)p.ds.n, cli->predict, ans_vocab_size(p.vocab));
    if (evaluate(&p.model, p.l, &p.feed, &p.ds, p.vocab, cfg->train.loss == CFG_LOSS_SOFTMAX ? LOSS_SOFTMAX : LOSS_BCE,
                 &p.arena, comm, &p.r, e) != 0 ||
        tdev_check(&p.dev, e) != 0)
        goto done;
    /* every rank holds all predictions now; rank 0 writes them */
    if (rank == 0 && predict_write_outputs(&p, cfg, log, e) != 0) goto done;
    rc = 0;
done:
    predictor_free(&p);
    return rc;
}
