/* gpu_none.c: the GPU backend of a build without CUDA. It only answers that there is
 * none, so that `device: cuda` fails with a message instead of a missing symbol. */
#include "cuda/gpu.h"

#include <stdio.h>

int gpu_compiled(void) { return 0; }

int gpu_probe(int *n_devices, char *why, size_t why_len) {
    *n_devices = 0;
    snprintf(why, why_len,
             "this vqa_train was built without the CUDA backend (VQA_CUDA=OFF or no CUDA "
             "toolkit at configure time); use device: cpu, or rebuild with -DVQA_CUDA=ON");
    return -1;
}
