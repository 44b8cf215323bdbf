/* cfg_keys.c: THE key table (see cfg_table.h) and lookups in it: exact find, sections,
 * and "did you mean" suggestions by edit distance. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config/cfg_table.h"

static const char *const device_names[] = {"auto", "cpu", "cuda", NULL};
static const char *const format_names[] = {"vqa2", "vizwiz", NULL};
static const char *const resize_names[] = {"shorter_crop", "direct", NULL};
static const char *const arch_names[] = {"resnet18", "resnet34", "resnet50", "resnet101", NULL};
static const char *const output_names[] = {"pooled", "grid", NULL};
static const char *const layout_names[] = {"auto", "nchw", "nhwc", NULL};
static const char *const text_arch_names[] = {"bert", NULL};
static const char *const pool_names[] = {"cls", "mean", NULL};
static const char *const fusion_names[] = {"concat", "mul", "attention", NULL};
static const char *const schedule_names[] = {"cosine", "linear", "constant", NULL};
/* train.precision is a DType: its names are indexed by the DType values */
static const char *const precision_names[] = {"fp32", "bf16", "fp16", NULL};
_Static_assert(DT_F32 == 0 && DT_BF16 == 1 && DT_F16 == 2, "precision_names follow DType");
static const char *const auto_on_off_names[] = {"auto", "on", "off", NULL};
static const char *const loss_names[] = {"bce", "softmax", NULL};
static const char *const split_names[] = {"train", "val", "test", NULL};
static const char *const dist_names[] = {"auto", "nccl", "mpi", "none", NULL};
static const char *const cpu_kernels_names[] = {"auto", "onednn", "reference", NULL}; /* CfgCpuKernels */

#define OFF(field) offsetof(Config, field)
#define BIG 1e12      /* "no practical upper bound" for step counts */
#define I32 2147483647.0
#define I64MAX 9.2e18

/* Shorthands: K(path, type, field, default, lo, hi, flags, names, doc) */
#define K(p, t, f, d, lo, hi, fl, nm, doc) {p, t, OFF(f), d, lo, hi, fl, nm, doc}
#define KS(p, f, d, fl, doc) K(p, CT_STR, f, d, 0, 0, fl, NULL, doc)
#define KE(p, f, d, nm, doc) K(p, CT_ENUM, f, d, 0, 0, 0, nm, doc)
#define KB(p, f, d, doc) K(p, CT_BOOL, f, d, 0, 1, 0, NULL, doc)

