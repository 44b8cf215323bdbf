/* trainer.c: start-up of a training run and the training loop (trainer.h). */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/prep.h"
#include "cuda/backend_cuda.h"
#include "io/checkpoint.h"
#include "train/predict.h"
#include "train/setup.h"
#include "util/rng.h"

/* ------------------------------------------------------------------ small pure helpers */

int64_t trainer_steps_per_epoch(int64_t batches_per_epoch, int grad_accum) {
    if (grad_accum < 1) grad_accum = 1;
    return (batches_per_epoch + grad_accum - 1) / grad_accum;
}

int64_t trainer_total_steps(int64_t steps_per_epoch, int epochs, int64_t max_steps) {
    int64_t t = steps_per_epoch * (int64_t)epochs;
    if (max_steps > 0 && (max_steps < t || t == 0)) t = max_steps;
    return t;
}

uint64_t trainer_step_seed(uint64_t seed, int64_t step, int micro) {
    /* splitmix64 of a distinct counter per (step, micro): no two micro-batches share a stream */
    return rng_mix64(seed ^ ((uint64_t)step * RNG_GAMMA) ^ ((uint64_t)(micro + 1) * 0xD1B54A32D192ED03ull));
}

int trainer_unscale_be(const Backend *be, LossScaler *s, float *g, size_t n) {
    float scale = s->scale;
    int found_inf = be->has_nonfinite(be, g, n);
    if (loss_scaler_update(s, found_inf)) return 1;
    be->scale(be, g, n, 1.0f / scale);
    return 0;
}

int trainer_unscale(LossScaler *s, float *g, size_t n) { return trainer_unscale_be(backend_cpu(), s, g, n); }

int trainer_segments(const ParamStore *ps, float encoder_lr_mult, OptimSegment **out, int *n, Err *e) {
    *out = NULL;
    *n = 0;
    OptimSegment *s = calloc((size_t)(ps->n ? ps->n : 1), sizeof *s);
    if (!s) return err_set(e, "optimizer: out of memory");
    int k = 0;
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->items[i];
        if (p->kind == PK_BUFFER || !p->trainable || p->grad_offset == PS_NO_GRAD) continue;
        float mult = ps_lr_mult(p, encoder_lr_mult);
        int decay = ps_decay(p);
        /* merge with the previous segment when contiguous in both buffers and alike */
        if (k > 0 && s[k - 1].decay == decay && s[k - 1].lr_mult == mult && s[k - 1].param_off + s[k - 1].n == p->offset &&
            s[k - 1].grad_off + s[k - 1].n == p->grad_offset) {
            s[k - 1].n += p->numel;
            continue;
        }
        s[k++] = (OptimSegment){p->offset, p->grad_offset, p->numel, mult, decay};
    }
    *out = s;
    *n = k;
    return 0;
}

static void fmt_duration(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lds", t);
}

/* ------------------------------------------------------------------ start-up */

/* The checkpoint to resume from: "" for a fresh run. */
static int resume_path(const Trainer *t, char *path, size_t cap, Err *e) {
    path[0] = '\0';
    const char *r = t->cli->resume;
    if (!r) {
        /* a fresh run must not mix its checkpoints with an earlier run's: rotation by step
         * number would delete the new ones, and --resume auto would pick the old ones */
        char dir[4096], old[4096];
        run_ckpt_dir(t->cfg, dir, sizeof dir);
        if (ckpt_find_latest(dir, old, sizeof old, NULL, 0, e) != 0) return err_prefix(e, "checkpoint folder");
        if (old[0])
            return err_set(e, "%s holds checkpoints of an earlier run (%s): continue it with --resume auto, or remove "
                           "the folder or set another run.out_dir / checkpoint.dir for a fresh run", dir, old);
        return 0;
    }
    if (strcmp(r, "auto") != 0) {
        snprintf(path, cap, "%s", r);
        return 0;
    }
    char dir[4096], warn[4096] = "";
    run_ckpt_dir(t->cfg, dir, sizeof dir);
    if (ckpt_find_latest(dir, path, cap, warn, sizeof warn, e) != 0) return err_prefix(e, "--resume auto");
    if (warn[0]) {
        for (char *w = strtok(warn, "\n"); w; w = strtok(NULL, "\n")) log_warn(t->log, "--resume auto: skipping %s", w);
    }
    if (!path[0]) log_info(t->log, "--resume auto: no checkpoint in %s: starting a fresh run", dir);
    return 0;
}

