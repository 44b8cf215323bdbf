/* setup.c: shared start-up of training and prediction (setup.h). */
#include "train/setup.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "data/synth.h"
#include "io/atomic.h"

const char *setup_split_name(CfgSplit s) { return s == CFG_SPLIT_TRAIN ? "train" : s == CFG_SPLIT_VAL ? "val" : "test"; }

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int setup_synth(const Config *cfg, const Log *log, Err *e) {
    const char *dir = cfg->data.synth.dir;
    if (!dir || !*dir) return 0;
    char stamp_path[4200], want[256], have[256] = "";
    snprintf(stamp_path, sizeof stamp_path, "%s/synth.stamp", dir);
    snprintf(want, sizeof want, "vqa_synth train=%d val=%d size=%d seed=%lld objects=%d..%d radius=%d..%d\n",
             cfg->data.synth.train_questions, cfg->data.synth.val_questions, cfg->data.image_size,
             (long long)cfg->data.synth.seed, cfg->data.synth.min_objects, cfg->data.synth.max_objects,
             cfg->data.synth.min_radius, cfg->data.synth.max_radius);
    FILE *f = fopen(stamp_path, "r");
    if (f) {
        size_t n = fread(have, 1, sizeof have - 1, f);
        have[n] = '\0';
        fclose(f);
    }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/vocab.txt", dir);
    if (strcmp(have, want) == 0 && file_exists(probe)) return 0;
    log_info(log, "data: writing the synthetic dataset to %s (%d train / %d val questions, %dx%d images, seed %lld)%s",
             dir, cfg->data.synth.train_questions, cfg->data.synth.val_questions, cfg->data.image_size,
             cfg->data.image_size, (long long)cfg->data.synth.seed, have[0] ? ": settings changed" : "");
    SynthOpts o = {dir, cfg->data.synth.train_questions, cfg->data.synth.val_questions, cfg->data.image_size,
                   (uint64_t)cfg->data.synth.seed, cfg->data.synth.min_objects, cfg->data.synth.max_objects,
                   cfg->data.synth.min_radius, cfg->data.synth.max_radius};
    SynthStats st;
    if (synth_write(&o, &st, e) != 0) return err_prefix(e, "data.synth");
    log_info(log, "data: %lld questions, %lld images written in %.1f s", (long long)st.questions, (long long)st.images,
             st.seconds);
    /* the stamp last: an interrupted generation is redone on the next start */
    return atomic_write_file(stamp_path, want, strlen(want), e);
}

int setup_load_split(const Config *cfg, CfgSplit split, VqaDataset *ds, Err *e) {
    const CfgSplitPaths *p = split == CFG_SPLIT_TRAIN ? &cfg->data.train : split == CFG_SPLIT_VAL ? &cfg->data.val : &cfg->data.test;
    memset(ds, 0, sizeof *ds);
    if (!p->questions) return err_set(e, "data.%s.questions is null: the %s split is needed", setup_split_name(split), setup_split_name(split));
    if (ds_load(ds, (DatasetFormat)cfg->data.format, p->questions, p->annotations, p->images, e) != 0)
        return err_prefix(e, "data.%s", setup_split_name(split));
    return 0;
}

void setup_loader_opts(LoaderOpts *o, const Config *cfg, int train, int rank, int world) {
    loader_opts_default(o);
    o->batch_size = train || cfg->eval.batch_size <= 0 ? cfg->train.batch_size : cfg->eval.batch_size;
    o->rank = rank;
    o->world = world;
    o->seed = (uint64_t)cfg->run.seed;
    o->shuffle = train;
    o->drop_last = train ? cfg->data.drop_last : 0;
    o->image_size = cfg->data.image_size;
    o->max_len = cfg->data.max_question_len;
    o->resize = cfg->data.resize == CFG_RESIZE_DIRECT ? IMG_RESIZE_DIRECT : IMG_RESIZE_SHORTER_CROP;
    if (train) {
        o->augment.random_crop = cfg->data.augment.random_crop;
        o->augment.hflip = cfg->data.augment.hflip;
        o->augment.color_jitter = (float)cfg->data.augment.color_jitter;
    }
    o->workers = cfg->data.workers;
    o->prefetch = cfg->data.prefetch;
    o->max_bad_fraction = cfg->data.max_bad_fraction;
}

/* The model's FreezeSpec of the config's freeze key `key`: error, naming the key, for a list
 * longer than FREEZE_MAX_STAGES or a name longer than FREEZE_NAME_MAX - 1 characters. */
