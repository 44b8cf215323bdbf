/* tensor.c: dtype facts and tensor shape helpers (the Arena lives in arena.c). */
#include "ops/tensor.h"

#include <stdio.h>

size_t dtype_size(DType t) {
    switch (t) {
    case DT_F32: return 4;
    case DT_BF16: return 2;
    case DT_F16: return 2;
    case DT_I64: return 8;
    case DT_I32: return 4;
    case DT_U8: return 1;
    case DT_BOOL: return 1;
    }
    return 0;
}

const char *dtype_name(DType t) {
    switch (t) {
    case DT_F32: return "F32";
    case DT_BF16: return "BF16";
    case DT_F16: return "F16";
    case DT_I64: return "I64";
    case DT_I32: return "I32";
    case DT_U8: return "U8";
    case DT_BOOL: return "BOOL";
    }
    return "?";
}

int64_t tensor_numel(const Tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

char *tensor_shape_str(const Tensor *t, char *buf, size_t n) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}
