// act.cu: the point-wise ops on activations in an ActFmt (ops.h): the encoder's edges
// (act_import / act_import_add / act_export: fp32 NCHW <-> d's format), ReLU and add in a half
// storage type (the relu / add entries' bf16 / fp16 path; fp32 takes activation.cu's and
// elementwise.cu's kernels), and the prepared convolution weight (conv_weight_prep /
// conv_weight_grad_add: fp32 master [K, C, R, S] <-> s->f.dt, [K, R, S, C] for NHWC). Each
// element is loaded to fp32, computed in fp32, stored rounded to nearest even
// (act_types.cuh); gradients accumulate in storage type (load, add, round).
// One thread per OUTPUT element (its address computed from the output's layout), so every
// output is written by exactly one thread and the writes are coalesced.
#include "cuda/act_types.cuh"

// y(f)[n,c,hw] = x[n,c,hw]  (x fp32 NCHW [N, C, HW])        add = 1: y = round(y + x)
template <typename T>
__global__ void k_act_import(size_t total, int nhwc, int C, int HW, int add, const float *x, T *y) {
    ACT_GRID_STRIDE(i, total) {
        size_t n, c, hw;
        act_coords(nhwc, C, HW, i, &n, &c, &hw);
        float v = x[(n * C + c) * HW + hw];
        y[i] = act_st<T>(add ? act_ld(y[i]) + v : v);
    }
}

// y[n,c,hw] (fp32 NCHW) = x(f)[n,c,hw]
template <typename T> __global__ void k_act_export(size_t total, int nhwc, int C, int HW, const T *x, float *y) {
    ACT_GRID_STRIDE(i, total) {
        size_t hw = i % HW, r = i / HW, c = r % C, n = r / C;
        y[i] = act_ld(x[act_at(nhwc, C, HW, n, c, hw)]);
    }
}

// y = x > 0 ? x : 0   (in place allowed; NaN -> 0 as the CPU's comparison)
template <typename T> __global__ void k_act_relu_fwd(size_t n, const T *x, T *y) {
    ACT_GRID_STRIDE(i, n) {
        float v = act_ld(x[i]);
        y[i] = act_st<T>(v > 0.0f ? v : 0.0f);
    }
}
// dx = round(dx + (y > 0 ? dy : 0))
template <typename T> __global__ void k_act_relu_bwd(size_t n, const T *y, const T *dy, T *dx) {
    ACT_GRID_STRIDE(i, n) dx[i] = act_st<T>(act_ld(dx[i]) + (act_ld(y[i]) > 0.0f ? act_ld(dy[i]) : 0.0f));
}
// y = round(a + b)
template <typename T> __global__ void k_act_add_fwd(size_t n, const T *a, const T *b, T *y) {
    ACT_GRID_STRIDE(i, n) y[i] = act_st<T>(act_ld(a[i]) + act_ld(b[i]));
}

// wp[k, r, s, c] (nhwc) or wp[k, c, r, s] = round(w[k, c, r, s]); one thread per wp element
template <typename T> __global__ void k_wprep(size_t total, int nhwc, int C, int RS, const float *w, T *wp) {
    ACT_GRID_STRIDE(i, total) {
        size_t src = i;
        if (nhwc) { // i = (k*RS + rs)*C + c
            size_t c = i % C, r = i / C, rs = r % RS, k = r / RS;
            src = (k * C + c) * RS + rs;
        }
        wp[i] = act_st<T>(w[src]);
    }
}
// dw[k, c, r, s] += dwp (prepared layout); one thread per dw element
template <typename T> __global__ void k_wgrad_add(size_t total, int nhwc, int C, int RS, const T *dwp, float *dw) {
    ACT_GRID_STRIDE(i, total) {
        size_t src = i;
        if (nhwc) { // i = (k*C + c)*RS + rs
            size_t rs = i % RS, r = i / RS, c = r % C, k = r / C;
            src = (k * RS + rs) * C + c;
        }
        dw[i] += act_ld(dwp[src]);
    }
}

#define ACT_LAUNCH(g, kern, n, ...) GPU_LAUNCH(kern, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, __VA_ARGS__)

static void act_import_impl(GpuContext *g, const ActDesc *d, int add, const float *x, void *y) {
    size_t total = (size_t)d->N * d->C * d->HW;
    if (d->N <= 0 || d->C <= 0 || d->HW <= 0 || gpu_failed(g)) return;
    ACT_DISPATCH(g, d->f.dt, T, ACT_LAUNCH(g, k_act_import<T>, total, d->f.nhwc, d->C, d->HW, add, x, (T *)y));
    KERNEL_CHECK(g);
}

extern "C" void cu_act_import(const Backend *be, const ActDesc *d, const float *x, void *y) {
    act_import_impl((GpuContext *)be->ctx, d, 0, x, y);
}
extern "C" void cu_act_import_add(const Backend *be, const ActDesc *d, const float *x, void *y) {
    act_import_impl((GpuContext *)be->ctx, d, 1, x, y);
}
extern "C" void cu_act_export(const Backend *be, const ActDesc *d, const void *x, float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)d->N * d->C * d->HW;
    if (d->N <= 0 || d->C <= 0 || d->HW <= 0 || gpu_failed(g)) return;
    ACT_DISPATCH(g, d->f.dt, T, ACT_LAUNCH(g, k_act_export<T>, total, d->f.nhwc, d->C, d->HW, (const T *)x, y));
    KERNEL_CHECK(g);
}

extern "C" void cu_act_relu_forward(GpuContext *g, DType dt, size_t n, const void *x, void *y) {
    if (!n || gpu_failed(g)) return;
    ACT_DISPATCH(g, dt, T, ACT_LAUNCH(g, k_act_relu_fwd<T>, n, (const T *)x, (T *)y));
    KERNEL_CHECK(g);
}
extern "C" void cu_act_relu_backward(GpuContext *g, DType dt, size_t n, const void *y, const void *dy, void *dx) {
    if (!n || !dx || gpu_failed(g)) return;
    ACT_DISPATCH(g, dt, T, ACT_LAUNCH(g, k_act_relu_bwd<T>, n, (const T *)y, (const T *)dy, (T *)dx));
    KERNEL_CHECK(g);
}
extern "C" void cu_act_add_forward(GpuContext *g, DType dt, size_t n, const void *a, const void *b, void *y) {
    if (!n || gpu_failed(g)) return;
    ACT_DISPATCH(g, dt, T, ACT_LAUNCH(g, k_act_add_fwd<T>, n, (const T *)a, (const T *)b, (T *)y));
    KERNEL_CHECK(g);
}

extern "C" void cu_conv_weight_prep(const Backend *be, const ConvShape *s, const float *w, void *wp) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)s->K * s->C * s->R * s->S;
    if (!total || gpu_failed(g)) return;
    ACT_DISPATCH(g, s->f.dt, T, ACT_LAUNCH(g, k_wprep<T>, total, s->f.nhwc, s->C, s->R * s->S, w, (T *)wp));
    KERNEL_CHECK(g);
}
extern "C" void cu_conv_weight_grad_add(const Backend *be, const ConvShape *s, const void *dwp, float *dw) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)s->K * s->C * s->R * s->S;
    if (!total || !dw || gpu_failed(g)) return;
    ACT_DISPATCH(g, s->f.dt, T,
                 ACT_LAUNCH(g, k_wgrad_add<T>, total, s->f.nhwc, s->C, s->R * s->S, (const T *)dwp, dw));
    KERNEL_CHECK(g);
}
