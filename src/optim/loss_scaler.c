/* loss_scaler.c: the dynamic loss scaler's decision after each backward (loss_scaler.h). */
#include "optim/loss_scaler.h"

void loss_scaler_init(LossScaler *s, float init_scale, float growth, float backoff, int growth_interval) {
    s->scale = init_scale;
    s->growth = growth;
    s->backoff = backoff;
    s->growth_interval = growth_interval;
    s->clean_steps = 0;
    s->skipped = 0;
}

int loss_scaler_update(LossScaler *s, int found_inf) {
    if (found_inf) {
        s->scale *= s->backoff;
        s->clean_steps = 0;
        s->skipped++;
        return 1;
    }
    if (++s->clean_steps >= s->growth_interval) {
        s->scale *= s->growth;
        s->clean_steps = 0;
    }
    return 0;
}
