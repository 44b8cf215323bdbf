/* vqa_prep.c: writes the prepared dataset file(s) of a config (see data/prep.h):
 *   vqa_prep CFG [--split train|val|all] [--jpeg-quality Q] [--threads N] [--set KEY=VALUE]...
 * One file per split, named by data.prepared (prep_split_path: "{split}" replaced, or the
 * split inserted before the extension). Images are resized to data.image_size with
 * data.resize, questions tokenized with model.text_encoder.vocab to data.max_question_len,
 * targets made with the answer vocabulary of the train split (data.answers), which the
 * file stores so the trainer can check (or take) it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "data/answers.h"
#include "data/dataset.h"
#include "data/prep.h"
#include "data/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vqa_prep CFG [--split train|val|all] [--jpeg-quality Q] [--threads N] [--set KEY=VALUE]...\n"
               "  writes data.prepared for each split (\"{split}\" in it is replaced by the split name,\n"
               "  else the name goes before the extension); Q = 0 (default) stores raw pixels,\n"
               "  1..100 stores JPEGs at that quality (smaller file, decoded each epoch)\n");
}

static void print_bad(void *ctx, const char *msg) {
    long *n = ctx;
    if (++*n <= 20) fprintf(stderr, "vqa_prep: bad image (stored as zeros): %s\n", msg);
    else if (*n == 21) fprintf(stderr, "vqa_prep: more bad images; not listing them\n");
}

static int load_split(const Config *cfg, const CfgSplitPaths *p, const char *name, VqaDataset *ds, Err *err) {
    if (!p->questions)
        return err_set(err, "data.%s.questions is not set in the config", name);
    if (ds_load(ds, (DatasetFormat)cfg->data.format, p->questions, p->annotations, p->images, err) != 0)
        return err_prefix(err, "data.%s", name);
    return 0;
}

/* The command line, parsed. */
typedef struct PrepArgs {
    const char *cfg_path, *split;
    int quality, threads; /* threads 0: data.workers */
    char **sets;          /* [argc] owned by main: the --set values */
    int nsets;
    int do_train, do_val;
} PrepArgs;

/* The inputs every split shares; inputs_free releases them. */
typedef struct PrepInputs {
    VqaDataset train, val;
    Tokenizer *tok;
    AnswerVocab *vocab; /* NULL when the train split has no answers */
} PrepInputs;

/* One "--name value" option; 0, or -1 with the message printed. */
static int parse_option(PrepArgs *a, const char *opt, const char *v) {
    char *end;
    if (!strcmp(opt, "--split")) {
        a->split = v;
    } else if (!strcmp(opt, "--jpeg-quality")) {
        long q = strtol(v, &end, 10);
        if (*end || end == v || q < 0 || q > 100) {
            fprintf(stderr, "vqa_prep: --jpeg-quality expects 0..100, got \"%s\"\n", v);
            return -1;
        }
        a->quality = (int)q;
    } else if (!strcmp(opt, "--threads")) {
        long t = strtol(v, &end, 10);
        if (*end || end == v || t < 1 || t > 256) {
            fprintf(stderr, "vqa_prep: --threads expects 1..256, got \"%s\"\n", v);
            return -1;
        }
        a->threads = (int)t;
    } else if (!strcmp(opt, "--set")) {
        a->sets[a->nsets++] = (char *)v;
    } else {
        fprintf(stderr, "vqa_prep: unknown option %s\n", opt);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* a->sets must hold argc entries. 0: go on; 1: help printed (exit 0); -1: error printed (exit 1). */
static int parse_args(int argc, char **argv, PrepArgs *a) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout);
            return 1;
        }
        if (s[0] == '-' && s[1] == '-') {
            if (i + 1 >= argc) {
                fprintf(stderr, "vqa_prep: %s needs a value\n", s);
                return -1;
            }
            if (parse_option(a, s, argv[++i]) != 0) return -1;
        } else if (!a->cfg_path) {
            a->cfg_path = s;
        } else {
            fprintf(stderr, "vqa_prep: unexpected argument %s\n", s);
            return -1;
        }
    }
    if (!a->cfg_path) {
        usage(stderr);
        return -1;
    }
    a->do_train = !strcmp(a->split, "train") || !strcmp(a->split, "all");
    a->do_val = !strcmp(a->split, "val") || !strcmp(a->split, "all");
    if (!a->do_train && !a->do_val) {
        fprintf(stderr, "vqa_prep: --split expects train, val or all, got \"%s\"\n", a->split);
        return -1;
    }
    return 0;
}

/* The keys vqa_prep needs that the config may leave unset; 0, or -1 with the message printed. */
static int check_config(const Config *cfg, const char *cfg_path) {
    if (!cfg->data.prepared || !*cfg->data.prepared) {
        fprintf(stderr, "vqa_prep: %s: data.prepared is not set: it names the output file "
                        "(e.g. --set data.prepared=prep/demo.{split}.bin)\n", cfg_path);
        return -1;
    }
    if (!cfg->model.text_encoder.vocab) {
        fprintf(stderr, "vqa_prep: %s: model.text_encoder.vocab is not set\n", cfg_path);
        return -1;
    }
    return 0;
}

