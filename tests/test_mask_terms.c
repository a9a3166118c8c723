/* The pieces of the NeuroMask objective (src/explain/mask_terms.c) against
 * central finite differences, and the adjoint pairs (upsampling, edge
 * padding) against the dot-product identity <A x, y> = <x, A^T y>. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/mask_terms.h"
#include "testutil.h"

/* A scalar function of w, value and gradient (added into dw). */
typedef struct term {
    const char *name;
    int h, w, k, p;
    float a, b;       /* term-specific: L, or offset and T */
    const float *g;   /* sigmoid: the upstream gradient it is dotted with */
} term;

static double eval_term(const term *t, const float *w, float *dw)
{
    int n = t->h * t->w;
    if (!strcmp(t->name, "sparsity")) {
        if (dw) sparsity_backward(w, n, t->a, 1.f, dw);
        return sparsity_forward(w, n, t->a);
    }
    if (!strcmp(t->name, "sigmoid")) {   /* sum_i g_i sigmoid((w_i - offset) / T) */
        float *m = malloc(sizeof(float) * (size_t)n);
        mask_sigmoid_forward(w, n, t->a, t->b, m);
        double s = 0;
        for (int i = 0; i < n; i++) s += (double)t->g[i] * m[i];
        if (dw) mask_sigmoid_backward(m, t->g, n, t->b, dw);
        free(m);
        return s;
    }
    /* smoothness, on w itself (p = 0) or edge-padded by p */
    int ph = t->h + 2 * t->p, pw = t->w + 2 * t->p;
    float *pad = malloc(sizeof(float) * (size_t)ph * pw), *dpad = calloc((size_t)ph * pw, sizeof(float));
    float *r = malloc(sizeof(float) * (size_t)ph * pw);
    pad_replicate_forward(w, t->h, t->w, t->p, pad);
    double v = smoothness_forward(pad, ph, pw, t->k, r);
    if (dw) {
        smoothness_backward(r, ph, pw, t->k, 1.f, dpad);
        pad_replicate_backward(dpad, t->h, t->w, t->p, dw);
    }
    free(pad), free(dpad), free(r);
    return v;
}

static void gradcheck(const term *t, uint64_t seed)
{
    int n = t->h * t->w;
    float *w = malloc(sizeof(float) * (size_t)n), *dw = calloc((size_t)n, sizeof(float));
    uint64_t st = seed;
    nm_test_rand_fill(w, n, -3, 3, &st);
    eval_term(t, w, dw);
    double worst = 0, scale = 1e-6;
    for (int i = 0; i < n; i++) {
        float keep = w[i], eps = 1e-2f;
        w[i] = keep + eps;
        double up = eval_term(t, w, NULL);
        w[i] = keep - eps;
        double down = eval_term(t, w, NULL);
        w[i] = keep;
        double num = (up - down) / (2 * eps);
        worst = fmax(worst, fabs(num - dw[i]));
        scale = fmax(scale, fabs(num));
    }
    nm_check(worst / scale < 2e-3, "%s %dx%d k %d pad %d: max |analytic - numeric| / max|numeric| = %.2e", t->name,
             t->h, t->w, t->k, t->p, worst / scale);
    free(w), free(dw);
}

static double dot(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* <A x, y> = <x, A^T y> for bilinear upsampling gh x gw -> h x w and for edge padding by p. */
static void adjoints(int gh, int gw, int h, int w, int p, uint64_t seed)
{
    uint64_t st = seed;
    int ph = gh + 2 * p, pw = gw + 2 * p, big = (h * w > ph * pw ? h * w : ph * pw);
    float *x = malloc(sizeof(float) * (size_t)gh * gw), *y = malloc(sizeof(float) * (size_t)big);
    float *ax = malloc(sizeof(float) * (size_t)big), *aty = calloc((size_t)gh * gw, sizeof(float));
    nm_test_rand_fill(x, gh * gw, -1, 1, &st);
    nm_test_rand_fill(y, big, -1, 1, &st);
    upsample_bilinear_forward(x, gh, gw, ax, h, w);
    upsample_bilinear_backward(y, h, w, aty, gh, gw);
    double l = dot(ax, y, h * w), r = dot(x, aty, gh * gw);
    nm_check(fabs(l - r) <= 1e-5 * fmax(1, fabs(l)), "upsample %dx%d -> %dx%d adjoint: %.8g vs %.8g", gh, gw, h, w, l, r);
    memset(aty, 0, sizeof(float) * (size_t)gh * gw);
    pad_replicate_forward(x, gh, gw, p, ax);
    pad_replicate_backward(y, gh, gw, p, aty);
    l = dot(ax, y, ph * pw), r = dot(x, aty, gh * gw);
    nm_check(fabs(l - r) <= 1e-5 * fmax(1, fabs(l)), "pad %dx%d by %d adjoint: %.8g vs %.8g", gh, gw, p, l, r);
    free(x), free(y), free(ax), free(aty);
}

int main(void)
{
    float g[64];
    uint64_t st = 3;
    nm_test_rand_fill(g, 64, -1, 1, &st);
    const term terms[] = {
        {"sparsity", 5, 7, 0, 0, 10.f, 0, NULL},   /* |w + L| with w + L away from 0 */
        {"sigmoid", 6, 5, 0, 0, 0.f, 1.f, g},
        {"sigmoid", 6, 5, 0, 0, 0.7f, 0.3f, g},    /* the area sweep's offset and temperature */
        {"smoothness", 6, 7, 3, 0, 0, 0, NULL},
        {"smoothness", 9, 8, 5, 0, 0, 0, NULL},
        {"smoothness", 6, 7, 3, 1, 0, 0, NULL},    /* edge-padded, as smooth_edges */
        {"smoothness", 8, 8, 5, 2, 0, 0, NULL},
        {"smoothness", 2, 2, 3, 1, 0, 0, NULL},    /* a grid smaller than the kernel, padded */
    };
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) gradcheck(&terms[i], 11 + i);
    /* sparsity near its kink (w = -L), where a finite difference is not the
     * subgradient: the value and the signs, exactly. */
    float w[4] = {1.f, -2.f, 0.25f, -0.75f}, dw[4] = {0};
    nm_check(fabs(sparsity_forward(w, 4, 0.5f) - (1.5 + 1.5 + 0.75 + 0.25) / 4) < 1e-6, "sparsity value");
    sparsity_backward(w, 4, 0.5f, 2.f, dw);
    nm_check(dw[0] == 0.5f && dw[1] == -0.5f && dw[2] == 0.5f && dw[3] == -0.5f, "sparsity subgradient signs");
    adjoints(4, 4, 32, 32, 1, 5);
    adjoints(7, 5, 23, 17, 2, 6);
    adjoints(16, 16, 32, 32, 1, 7);
    return nm_test_summary();
}
