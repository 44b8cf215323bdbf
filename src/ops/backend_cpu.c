/* backend_cpu.c: the CPU Backend table: host memory and the op_* reference functions. */
#include "ops/backend.h"

#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t bytes) {
    void *p = NULL;
    /* 64-byte alignment for SIMD loads; round up as aligned_alloc requires. */
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    return p;
}
static void cpu_free(void *p) { free(p); }
static void cpu_memset_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
}
static void cpu_synchronize(void) {}
/* Synchronous backend: an event is a handle with nothing behind it (a constant, so no
 * state), recording and waiting have nothing to order. */
static const char cpu_event_dummy;
static void *cpu_event_create(void) { return (void *)&cpu_event_dummy; }
static void cpu_event_destroy(void *ev) { (void)ev; }
static void cpu_event_op(void *ev, BeQueue q) { (void)ev, (void)q; }

static const Backend cpu_backend = {
    .name = "cpu",
    .device = DEV_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .memset_zero = cpu_memset_zero,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .synchronize = cpu_synchronize,
    .copy_h2d_async = cpu_copy,
    .event_create = cpu_event_create,
    .event_destroy = cpu_event_destroy,
    .event_record = cpu_event_op,
    .event_wait = cpu_event_op,
    .upload_async = cpu_copy,
    .set_threads = op_set_threads,
    .get_threads = op_get_threads,
    .gemm = op_gemm,
    .conv2d_workspace = op_conv2d_workspace,
    .conv2d_forward = op_conv2d_forward,
    .conv2d_backward = op_conv2d_backward,
    .batchnorm_forward_train = op_batchnorm_forward_train,
    .batchnorm_backward_train = op_batchnorm_backward_train,
    .batchnorm_forward_eval = op_batchnorm_forward_eval,
    .batchnorm_backward_eval = op_batchnorm_backward_eval,
    .relu_forward = op_relu_forward,
    .relu_backward = op_relu_backward,
    .gelu_forward = op_gelu_forward,
    .gelu_backward = op_gelu_backward,
    .tanh_forward = op_tanh_forward,
    .tanh_backward = op_tanh_backward,
    .add_forward = op_add_forward,
    .add_backward = op_add_backward,
    .mul_forward = op_mul_forward,
    .mul_backward = op_mul_backward,
    .concat_forward = op_concat_forward,
    .concat_backward = op_concat_backward,
    .maxpool_forward = op_maxpool_forward,
    .maxpool_backward = op_maxpool_backward,
    .avgpool_global_forward = op_avgpool_global_forward,
    .avgpool_global_backward = op_avgpool_global_backward,
    .linear_forward = op_linear_forward,
    .linear_backward = op_linear_backward,
    .embedding_forward = op_embedding_forward,
    .embedding_backward = op_embedding_backward,
    .layernorm_forward = op_layernorm_forward,
    .layernorm_backward = op_layernorm_backward,
    .softmax_forward = op_softmax_forward,
    .softmax_backward = op_softmax_backward,
    .dropout_forward = op_dropout_forward,
    .dropout_backward = op_dropout_backward,
    .attention_workspace = op_attention_workspace,
    .attention_forward = op_attention_forward,
    .attention_backward = op_attention_backward,
    .bce_logits = op_bce_logits,
    .soft_xent = op_soft_xent,
    .adamw_update = op_adamw_update,
    .global_norm = op_global_norm,
    .has_nonfinite = op_has_nonfinite,
    .scale = op_scale,
    /* activations in an ActFmt (act.c, batchnorm_act.c, conv2d_act.c) */
    .act_import = op_act_import,
    .act_import_add = op_act_import_add,
    .act_export = op_act_export,
    .act_relu_forward = op_act_relu_forward,
    .act_relu_backward = op_act_relu_backward,
    .act_add_forward = op_act_add_forward,
    .conv_weight_prep = op_conv_weight_prep,
    .conv_weight_grad_add = op_conv_weight_grad_add,
    .conv2d_act_workspace = op_conv2d_act_workspace,
    .conv2d_act_forward = op_conv2d_act_forward,
    .conv2d_act_backward = op_conv2d_act_backward,
    .batchnorm_act_forward_train = op_batchnorm_act_forward_train,
    .batchnorm_act_backward_train = op_batchnorm_act_backward_train,
    .batchnorm_act_forward_eval = op_batchnorm_act_forward_eval,
    .batchnorm_act_backward_eval = op_batchnorm_act_backward_eval,
    .maxpool_act_forward = op_maxpool_act_forward,
    .maxpool_act_backward = op_maxpool_act_backward,
    .avgpool_act_forward = op_avgpool_act_forward,
    .avgpool_act_backward = op_avgpool_act_backward,
};

const Backend *backend_cpu(void) { return &cpu_backend; }
