/* The pieces of the NeuroMask objective (src/explain/mask_terms.c) against
 * central finite differences, the upsampling pairs against the dot-product
 * identity <A x, y> = <x, A^T y>, and the Gaussian interpolation's
 * smoothness: no cell edges at 224 px, where bilinear shows them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/mask_terms.h"
#include "testutil.h"

/* A scalar function of w, value and gradient (added into dw). */
typedef struct term {
    const char *name;
    int h, w, k;
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
    float *r = malloc(sizeof(float) * (size_t)n);
    double v = smoothness_forward(w, t->h, t->w, t->k, r);
    if (dw) smoothness_backward(r, t->h, t->w, t->k, 1.f, dw);
    free(r);
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
    nm_check(worst / scale < 2e-3, "%s %dx%d k %d: max |analytic - numeric| / max|numeric| = %.2e", t->name,
             t->h, t->w, t->k, worst / scale);
    free(w), free(dw);
}

static double dot(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* <A x, y> = <x, A^T y> for bilinear and Gaussian upsampling gh x gw -> h x w. */
static void adjoints(int gh, int gw, int h, int w, uint64_t seed)
{
    uint64_t st = seed;
    float *x = malloc(sizeof(float) * (size_t)gh * gw), *y = malloc(sizeof(float) * (size_t)h * w);
    float *ax = malloc(sizeof(float) * (size_t)h * w), *aty = calloc((size_t)gh * gw, sizeof(float));
    float *wy = malloc(sizeof(float) * (size_t)h * gh), *wx = malloc(sizeof(float) * (size_t)w * gw);
    float *tmp = malloc(sizeof(float) * (size_t)gh * w);
    nm_test_rand_fill(x, gh * gw, -1, 1, &st);
    nm_test_rand_fill(y, h * w, -1, 1, &st);
    upsample_bilinear_forward(x, gh, gw, ax, h, w);
    upsample_bilinear_backward(y, h, w, aty, gh, gw);
    double l = dot(ax, y, h * w), r = dot(x, aty, gh * gw);
    nm_check(fabs(l - r) <= 1e-4 * fmax(1, fabs(l)), "bilinear %dx%d -> %dx%d adjoint: %.8g vs %.8g", gh, gw, h, w, l, r);
    memset(aty, 0, sizeof(float) * (size_t)gh * gw);
    gaussian_interp_weights(gh, h, 0.75f, wy);
    gaussian_interp_weights(gw, w, 0.75f, wx);
    upsample_separable_forward(x, gh, gw, wy, wx, tmp, ax, h, w);
    upsample_separable_backward(y, h, w, wy, wx, tmp, aty, gh, gw);
    l = dot(ax, y, h * w), r = dot(x, aty, gh * gw);
    nm_check(fabs(l - r) <= 1e-4 * fmax(1, fabs(l)), "Gaussian %dx%d -> %dx%d adjoint: %.8g vs %.8g", gh, gw, h, w, l, r);
    /* the weights sum to 1: a constant grid stays that constant */
    for (int i = 0; i < gh * gw; i++) x[i] = 0.3f;
    upsample_separable_forward(x, gh, gw, wy, wx, tmp, ax, h, w);
    double worst = 0;
    for (int i = 0; i < h * w; i++) worst = fmax(worst, fabs(ax[i] - 0.3));
    nm_check(worst < 1e-6, "Gaussian %dx%d -> %dx%d keeps a constant (max error %.2e)", gh, gw, h, w, worst);
    free(x), free(y), free(ax), free(aty), free(wy), free(wx), free(tmp);
}

/* Cell edges of a map upsampled from g x g random cells to n x n: the mean
 * |second difference| along the rows within one pixel of a cell boundary
 * over the mean elsewhere. Bilinear interpolation is linear inside a cell
 * (second difference 0) and bends only at the boundaries; a smooth
 * interpolation bends everywhere alike (ratio near 1). */
static double edge_ratio(int gaussian, int g, int n, uint64_t seed)
{
    float *cells = malloc(sizeof(float) * (size_t)g * g), *m = malloc(sizeof(float) * (size_t)n * n);
    float *wy = malloc(sizeof(float) * (size_t)n * g), *tmp = malloc(sizeof(float) * (size_t)g * n);
    nm_test_rand_fill(cells, g * g, 0, 1, &seed);
    if (gaussian) {
        gaussian_interp_weights(g, n, 0.75f, wy);
        upsample_separable_forward(cells, g, g, wy, wy, tmp, m, n, n);
    } else {
        upsample_bilinear_forward(cells, g, g, m, n, n);
    }
    double at = 0, off = 0;
    int n_at = 0, n_off = 0, cell = n / g;
    for (int y = 0; y < n; y++)
        for (int x = 1; x + 1 < n; x++) {
            /* bilinear's kinks sit at the cell centres (half-pixel sampling) */
            int d = (x - cell / 2 + cell) % cell, near = d == 0 || d == cell - 1 || d == 1;
            double v = fabs((double)m[y * n + x - 1] - 2.0 * m[y * n + x] + m[y * n + x + 1]);
            if (near) at += v, n_at++;
            else off += v, n_off++;
        }
    free(cells), free(m), free(wy), free(tmp);
    return (at / n_at) / (off / n_off + 1e-30);
}

int main(void)
{
    float g[64];
    uint64_t st = 3;
    nm_test_rand_fill(g, 64, -1, 1, &st);
    const term terms[] = {
        {"sparsity", 5, 7, 0, 10.f, 0, NULL},   /* |w + L| with w + L away from 0 */
        {"sigmoid", 6, 5, 0, 0.f, 1.f, g},
        {"sigmoid", 6, 5, 0, 0.7f, 0.3f, g},    /* an offset and a temperature */
        {"smoothness", 6, 7, 3, 0, 0, NULL},
        {"smoothness", 9, 8, 5, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) gradcheck(&terms[i], 11 + i);
    /* sparsity near its kink (w = -L), where a finite difference is not the
     * subgradient: the value and the signs, exactly. */
    float w[4] = {1.f, -2.f, 0.25f, -0.75f}, dw[4] = {0};
    nm_check(fabs(sparsity_forward(w, 4, 0.5f) - (1.5 + 1.5 + 0.75 + 0.25) / 4) < 1e-6, "sparsity value");
    sparsity_backward(w, 4, 0.5f, 2.f, dw);
    nm_check(dw[0] == 0.5f && dw[1] == -0.5f && dw[2] == 0.5f && dw[3] == -0.5f, "sparsity subgradient signs");
    adjoints(4, 4, 32, 32, 5);
    adjoints(7, 5, 23, 17, 6);
    adjoints(14, 14, 224, 224, 7);
    double bilinear = edge_ratio(0, 14, 224, 8), gaussian = edge_ratio(1, 14, 224, 8);
    nm_check(bilinear > 10, "the measure sees bilinear's cell edges at 224 px (ratio %.3g > 10)", bilinear);
    nm_check(gaussian < 1.5, "Gaussian interpolation has no cell edges at 224 px (ratio %.3g < 1.5)", gaussian);
    return nm_test_summary();
}
