/* Time neuromask on one model.
 *
 *   nm_bench_engine MODEL.onnx [BATCH] [REPS] [--bf16] [--input X.f32] [--logits Y.f32]
 *       forward, and forward + backward to the input, per call: median of
 *       REPS repetitions after warm-up. Prints "forward_ms" and "step_ms",
 *       and "predict_ms": nm_model_predict, the forward that keeps no
 *       activations (its REPS calls back to back, before the others).
 *       --input reads the input (BATCH x C x H x W float32, native byte
 *       order) from a file instead of a generated pattern; --logits writes
 *       the forward's output there (bench/ort.sh compares it with ONNX
 *       Runtime's).
 *   nm_bench_engine --neuromask MODEL.onnx BATCH STEPS [ROUNDS] [--bf16]
 *       NeuroMask steps (forward on the masked images, cross-entropy,
 *       backward to the input, mask update; the paper's preset for the input
 *       size) on BATCH random images: median over ROUNDS runs of STEPS steps.
 *       Prints "step_ms" (one step of the batch), "images_per_s" (image-steps
 *       per second), "flop_per_step" (2 x the forward's multiply-adds x 2: the
 *       backward to the input costs about one forward) and "gflops".
 *   nm_bench_engine --memory MODEL.onnx
 *       peak resident memory (max RSS) after forward + backward at batch 1,
 *       against the weights plus the planned activations and gradients.
 *   nm_bench_engine --check-finite MODEL.onnx [REPS]
 *       the input check that nm_model_forward runs first (nm_check_finite:
 *       NaN or Inf refused) alone, against the whole nm_model_forward at
 *       batch 1, alternating, medians of REPS (the check timed over 1000
 *       calls on the same input, which is in cache as a caller's fresh input
 *       is). Prints "check_us", "forward_ms" and "check_percent".
 *   nm_bench_engine --peak
 *       the machine's measured peak: a large oneDNN sgemm on all threads,
 *       best of 5. Prints "peak_gflops". */
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/tensor.h"
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

/* n floats from a file holding exactly that many; 0 on success. */
static int read_floats(const char *path, float *x, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "%s: cannot open\n", path), 1;
    size_t got = fread(x, sizeof(float), n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) return fprintf(stderr, "%s: expected %zu float32 values\n", path, n), 1;
    return 0;
}

static int write_floats(const char *path, const float *y, size_t n)
{
    FILE *f = fopen(path, "wb");
    int bad = !f || fwrite(y, sizeof(float), n, f) != n;
    if (f && fclose(f)) bad = 1;
    if (bad) fprintf(stderr, "%s: cannot write\n", path);
    return bad;
}

typedef struct engine_files {
    const char *input, *logits;
} engine_files;

