/* train_main.c: the trainer's entry point (train_main.h): starts communication, then
 * trains (trainer.h) or predicts (predict.h), and turns errors into one log line and an
 * exit status. */
#include "train/train_main.h"

#include <stdlib.h>

#include "comm/comm.h"
#include "train/predict.h"
#include "train/trainer.h"

int train_main(const Config *cfg, const CliArgs *cli, Log *log) {
    Err err;
    err_clear(&err);
    Comm *comm = NULL;
    if (comm_init(&comm, NULL, NULL, &err) != 0) {
        log_error(log, "%s", err.msg);
        return 1;
    }
    /* several ranks: SIGTERM/SIGINT on one rank ends the whole job (comm.h) */
    if (comm_install_signal_handlers(comm, &err) != 0) log_warn(log, "%s", err.msg);
    if (cli->predict) {
        /* sharded over the ranks like evaluation; rank 0 writes the files */
        int prc = 0;
        if (predict_run(cfg, cli, log, comm, &err) != 0) {
            log_error(log, "%s", err.msg);
            comm_abort(comm, err.msg);
            prc = 1;
        }
        comm_finalize(comm);
        return prc;
    }
    Trainer *t = calloc(1, sizeof *t);
    int rc = 1;
    if (!t) {
        log_error(log, "out of memory");
        comm_abort(comm, "out of memory");
    } else if (trainer_init(t, cfg, cli, log, comm, &err) != 0 || trainer_run(t, &err) != 0) {
        log_error(log, "%s", err.msg);
        /* several ranks: end every rank now, so none waits forever in a collective
         * (returns in a world of one) */
        comm_abort(comm, err.msg);
    } else {
        rc = 0;
    }
    if (t) trainer_free(t);
    free(t);
    comm_finalize(comm);
    return rc;
}
