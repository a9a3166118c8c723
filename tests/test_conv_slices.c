/* Winograd convolutions on 16 channels run forward as one-thread shares of
 * the batch, side by side (ops/conv.c, conv_build_slices): on the shared
 * CIFAR ResNet-20, whose 16-channel 32x32 layers take that path at 2 threads,
 * predict, forward and the backward to the input give the same bytes at 2
 * threads as at 1 (whole-batch primitives), for a batch that splits evenly
 * (4: the shares) and one that does not (3: the whole batch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neuromask.h"
#include "testutil.h"

static nm_model *load(const char *path, int batch, int threads)
{
    nm_load_options lo = {.batch = batch, .threads = threads};
    nm_model *m = NULL;
    nm_error err = {0};
    if (nm_model_load_file(path, &lo, &m, &err)) printf("load: %s\n", err.msg);
    return m;
}

static void compare(const char *path, int batch)
{
    nm_model *one = load(path, batch, 1), *two = load(path, batch, 2);
    nm_check(one && two, "batch %d: loaded at 1 and 2 threads", batch);
    if (!one || !two) return;
    nm_shape is = nm_model_input_shape(one), os = nm_model_output_shape(one);
    size_t n = 1, k = 1;
    for (int i = 0; i < is.ndim; i++) n *= (size_t)is.dims[i];
    for (int i = 0; i < os.ndim; i++) k *= (size_t)os.dims[i];
    float *x = malloc(n * sizeof *x), *dx1 = malloc(n * sizeof *x), *dx2 = malloc(n * sizeof *x);
    float *y1 = malloc(k * sizeof *x), *y2 = malloc(k * sizeof *x), *dy = malloc(k * sizeof *x);
    uint64_t seed = 11;
    nm_test_rand_fill(x, (int64_t)n, -1.f, 1.f, &seed);
    nm_test_rand_fill(dy, (int64_t)k, -1.f, 1.f, &seed);
    nm_error err = {0};
    nm_status s = nm_model_predict(one, x, y1, &err);
    if (!s) s = nm_model_predict(two, x, y2, &err);
    nm_check(!s && memcmp(y1, y2, k * sizeof *y1) == 0, "batch %d: predict at 2 threads = at 1 (%s)", batch,
             err.msg);
    s = nm_model_forward(one, x, y1, &err);
    if (!s) s = nm_model_forward(two, x, y2, &err);
    nm_check(!s && memcmp(y1, y2, k * sizeof *y1) == 0, "batch %d: forward at 2 threads = at 1 (%s)", batch,
             err.msg);
    s = nm_model_backward(one, dy, dx1, &err);
    if (!s) s = nm_model_backward(two, dy, dx2, &err);
    nm_check(!s && memcmp(dx1, dx2, n * sizeof *dx1) == 0, "batch %d: input gradient at 2 threads = at 1 (%s)",
             batch, err.msg);
    free(x), free(dx1), free(dx2), free(y1), free(y2), free(dy);
    nm_model_free(one);
    nm_model_free(two);
}

int main(void)
{
    char buf[4096];
    const char *path = nm_test_shared("models/cifar10_resnet20.onnx", buf, sizeof buf);
    compare(path, 4);
    compare(path, 3);
    return nm_test_summary();
}
