#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int n_pass, n_fail;

int nm_check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!ok || getenv("NM_TEST_VERBOSE")) {
        fputs(ok ? "ok:   " : "FAIL: ", stdout);
        vprintf(fmt, ap);
        fputc('\n', stdout);
    }
    va_end(ap);
    if (ok) n_pass++;
    else n_fail++;
    return ok;
}

int nm_test_summary(void)
{
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

const char *nm_test_shared(const char *rel, char *buf, size_t cap)
{
    const char *root = getenv("NEUROMASK_SHARED");
    struct stat st;
    if (!root || !*root) {
        printf("NEUROMASK_SHARED is not set: skipped\n");
        exit(NM_TEST_SKIP);
    }
    snprintf(buf, cap, "%s/%s", root, rel);
    if (stat(buf, &st) != 0) {
        printf("FAIL: NEUROMASK_SHARED is set but %s is missing\n", buf);
        exit(1);
    }
    return buf;
}

float *nm_test_read_floats(const char *dir, const char *name, size_t n)
{
    char path[1024];
    if (dir) snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    else snprintf(path, sizeof path, "%s", name);
    FILE *f = fopen(path, "rb");
    float *v = malloc(n * sizeof(float));
    size_t got = f && v ? fread(v, sizeof(float), n, f) : 0;
    if (f) fclose(f);
    if (got != n) {
        printf("FAIL: cannot read %zu floats from %s\n", n, path);
        exit(1);
    }
    return v;
}

static uint64_t next_u64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

void nm_test_rand_fill(float *x, int64_t n, float lo, float hi, uint64_t *state)
{
    if (!*state) *state = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)((next_u64(state) >> 40) / 16777216.0);
}

nm_status nm_test_prepare(nm_graph *g, nm_error *err)
{
    nm_status s = nm_graph_sort(g, err);
    if (!s) s = nm_graph_prepare(g, ~0u, err);
    return s;
}

void nm_test_fill_inputs(nm_graph *g, float lo, float hi, uint64_t seed)
{
    for (int i = 0; i < g->n_inputs; i++) {
        nm_tensor *t = &g->t[g->inputs[i]];
        if (t->dtype == NM_FLOAT) nm_test_rand_fill(nm_f32(t), t->numel, lo, hi, &seed);
    }
}

static double weighted_loss(nm_graph *g, const float *r)
{
    nm_error err;
    if (nm_graph_forward(g, &err) != NM_OK) {
        printf("FAIL: forward: %s\n", err.msg);
        return NAN;
    }
    const nm_tensor *out = &g->t[g->outputs[0]];
    double loss = 0;
    for (int64_t k = 0; k < out->numel; k++) loss += (double)r[k] * nm_f32(out)[k];
    return loss;
}

/* Analytic gradient of every input, copied out before the probes overwrite state. */
static float **analytic_grads(nm_graph *g, const float *r)
{
    nm_error err;
    nm_tensor *out = &g->t[g->outputs[0]];
    float **grads = calloc((size_t)g->n_inputs, sizeof *grads);
    weighted_loss(g, r);
    memcpy(out->grad, r, (size_t)out->numel * sizeof(float));
    if (nm_graph_backward(g, &err) != NM_OK) printf("FAIL: backward: %s\n", err.msg);
    for (int i = 0; i < g->n_inputs; i++) {
        nm_tensor *t = &g->t[g->inputs[i]];
        if (!t->requires_grad) continue;
        grads[i] = malloc((size_t)t->numel * sizeof(float));
        memcpy(grads[i], t->grad, (size_t)t->numel * sizeof(float));
    }
    return grads;
}

static double check_input(nm_graph *g, nm_tensor *t, const float *analytic, const float *r, float eps,
                          int max_probes, uint64_t *seed)
{
    int64_t probes = t->numel < max_probes ? t->numel : max_probes;
    double max_err = 0, max_num = 1e-6;
    float *x = nm_f32(t);
    for (int64_t p = 0; p < probes; p++) {
        int64_t k = probes == t->numel ? p : (int64_t)(next_u64(seed) % (uint64_t)t->numel);
        float keep = x[k];
        x[k] = keep + eps;
        double up = weighted_loss(g, r);
        x[k] = keep - eps;
        double down = weighted_loss(g, r);
        x[k] = keep;
        double numeric = (up - down) / (2.0 * eps);
        double e = fabs(numeric - analytic[k]);
        if (fabs(numeric) > max_num) max_num = fabs(numeric);
        if (!(e <= max_err)) max_err = e;   /* NaN propagates as a failure */
    }
    for (int64_t k = 0; k < t->numel; k++)
        if (fabs(analytic[k]) > max_num) max_num = fabs(analytic[k]);
    return max_err / max_num;
}

double nm_test_gradcheck(nm_graph *g, float eps, int max_probes, uint64_t seed)
{
    const nm_tensor *out = &g->t[g->outputs[0]];
    if (!out->grad) {
        printf("FAIL: gradcheck: the output carries no gradient\n");
        return INFINITY;
    }
    float *r = malloc((size_t)out->numel * sizeof(float));
    nm_test_rand_fill(r, out->numel, -1.f, 1.f, &seed);
    float **grads = analytic_grads(g, r);
    double worst = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        if (!grads[i]) continue;
        double e = check_input(g, &g->t[g->inputs[i]], grads[i], r, eps, max_probes, &seed);
        if (!(e <= worst)) worst = e;
        free(grads[i]);
    }
    free(grads);
    free(r);
    return worst;
}