const CfgKey cfg_keys[] = {
    KS("run.name", run.name, "vqa", 0, "name of the run (logs, metrics)"),
    KS("run.out_dir", run.out_dir, "runs/vqa", 0,
       "run directory: resolved config, log, metrics.jsonl, TensorBoard events, checkpoints, predictions"),
    K("run.seed", CT_I64, run.seed, "42", 0, I64MAX, 0, NULL,
      "seed of everything random (initialization, sampler, dropout, augmentation)"),
    KE("device", device, "auto", device_names,
       "auto picks cuda when a GPU is usable, else cpu (its first log line says which and why); "
       "cuda without a usable GPU is an error"),

    KE("data.format", data.format, "vqa2", format_names,
       "vqa2: questions JSON + annotations JSON + image folder; vizwiz: one JSON with questions and answers"),
    KS("data.train.questions", data.train.questions, NULL, CF_NULLABLE | CF_IN_FILE,
       "training questions JSON (VizWiz: the JSON holding questions and answers)"),
    KS("data.train.annotations", data.train.annotations, NULL, CF_NULLABLE | CF_IN_FILE,
       "training annotations JSON (VQA v2; unused for VizWiz)"),
    KS("data.train.images", data.train.images, NULL, CF_NULLABLE | CF_IN_DIR,
       "folder of the training images"),
    KS("data.val.questions", data.val.questions, NULL, CF_NULLABLE | CF_IN_FILE,
       "validation questions JSON"),
    KS("data.val.annotations", data.val.annotations, NULL, CF_NULLABLE | CF_IN_FILE,
       "validation annotations JSON (VQA v2)"),
    KS("data.val.images", data.val.images, NULL, CF_NULLABLE | CF_IN_DIR,
       "folder of the validation images"),
    KS("data.test.questions", data.test.questions, NULL, CF_NULLABLE | CF_IN_FILE,
       "test questions JSON (prediction only; may have no answers)"),
    KS("data.test.annotations", data.test.annotations, NULL, CF_NULLABLE | CF_IN_FILE,
       "test annotations JSON, usually null"),
    KS("data.test.images", data.test.images, NULL, CF_NULLABLE | CF_IN_DIR,
       "folder of the test images"),
    KS("data.prepared", data.prepared, NULL, CF_NULLABLE | CF_IN_FILE,
       "vqa_prep file (pre-resized images + token ids, memory-mapped) used instead of the raw train/val files"),
    K("data.image_size", CT_INT, data.image_size, "224", 32, 4096, 0, NULL,
      "side of the square image fed to the image encoder (pixels)"),
    K("data.max_question_len", CT_INT, data.max_question_len, "20", 3, 4096, 0, NULL,
      "question length in tokens including [CLS] and [SEP] (padded/truncated)"),
    K("data.answers.min_count", CT_INT, data.answers.min_count, "9", 1, I32, 0, NULL,
      "an answer enters the vocabulary if it is the answer of at least this many questions"),
    K("data.answers.max_size", CT_INT, data.answers.max_size, "3129", 1, 1e7, 0, NULL,
      "at most this many answers (most frequent first)"),
    K("data.workers", CT_INT, data.workers, "4", 0, 256, 0, NULL,
      "loader threads (0 = load in the training thread)"),
    K("data.prefetch", CT_INT, data.prefetch, "4", 1, 1024, 0, NULL, "batches prepared ahead of the step"),
    K("data.max_bad_fraction", CT_FLOAT, data.max_bad_fraction, "0.001", 0, 1, 0, NULL,
      "fraction of corrupt/missing images skipped (and reported) before the run fails"),
    KE("data.resize", data.resize, "shorter_crop", resize_names,
       "shorter_crop: shorter side to image_size then centre crop; direct: stretch to image_size"),
    KB("data.augment.random_crop", data.augment.random_crop, "false",
       "random crop (scale 0.8-1) instead of the centre crop, training only"),
    KB("data.augment.hflip", data.augment.hflip, "false",
       "random horizontal flip, training only (changes the answer of left/right questions)"),
    K("data.augment.color_jitter", CT_FLOAT, data.augment.color_jitter, "0", 0, 1, 0, NULL,
      "brightness/contrast/saturation jitter strength (0 = off), training only"),
    KB("data.drop_last", data.drop_last, "true",
       "drop the last partial batch of each epoch (false: pad it with zero-weight rows)"),
    KS("data.synth.dir", data.synth.dir, NULL, CF_NULLABLE,
       "folder where vqa_synth writes the synthetic dataset if it is missing (null = no synthetic data); "
       "paths under it count as present"),
    K("data.synth.train_questions", CT_INT, data.synth.train_questions, "8000", 1, 1e8, 0, NULL,
      "synthetic training questions"),
    K("data.synth.val_questions", CT_INT, data.synth.val_questions, "2000", 1, 1e8, 0, NULL,
      "synthetic validation questions"),
    K("data.synth.seed", CT_I64, data.synth.seed, "1", 0, I64MAX, 0, NULL, "seed of the synthetic dataset"),
    K("data.synth.min_objects", CT_INT, data.synth.min_objects, "2", 1, 6, 0, NULL,
      "fewest objects in a synthetic scene"),
    K("data.synth.max_objects", CT_INT, data.synth.max_objects, "6", 1, 6, 0, NULL,
      "most objects in a synthetic scene (fewer = easier scenes)"),
    K("data.synth.min_radius", CT_INT, data.synth.min_radius, "0", 0, 256, 0, NULL,
      "smallest object half-size in pixels (0 = data.image_size * 6/64)"),
    K("data.synth.max_radius", CT_INT, data.synth.max_radius, "0", 0, 256, 0, NULL,
      "largest object half-size in pixels (0 = data.image_size * 9/64); larger objects keep their shape "
      "through the ResNet stem's 4x downsampling"),

    KE("model.image_encoder.arch", model.image_encoder.arch, "resnet50", arch_names,
       "torchvision ResNet depth"),
    K("model.image_encoder.width", CT_FLOAT, model.image_encoder.width, "1.0", 0, 8, CF_LO_OPEN, NULL,
      "channel multiplier (base width round(64 * width); 0.25 = 16 channels)"),
    KS("model.image_encoder.weights", model.image_encoder.weights, NULL, CF_NULLABLE | CF_IN_FILE,
       "safetensors file with torchvision names (null = random init)"),
    KS("model.image_encoder.weights_prefix", model.image_encoder.weights_prefix, "", CF_NULLABLE,
       "prefix of the tensor names in that file (e.g. \"backbone.\")"),
    K("model.image_encoder.freeze", CT_FREEZE, model.image_encoder.freeze, "all", 0, 0, 0, NULL,
      "all | none | list of stages left trainable: stem, conv1, bn1, layer1..layer4"),
    KE("model.image_encoder.output", model.image_encoder.output, "pooled", output_names,
       "pooled vector [B, C] (concat, mul) or the grid [B, C, h, w] (attention)"),
    K("model.image_encoder.stages", CT_INT, model.image_encoder.stages, "4", 1, 4, 0, NULL,
      "ResNet stages used: 4 = the whole network (1/32 of the input); 3 ends after layer3 (1/16, "
      "the conv4 features of CLEVR-style models), 2 after layer2 (1/8); later stages are not built"),
    KE("model.image_encoder.layout", model.image_encoder.layout, "auto", layout_names,
       "activation layout of the ResNet: nhwc (channels-last, cuDNN's and oneDNN's fast path) or nchw; "
       "auto = nhwc on a GPU with train.precision bf16/fp16 and on the CPU with the oneDNN kernels "
       "(train.cpu_kernels), else nchw; activations are stored in train.precision's type on a GPU "
       "(fp32 on the CPU; with the reference CPU kernels nhwc is allowed but slower)"),

    KE("model.text_encoder.arch", model.text_encoder.arch, "bert", text_arch_names,
       "Hugging Face BertModel"),
    K("model.text_encoder.layers", CT_INT, model.text_encoder.layers, "4", 1, 128, 0, NULL,
      "transformer layers"),
    K("model.text_encoder.hidden", CT_INT, model.text_encoder.hidden, "312", 1, 65536, 0, NULL,
      "hidden size (a multiple of heads)"),
    K("model.text_encoder.heads", CT_INT, model.text_encoder.heads, "12", 1, 1024, 0, NULL,
      "attention heads"),
    K("model.text_encoder.ffn", CT_INT, model.text_encoder.ffn, "1200", 1, 262144, 0, NULL,
      "feed-forward inner size"),
    KS("model.text_encoder.vocab", model.text_encoder.vocab, "vocab.txt", CF_IN_FILE,
       "WordPiece vocab.txt (uncased); its size sets the embedding rows"),
    K("model.text_encoder.max_positions", CT_INT, model.text_encoder.max_positions, "512", 1, 65536, 0,
      NULL, "position embeddings (>= data.max_question_len)"),
    K("model.text_encoder.type_vocab", CT_INT, model.text_encoder.type_vocab, "2", 1, 64, 0, NULL,
      "token-type embeddings"),
    K("model.text_encoder.dropout", CT_FLOAT, model.text_encoder.dropout, "0.1", 0, 1, CF_HI_OPEN, NULL,
      "hidden and attention dropout"),
    KS("model.text_encoder.weights", model.text_encoder.weights, NULL, CF_NULLABLE | CF_IN_FILE,
       "safetensors file with Hugging Face names (null = random init)"),
    KS("model.text_encoder.weights_prefix", model.text_encoder.weights_prefix, "", CF_NULLABLE,
       "prefix of the tensor names in that file (\"bert.\" for original TinyBERT checkpoints)"),
    K("model.text_encoder.freeze", CT_FREEZE, model.text_encoder.freeze, "none", 0, 0, 0, NULL,
      "all | none | list of parts left trainable: embeddings, layer0..layerN-1, pooler"),
    KE("model.text_encoder.pool", model.text_encoder.pool, "cls", pool_names,
       "question feature for the fusion: cls = BERT's pooler (tanh dense over [CLS], as HF), "
       "mean = mean of the last layer over the question's tokens (pooler unused and frozen)"),

    KE("model.fusion.type", model.fusion.type, "mul", fusion_names,
       "concat | mul (product of projections) | attention (question-guided, over the image grid)"),
    K("model.fusion.hidden", CT_INT, model.fusion.hidden, "1024", 1, 65536, 0, NULL,
      "fusion / classifier hidden size"),
    K("model.fusion.dropout", CT_FLOAT, model.fusion.dropout, "0.3", 0, 1, CF_HI_OPEN, NULL,
      "dropout before the classifier"),
    K("model.fusion.att_scale", CT_FLOAT, model.fusion.att_scale, "1.0", 0, 1000, CF_LO_OPEN, NULL,
      "attention fusion: scale of the attention scores before the softmax (1 = plain; larger "
      "sharpens the attention and speeds up its learning)"),
    KB("model.fusion.prior_bias", model.fusion.prior_bias, "false",
       "start the answer logits' bias at -log(answers - 1), i.e. every answer at probability "
       "1/answers (false = PyTorch's default init)"),
    K("model.num_answers", CT_INT, model.num_answers, "0", 0, 1e7, 0, NULL,
      "classifier outputs (0 = size of the answer vocabulary)"),

    K("train.epochs", CT_INT, train.epochs, "10", 0, 1e7, 0, NULL, "passes over the training set"),
    K("train.max_steps", CT_I64, train.max_steps, "0", 0, BIG, 0, NULL,
      "optimizer steps; 0 = from epochs (if both are set, the first reached ends the run)"),
    K("train.batch_size", CT_INT, train.batch_size, "64", 1, 1048576, 0, NULL,
      "samples per micro-batch per rank (global batch = batch_size x grad_accum x ranks)"),
    K("train.grad_accum", CT_INT, train.grad_accum, "1", 1, 65536, 0, NULL,
      "micro-batches per optimizer step"),
    K("train.lr", CT_FLOAT, train.lr, "1.0e-4", 0, 10, CF_LO_OPEN, NULL, "peak learning rate (AdamW)"),
    K("train.encoder_lr_mult", CT_FLOAT, train.encoder_lr_mult, "0.1", 0, 1000, 0, NULL,
      "learning-rate factor for the trainable parts of both encoders"),
    K("train.weight_decay", CT_FLOAT, train.weight_decay, "0.01", 0, 10, 0, NULL,
      "decoupled weight decay (not on biases and norms)"),
    K("train.adam_beta1", CT_FLOAT, train.adam_beta1, "0.9", 0, 1, CF_HI_OPEN, NULL, "AdamW beta1"),
    K("train.adam_beta2", CT_FLOAT, train.adam_beta2, "0.999", 0, 1, CF_HI_OPEN, NULL, "AdamW beta2"),
    K("train.adam_eps", CT_FLOAT, train.adam_eps, "1.0e-8", 0, 1, CF_LO_OPEN, NULL, "AdamW epsilon"),
    K("train.warmup_steps", CT_I64, train.warmup_steps, "500", 0, BIG, 0, NULL,
      "linear warm-up from 0 to lr"),
    KE("train.schedule", train.schedule, "cosine", schedule_names, "decay after warm-up, to 0 at the last step"),
    K("train.clip_grad_norm", CT_FLOAT, train.clip_grad_norm, "1.0", 0, 1e9, 0, NULL,
      "clip gradients to this global L2 norm (0 = off)"),
    KE("train.precision", train.precision, "bf16", precision_names,
       "fp32 | bf16 | fp16 (bf16/fp16 need device cuda; fp16 uses a dynamic loss scale)"),
    KE("train.loss", train.loss, "bce", loss_names,
       "bce: sigmoid BCE over soft targets (VQA standard); softmax: soft cross-entropy"),
    K("train.threads", CT_INT, train.threads, "0", 0, 4096, 0, NULL,
      "CPU threads for ops (0 = OMP_NUM_THREADS or the library default)"),
    KE("train.cpu_kernels", train.cpu_kernels, "auto", cpu_kernels_names,
       "device cpu: the image encoder's convolutions, batch-norm and max-pool on oneDNN (NCHW batch-norm "
       "and ReLU stay on the reference, which is as fast there) or all on the reference im2col kernels "
       "(auto: onednn when the build has it)"),
    K("train.loss_scale.init", CT_FLOAT, train.loss_scale.init, "65536", 1, 1e30, 0, NULL,
      "fp16: initial loss scale"),
    K("train.loss_scale.growth_interval", CT_INT, train.loss_scale.growth_interval, "2000", 1, I32, 0,
      NULL, "fp16: clean steps before the scale grows"),
    K("train.loss_scale.growth_factor", CT_FLOAT, train.loss_scale.growth_factor, "2.0", 1, 1000,
      CF_LO_OPEN, NULL, "fp16: growth factor"),
    K("train.loss_scale.backoff", CT_FLOAT, train.loss_scale.backoff, "0.5", 0, 1, CF_LO_OPEN | CF_HI_OPEN,
      NULL, "fp16: factor on inf/NaN (the step is skipped)"),

    K("eval.every", CT_I64, eval.every, "1000", 0, BIG, 0, NULL, "evaluate every N optimizer steps (0 = never)"),
    KE("eval.split", eval.split, "val", split_names, "split scored by periodic evaluation (needs answers)"),
    K("eval.batch_size", CT_INT, eval.batch_size, "0", 0, 1048576, 0, NULL,
      "evaluation batch per rank (0 = train.batch_size)"),
    KB("eval.at_end", eval.at_end, "true", "evaluate once more after the last step"),

    K("checkpoint.every", CT_I64, checkpoint.every, "1000", 0, BIG, 0, NULL,
      "write a checkpoint every N optimizer steps (0 = only at the end)"),
    K("checkpoint.keep_last", CT_INT, checkpoint.keep_last, "3", 0, 1e6, 0, NULL,
      "checkpoints kept (older ones deleted; 0 = keep all)"),
    KS("checkpoint.dir", checkpoint.dir, NULL, CF_NULLABLE, "checkpoint folder (null = out_dir/checkpoints)"),

    K("log.every", CT_I64, log.every, "20", 1, BIG, 0, NULL, "log and record metrics every N steps"),
    KB("log.all_ranks", log.all_ranks, "false", "progress lines from every rank, not only rank 0"),
    KB("log.tensorboard", log.tensorboard, "true", "write a TensorBoard event file in out_dir"),

    KE("dist.backend", dist.backend, "auto", dist_names,
       "gradient all-reduce: auto (nccl on GPU, mpi on CPU, none for one rank) | nccl | mpi | none"),
    K("dist.bucket_mb", CT_FLOAT, dist.bucket_mb, "25", 0, 65536, CF_LO_OPEN, NULL,
      "all-reduce bucket size in MiB"),
    KE("dist.comm_thread", dist.comm_thread, "auto", auto_on_off_names,
       "mpi backend: reduce the buckets on a thread of each rank, beside backward (auto: on when each rank "
       "has a core beyond its op threads)"),

    KE("predict.split", predict.split, "val", split_names, "split predicted by --predict CKPT"),
    KS("predict.out", predict.out, NULL, CF_NULLABLE,
       "predictions file, official VQA results format (null = out_dir/predictions_<split>.json)"),
};