static int freeze_spec(const CfgFreeze *f, const char *key, FreezeSpec *out, Err *e) {
    memset(out, 0, sizeof *out);
    out->mode = f->mode == CFG_FREEZE_ALL ? FREEZE_ALL : f->mode == CFG_FREEZE_NONE ? FREEZE_NONE : FREEZE_LIST;
    if (out->mode != FREEZE_LIST) return 0;
    if (f->n > FREEZE_MAX_STAGES)
        return err_set(e, "%s: %d stages listed, at most %d fit", key, f->n, FREEZE_MAX_STAGES);
    for (int i = 0; i < f->n; i++) {
        size_t len = strlen(f->trainable[i]);
        if (len >= sizeof out->stage[i])
            return err_set(e, "%s: \"%s\" is longer than %d characters", key, f->trainable[i], FREEZE_NAME_MAX - 1);
        memcpy(out->stage[i], f->trainable[i], len + 1);
    }
    out->n = f->n;
    return 0;
}

int setup_model_config(const Config *cfg, int n_answers, int tok_vocab, int pad_id, VqaModelConfig *mc, Err *e) {
    if (cfg->model.num_answers > 0 && cfg->model.num_answers != n_answers)
        return err_set(e, "model.num_answers: %d, but the answer vocabulary has %d answers (set 0 to follow it)",
                       cfg->model.num_answers, n_answers);
    vqa_model_config_default(mc, n_answers);
    const __typeof__(cfg->model.image_encoder) *ie = &cfg->model.image_encoder;
    const __typeof__(cfg->model.text_encoder) *te = &cfg->model.text_encoder;
    mc->image_depth = cfg_arch_depth(ie->arch);
    mc->image_width = (float)ie->width;
    snprintf(mc->image_weights, sizeof mc->image_weights, "%s", ie->weights ? ie->weights : "");
    snprintf(mc->image_weights_prefix, sizeof mc->image_weights_prefix, "%s", ie->weights_prefix ? ie->weights_prefix : "");
    if (freeze_spec(&ie->freeze, "model.image_encoder.freeze", &mc->image_freeze, e) != 0) return -1;
    mc->image_grid = ie->output == CFG_OUTPUT_GRID;
    mc->image_stages = ie->stages;
    mc->text.layers = te->layers;
    mc->text.hidden = te->hidden;
    mc->text.heads = te->heads;
    mc->text.ffn = te->ffn;
    mc->text.vocab = tok_vocab;
    mc->text.max_positions = te->max_positions;
    mc->text.type_vocab = te->type_vocab;
    mc->text.pad_token_id = pad_id;
    mc->text.dropout = (float)te->dropout;
    snprintf(mc->text_weights, sizeof mc->text_weights, "%s", te->weights ? te->weights : "");
    snprintf(mc->text_weights_prefix, sizeof mc->text_weights_prefix, "%s", te->weights_prefix ? te->weights_prefix : "");
    if (freeze_spec(&te->freeze, "model.text_encoder.freeze", &mc->text_freeze, e) != 0) return -1;
    mc->text_mean_pool = te->pool == CFG_POOL_MEAN;
    mc->fusion_type = (FusionType)cfg->model.fusion.type;
    mc->fusion_hidden = cfg->model.fusion.hidden;
    mc->fusion_dropout = (float)cfg->model.fusion.dropout;
    mc->fusion_att_scale = (float)cfg->model.fusion.att_scale;
    mc->fusion_prior_bias = cfg->model.fusion.prior_bias;
    mc->seed = (uint64_t)cfg->run.seed;
    if (cfg->data.max_question_len > te->max_positions)
        return err_set(e, "data.max_question_len %d exceeds model.text_encoder.max_positions %d", cfg->data.max_question_len,
                       te->max_positions);
    return 0;
}

void setup_optim_options(const Config *cfg, int64_t total_steps, OptimOptions *oo) {
    const CfgSchedule k = cfg->train.schedule;
    *oo = (OptimOptions){
        .lr = (float)cfg->train.lr,
        .schedule = k == CFG_SCHED_COSINE ? SCHED_COSINE : k == CFG_SCHED_LINEAR ? SCHED_LINEAR : SCHED_CONSTANT,
        .warmup_steps = cfg->train.warmup_steps,
        .total_steps = total_steps,
        .beta1 = (float)cfg->train.adam_beta1,
        .beta2 = (float)cfg->train.adam_beta2,
        .eps = (float)cfg->train.adam_eps,
        .weight_decay = (float)cfg->train.weight_decay,
        .clip_norm = cfg->train.clip_grad_norm > 0 ? (float)cfg->train.clip_grad_norm : 0.0f,
    };
}