static int open_loaders(Trainer *t, Err *e) {
    const Config *cfg = t->cfg;
    LoaderOpts o;
    char prep[4200];
    setup_loader_opts(&o, cfg, 1, t->rank, t->world);
    o.alloc = tdev_loader_alloc(t->be); /* pinned slots for a device: async uploads */
    /* a device holds two slots during a step (the batch in use, the next one uploading):
     * one more slot keeps the workers as far ahead as on the CPU */
    if (!tdev_on_host(t->be)) o.prefetch += 1;
    if (cfg->data.prepared) {
        prep_split_path(cfg->data.prepared, "train", prep, sizeof prep);
        o.prepared = prep;
    }
    if (loader_open(&t->train_loader, &o, &t->train_ds, t->tok, t->vocab, e) != 0) return err_prefix(e, "train loader");
    if (t->have_eval) {
        /* every rank evaluates its shard (in order, padded, no augmentation); evaluate()
         * reduces the per-question results */
        setup_loader_opts(&o, cfg, 0, t->rank, t->world);
        o.alloc = tdev_loader_alloc(t->be);
        if (!tdev_on_host(t->be)) o.prefetch += 1; /* the evaluation prefetches too */
        o.prepared = NULL;
        if (loader_open(&t->eval_loader, &o, &t->eval_ds, t->tok, t->vocab, e) != 0) return err_prefix(e, "eval loader");
        if (tdev_feed_init(&t->eval_feed, t->be, t->eval_loader, o.batch_size, o.image_size, ans_vocab_size(t->vocab),
                           e) != 0)
            return err_prefix(e, "evaluation");
    }
    return 0;
}

static void log_startup(Trainer *t) {
    const Config *cfg = t->cfg;
    Log *log = t->log;
    char buf[4096];
    int64_t covered = 0;
    char ans[ANS_MAX_LEN];
    for (int64_t i = 0; i < t->train_ds.n; i++)
        if (ans_candidate(&t->train_ds.samples[i], ans, sizeof ans) == 0 && ans_vocab_find(t->vocab, ans) >= 0) covered++;
    log_info(log, "data: train %lld questions%s, %s %lld questions; answer vocabulary %d answers (min_count %d; covers %.1f%% "
             "of the training questions)",
             (long long)t->train_ds.n, cfg->data.prepared ? " (prepared file)" : "",
             t->have_eval ? setup_split_name(cfg->eval.split) : "eval", (long long)(t->have_eval ? t->eval_ds.n : 0),
             ans_vocab_size(t->vocab), cfg->data.answers.min_count,
             t->train_ds.n ? 100.0 * (double)covered / (double)t->train_ds.n : 0.0);
    if (t->prior)
        log_info(log, "answer prior (most frequent answer per question type, %d types): %s accuracy %.2f%%",
                 prior_n_types(t->prior), setup_split_name(cfg->eval.split), t->prior_acc);
    vqa_model_summary(&t->model, buf, sizeof buf);
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) log_info(log, "model: %s", l);
    if (t->model.load_notes[0]) {
        snprintf(buf, sizeof buf, "%s", t->model.load_notes);
        for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) log_info(log, "weights: %s", l);
    }
    log_info(log, "device: %s", t->dev.desc);
    if (t->feed.device)
        log_info(log, "batches: each uploaded during the step before it (2 device buffers of %.1f MiB)",
                 (double)(t->feed.n_images + t->feed.n_targets) * sizeof(float) / (1 << 20));
    log_info(log, "train: %d rank%s x batch %d x accum %d = %d samples per step; %lld batches per epoch per rank, "
             "%lld steps per epoch, %lld steps; loss %s, lr %g (encoders x%g), %s schedule, warm-up %lld, threads %d",
             t->world, t->world == 1 ? "" : "s", cfg->train.batch_size, cfg->train.grad_accum,
             t->world * cfg->train.batch_size * cfg->train.grad_accum, (long long)t->batches_per_epoch,
             (long long)t->steps_per_epoch, (long long)t->total_steps, cfg_enum_name(cfg, "train.loss"), cfg->train.lr,
             cfg->train.encoder_lr_mult, cfg_enum_name(cfg, "train.schedule"), (long long)cfg->train.warmup_steps,
             t->be->get_threads(t->be));
}

int trainer_init(Trainer *t, const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, Err *e) {
    return trainer_init_on(t, cfg, cli, log, comm, NULL, e);
}

/* The optimizer over the model's trainable parameters, its moments in the backend's memory
 * (the schedule needs total_steps). */
static int optimizer_init(Trainer *t, Err *e) {
    OptimOptions oo;
    OptimSegment *segs;
    int n_segs;
    setup_optim_options(t->cfg, t->total_steps, &oo);
    if (trainer_segments(&t->model.ps, (float)t->cfg->train.encoder_lr_mult, &segs, &n_segs, e) != 0) return -1;
    int rc = optim_init(&t->opt, t->be, &oo, segs, n_segs, t->model.ps.n_grads, e);
    free(segs);
    return rc;
}

/* The backend, its arena and (several ranks) the communicator's transport. */
static int init_device(Trainer *t, const Backend *be, Err *e) {
    const Config *cfg = t->cfg;
    /* the backend first: a GPU that cannot start is the first error, before any file work */
    if (tdev_open(&t->dev, cfg, t->cli->device, t->cli->n_gpus, t->comm, be, e) != 0) return -1;
    t->be = t->dev.be;
    tdev_arena_init(t->be, &t->arena, 1 << 20);
    /* dist.backend (CommBackend has CfgDistBackend's values): auto picks NCCL for GPU
     * buffers when built with it; NCCL runs on the compute stream */
    if (t->comm && comm_setup(t->comm, (CommBackend)cfg->dist.backend, t->dev.cuda_device, e) != 0) return -1;
    if (t->comm && t->dev.cuda_started) comm_set_stream(t->comm, gpu_compute_stream(t->be));
    t->be->set_threads(t->be, cfg->train.threads);
    return 0;
}

