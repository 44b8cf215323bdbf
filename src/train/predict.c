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

static int predict_impl(const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, const Backend *given, Err *e) {
    int rank = comm ? comm_rank(comm) : 0, world = comm ? comm_world(comm) : 1;
    TrainDevice dev;
    if (tdev_open(&dev, cfg, cli->device, cli->n_gpus, comm, given, e) != 0) return -1;
    const Backend *be = dev.be;
    log_info(log, "predict on %s", dev.desc);
    be->set_threads(cfg->train.threads);
    VqaDataset ds = {0};
    Tokenizer *tok = NULL;
    AnswerVocab *vocab = NULL;
    VqaModel model;
    int model_ready = 0, rc = -1;
    Loader *l = NULL;
    TdevFeed feed = {0}; /* tdev_feed_free of a feed never opened does nothing */
    Arena arena;
    EvalResult r = {0};
    tdev_arena_init(be, &arena, 1 << 20);
    CfgSplit split = cfg->predict.split;
    const char *sname = setup_split_name(split);

    /* rank 0 generates the synthetic data if needed; the others read it after the barrier */
    if (rank == 0 && setup_synth(cfg, log, e) != 0) goto done;
    if (comm && comm_barrier(comm, e) != 0) goto done;
    if (setup_load_split(cfg, split, &ds, e) != 0) goto done;
    if (tok_load(&tok, cfg->model.text_encoder.vocab, e) != 0) {
        err_prefix(e, "model.text_encoder.vocab");
        goto done;
    }
    if (tstate_load_vocab(cli->predict, &vocab, e) != 0) {
        err_prefix(e, "--predict");
        goto done;
    }
    VqaModelConfig mc;
    if (setup_model_config(cfg, ans_vocab_size(vocab), tok_vocab_size(tok), tok_pad_id(tok), &mc, e) != 0) goto done;
    /* weights come from the checkpoint: no pretrained files needed */
    mc.image_weights[0] = mc.text_weights[0] = '\0';
    char why[160];
    tdev_image_format(cfg, be, &mc.image_fmt, why, sizeof why); /* as the trainer would run it */
    if (vqa_model_init(&model, &mc, be, e) != 0) goto done;
    model_ready = 1;
    if (tstate_load(cli->predict, &model.ps, NULL, NULL, NULL, e) != 0) {
        err_prefix(e, "--predict");
        goto done;
    }
    uint64_t h = tstate_config_hash(cli->predict);
    if (h && h != cfg_hash(cfg))
        log_info(log, "--predict: the checkpoint was trained with another config (hash %016llx); the model shape matched",
                 (unsigned long long)h);
    LoaderOpts o;
    loader_opts_from_config(&o, cfg, 0, rank, world);
    o.alloc = tdev_loader_alloc(be);
    if (!tdev_on_host(be)) o.prefetch += 1; /* the feed holds two slots: one uploading ahead */
    /* targets only when the split has answers (for the loss) */
    if (loader_open(&l, &o, &ds, tok, ds.has_answers ? vocab : NULL, e) != 0) goto done;
    if (tdev_feed_init(&feed, be, l, o.batch_size, o.image_size, ans_vocab_size(vocab), e) != 0) goto done;
    log_info(log, "predict: %s split, %lld questions, checkpoint %s (%d answers)", sname, (long long)ds.n, cli->predict,
             ans_vocab_size(vocab));
    if (evaluate(&model, l, &feed, &ds, vocab, cfg->train.loss == CFG_LOSS_SOFTMAX ? LOSS_SOFTMAX : LOSS_BCE, &arena, comm, &r,
                 e) != 0 ||
        tdev_check(&dev, e) != 0)
        goto done;
    if (rank != 0) { /* every rank holds all predictions now; rank 0 writes them */
        rc = 0;
        goto done;
    }

    char json[4200], npy[4200];
    if (cfg->predict.out && cfg->predict.out[0]) {
        snprintf(json, sizeof json, "%s", cfg->predict.out);
    } else {
        if (run_mkdirs(cfg->run.out_dir, e) != 0) goto done;
        snprintf(json, sizeof json, "%s/predictions_%s.json", cfg->run.out_dir, sname);
    }
    char dirbuf[4200];
    snprintf(dirbuf, sizeof dirbuf, "%s", json);
    const char *dir = dirname(dirbuf);
    if (run_mkdirs(dir, e) != 0) goto done;
    snprintf(npy, sizeof npy, "%s/submission.npy", dir);
    if (predict_write(json, npy, &ds, r.preds, e) != 0) goto done;
    log_info(log, "predictions: %s (%lld answers), %s", json, (long long)ds.n, npy);
    if (r.has_accuracy) {
        char types[512] = "";
        size_t off = 0;
        for (int i = 0; i < r.acc.n_answer_types; i++)
            off += (size_t)snprintf(types + off, off < sizeof types ? sizeof types - off : 0, "%s%s %.2f", i ? ", " : "",
                                    r.acc.answer_types[i].name, r.acc.answer_types[i].accuracy);
        log_info(log, "%s VQA accuracy %.2f%% (%s), loss %.4f", sname, r.accuracy, types, r.loss);
    }
    rc = 0;
done:
    eval_result_free(&r);
    tdev_feed_free(&feed); /* hands its slots back: before the loader frees them */
    loader_close(l);
    if (model_ready) vqa_model_free(&model);
    ans_vocab_free(vocab);
    tok_free(tok);
    if (ds.samples) ds_free(&ds);
    arena_free(&arena);
    tdev_close(&dev); /* last: the model and the arena were backend memory */
    return rc;
}
