/* vqa_train.c: the trainer's command line.
 *
 *   vqa_train CONFIG [--set K=V]... [--resume auto|PATH] [--predict CKPT] [--dry-run]
 *   vqa_train --help | --version | --print-keys
 *
 * Loads and checks the config, chooses the device (its first log line says which and
 * why), checks that every input file exists, then hands over to train_main(). With
 * --dry-run it prints the resolved config as YAML on stdout instead, lists what is
 * missing on stderr, and exits 1 if anything would stop a real run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "cuda/gpu.h"
#include "train/train_main.h"
#include "train/setup.h"
#include "model/vqa_model.h"
#include "ops/backend.h"
#include "util/cli.h"
#include "util/err.h"
#include "util/log.h"
#include "ops/backend_dnnl.h"
#include "vqa_version.h"

#define MAX_SETS 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: vqa_train CONFIG [--set KEY=VALUE]... [--resume auto|PATH] [--predict CKPT] [--dry-run]\n"
            "       vqa_train --help | --version | --print-keys\n"
            "\n"
            "Trains a VQA fusion model (ResNet image encoder + BERT text encoder) as CONFIG says.\n"
            "\n"
            "  CONFIG            YAML config (configs/README.md documents every key)\n"
            "  --set KEY=VALUE   override one key, e.g. --set train.lr=3e-4 --set model.image_encoder.freeze=[layer4];\n"
            "                    VALUE is YAML (repeatable; later ones win)\n"
            "  --resume auto     continue from the newest valid checkpoint (fresh start if none)\n"
            "  --resume PATH     continue from that checkpoint\n"
            "  --predict CKPT    no training: write predictions for predict.split with that checkpoint\n"
            "  --dry-run         print the resolved config as YAML and check devices and input files;\n"
            "                    exit 1 if a real run would stop\n"
            "  --print-keys      every config key with its type, default and meaning (markdown)\n"
            "  --version         version, git hash, compiled-in backends and communication\n"
            "\n"
            "Multi-rank: mpirun -np N vqa_train CONFIG (one rank per GPU); Slurm: slurm/*.sbatch.\n");
}

static void version(void) {
    printf("vqa_train %s (git %s)\n", VQA_VERSION_STRING, VQA_GIT_HASH);
    char dv[64];
    printf("backends: cpu (OpenBLAS + OpenMP; image encoder: %s)", VQA_HAVE_ONEDNN ? backend_cpu_dnnl_version(dv, sizeof dv)
                                                                                  : "reference, oneDNN not compiled in");
    if (gpu_compiled())
        printf(", cuda (cuBLAS, cuDNN; sm %s)\n", VQA_CUDA_ARCHS);
    else
        printf("; cuda: not compiled in\n");
    printf("communication: single process%s%s\n", VQA_HAVE_MPI ? ", mpi" : "; mpi: not compiled in",
           VQA_HAVE_NCCL ? ", nccl" : "; nccl: not compiled in");
    if (gpu_compiled()) {
        int n = 0;
        char why[512];
        if (gpu_probe(&n, why, sizeof why) == 0)
            printf("gpu: usable (%d device%s)\n", n, n == 1 ? "" : "s");
        else
            printf("gpu: none usable: %s\n", why);
    }
}

/* The launcher's rank, before any MPI call, so that log lines carry it from the start. */
static int rank_from_env(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

typedef struct Args {
    CliArgs cli;
    char *sets[MAX_SETS];
} Args;

/* 0 = go on, 1 = done (help/version printed), -1 = usage error (message printed). */
static int parse_args(int argc, char **argv, Args *a) {
    memset(a, 0, sizeof *a);
    a->cli.sets = a->sets;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *val = NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(s, "--version")) {
            version();
            return 1;
        }
        if (!strcmp(s, "--print-keys")) {
            cfg_print_keys(stdout);
            return 1;
        }
        if (!strcmp(s, "--dry-run")) {
            a->cli.dry_run = 1;
            continue;
        }
        /* options with a value: "--opt VALUE" or "--opt=VALUE" */
        static const char *const with_val[] = {"--set", "--resume", "--predict", NULL};
        int which = cli_option_value(argc, argv, &i, with_val, &val, "vqa_train");
        if (which == -2) return -1;
        if (which == 0) {
            if (a->cli.nsets == MAX_SETS) {
                fprintf(stderr, "vqa_train: more than %d --set options\n", MAX_SETS);
                return -1;
            }
            a->sets[a->cli.nsets++] = (char *)val;
        } else if (which == 1) {
            a->cli.resume = val;
        } else if (which == 2) {
            a->cli.predict = val;
        } else if (s[0] == '-' && s[1] != '\0') {
            fprintf(stderr, "vqa_train: unknown option %s (vqa_train --help)\n", s);
            return -1;
        } else if (a->cli.config_path) {
            fprintf(stderr, "vqa_train: two configs given (%s and %s); overrides go in --set KEY=VALUE\n",
                    a->cli.config_path, s);
            return -1;
        } else {
            a->cli.config_path = s;
        }
    }
    if (!a->cli.config_path) {
        fprintf(stderr, "vqa_train: no CONFIG given\n");
        usage(stderr);
        return -1;
    }
    if (a->cli.resume && a->cli.predict) {
        fprintf(stderr, "vqa_train: --resume and --predict exclude each other (--predict does not train)\n");
        return -1;
    }
    if (a->cli.resume && !*a->cli.resume) {
        fprintf(stderr, "vqa_train: --resume needs auto or a checkpoint path\n");
        return -1;
    }
    return 0;
}

