/* train_main.h: the trainer's entry point, called by src/main/vqa_train.c once the config
 * is loaded and checked, the device is chosen and all input files exist. */
#ifndef VQA_TRAIN_MAIN_H
#define VQA_TRAIN_MAIN_H

#include "config/config.h"
#include "util/log.h"

/* What the command line adds to the config. Strings point into argv (not owned). */
typedef struct CliArgs {
    const char *config_path;   /* CONFIG as given */
    char **sets;               /* the --set K=V arguments, in order (already applied to the config) */
    int nsets;
    const char *resume;        /* NULL: fresh run; "auto": newest valid checkpoint in the checkpoint
                                  folder (a fresh run if there is none); else a checkpoint path */
    const char *predict;       /* --predict CKPT: write predictions for predict.split, no training */
    int dry_run;               /* never reaches train_main */
    CfgDevice device;          /* resolved: CFG_DEVICE_CPU or CFG_DEVICE_CUDA (never AUTO) */
    int n_gpus;                /* usable GPUs seen by this process (0 on cpu) */
} CliArgs;

/* Runs training (or prediction when cli->predict is set). Returns the process exit code
 * (0 = success); prints its own errors through log. */
int train_main(const Config *cfg, const CliArgs *cli, Log *log);

#endif
