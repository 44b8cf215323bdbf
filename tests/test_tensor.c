/* test_tensor.c: dtype sizes and shape formatting. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "testlib.h"
#include "ops/tensor.h"

static void dtype_sizes_match_safetensors(void) {
    CHECK(dtype_size(DT_F32) == 4);
    CHECK(dtype_size(DT_BF16) == 2);
    CHECK(dtype_size(DT_I64) == 8);
    CHECK(strcmp(dtype_name(DT_BF16), "BF16") == 0);
}

static void shape_string_and_numel(void) {
    Tensor t = {.ndim = 3, .shape = {2, 3, 5}};
    char buf[64];
    CHECK(tensor_numel(&t) == 30);
    CHECK(strcmp(tensor_shape_str(&t, buf, sizeof buf), "[2, 3, 5]") == 0);
}

int main(void) {
    RUN(dtype_sizes_match_safetensors);
    RUN(shape_string_and_numel);
    return test_summary();
}