/* Resolves device: auto|cpu|cuda. Returns 0, or -1 with the reason in err. The log line
 * saying what was chosen is written by the caller (it must be the first). */
static int choose_device(const Config *cfg, CliArgs *cli, char *line, size_t cap, Err *err) {
    char why[512], where[1100];
    int n = 0;
    cfg_where(cfg, "device", where, sizeof where);
    const char *by = strcmp(where, "--set") == 0 ? "set by --set" : "set in the config";
    if (cfg->device == CFG_DEVICE_CPU) {
        cli->device = CFG_DEVICE_CPU;
        snprintf(line, cap, "device: cpu (%s)", by);
        return 0;
    }
    int ok = gpu_probe(&n, why, sizeof why) == 0;
    if (cfg->device == CFG_DEVICE_CUDA) {
        if (!ok) return err_set(err, "%s: device: cuda, but %s", where, why);
        cli->device = CFG_DEVICE_CUDA;
        cli->n_gpus = n;
        snprintf(line, cap, "device: cuda (%s; %d GPU%s usable)", by, n, n == 1 ? "" : "s");
        return 0;
    }
    if (ok) {
        cli->device = CFG_DEVICE_CUDA;
        cli->n_gpus = n;
        snprintf(line, cap, "device: auto chose cuda: %d usable GPU%s found", n, n == 1 ? "" : "s");
    } else {
        cli->device = CFG_DEVICE_CPU;
        snprintf(line, cap, "device: auto chose cpu: %s", why);
    }
    return 0;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Things --dry-run reports and a real run refuses to start without. Returns how many
 * problems were printed. */
static int preflight(const Config *cfg, const CliArgs *cli, const Log *log) {
    int problems = 0;
    Err err;
    int missing = cfg_check_files(cfg, &err);
    if (missing > 0) {
        log_error(log, "%d input file%s missing:\n%s", missing, missing == 1 ? " is" : "s are", err.msg);
        problems += missing;
    }
    if (cli->resume && strcmp(cli->resume, "auto") != 0 && !exists(cli->resume)) {
        log_error(log, "--resume %s: no such checkpoint", cli->resume);
        problems++;
    }
    if (cli->predict) {
        if (!exists(cli->predict)) {
            log_error(log, "--predict %s: no such checkpoint", cli->predict);
            problems++;
        }
        const CfgSplitPaths *s[3] = {&cfg->data.train, &cfg->data.val, &cfg->data.test};
        if (!s[cfg->predict.split]->questions) {
            char where[1100];
            cfg_where(cfg, "predict.split", where, sizeof where);
            log_error(log, "%s: predict.split: %s, but data.%s.questions is null", where,
                      cfg_enum_name(cfg, "predict.split"), cfg_enum_name(cfg, "predict.split"));
            problems++;
        }
    }
    return problems;
}

/* Counts the lines of a vocab.txt, or returns fallback when it cannot be read. */
static int count_vocab_lines(const char *path, int fallback) {
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return fallback;
    int n = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n') n++;
        last = c;
    }
    if (last != '\n') n++;
    fclose(f);
    return n > 0 ? n : fallback;
}

