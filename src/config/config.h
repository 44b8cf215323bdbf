/* config.h: the typed run configuration (YAML), with a default for every key.
 *
 * One key table (cfg_keys.c) drives everything: defaults, YAML loading, `--set a.b=c`
 * overrides, range and enum checks, "did you mean" suggestions, the YAML dump of
 * `vqa_train --dry-run`, the hash stored in checkpoints, and the key list of
 * configs/README.md (`vqa_train --print-keys`). Adding a key = one struct field + one
 * table row + one line in configs/README.md (a test checks the last one).
 *
 * Ownership: strings are owned (char *, NULL = YAML null); lists are char ** + count.
 * cfg_defaults / cfg_load initialize a Config; cfg_free releases it (idempotent).
 * Paths in a config are used as written: relative paths are relative to the working
 * directory of the process, not to the config file. */
#ifndef VQA_CONFIG_H
#define VQA_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "ops/tensor.h" /* DType */
#include "util/err.h"

/* Enum orders match the other modules' enums where one exists (DatasetFormat in
 * data/dataset.h, FusionType in model/fusion.h) so a cast converts them. */
typedef enum CfgDevice { CFG_DEVICE_AUTO = 0, CFG_DEVICE_CPU = 1, CFG_DEVICE_CUDA = 2 } CfgDevice;
typedef enum CfgFormat { CFG_FORMAT_VQA2 = 0, CFG_FORMAT_VIZWIZ = 1 } CfgFormat;
typedef enum CfgResize { CFG_RESIZE_SHORTER_CROP = 0, CFG_RESIZE_DIRECT = 1 } CfgResize;
typedef enum CfgArch {
    CFG_ARCH_RESNET18 = 0, CFG_ARCH_RESNET34 = 1, CFG_ARCH_RESNET50 = 2, CFG_ARCH_RESNET101 = 3
} CfgArch;
typedef enum CfgOutput { CFG_OUTPUT_POOLED = 0, CFG_OUTPUT_GRID = 1 } CfgOutput;
/* image encoder activation layout (ops.h ActFmt): auto = nhwc on a GPU with bf16/fp16, else nchw */
typedef enum CfgLayout { CFG_LAYOUT_AUTO = 0, CFG_LAYOUT_NCHW = 1, CFG_LAYOUT_NHWC = 2 } CfgLayout;
typedef enum CfgTextArch { CFG_TEXT_BERT = 0 } CfgTextArch;
typedef enum CfgTextPool { CFG_POOL_CLS = 0, CFG_POOL_MEAN = 1 } CfgTextPool;
typedef enum CfgFusion { CFG_FUSION_CONCAT = 0, CFG_FUSION_MUL = 1, CFG_FUSION_ATTENTION = 2 } CfgFusion;
typedef enum CfgSchedule { CFG_SCHED_COSINE = 0, CFG_SCHED_LINEAR = 1, CFG_SCHED_CONSTANT = 2 } CfgSchedule;
typedef enum CfgLoss { CFG_LOSS_BCE = 0, CFG_LOSS_SOFTMAX = 1 } CfgLoss;
typedef enum CfgSplit { CFG_SPLIT_TRAIN = 0, CFG_SPLIT_VAL = 1, CFG_SPLIT_TEST = 2 } CfgSplit;
typedef enum CfgDistBackend {
    CFG_DIST_AUTO = 0, CFG_DIST_NCCL = 1, CFG_DIST_MPI = 2, CFG_DIST_NONE = 3
} CfgDistBackend;

/* freeze: all | none | [stage, ...] (the stages LEFT TRAINABLE, everything else frozen).
 * ResNet stages: stem, conv1, bn1, layer1..layer4; BERT: embeddings, layer0..layerN-1, pooler. */