/* The checkpoint to resume from (rpath, "" for a fresh run) and, on rank 0, the run
 * directory and the synthetic data; ends with a barrier (collective). */
static int open_run_dir(Trainer *t, char *rpath, size_t cap, Err *e) {
    const Config *cfg = t->cfg;
    if (resume_path(t, rpath, cap, e) != 0) return -1;
    int64_t resume_step = -1;
    if (rpath[0]) {
        StFile *f;
        if (ckpt_open(&f, rpath, e) != 0) return err_prefix(e, "--resume");
        int rc = ckpt_meta_i64(f, CKPT_KEY_STEP, &resume_step, e);
        st_close(f);
        if (rc != 0) return err_prefix(e, "--resume");
    }
    if (!(t->config_yaml = cfg_dump_string(cfg))) return err_set(e, "out of memory");
    t->config_hash = cfg_hash(cfg);
    if (t->rank == 0) {
        if (run_dir_open(&t->rd, cfg, resume_step, t->log, e) != 0) return -1;
        t->rd_open = 1;
        log_info(t->log, "run %s: writing to %s (%s)", cfg->run.name, cfg->run.out_dir,
                 rpath[0] ? "resumed" : "fresh start");
        if (setup_synth(cfg, t->log, e) != 0) return -1;
    }
    /* several ranks: the others read the data rank 0 may just have generated */
    if (t->comm && comm_barrier(t->comm, e) != 0) return -1;
    return 0;
}

/* The eval split when evaluation is on and the split has questions (sets have_eval). */
static int load_eval_split(Trainer *t, Err *e) {
    const Config *cfg = t->cfg;
    const CfgSplitPaths *es = cfg->eval.split == CFG_SPLIT_TRAIN ? &cfg->data.train
                              : cfg->eval.split == CFG_SPLIT_VAL ? &cfg->data.val : &cfg->data.test;
    if ((cfg->eval.every > 0 || cfg->eval.at_end) && es->questions) {
        if (setup_load_split(cfg, cfg->eval.split, &t->eval_ds, e) != 0) return -1;
        if (!t->eval_ds.has_answers)
            return err_set(e, "eval.split: %s has no answers to score (use --predict for a split without answers)",
                           setup_split_name(cfg->eval.split));
        t->have_eval = 1;
    } else if (cfg->eval.every > 0 || cfg->eval.at_end) {
        log_warn(t->log, "eval.split %s: data.%s.questions is null: no evaluation", setup_split_name(cfg->eval.split),
                 setup_split_name(cfg->eval.split));
    }
    return 0;
}

/* The splits, the tokenizer, the answer vocabulary (from the training split) and the
 * answer prior with its accuracy on the eval split. */
static int load_data(Trainer *t, Err *e) {
    const Config *cfg = t->cfg;
    double t0 = time_now();
    if (setup_load_split(cfg, CFG_SPLIT_TRAIN, &t->train_ds, e) != 0) return -1;
    if (t->train_ds.n_warnings) log_warn(t->log, "data.train: %s", t->train_ds.warning);
    if (!t->train_ds.has_answers) return err_set(e, "data.train: the training split has no answers");
    if (load_eval_split(t, e) != 0) return -1;
    if (tok_load(&t->tok, cfg->model.text_encoder.vocab, e) != 0) return err_prefix(e, "model.text_encoder.vocab");
    const VqaDataset *splits[1] = {&t->train_ds};
    if (ans_vocab_build(&t->vocab, splits, 1, cfg->data.answers.min_count, cfg->data.answers.max_size, e) != 0)
        return err_prefix(e, "answer vocabulary");
    if (ans_vocab_size(t->vocab) < 1)
        return err_set(e, "answer vocabulary: no answer occurs data.answers.min_count = %d times in the training split",
                       cfg->data.answers.min_count);
    if (prior_build(&t->prior, &t->train_ds, e) != 0) return -1;
    if (t->have_eval && prior_accuracy(t->prior, &t->eval_ds, &t->prior_acc, e) != 0) return -1;
    log_info(t->log, "data loaded in %.1f s", time_now() - t0);
    return 0;
}

/* The model on the backend (sets model_ready) and the fresh training state: loss scale,
 * seed, no best evaluation yet. */
static int init_model(Trainer *t, Err *e) {
    const Config *cfg = t->cfg;
    VqaModelConfig mc;
    if (setup_model_config(cfg, ans_vocab_size(t->vocab), tok_vocab_size(t->tok), tok_pad_id(t->tok), &mc, e) != 0) return -1;
    char why[160], fname[32];
    tdev_image_format(cfg, t->be, &mc.image_fmt, why, sizeof why);
    log_info(t->log, "image encoder activations: %s (%s)", resnet_format_name(&mc.image_fmt, fname, sizeof fname), why);
    if (vqa_model_init(&t->model, &mc, t->be, e) != 0) return -1;
    t->model_ready = 1;
    if (t->model.ps.n_grads == 0) return err_set(e, "model: every parameter is frozen: nothing to train");
    loss_scaler_init(&t->st.scaler, cfg->train.precision == DT_F16 ? (float)cfg->train.loss_scale.init : 1.0f,
                     (float)cfg->train.loss_scale.growth_factor, (float)cfg->train.loss_scale.backoff,
                     cfg->train.loss_scale.growth_interval);
    t->st.seed = (uint64_t)cfg->run.seed;
    t->st.best_acc = -1;
    t->st.best_step = -1;
    return 0;
}