/* Tokenizer, train split, its answer vocabulary, then (if asked for) the val split.
 * The answer vocabulary always comes from the train split. */
static int load_inputs(const Config *cfg, int do_val, PrepInputs *in) {
    Err err;
    if (tok_load(&in->tok, cfg->model.text_encoder.vocab, &err) != 0) {
        fprintf(stderr, "vqa_prep: model.text_encoder.vocab: %s\n", err.msg);
        return -1;
    }
    if (load_split(cfg, &cfg->data.train, "train", &in->train, &err) != 0) {
        fprintf(stderr, "vqa_prep: %s\n", err.msg);
        return -1;
    }
    if (in->train.has_answers) {
        const VqaDataset *splits[1] = {&in->train};
        if (ans_vocab_build(&in->vocab, splits, 1, cfg->data.answers.min_count, cfg->data.answers.max_size,
                            &err) != 0) {
            fprintf(stderr, "vqa_prep: answer vocabulary: %s\n", err.msg);
            return -1;
        }
    }
    if (do_val && load_split(cfg, &cfg->data.val, "val", &in->val, &err) != 0) {
        fprintf(stderr, "vqa_prep: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void inputs_free(PrepInputs *in) {
    ans_vocab_free(in->vocab);
    tok_free(in->tok);
    if (in->train.samples) ds_free(&in->train);
    if (in->val.samples) ds_free(&in->val);
}

/* One split's file; removed again when more of its images are bad than data.max_bad_fraction. */
static int write_split(const Config *cfg, const PrepInputs *in, const char *name, const VqaDataset *ds,
                       const PrepOpts *po) {
    char path[4096];
    prep_split_path(cfg->data.prepared, name, path, sizeof path);
    long nbad = 0;
    PrepStats st;
    Err err;
    if (prep_write(path, ds, in->tok, ds->has_answers ? in->vocab : NULL, po, print_bad, &nbad, &st, &err) != 0) {
        fprintf(stderr, "vqa_prep: %s\n", err.msg);
        return -1;
    }
    if ((double)st.bad_images > cfg->data.max_bad_fraction * (double)st.n_images) {
        fprintf(stderr, "vqa_prep: %s: %lld of %lld images are bad, over data.max_bad_fraction %g; "
                        "%s not kept\n", name, (long long)st.bad_images, (long long)st.n_images,
                cfg->data.max_bad_fraction, path);
        remove(path);
        return -1;
    }
    printf("vqa_prep: %s: %s, %lld questions, %lld images (%d bad), %.1f MiB, %dx%d %s, "
           "%.1f s, %.0f images/s (%d threads)\n",
           name, path, (long long)st.n_samples, (long long)st.n_images, (int)st.bad_images,
           (double)st.file_bytes / 1048576.0, po->image_size, po->image_size,
           po->jpeg_quality ? "jpeg" : "raw", st.seconds, st.seconds > 0 ? (double)st.n_images / st.seconds : 0.0,
           po->threads);
    return 0;
}

/* The asked-for splits in order (train, then val), with the config's image and text settings. */
static int write_splits(const Config *cfg, const PrepArgs *a, const PrepInputs *in) {
    PrepOpts po = {cfg->data.image_size, cfg->data.max_question_len,
                   cfg->data.resize == CFG_RESIZE_DIRECT ? IMG_RESIZE_DIRECT : IMG_RESIZE_SHORTER_CROP,
                   a->quality, a->threads ? a->threads : (cfg->data.workers > 0 ? cfg->data.workers : 1)};
    if (a->do_train && write_split(cfg, in, "train", &in->train, &po) != 0) return -1;
    if (a->do_val && write_split(cfg, in, "val", &in->val, &po) != 0) return -1;
    return 0;
}

int main(int argc, char **argv) {
    PrepArgs a;
    memset(&a, 0, sizeof a);
    a.split = "all";
    a.sets = calloc((size_t)argc, sizeof(char *));
    if (!a.sets) {
        fprintf(stderr, "vqa_prep: out of memory\n");
        return 1;
    }
    int prc = parse_args(argc, argv, &a);
    if (prc != 0) {
        free(a.sets);
        return prc > 0 ? 0 : 1;
    }
    Config cfg;
    Err err;
    if (cfg_load(&cfg, a.cfg_path, a.sets, a.nsets, &err) != 0) {
        fprintf(stderr, "vqa_prep: %s\n", err.msg);
        free(a.sets);
        return 1;
    }
    PrepInputs in;
    memset(&in, 0, sizeof in);
    int rc = 1;
    if (check_config(&cfg, a.cfg_path) == 0 && load_inputs(&cfg, a.do_val, &in) == 0 &&
        write_splits(&cfg, &a, &in) == 0)
        rc = 0;
    inputs_free(&in);
    cfg_free(&cfg);
    free(a.sets);
    return rc;
}
