/* The engine's input check and thread policy (graph/model.c):
 * - an input holding NaN or Inf is refused with NM_ERR_NUMERIC naming the
 *   element (ReLU would turn NaN into finite logits), and the model still
 *   runs afterwards;
 * - 1 thread, 2 threads and the load-following default give the same bytes;
 * - with every usable CPU kept busy by spinning child processes, the default
 *   policy drops to one thread within a few forward passes, and the children
 *   are seen as runnable elsewhere. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cpu_load.h"
#include "graph/model.h"
#include "testutil.h"

static nm_model *load(const char *path, int threads)
{
    nm_load_options lo = {.threads = threads};
    nm_model *m = NULL;
    nm_error err = {0};
    if (nm_model_load_file(path, &lo, &m, &err)) printf("load: %s\n", err.msg);
    return m;
}

static void check_refusal(nm_model *m, float *x, size_t k, float bad, const char *word)
{
    nm_error err = {0};
    float saved = x[k], out[16];
    x[k] = bad;
    nm_status s = nm_model_forward(m, x, out, &err);
    char expect[64];
    snprintf(expect, sizeof expect, "%s at element %zu", word, k);
    nm_check(s == NM_ERR_NUMERIC && strstr(err.msg, expect) && strstr(err.msg, "input"),
             "%s at element %zu refused (status %d: %s)", word, k, s, err.msg);
    x[k] = saved;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "models/fashion_cnn.onnx";
    nm_model *m1 = load(path, 1), *m2 = load(path, 2), *m0 = load(path, 0);
    if (!m1 || !m2 || !m0) return 1;
    nm_shape in = nm_model_input_shape(m1), outs = nm_model_output_shape(m1);
    size_t n = 1, k = (size_t)outs.dims[1];
    for (int i = 0; i < in.ndim; i++) n *= (size_t)in.dims[i];
    float *x = malloc(n * sizeof *x), y1[16], y2[16], y0[16], again[16];
    uint64_t seed = 7;
    nm_test_rand_fill(x, (int64_t)n, 0.f, 1.f, &seed);
    nm_error err = {0};
    nm_check(k <= 16 && !nm_model_forward(m1, x, y1, &err), "forward at 1 thread: %s", err.msg);
    nm_check(!nm_model_forward(m2, x, y2, &err), "forward at 2 threads: %s", err.msg);
    nm_check(!nm_model_forward(m0, x, y0, &err), "forward following the load: %s", err.msg);
    nm_check(memcmp(y1, y2, k * sizeof *y1) == 0 && memcmp(y1, y0, k * sizeof *y1) == 0,
             "same logits at 1, 2 and load-following threads");

    check_refusal(m1, x, 0, NAN, "NaN");
    check_refusal(m1, x, n / 2, INFINITY, "Inf");
    check_refusal(m1, x, n - 1, -INFINITY, "Inf");
    nm_check(!nm_model_forward(m1, x, again, &err) && memcmp(again, y1, k * sizeof *y1) == 0,
             "after a refusal the model gives the same logits");

    /* Every usable CPU busy: the default drops to one thread. */
    int cpus = nm_cpu_usable();
    pid_t kids[64];
    int nk = cpus < 64 ? cpus : 64;
    for (int i = 0; i < nk; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            alarm(60);  /* never outlive a crashed parent */
            for (volatile unsigned long spin = 0;; spin++) {}
        }
    }
    usleep(100000);
    int elsewhere = nm_cpu_runnable_elsewhere();
    nm_check(elsewhere >= nk, "%d spinning children seen runnable elsewhere (%d)", nk, elsewhere);
    double t0 = nm_cpu_now();
    while (nm_cpu_now() - t0 < 0.5 && !nm_model_forward(m0, x, y0, &err)) {}
    nm_check(m0->threads == 1, "busy CPUs: the default runs %d thread(s), want 1", m0->threads);
    nm_check(!nm_model_forward(m0, x, y0, &err) && memcmp(y1, y0, k * sizeof *y1) == 0,
             "same logits after the re-plan");
    for (int i = 0; i < nk; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    free(x);
    nm_model_free(m0);
    nm_model_free(m1);
    nm_model_free(m2);
    return nm_test_summary();
}