/* The loaders, the run's length in steps, the optimizer (its schedule needs that length)
 * and the training feed. */
static int init_schedule(Trainer *t, Err *e) {
    const Config *cfg = t->cfg;
    if (open_loaders(t, e) != 0) return -1;
    t->batches_per_epoch = loader_num_batches(t->train_loader);
    if (t->batches_per_epoch < 1)
        return err_set(e, "data.train: %lld questions give no full batch of %d x %d ranks (data.drop_last is on)",
                       (long long)t->train_ds.n, cfg->train.batch_size, t->world);
    t->steps_per_epoch = trainer_steps_per_epoch(t->batches_per_epoch, cfg->train.grad_accum);
    t->total_steps = trainer_total_steps(t->steps_per_epoch, cfg->train.epochs, cfg->train.max_steps);
    if (optimizer_init(t, e) != 0) return -1;
    if (tdev_feed_init(&t->feed, t->be, t->train_loader, cfg->train.batch_size, cfg->data.image_size,
                       ans_vocab_size(t->vocab), e) != 0)
        return -1;
    return 0;
}

/* Restores parameters, optimizer and training state from the checkpoint rpath. */
static int resume_from(Trainer *t, const char *rpath, Err *e) {
    const Config *cfg = t->cfg;
    Log *log = t->log;
    uint64_t h = tstate_config_hash(rpath);
    if (tstate_load(rpath, &t->model.ps, &t->opt, &t->st, t->vocab, e) != 0) return err_prefix(e, "--resume");
    if (h != t->config_hash)
        log_warn(log, "--resume %s: the checkpoint was written with another config (hash %016llx, now %016llx): "
                 "continuing with the current one", rpath, (unsigned long long)h, (unsigned long long)t->config_hash);
    if (t->st.seed != (uint64_t)cfg->run.seed)
        log_warn(log, "--resume: the checkpoint's run.seed is %llu, the config's %lld", (unsigned long long)t->st.seed,
                 (long long)cfg->run.seed);
    snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", rpath);
    t->last_ckpt_step = t->st.step;
    log_info(log, "resumed from %s: step %lld, epoch %lld, sampler position %lld%s", rpath, (long long)t->st.step,
             (long long)t->st.epoch, (long long)t->st.sampler_pos,
             t->st.best_acc >= 0 ? "" : ", no evaluation yet");
    if (t->st.best_acc >= 0)
        log_info(log, "best so far: accuracy %.2f%% at step %lld", t->st.best_acc, (long long)t->st.best_step);
    return 0;
}

/* Several ranks: buckets of the gradient buffer all-reduced as backward reports them
 * final; every rank starts from rank 0's parameters (a world of one: no-ops). Collective. */
static int init_grad_sync(Trainer *t, Err *e) {
    Comm *comm = t->comm;
    if (comm && gsync_init_params(&t->gsync, comm, &t->model.ps, t->cfg->dist.bucket_mb, e) != 0) return -1;
    if (comm && comm_world(comm) > 1) {
        char why[400];
        int op_threads = tdev_on_host(t->be) ? t->be->get_threads(t->be) : 1; /* a GPU rank's host thread mostly waits */
        if (gsync_setup_comm_thread(comm, (int)t->cfg->dist.comm_thread, op_threads, why, sizeof why, e) != 0) return -1;
        log_info(t->log, "all-reduce thread: %s", why);
    }
    t->model.grad_ready = gsync_ready_hook;
    t->model.grad_ready_ctx = &t->gsync;
    if (comm && gsync_broadcast_params(comm, t->be, t->model.ps.values, t->model.ps.n_values, e) != 0) return -1;
    return 0;
}

/* The phases in this order: device (first error a GPU that cannot start), run directory
 * (so train.log has every line that follows), data, model, schedule and optimizer,
 * start-up log, resume, gradient sync (its broadcast after the resume: every rank starts
 * from rank 0's restored parameters). Every rank makes the same collectives in this order. */
int trainer_init_on(Trainer *t, const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, const Backend *be,
                    Err *e) {
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    t->cli = cli;
    t->log = log;
    t->comm = comm;
    t->rank = comm ? comm_rank(comm) : 0;
    t->world = comm ? comm_world(comm) : 1;
    t->prior_acc = NAN;
    t->last_eval_acc = NAN;
    t->last_ckpt_step = t->last_eval_step = -1;
    t->loss_kind = cfg->train.loss == CFG_LOSS_SOFTMAX ? LOSS_SOFTMAX : LOSS_BCE;
    char rpath[4096];
    if (init_device(t, be, e) != 0 || open_run_dir(t, rpath, sizeof rpath, e) != 0 || load_data(t, e) != 0 ||
        init_model(t, e) != 0 || init_schedule(t, e) != 0)
        return -1;
    log_startup(t);
    if (rpath[0] && resume_from(t, rpath, e) != 0) return -1;
    return init_grad_sync(t, e);
}

