/* Time one model in neuromask: forward, and forward + backward to the input,
 * per call, median of R repetitions after warm-up.
 * Usage: nm_bench_engine MODEL.onnx [BATCH] [REPS]
 * Prints "forward_ms <median>" and "step_ms <median>" lines. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "neuromask.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static size_t numel(nm_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= (size_t)s.dims[i];
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: %s MODEL.onnx [BATCH] [REPS]\n", argv[0]), 2;
    nm_load_options lo = {.batch = argc > 2 ? atoi(argv[2]) : 1};
    int reps = argc > 3 ? atoi(argv[3]) : 20;
    nm_error err;
    nm_model *m;
    if (nm_model_load_file(argv[1], &lo, &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    size_t nin = numel(nm_model_input_shape(m)), nout = numel(nm_model_output_shape(m));
    float *x = malloc(nin * sizeof(float)), *y = malloc(nout * sizeof(float));
    float *dx = malloc(nin * sizeof(float)), *dy = malloc(nout * sizeof(float));
    for (size_t i = 0; i < nin; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.f - 0.5f;
    for (size_t i = 0; i < nout; i++) dy[i] = i % 7 ? 0.f : 1.f;
    double *fwd = malloc(sizeof(double) * (size_t)reps), *step = malloc(sizeof(double) * (size_t)reps);
    for (int r = -3; r < reps; r++) {
        double t0 = now_ms();
        nm_model_forward(m, x, y, &err);
        double t1 = now_ms();
        nm_model_forward(m, x, y, &err);
        nm_model_backward(m, dy, dx, &err);
        double t2 = now_ms();
        if (r >= 0) fwd[r] = t1 - t0, step[r] = t2 - t1;
    }
    printf("forward_ms %.3f\nstep_ms %.3f\n", median(fwd, reps), median(step, reps));
    nm_model_free(m);
    free(x), free(y), free(dx), free(dy), free(fwd), free(step);
    return 0;
}
