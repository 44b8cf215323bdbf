/* train_main.c: placeholder entry point until the training loop lands (the trainer
 * replaces this file). It says so and fails, so nobody mistakes it for a finished run. */
#include "train/train_main.h"

int train_main(const Config *cfg, const CliArgs *cli, Log *log) {
    (void)cfg;
    (void)cli;
    log_error(log, "training loop not implemented yet");
    return 2;
}