static int engine(const char *path, nm_load_options lo, int reps, engine_files files)
{
    nm_error err;
    nm_model *m;
    if (nm_model_load_file(path, &lo, &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    size_t nin = numel(nm_model_input_shape(m)), nout = numel(nm_model_output_shape(m));
    float *x = malloc(nin * sizeof(float)), *y = malloc(nout * sizeof(float));
    float *dx = malloc(nin * sizeof(float)), *dy = malloc(nout * sizeof(float));
    for (size_t i = 0; i < nin; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.f - 0.5f;
    if (files.input && read_floats(files.input, x, nin)) return 1;
    if (files.logits) {
        if (nm_model_predict(m, x, y, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        if (write_floats(files.logits, y, nout)) return 1;
    }
    for (size_t i = 0; i < nout; i++) dy[i] = i % 7 ? 0.f : 1.f;
    double *fwd = malloc(sizeof(double) * (size_t)reps), *step = malloc(sizeof(double) * (size_t)reps);
    double *pred = malloc(sizeof(double) * (size_t)reps);
    /* nm_model_predict back to back, as bench/ort_bench.js times ONNX
     * Runtime (between gradients its caches would start cold). */
    for (int r = -3; r < reps; r++) {
        double t0 = now_ms();
        nm_model_predict(m, x, y, &err);
        if (r >= 0) pred[r] = now_ms() - t0;
    }
    for (int r = -3; r < reps; r++) {
        double t1 = now_ms();
        nm_model_forward(m, x, y, &err);
        double t2 = now_ms();
        nm_model_forward(m, x, y, &err);
        nm_model_backward(m, dy, dx, &err);
        double t3 = now_ms();
        if (r >= 0) fwd[r] = t2 - t1, step[r] = t3 - t2;
    }
    printf("forward_ms %.3f\nstep_ms %.3f\npredict_ms %.3f\n", median(fwd, reps), median(step, reps),
           median(pred, reps));
    free(pred);
    nm_model_free(m);
    free(x), free(y), free(dx), free(dy), free(fwd), free(step);
    return 0;
}

/* The clock at the end of the first and of the last step: the step time
 * leaves out the forward passes before and after the optimisation. */
typedef struct step_clock {
    double first, last;
} step_clock;

static void on_step(void *ctx, int step, int steps, const float *loss, int batch)
{
    step_clock *c = ctx;
    if (step == 1) c->first = now_ms();
    if (step == steps) c->last = now_ms();
}

static int neuromask(const char *path, nm_load_options lo, int steps, int rounds)
{
    nm_error err;
    nm_model *m;
    if (nm_model_load_file(path, &lo, &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    nm_shape in = nm_model_input_shape(m);
    nm_model_info info;
    nm_model_get_info(m, &info);
    nm_neuromask_options o;
    nm_preprocess pp;
    const char *preset = in.dims[2] <= 64 ? "cifar" : "imagenet";
    if (nm_neuromask_preset(preset, &o, &err) || nm_preprocess_recipe(in.dims[2] <= 64 ? "cifar" : "torchvision", &pp, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    o.steps = steps < 2 ? 2 : steps;
    o.tol = 0;
    step_clock clock = {0};
    o.progress = on_step;
    o.progress_ctx = &clock;
    size_t n = numel(in);
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.f;
    double *t = malloc(sizeof(double) * (size_t)rounds);
    for (int r = -1; r < rounds; r++) {   /* one warm-up run */
        nm_explanation e;
        if (nm_neuromask_explain(m, &pp, x, lo.batch, &o, &e, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        if (r >= 0) t[r] = (clock.last - clock.first) / (o.steps - 1);
        nm_explanation_free(&e);
    }
    double ms = median(t, rounds), flop = 2.0 * info.flops;
    printf("step_ms %.3f\nimages_per_s %.1f\nflop_per_step %.4g\ngflops %.1f\n", ms, lo.batch * 1e3 / ms, flop,
           flop / ms * 1e-6);
    nm_model_free(m);
    free(x), free(t);
    return 0;
}

/* Resident memory now (VmRSS), MiB. */
static double resident_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf", &kib) == 1) break;
    if (f) fclose(f);
    return kib / 1024;
}

/* Peak resident memory of one forward + backward against what the plan
 * needs: the weights (as loaded, float32) and the activations and gradients. */
static int memory(const char *path, nm_load_options lo)
{
    nm_error err;
    nm_model *m;
    if (nm_model_load_file(path, &lo, &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    nm_shape in = nm_model_input_shape(m), out = nm_model_output_shape(m);
    float *x = calloc(numel(in), sizeof(float)), *y = calloc(numel(out), sizeof(float));
    float *dx = calloc(numel(in), sizeof(float)), *dy = calloc(numel(out), sizeof(float));
    if (!x || !y || !dx || !dy) return fprintf(stderr, "out of memory\n"), 1;
    dy[0] = 1.f;
    for (int r = 0; r < 3; r++)
        if (nm_model_forward(m, x, y, &err) || nm_model_backward(m, dy, dx, &err))
            return fprintf(stderr, "%s\n", err.msg), 1;
    nm_model_info info;
    nm_model_get_info(m, &info);
    double now = resident_mib();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double weights = 4.0 * (double)info.n_params, planned = (double)info.planned_bytes;
    double rss = 1024.0 * (double)ru.ru_maxrss;
    printf("weights_mib %.1f\nactivations_gradients_mib %.1f\nmax_rss_mib %.1f\nrss_over_needed %.2f\n"
           "rss_after_mib %.1f\nrss_after_over_needed %.2f\n",
           weights / 1048576, planned / 1048576, rss / 1048576, rss / (weights + planned), now,
           now * 1048576 / (weights + planned));
    nm_model_free(m);
    free(x), free(y), free(dx), free(dy);
    return 0;
}

static int check_finite(const char *path, nm_load_options lo, int reps)
{
    enum { CHECKS = 1000 };
    nm_error err;
    nm_model *m;
    if (nm_model_load_file(path, &lo, &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    size_t nin = numel(nm_model_input_shape(m)), nout = numel(nm_model_output_shape(m));
    float *x = malloc(nin * sizeof(float)), *y = malloc(nout * sizeof(float));
    double *fwd = malloc(sizeof(double) * (size_t)reps), *check = malloc(sizeof(double) * (size_t)reps);
    if (!x || !y || !fwd || !check) return fprintf(stderr, "out of memory\n"), 1;
    for (size_t i = 0; i < nin; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.f - 0.5f;
    int failed = 0;
    for (int r = -3; r < reps; r++) {
        double t0 = now_ms();
        failed |= nm_model_forward(m, x, y, &err) != NM_OK;
        double t1 = now_ms();
        for (int k = 0; k < CHECKS; k++) failed |= nm_check_finite(x, nin, "input", &err) != NM_OK;
        double t2 = now_ms();
        if (r >= 0) fwd[r] = t1 - t0, check[r] = (t2 - t1) / CHECKS;
    }
    if (failed) return fprintf(stderr, "%s\n", err.msg), 1;
    double f = median(fwd, reps), c = median(check, reps);
    printf("check_us %.3f\nforward_ms %.3f\ncheck_percent %.3f\n", 1e3 * c, f, 100 * c / f);
    nm_model_free(m);
    free(x), free(y), free(fwd), free(check);
    return 0;
}

static int peak(void)
{
    const int n = 2048;
    float *a = calloc((size_t)n * n, sizeof(float)), *b = calloc((size_t)n * n, sizeof(float));
    float *c = calloc((size_t)n * n, sizeof(float));
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 1e-3f, b[i] = (float)(i % 5) * 1e-3f;
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        double t0 = now_ms();
        dnnl_sgemm('N', 'N', n, n, n, 1.f, a, n, b, n, 0.f, c, n);
        double dt = now_ms() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    printf("peak_gflops %.1f\n", 2.0 * n * n * (double)n / best * 1e-6);
    free(a), free(b), free(c);
    return 0;
}

int main(int argc, char **argv)
{
    nm_load_options lo = {.batch = 1};
    engine_files files = {0};
    int nargs = 0;
    const char *args[8];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bf16") == 0) lo.precision = NM_PRECISION_BF16;
        else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) files.input = argv[++i];
        else if (strcmp(argv[i], "--logits") == 0 && i + 1 < argc) files.logits = argv[++i];
        else if (nargs < 8) args[nargs++] = argv[i];
    }
    if (nargs >= 1 && strcmp(args[0], "--peak") == 0) return peak();
    if (nargs >= 2 && strcmp(args[0], "--memory") == 0) return memory(args[1], lo);
    if (nargs >= 2 && strcmp(args[0], "--check-finite") == 0)
        return check_finite(args[1], lo, nargs > 2 ? atoi(args[2]) : 50);
    if (nargs >= 4 && strcmp(args[0], "--neuromask") == 0) {
        lo.batch = atoi(args[2]);
        return neuromask(args[1], lo, atoi(args[3]), nargs > 4 ? atoi(args[4]) : 3);
    }
    if (nargs < 1 || args[0][0] == '-') {
        fprintf(stderr, "usage: %s MODEL.onnx [BATCH] [REPS] [--bf16] [--input X.f32] [--logits Y.f32]\n"
                        "       %s --neuromask MODEL.onnx BATCH STEPS [ROUNDS] [--bf16]\n"
                        "       %s --check-finite MODEL.onnx [REPS]\n"
                        "       %s --peak\n", argv[0], argv[0], argv[0], argv[0]);
        return 2;
    }
    if (nargs > 1) lo.batch = atoi(args[1]);
    return engine(args[0], lo, nargs > 2 ? atoi(args[2]) : 20, files);
}