typedef enum CfgAutoOnOff { CFG_AOO_AUTO = 0, CFG_AOO_ON = 1, CFG_AOO_OFF = 2 } CfgAutoOnOff;
/* train.cpu_kernels: the image encoder's ops on the CPU (auto: onednn when built in) */
typedef enum CfgCpuKernels { CFG_CPUK_AUTO = 0, CFG_CPUK_ONEDNN = 1, CFG_CPUK_REFERENCE = 2 } CfgCpuKernels;
typedef enum CfgFreezeMode { CFG_FREEZE_ALL = 0, CFG_FREEZE_NONE = 1, CFG_FREEZE_LIST = 2 } CfgFreezeMode;
typedef struct CfgFreeze {
    CfgFreezeMode mode;
    char **trainable;   /* mode LIST: owned names */
    int n;
} CfgFreeze;

typedef struct CfgSplitPaths {
    char *questions;    /* VQA v2 questions JSON, or the VizWiz JSON (questions + answers) */
    char *annotations;  /* VQA v2 annotations JSON; NULL for a split without answers / VizWiz */
    char *images;       /* folder of the image files */
} CfgSplitPaths;

/* Where a key got its value, for messages of checks that run after loading. */
typedef struct CfgLoc {
    int line, col;      /* 1-based position in Config.source; 0 = not from the file */
    int from_set;       /* set by --set (then line/col are 0) */
} CfgLoc;

#define CFG_MAX_KEYS 160

typedef struct Config {
    struct { char *name; char *out_dir; int64_t seed; } run;
    CfgDevice device;
    struct {
        CfgFormat format;
        CfgSplitPaths train, val, test;
        char *prepared;            /* vqa_prep file used instead of the raw train/val files */
        int image_size;            /* H = W fed to the image encoder */
        int max_question_len;      /* L, including [CLS] and [SEP] */
        struct { int min_count, max_size; } answers;
        int workers;               /* loader threads */
        int prefetch;              /* batches decoded ahead */
        double max_bad_fraction;   /* corrupt/missing images tolerated before failing */
        CfgResize resize;
        struct { int random_crop; int hflip; double color_jitter; } augment;
        int drop_last;             /* drop the last partial batch of an epoch (else pad) */
        struct {
            char *dir;
            int train_questions, val_questions;
            int64_t seed;
            int min_objects, max_objects;
            int min_radius, max_radius;  /* pixels; 0 = 6/64 and 9/64 of data.image_size */
        } synth;
    } data;
    struct {
        struct {
            CfgArch arch;
            double width;          /* channel multiplier: base width round(64 * width) */
            char *weights;         /* safetensors file or NULL (random init) */
            char *weights_prefix;  /* prefix of the tensor names in that file */
            CfgFreeze freeze;
            CfgOutput output;      /* pooled [B, C] or grid [B, C, h, w] */
            int stages;            /* 1..4 ResNet stages built (4 = all) */
            CfgLayout layout;      /* activation layout (the storage type follows train.precision) */
        } image_encoder;
        struct {
            CfgTextArch arch;
            int layers, hidden, heads, ffn;
            char *vocab;           /* WordPiece vocab.txt */
            int max_positions, type_vocab;
            double dropout;
            char *weights, *weights_prefix;
            CfgFreeze freeze;
            CfgTextPool pool;      /* the question feature: BERT's pooler ([CLS]) or the token mean */
        } text_encoder;
        struct { CfgFusion type; int hidden; double dropout; double att_scale; int prior_bias; } fusion;
        int num_answers;           /* 0 = size of the answer vocabulary */
    } model;
    struct {
        int epochs;
        int64_t max_steps;         /* 0 = epochs decide */
        int batch_size;            /* per rank, per micro-batch */
        int grad_accum;
        double lr, encoder_lr_mult, weight_decay, adam_beta1, adam_beta2, adam_eps;
        int64_t warmup_steps;
        CfgSchedule schedule;
        double clip_grad_norm;     /* 0 = off */
        DType precision;           /* DT_F32, DT_BF16 or DT_F16: the backend's precision */
        CfgLoss loss;
        int threads;               /* 0 = OMP_NUM_THREADS / library default */
        CfgCpuKernels cpu_kernels; /* device cpu: oneDNN or the reference for the image encoder */
        struct { double init; int growth_interval; double growth_factor, backoff; } loss_scale;
    } train;
    struct { int64_t every; CfgSplit split; int batch_size; int at_end; } eval;
    struct { int64_t every; int keep_last; char *dir; } checkpoint;
    struct { int64_t every; int all_ranks; int tensorboard; } log;
    struct { CfgDistBackend backend; double bucket_mb; CfgAutoOnOff comm_thread; } dist;
    struct { CfgSplit split; char *out; } predict;

    /* Not keys: where the values came from (for messages). */
    char *source;              /* config file path (owned), NULL if none */
    CfgLoc loc[CFG_MAX_KEYS];  /* indexed like the key table */
} Config;

