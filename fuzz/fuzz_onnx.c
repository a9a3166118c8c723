/* Fuzz target: bytes as an ONNX model. Load with small limits; when the
 * input is a small image batch, run one forward pass on zeros and one
 * backward pass to the input, and read what `neuromask info` reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "neuromask.h"

#define MAX_INPUT_ELEMENTS (64 * 64 * 3)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t shape_numel(const nm_shape *s, int64_t cap)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] < 0 || (s->dims[i] > 0 && n > cap / s->dims[i])) return -1;
        n *= s->dims[i];
    }
    return n <= cap ? n : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_load_options opt = { .batch = 1, .max_elements = (int64_t)1 << 22, .max_bytes = (int64_t)64 << 20 };
    nm_model *m = NULL;
    nm_error err = { 0 };
    if (nm_model_load_memory(data, size, "fuzz.onnx", &opt, &m, &err) != NM_OK) return 0;

    nm_model_info info;
    nm_model_get_info(m, &info);
    const char *names[16];
    int n_spatial = nm_model_spatial_tensors(m, names, 16);
    const char *spec = nm_model_metadata(m, "neuromask.preprocess");
    if (spec) {
        nm_preprocess pp;
        nm_preprocess_parse(spec, &pp, &err);
    }

    nm_shape in = nm_model_input_shape(m), out = nm_model_output_shape(m);
    int64_t n_in = shape_numel(&in, MAX_INPUT_ELEMENTS);
    int64_t n_out = shape_numel(&out, (int64_t)1 << 22);
    if (in.ndim == 4 && in.dims[0] == 1 && n_in > 0 && n_out >= 0) {
        float *x = calloc((size_t)n_in, sizeof *x), *dx = calloc((size_t)n_in, sizeof *dx);
        float *y = calloc((size_t)n_out + 1, sizeof *y), *dy = calloc((size_t)n_out + 1, sizeof *dy);
        if (x && dx && y && dy && nm_model_forward(m, x, y, &err) == NM_OK) {
            for (int64_t i = 0; i < n_out; i++) dy[i] = 1.0f;
            if (nm_model_backward(m, dy, dx, &err) == NM_OK) {
                /* plain views of named tensors, as Grad-CAM reads them */
                const float *v, *g;
                nm_shape s;
                nm_model_tensor(m, nm_model_input_name(m), &s, &v, &g, &err);
                if (n_spatial > 0) nm_model_tensor(m, names[n_spatial > 16 ? 15 : n_spatial - 1], &s, &v, &g, &err);
            }
        }
        free(x);
        free(dx);
        free(y);
        free(dy);
    }
    nm_model_free(m);
    return 0;
}