const int cfg_n_keys = (int)(sizeof cfg_keys / sizeof cfg_keys[0]);
_Static_assert(sizeof cfg_keys / sizeof cfg_keys[0] <= CFG_MAX_KEYS, "raise CFG_MAX_KEYS");

int cfg_key_find(const char *path) {
    for (int i = 0; i < cfg_n_keys; i++)
        if (strcmp(cfg_keys[i].path, path) == 0) return i;
    return -1;
}

int cfg_is_section(const char *path) {
    size_t n = strlen(path);
    for (int i = 0; i < cfg_n_keys; i++)
        if (strncmp(cfg_keys[i].path, path, n) == 0 && cfg_keys[i].path[n] == '.') return 1;
    return 0;
}

/* Optimal string alignment distance (Levenshtein + adjacent transpositions), so that
 * "trian" is one edit from "train". Inputs are short key paths. */
static int osa_distance(const char *a, const char *b) {
    enum { M = 96 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= M || m >= M) return 1000;
    int d[M][M];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

/* Candidates are every key path and every section path (each prefix ending before a
 * '.'), compared whole, so both "train.batchsize" and "trian" find their match.
 * Close = at most 2 edits, or a third of the name for long names. */
int cfg_suggest(const char *path, char *out, size_t cap) {
    int best_d = 1 << 30;
    char cand[128];
    out[0] = '\0';
    for (int i = 0; i < cfg_n_keys; i++) {
        const char *p = cfg_keys[i].path;
        size_t len = strlen(p);
        /* the whole path, then each section prefix */
        for (size_t n = len;;) {
            if (n < sizeof cand) {
                memcpy(cand, p, n);
                cand[n] = '\0';
                int d = osa_distance(path, cand);
                if (d < best_d) {
                    best_d = d;
                    snprintf(out, cap, "%s", cand);
                }
            }
            const char *dot = NULL;
            for (size_t k = 0; k < n; k++)
                if (p[k] == '.') dot = p + k;
            if (!dot) break;
            n = (size_t)(dot - p);
        }
    }
    int limit = (int)strlen(path) / 3;
    if (limit < 2) limit = 2;
    if (best_d > limit) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}