/* Every key at its default (never fails: a unit test checks every default). */
void cfg_defaults(Config *cfg);
void cfg_free(Config *cfg);

/* Defaults, then the YAML file at path (may be NULL), then each "a.b=c" of sets in order,
 * then cfg_validate. Errors: "FILE:LINE:COL: key.path: what was expected" (YAML syntax,
 * unknown keys with a suggestion, wrong types, out-of-range numbers, bad enum values,
 * duplicate keys) or "--set K=V: ..." On failure cfg is freed (cfg_free is still safe). */
int cfg_load(Config *cfg, const char *path, char **sets, int nsets, Err *err);
/* The same from YAML text in memory (e.g. the config stored in a checkpoint); name is
 * what messages call it. */
int cfg_load_string(Config *cfg, const char *yaml, const char *name, char **sets, int nsets,
                    Err *err);
/* One override "a.b.c=VALUE" on an initialized config; VALUE is a YAML scalar or flow
 * collection ("1e-3", "[layer4]", "{questions: q.json, ...}", "" or "null" for null). */
int cfg_apply_set(Config *cfg, const char *kv, Err *err);

/* Cross-key checks (ranges again, required keys, conflicting options). Messages name
 * the key and where it was set. */
int cfg_validate(const Config *cfg, Err *err);
/* Checks that hold once the device is known (device: auto resolved to cpu or cuda):
 * reduced precision and NCCL need cuda. */
int cfg_validate_device(const Config *cfg, CfgDevice resolved, Err *err);
/* Input files and folders that do not exist, one "key: path: reason" line each in err.
 * Returns how many are missing (0 = all present). Paths under data.synth.dir count as
 * present (generated on first run); raw train/val files are not needed when
 * data.prepared is set. */
int cfg_check_files(const Config *cfg, Err *err);
/* Advice that is not an error (e.g. a frozen encoder with random weights), one line each
 * in buf. Returns the number of lines. */
int cfg_warnings(const Config *cfg, char *buf, size_t cap);

/* The whole config as YAML that cfg_load reads back to an equal Config. */
int cfg_dump(const Config *cfg, FILE *f);
/* The same into a malloc'ed string (caller frees); NULL on allocation failure. */
char *cfg_dump_string(const Config *cfg);
/* 64-bit FNV-1a of cfg_dump's text: equal configs hash equal. */
uint64_t cfg_hash(const Config *cfg);
/* 1 if every key has the same value in a and b. */
int cfg_equal(const Config *a, const Config *b);
/* configs/README.md's key table (markdown), one row per key, from the key table. */
void cfg_print_keys(FILE *f);

/* Helpers for the modules that consume the config. */
int cfg_arch_depth(CfgArch a);                      /* 18, 34, 50, 101 */
const char *cfg_enum_name(const Config *cfg, const char *key_path); /* e.g. "bf16" */
/* "all" | "none" | "layer3, layer4": the names joined by ", ", without brackets. */
void cfg_freeze_string(const CfgFreeze *f, char *buf, size_t cap);
/* Where key_path was set: "FILE:LINE:COL", "--set", or "FILE" when it has its default. */
void cfg_where(const Config *cfg, const char *key_path, char *buf, size_t cap);

#endif