void trainer_free(Trainer *t) {
    tdev_feed_free(&t->feed); /* hands its slots back: before the loader frees them */
    tdev_feed_free(&t->eval_feed);
    loader_close(t->train_loader);
    loader_close(t->eval_loader);
    if (t->rd_open) run_dir_close(&t->rd);
    optim_free(&t->opt);
    gsync_free(&t->gsync);
    if (t->model_ready) vqa_model_free(&t->model);
    prior_free(t->prior);
    ans_vocab_free(t->vocab);
    tok_free(t->tok);
    ds_free(&t->train_ds);
    if (t->have_eval || t->eval_ds.samples) ds_free(&t->eval_ds);
    arena_free(&t->arena);
    hostbuf_free(&t->logits_host);
    free(t->config_yaml);
    tdev_close(&t->dev); /* last: everything above may hold backend memory */
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ the loop */

static RunDir *rd_of(Trainer *t) { return t->rd_open ? &t->rd : NULL; }

/* Collective when world > 1 (the same-model check); rank 0 writes. */
static int save_checkpoint(Trainer *t, Err *e) {
    if (t->last_ckpt_step == t->st.step) return 0;
    if (t->world > 1) {
        /* rank 0's checkpoint must be the model every rank trained: same parameters (the
         * averaged gradients keep them equal) and BN statistics (averaged every step) */
        const ParamStore *ps = &t->model.ps;
        if (gsync_check_same(t->comm, t->be, ps->values, ps->n_values, "model parameters", e) != 0 ||
            gsync_check_same(t->comm, t->be, ps->buffers, ps->n_buffers, "BN running statistics", e) != 0)
            return err_prefix(e, "checkpoint at step %lld", (long long)t->st.step);
    }
    if (t->rank != 0) {
        t->last_ckpt_step = t->st.step;
        return 0;
    }
    double t0 = time_now();
    if (tstate_save(t->rd.ckpt_dir, &t->model.ps, &t->opt, &t->st, t->vocab, t->config_yaml, t->config_hash, t->last_ckpt,
                    sizeof t->last_ckpt, e) != 0)
        return -1;
    t->last_ckpt_step = t->st.step;
    if (t->st.best_step == t->st.step && ckpt_mark_best(t->rd.ckpt_dir, t->last_ckpt, e) != 0) return -1;
    if (ckpt_rotate(t->rd.ckpt_dir, t->cfg->checkpoint.keep_last, e) != 0) return -1;
    log_info(t->log, "checkpoint %s (%.2f s)%s", t->last_ckpt, time_now() - t0,
             t->st.best_step == t->st.step ? ", best so far" : "");
    return 0;
}

/* Evaluates on the eval split (sharded over the ranks, every rank gets the same result, so
 * best_acc/best_step stay equal on all ranks); rank 0 logs and records it; a new best is
 * checkpointed (by rank 0). Collective. */
static int run_eval(Trainer *t, EvalResult *keep, Err *e) {
    if (!t->have_eval) return 0;
    EvalResult r;
    if (evaluate(&t->model, t->eval_loader, &t->eval_feed, &t->eval_ds, t->vocab, t->loss_kind, &t->arena, t->comm, &r, e) != 0)
        return err_prefix(e, "evaluation at step %lld", (long long)t->st.step);
    if (tdev_check(&t->dev, e) != 0) {
        eval_result_free(&r);
        return err_prefix(e, "evaluation at step %lld", (long long)t->st.step);
    }
    t->last_eval_step = t->st.step;
    t->last_eval_acc = r.accuracy;
    int best = r.accuracy > t->st.best_acc;
    if (best) {
        t->st.best_acc = r.accuracy;
        t->st.best_step = t->st.step;
    }
    char types[512] = "";
    size_t off = 0;
    const char *names[24];
    char name_buf[16][48];
    double vals[24];
    int n = 0;
    names[n] = "loss", vals[n++] = r.loss;
    names[n] = "accuracy", vals[n++] = r.accuracy;
    names[n] = "target_score", vals[n++] = r.target_score;
    names[n] = "prior_accuracy", vals[n++] = t->prior_acc;
    names[n] = "best_accuracy", vals[n++] = t->st.best_acc;
    for (int i = 0; i < r.acc.n_answer_types && i < 16; i++) {
        const VqaAccGroup *g = &r.acc.answer_types[i];
        off += (size_t)snprintf(types + off, off < sizeof types ? sizeof types - off : 0, "%s%s %.2f", i ? ", " : "", g->name,
                                g->accuracy);
        /* "yes/no" -> accuracy_yes_no (a slash would nest TensorBoard tags) */
        snprintf(name_buf[i], sizeof name_buf[i], "accuracy_%s", g->name);
        for (char *c = name_buf[i]; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) *c = '_';
        names[n] = name_buf[i], vals[n++] = g->accuracy;
    }
    log_info(t->log, "eval step %lld: %s loss %.4f, VQA accuracy %.2f%% (%s) | answer prior %.2f%% | best %.2f%% at step %lld "
             "| %lld questions in %.1f s",
             (long long)t->st.step, setup_split_name(t->cfg->eval.split), r.loss, r.accuracy, types, t->prior_acc,
             t->st.best_acc, (long long)t->st.best_step, (long long)r.n, r.seconds);
    int rc = run_dir_record(rd_of(t), t->st.step, t->st.epoch, setup_split_name(t->cfg->eval.split), n, names, vals, e);
    if (rc == 0 && best && t->st.step > 0) rc = save_checkpoint(t, e);
    if (keep && rc == 0) {
        eval_result_free(keep);
        *keep = r;
    } else {
        eval_result_free(&r);
    }
    return rc;
}

typedef struct Window {
    double t0, wait0;
    int steps;
    int64_t samples;
    double loss_sum, score_sum;
    int64_t score_n;
} Window;

static void window_reset(Window *w, const Loader *l) {
    memset(w, 0, sizeof *w);
    w->t0 = time_now();
    w->wait0 = loader_stats(l).data_wait_s;
}

/* What the phases of trainer_run share. */
typedef struct RunLoop {
    int32_t *am;              /* [batch_size] arg-max answer of each row (host) */
    int A;                    /* answers */
    int use_scaler;           /* fp16: the loss scaler decides each step */
    int64_t per_global_batch; /* samples of one batch over all ranks */
    int need_start;           /* the loader must start the epoch st.epoch */
    double run_t0, eval_time; /* evaluation time does not count in the ETA */
    int64_t start_step;
    Window w;                 /* since the last logged step */
} RunLoop;

/* One optimizer step's results. */
typedef struct StepOut {
    double loss;          /* mean over the micro-batches and ranks */
    float lr;
    double gnorm;
    int64_t consumed_pos; /* sampler position after the step's last micro-batch */
} StepOut;

/* Forward, loss and backward of micro-batch mi of n_micro (the epoch's batch done_b + mi);
 * adds its loss to so->loss and its arg-max score to the window. */
static int train_micro_batch(Trainer *t, RunLoop *lp, int64_t done_b, int mi, int n_micro, float scale, StepOut *so,
                             Err *e) {
    VqaModel *m = &t->model;
    const int A = lp->A;
    /* on a device the batch after this one is uploaded during this one's forward /
     * backward, unless this is the epoch's last batch or the run's last */
    int prefetch = done_b + mi + 1 < t->batches_per_epoch && !(mi == n_micro - 1 && t->st.step + 1 >= t->total_steps);
    const TdevFeedSlot *fs;
    int k = tdev_feed_next(&t->feed, prefetch, &fs, e);
    if (k < 0) return -1;
    if (k == 0)
        return err_set(e, "train loader: the epoch ended early (batch %lld of %lld)", (long long)(done_b + mi),
                       (long long)t->batches_per_epoch);
    /* (a prefetched batch's bad images are reported with the batch before it) */
    char bad[1024];
    while (loader_pop_bad_report(t->train_loader, bad, sizeof bad)) log_warn(t->log, "bad image (zeroed): %s", bad);
    const Batch *b = fs->host, *v = &fs->view; /* v: images and targets in backend memory */
    arena_reset(&t->arena);
    float *logits, *dlogits;
    /* on an error the feed keeps the batch: tdev_feed_free (trainer_free) returns it */
    if (vqa_model_forward(m, v, 1, trainer_step_seed(t->st.seed, t->st.step, mi), &t->arena, &logits, e) != 0) return -1;
    if (!(dlogits = arena_floats(&t->arena, (size_t)b->size * A))) return err_set(e, "out of memory (arena)");
    /* the mean over the global batch's real rows: train_loss takes the mean over this
     * rank's n_real rows, the all-reduce then averages over ranks, so weigh by
     * n_real * world / (real rows of all ranks) — 1 except in a padded last batch,
     * where the ranks' real rows differ (3 + 2 of 5) */
    int64_t greal = fs->global_real;
    float wreal = greal > 0 ? (float)((double)b->n_real * t->world / (double)greal) : 0.0f;
    double l = train_loss(t->be, t->loss_kind, b->size, b->n_real, A, logits, v->targets, wreal / (float)n_micro, scale,
                          dlogits);
    so->loss += l;
    /* the arg-max on the host: one copy of the real rows' logits */
    const float *hl = tdev_host_floats(t->be, logits, (size_t)b->n_real * A, &t->logits_host);
    if (!hl) return err_set(e, "out of memory (host copy of the logits)");
    train_argmax(b->n_real, A, hl, lp->am);
    lp->w.score_sum += train_argmax_score(b->n_real, A, b->targets, lp->am);
    lp->w.score_n += b->n_real;
    lp->w.samples += (int64_t)b->n_real * t->world;
    gsync_begin(&t->gsync, mi == n_micro - 1); /* only the last micro-batch reduces */
    if (vqa_model_backward(m, dlogits, &t->arena, e) != 0) return -1;
    so->consumed_pos = fs->position;
    tdev_feed_done(&t->feed); /* after backward: nothing reads the batch any more */
    return 0;
}

/* The update from the averaged gradients: the loss scaler's check (fp16), clipping and
 * AdamW, then (several ranks) the BN statistics averaged. Collective. */
static int apply_update(Trainer *t, RunLoop *lp, StepOut *so, Err *e) {
    ParamStore *ps = &t->model.ps;
    if (!isfinite(so->loss) && !lp->use_scaler)
        return err_set(e, "step %lld: the loss is %g (lr %g): training diverged; lower train.lr or raise train.warmup_steps",
                       (long long)t->st.step, so->loss, (double)optim_lr(&t->opt));
    int skipped = 0;
    if (lp->use_scaler) {
        float old = t->st.scaler.scale;
        skipped = trainer_unscale_be(t->be, &t->st.scaler, ps->grads, ps->n_grads);
        if (skipped)
            log_warn(t->log, "step %lld: inf/NaN gradients at loss scale %g: step skipped, scale now %g (%lld skipped)",
                     (long long)t->st.step, (double)old, (double)t->st.scaler.scale, (long long)t->st.scaler.skipped);
    }
    OptimStepInfo os; /* clipping and AdamW on the backend's buffers: only the norm comes back */
    if (skipped)
        optim_skip(&t->opt, &os);
    else
        optim_step(t->be, &t->opt, ps->values, ps->grads, &os);
    so->lr = os.lr;
    so->gnorm = os.grad_norm;
    /* the first failed CUDA call of the step, with its file:line (no-op on the CPU) */
    if (tdev_check(&t->dev, e) != 0) return -1;
    /* several ranks, BN in train mode: each rank updated the running statistics from its
     * shard; average them (grad_sync.h says why not rank 0's alone) */
    if (t->world > 1 && t->model.image_trainable &&
        gsync_average_buffers(t->comm, t->be, ps->buffers, ps->n_buffers, e) != 0)
        return -1;
    return 0;
}

/* One optimizer step over the next min(left, grad_accum) batches of the epoch, of which
 * done_b are consumed: accumulated gradients, all-reduced (several ranks), applied.
 * Advances st (step, sampler position, epoch). Collective. */
static int train_step(Trainer *t, RunLoop *lp, int64_t done_b, int64_t left, StepOut *so, Err *e) {
    const Config *cfg = t->cfg;
    int n_micro = (int)(left < cfg->train.grad_accum ? left : cfg->train.grad_accum);
    float scale = lp->use_scaler ? t->st.scaler.scale : 1.0f;
    so->loss = 0;
    so->consumed_pos = t->st.sampler_pos;
    ps_zero_grads(&t->model.ps);
    for (int mi = 0; mi < n_micro; mi++)
        if (train_micro_batch(t, lp, done_b, mi, n_micro, scale, so, e) != 0) return -1;
    /* several ranks: wait for the averaged gradients; log the mean loss over ranks */
    if (gsync_finish(&t->gsync, e) != 0) return -1;
    if (t->world > 1 && comm_allreduce_f64(t->comm, &so->loss, 1, COMM_AVG, e) != 0) return -1;
    if (apply_update(t, lp, so, e) != 0) return -1;
    t->st.step++;
    t->st.sampler_pos = so->consumed_pos; /* what checkpoints save: consumed, not prefetched */
    if (t->st.sampler_pos >= t->batches_per_epoch * lp->per_global_batch) {
        t->st.epoch++;
        t->st.sampler_pos = 0;
        lp->need_start = 1;
    }
    lp->w.steps++;
    lp->w.loss_sum += so->loss;
    return 0;
}

/* Every log.every steps and at the last: the log line and the train metrics of the
 * window since the last one. */
static int log_step_if_due(Trainer *t, RunLoop *lp, const StepOut *so, Err *e) {
    if (!(t->st.step % t->cfg->log.every == 0 || t->st.step == t->total_steps)) return 0;
    Window *w = &lp->w;
    double now = time_now(), dt = now - w->t0;
    double wait = loader_stats(t->train_loader).data_wait_s - w->wait0;
    double sps = dt > 0 ? (double)w->samples / dt : 0;
    double per_step = (now - lp->run_t0 - lp->eval_time) / (double)(t->st.step - lp->start_step);
    char eta[32];
    fmt_duration(per_step * (double)(t->total_steps - t->st.step), eta, sizeof eta);
    double acc = w->score_n ? 100.0 * w->score_sum / (double)w->score_n : NAN;
    double avg = w->loss_sum / w->steps;
    /* a step that ended an epoch belongs to that epoch, not the next */
    log_info(t->log, "epoch %lld step %lld/%lld loss %.4f (avg %.4f) acc %.1f%% lr %.3g gnorm %.3f | %.0f samples/s, "
             "data wait %.0f%% | ETA %s",
             (long long)(t->st.sampler_pos == 0 && lp->need_start ? t->st.epoch - 1 : t->st.epoch), (long long)t->st.step,
             (long long)t->total_steps, so->loss, avg, acc, (double)so->lr, so->gnorm, sps, dt > 0 ? 100.0 * wait / dt : 0.0,
             eta);
    const char *names[] = {"loss", "loss_avg", "accuracy", "lr", "grad_norm", "samples_per_s", "data_wait_pct",
                           "loss_scale"};
    double vals[] = {so->loss, avg, acc, so->lr, so->gnorm, sps, dt > 0 ? 100.0 * wait / dt : 0.0, t->st.scaler.scale};
    if (run_dir_record(rd_of(t), t->st.step, t->st.epoch, "train", lp->use_scaler ? 8 : 7, names, vals, e) != 0) return -1;
    window_reset(w, t->train_loader);
    return 0;
}

/* Every eval.every steps, except the last step when eval.at_end evaluates it anyway.
 * Collective. */
static int eval_if_due(Trainer *t, RunLoop *lp, Err *e) {
    const Config *cfg = t->cfg;
    if (!(cfg->eval.every > 0 && t->st.step % cfg->eval.every == 0 && !(t->st.step == t->total_steps && cfg->eval.at_end)))
        return 0;
    double t0 = time_now();
    if (run_eval(t, NULL, e) != 0) return -1;
    lp->eval_time += time_now() - t0;
    lp->w.t0 += time_now() - t0; /* evaluation time is not training throughput */
    return 0;
}

/* Every checkpoint.every steps. Collective (save_checkpoint). */
static int checkpoint_if_due(Trainer *t, Err *e) {
    if (t->cfg->checkpoint.every > 0 && t->st.step % t->cfg->checkpoint.every == 0) return save_checkpoint(t, e);
    return 0;
}

/* The last line: steps, time, accuracies and where the run's files are. */
static void log_summary(Trainer *t, const RunLoop *lp) {
    const Config *cfg = t->cfg;
    char dur[32];
    fmt_duration(time_now() - lp->run_t0, dur, sizeof dur);
    if (t->st.best_acc >= 0)
        log_info(t->log, "done: %lld steps in %s; final %s VQA accuracy %.2f%%, best %.2f%% at step %lld (answer prior "
                 "%.2f%%); run folder %s: config.yaml, train.log, metrics.jsonl%s, checkpoints in %s (best.safetensors)",
                 (long long)t->st.step, dur, setup_split_name(cfg->eval.split), t->last_eval_acc, t->st.best_acc,
                 (long long)t->st.best_step, t->prior_acc, cfg->run.out_dir, t->rd.tb ? ", TensorBoard events" : "",
                 t->rd.ckpt_dir);
    else
        log_info(t->log, "done: %lld steps in %s; no evaluation; run folder %s, last checkpoint %s", (long long)t->st.step,
                 dur, cfg->run.out_dir, t->last_ckpt);
}

/* The end of the run: the final evaluation (eval.at_end, unless this step was just
 * evaluated), the last checkpoint, rank 0 writes the final predictions, the summary.
 * Collective. */
static int finish_run(Trainer *t, const RunLoop *lp, Err *e) {
    const Config *cfg = t->cfg;
    EvalResult last = {0};
    int rc = -1;
    if (cfg->eval.at_end && t->have_eval && t->last_eval_step != t->st.step && run_eval(t, &last, e) != 0) goto done;
    if (save_checkpoint(t, e) != 0) goto done;
    if (t->rank == 0 && last.preds) {
        char path[4200];
        snprintf(path, sizeof path, "%s/predictions_%s.json", cfg->run.out_dir, setup_split_name(cfg->eval.split));
        if (vqa_metric_write_results(path, &t->eval_ds, last.preds, e) != 0) goto done;
        log_info(t->log, "predictions of the last model on %s: %s", setup_split_name(cfg->eval.split), path);
    }
    log_summary(t, lp);
    rc = 0;
done:
    eval_result_free(&last);
    return rc;
}

int trainer_run(Trainer *t, Err *e) {
    const Config *cfg = t->cfg;
    RunLoop lp = {0};
    lp.A = ans_vocab_size(t->vocab);
    lp.use_scaler = cfg->train.precision == DT_F16;
    lp.per_global_batch = (int64_t)t->world * cfg->train.batch_size;
    if (!(lp.am = malloc(sizeof(int32_t) * (size_t)cfg->train.batch_size))) return err_set(e, "out of memory");
    lp.need_start = 1;
    lp.run_t0 = time_now();
    lp.start_step = t->st.step;
    window_reset(&lp.w, t->train_loader);
    int rc = -1;

    if (t->st.step >= t->total_steps)
        log_info(t->log, "step %lld >= %lld steps of the run: nothing left to train", (long long)t->st.step,
                 (long long)t->total_steps);
    while (t->st.step < t->total_steps) {
        if (lp.need_start) {
            tdev_feed_drop(&t->feed); /* nothing is prefetched across an epoch end; make sure */
            if (loader_start_epoch(t->train_loader, t->st.epoch, t->st.sampler_pos, e) != 0) goto done;
            lp.need_start = 0;
        }
        /* batches consumed by optimizer steps (the loader may have handed out one more: the
         * batch prefetched on a device) */
        int64_t done_b = t->st.sampler_pos / lp.per_global_batch;
        int64_t left = t->batches_per_epoch - done_b;
        if (left <= 0) { /* epoch over */
            t->st.epoch++;
            t->st.sampler_pos = 0;
            lp.need_start = 1;
            continue;
        }
        StepOut so;
        if (train_step(t, &lp, done_b, left, &so, e) != 0 || log_step_if_due(t, &lp, &so, e) != 0 ||
            eval_if_due(t, &lp, e) != 0 || checkpoint_if_due(t, e) != 0)
            goto done;
    }
    if (finish_run(t, &lp, e) != 0) goto done;
    rc = 0;
done:
    free(lp.am);
    return rc;
}