/* --dry-run's model summary: builds the model from the config on the CPU backend with
 * random weights (weight files are not read), parameters per module, trainable vs
 * frozen and memory. The answer count is model.num_answers, else data.answers.max_size
 * (the real count comes from the training data), the vocab size from the vocab file
 * (30522, BERT's, if it is missing). */
static int dry_run_summary(const Config *cfg, const Log *log) {
    int n_answers = cfg->model.num_answers > 0 ? cfg->model.num_answers : cfg->data.answers.max_size;
    int vocab = count_vocab_lines(cfg->model.text_encoder.vocab, 30522);
    VqaModelConfig mc;
    VqaModel m;
    Err err;
    if (setup_model_config(cfg, n_answers, vocab, 0, &mc, &err) != 0) {
        log_error(log, "model: %s", err.msg);
        return 1;
    }
    mc.image_weights[0] = '\0';
    mc.text_weights[0] = '\0';
    if (vqa_model_init(&m, &mc, backend_cpu(), &err) != 0) {
        log_error(log, "model: %s", err.msg);
        return 1;
    }
    char buf[8192];
    vqa_model_summary(&m, buf, sizeof buf);
    log_info(log, "model summary (%d answers%s, vocab %d; weight files not read):", n_answers,
             cfg->model.num_answers > 0 ? "" : " = data.answers.max_size until the data is read", vocab);
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) log_info(log, "  %s", l);
    vqa_model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    Args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) return rc > 0 ? 0 : 2;
    CliArgs *cli = &a.cli;

    Log log;
    log_init(&log, rank_from_env(), 0);
    Config cfg;
    Err err;
    if (cfg_load(&cfg, cli->config_path, cli->sets, cli->nsets, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    log.all_ranks = cfg.log.all_ranks;

    /* the device line comes first, as DESIGN §3 asks */
    char line[700];
    int problems = 0;
    if (choose_device(&cfg, cli, line, sizeof line, &err) != 0) {
        if (!cli->dry_run) {
            fprintf(stderr, "error: %s\n", err.msg);
            cfg_free(&cfg);
            return 1;
        }
        log_error(&log, "%s", err.msg);
        problems++;
    } else {
        log_info(&log, "%s", line);
        if (cfg_validate_device(&cfg, cli->device, &err) != 0) {
            if (!cli->dry_run) {
                fprintf(stderr, "error: %s\n", err.msg);
                cfg_free(&cfg);
                return 1;
            }
            log_error(&log, "%s", err.msg);
            problems++;
        }
    }

    char warn[2048];
    if (cfg_warnings(&cfg, warn, sizeof warn) > 0) {
        for (char *w = strtok(warn, "\n"); w; w = strtok(NULL, "\n")) log_warn(&log, "%s", w);
    }
    problems += preflight(&cfg, cli, &log);

    if (cli->dry_run) {
        if (log.rank == 0 || log.all_ranks) cfg_dump(&cfg, stdout);
        fflush(stdout);
        problems += dry_run_summary(&cfg, &log);
        if (problems) log_error(&log, "dry run: %d problem%s above would stop a real run", problems,
                                problems == 1 ? "" : "s");
        cfg_free(&cfg);
        return problems ? 1 : 0;
    }
    if (problems) {
        cfg_free(&cfg);
        return 1;
    }
    log_info(&log, "config %s (hash %016llx), run %s -> %s", cli->config_path, (unsigned long long)cfg_hash(&cfg),
             cfg.run.name, cfg.run.out_dir);
    rc = train_main(&cfg, cli, &log);
    cfg_free(&cfg);
    return rc;
}
