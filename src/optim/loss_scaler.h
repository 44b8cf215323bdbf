/* loss_scaler.h: dynamic loss scaling for fp16 training (torch.cuda.amp.GradScaler's rule).
 * Multiply the loss by scale; after backward, if any gradient is inf/NaN, skip the step
 * and multiply scale by backoff; after growth_interval consecutive clean steps, multiply
 * scale by growth. Host logic only: the non-finite check and the unscaling are the
 * backend's has_nonfinite and scale entries (ops.h). */
#ifndef VQA_LOSS_SCALER_H
#define VQA_LOSS_SCALER_H

#include <stdint.h>

typedef struct LossScaler {
    float scale, growth, backoff;
    int growth_interval;
    int clean_steps;     /* consecutive finite steps since the last change */
    int64_t skipped;     /* total skipped steps */
} LossScaler;

void loss_scaler_init(LossScaler *s, float init_scale, float growth, float backoff, int growth_interval);
/* Call after backward with found_inf = any non-finite gradient. Returns 1 if the
 * optimizer step must be skipped. */
int loss_scaler_update(LossScaler *s, int found_inf);

#endif
