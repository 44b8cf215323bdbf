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

int main(int argc, char **argv) {
    const char *cfg_path = NULL, *split = "all";
    int quality = 0, threads = 0;
    char **sets = calloc((size_t)argc, sizeof(char *));
    int nsets = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(sets);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) {
                fprintf(stderr, "vqa_prep: %s needs a value\n", a);
                free(sets);
                return 1;
            }
            const char *v = argv[++i];
            char *end;
            if (!strcmp(a, "--split")) {
                split = v;
            } else if (!strcmp(a, "--jpeg-quality")) {
                long q = strtol(v, &end, 10);
                if (*end || end == v || q < 0 || q > 100) {
                    fprintf(stderr, "vqa_prep: --jpeg-quality expects 0..100, got \"%s\"\n", v);
                    free(sets);
                    return 1;
                }
                quality = (int)q;
            } else if (!strcmp(a, "--threads")) {
                long t = strtol(v, &end, 10);
                if (*end || end == v || t < 1 || t > 256) {
                    fprintf(stderr, "vqa_prep: --threads expects 1..256, got \"%s\"\n", v);
                    free(sets);
                    return 1;
                }
                threads = (int)t;
            } else if (!strcmp(a, "--set")) {
                sets[nsets++] = (char *)v;
            } else {
                fprintf(stderr, "vqa_prep: unknown option %s\n", a);
                usage(stderr);
                free(sets);
                return 1;
            }
        } else if (!cfg_path) {
            cfg_path = a;
        } else {
            fprintf(stderr, "vqa_prep: unexpected argument %s\n", a);
            free(sets);
            return 1;
        }
    }
    if (!cfg_path) {
        usage(stderr);
        free(sets);
        return 1;
    }
    int do_train = !strcmp(split, "train") || !strcmp(split, "all");
    int do_val = !strcmp(split, "val") || !strcmp(split, "all");
    if (!do_train && !do_val) {
        fprintf(stderr, "vqa_prep: --split expects train, val or all, got \"%s\"\n", split);
        free(sets);
        return 1;
    }

    Config cfg;
    Err err;
    int rc = 1;
    VqaDataset train, val;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    Tokenizer *tok = NULL;
    AnswerVocab *vocab = NULL;
    if (cfg_load(&cfg, cfg_path, sets, nsets, &err) != 0) {
        fprintf(stderr, "vqa_prep: %s\n", err.msg);
        free(sets);
        return 1;
    }
    if (!cfg.data.prepared || !*cfg.data.prepared) {
        fprintf(stderr, "vqa_prep: %s: data.prepared is not set: it names the output file "
                        "(e.g. --set data.prepared=prep/demo.{split}.bin)\n", cfg_path);
        goto done;
    }
    if (!cfg.model.text_encoder.vocab) {
        fprintf(stderr, "vqa_prep: %s: model.text_encoder.vocab is not set\n", cfg_path);
        goto done;
    }
    if (tok_load(&tok, cfg.model.text_encoder.vocab, &err) != 0) {
        fprintf(stderr, "vqa_prep: model.text_encoder.vocab: %s\n", err.msg);
        goto done;
    }
    /* The answer vocabulary always comes from the train split. */
    if (load_split(&cfg, &cfg.data.train, "train", &train, &err) != 0) {
        fprintf(stderr, "vqa_prep: %s\n", err.msg);
        goto done;
    }
    if (train.has_answers) {
        const VqaDataset *splits[1] = {&train};
        if (ans_vocab_build(&vocab, splits, 1, cfg.data.answers.min_count, cfg.data.answers.max_size, &err) != 0) {
            fprintf(stderr, "vqa_prep: answer vocabulary: %s\n", err.msg);
            goto done;
        }
    }
    if (do_val && load_split(&cfg, &cfg.data.val, "val", &val, &err) != 0) {
        fprintf(stderr, "vqa_prep: %s\n", err.msg);
        goto done;
    }
    PrepOpts po = {cfg.data.image_size, cfg.data.max_question_len,
                   cfg.data.resize == CFG_RESIZE_DIRECT ? IMG_RESIZE_DIRECT : IMG_RESIZE_SHORTER_CROP,
                   quality, threads ? threads : (cfg.data.workers > 0 ? cfg.data.workers : 1)};
    for (int s = 0; s < 2; s++) {
        if ((s == 0 && !do_train) || (s == 1 && !do_val)) continue;
        const char *name = s == 0 ? "train" : "val";
        const VqaDataset *ds = s == 0 ? &train : &val;
        char path[4096];
        prep_split_path(cfg.data.prepared, name, path, sizeof path);
        long nbad = 0;
        PrepStats st;
        if (prep_write(path, ds, tok, ds->has_answers ? vocab : NULL, &po, print_bad, &nbad, &st, &err) != 0) {
            fprintf(stderr, "vqa_prep: %s\n", err.msg);
            goto done;
        }
        if ((double)st.bad_images > cfg.data.max_bad_fraction * (double)st.n_images) {
            fprintf(stderr, "vqa_prep: %s: %lld of %lld images are bad, over data.max_bad_fraction %g; "
                            "%s not kept\n", name, (long long)st.bad_images, (long long)st.n_images,
                    cfg.data.max_bad_fraction, path);
            remove(path);
            goto done;
        }
        printf("vqa_prep: %s: %s, %lld questions, %lld images (%d bad), %.1f MiB, %dx%d %s, "
               "%.1f s, %.0f images/s (%d threads)\n",
               name, path, (long long)st.n_samples, (long long)st.n_images, (int)st.bad_images,
               (double)st.file_bytes / 1048576.0, po.image_size, po.image_size,
               quality ? "jpeg" : "raw", st.seconds, st.seconds > 0 ? (double)st.n_images / st.seconds : 0.0,
               po.threads);
    }
    rc = 0;
done:
    ans_vocab_free(vocab);
    tok_free(tok);
    if (train.samples) ds_free(&train);
    if (val.samples) ds_free(&val);
    cfg_free(&cfg);
    free(sets);
    return rc;
}
