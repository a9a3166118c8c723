/* ROAD with noisy linear imputation. The imputation's system, per channel,
 * over the removed pixels u:  d_i u_i - sum_{removed j ~ i} w_ij u_j =
 * sum_{kept k ~ i} w_ik x_k, with d_i the sum of the weights of i's
 * in-image neighbours. The weights are symmetric (w_ij = w_ji) and every
 * removed region touches a kept pixel (8-connectivity: only a fully removed
 * image has none), so the matrix is symmetric, irreducibly diagonally
 * dominant: positive definite, and conjugate gradients converge. The
 * reference code solves the same system with scipy's spsolve; no Debian
 * sparse solver is a dependency here (a 224 x 224 image has up to 45,000
 * unknowns, too many for a dense solve), and matrix-free CG is short. */
#include "eval/road.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/argsort.h"
#include "core/error.h"
#include "explain/saliency.h"
#include "graph/model.h"

const double nm_road_fractions[NM_ROAD_FRACTIONS] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9};

static const int offsets[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};
static const double weights[8] = {1 / 12., 1 / 6., 1 / 12., 1 / 6., 1 / 6., 1 / 12., 1 / 6., 1 / 12.};

#define ROAD_TOLERANCE 1e-9

typedef struct road_system {
    int h, w, n;
    int *var;               /* pixel -> unknown index, -1 for kept pixels */
    int *pixel;             /* unknown -> pixel */
    double *diag;           /* d_i */
    double *r, *p, *q, *u, *b;
} road_system;

/* q = A p (matrix-free). */
static void apply(const road_system *s, const double *p, double *q)
{
    for (int i = 0; i < s->n; i++) {
        int y = s->pixel[i] / s->w, x = s->pixel[i] % s->w;
        double v = s->diag[i] * p[i];
        for (int k = 0; k < 8; k++) {
            int yy = y + offsets[k][0], xx = x + offsets[k][1];
            if (yy < 0 || yy >= s->h || xx < 0 || xx >= s->w) continue;
            int j = s->var[yy * s->w + xx];
            if (j >= 0) v -= weights[k] * p[j];
        }
        q[i] = v;
    }
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Conjugate gradients from u = 0 on A u = b; returns the iterations. */
static int solve(road_system *s)
{
    int n = s->n, it = 0;
    memset(s->u, 0, sizeof(double) * (size_t)n);
    memcpy(s->r, s->b, sizeof(double) * (size_t)n);
    memcpy(s->p, s->b, sizeof(double) * (size_t)n);
    double rr = dot(s->r, s->r, n), stop = ROAD_TOLERANCE * ROAD_TOLERANCE * rr;
    for (; rr > stop && it < 10 * n + 100; it++) {
        apply(s, s->p, s->q);
        double alpha = rr / dot(s->p, s->q, n);
        for (int i = 0; i < n; i++) s->u[i] += alpha * s->p[i], s->r[i] -= alpha * s->q[i];
        double rr_new = dot(s->r, s->r, n);
        for (int i = 0; i < n; i++) s->p[i] = s->r[i] + rr_new / rr * s->p[i];
        rr = rr_new;
    }
    return it;
}

static void free_system(road_system *s)
{
    free(s->var), free(s->pixel), free(s->diag), free(s->r), free(s->p), free(s->q), free(s->u), free(s->b);
}

nm_status nm_road_impute(const float *x, int c, int h, int w, const unsigned char *removed, float noise,
                         uint64_t seed, float *out, int *iterations, nm_error *err)
{
    int hw = h * w, n = 0;
    for (int i = 0; i < hw; i++) n += removed[i] != 0;
    memcpy(out, x, sizeof(float) * (size_t)hw * c);
    if (iterations) *iterations = 0;
    if (n == 0) return NM_OK;
    if (n == hw) return nm_fail(err, NM_ERR_ARG, "ROAD imputation: every pixel is removed");
    road_system s = {.h = h, .w = w, .n = n};
    s.var = malloc(sizeof(int) * (size_t)hw), s.pixel = malloc(sizeof(int) * (size_t)n);
    s.diag = malloc(sizeof(double) * (size_t)n), s.r = malloc(sizeof(double) * (size_t)n);
    s.p = malloc(sizeof(double) * (size_t)n), s.q = malloc(sizeof(double) * (size_t)n);
    s.u = malloc(sizeof(double) * (size_t)n), s.b = malloc(sizeof(double) * (size_t)n);
    if (!s.var || !s.pixel || !s.diag || !s.r || !s.p || !s.q || !s.u || !s.b) {
        free_system(&s);
        return nm_fail(err, NM_ERR_MEMORY, "ROAD imputation: out of memory");
    }
    for (int i = 0, k = 0; i < hw; i++) {
        s.var[i] = removed[i] ? k : -1;
        if (removed[i]) s.pixel[k++] = i;
    }
    for (int i = 0; i < n; i++) {
        int y = s.pixel[i] / w, xx = s.pixel[i] % w;
        s.diag[i] = 0;
        for (int k = 0; k < 8; k++) {
            int ny = y + offsets[k][0], nx = xx + offsets[k][1];
            if (ny >= 0 && ny < h && nx >= 0 && nx < w) s.diag[i] += weights[k];
        }
    }
    uint64_t state = seed;
    for (int ch = 0; ch < c; ch++) {
        const float *plane = x + (size_t)ch * hw;
        for (int i = 0; i < n; i++) {
            int y = s.pixel[i] / w, xx = s.pixel[i] % w;
            double b = 0;
            for (int k = 0; k < 8; k++) {
                int ny = y + offsets[k][0], nx = xx + offsets[k][1];
                if (ny >= 0 && ny < h && nx >= 0 && nx < w && s.var[ny * w + nx] < 0)
                    b += weights[k] * plane[ny * w + nx];
            }
            s.b[i] = b;
        }
        int it = solve(&s);
        if (iterations && it > *iterations) *iterations = it;
        float *o = out + (size_t)ch * hw;
        for (int i = 0; i < n; i++) o[s.pixel[i]] = (float)s.u[i] + (noise > 0 ? noise * sal_normal(&state) : 0.0f);
    }
    free_system(&s);
    return NM_OK;
}

static float softmax_at(const float *logits, int k, int target, int *top1)
{
    double mx = logits[0], sum = 0;
    int best = 0;
    for (int j = 1; j < k; j++)
        if (logits[j] > logits[best]) best = j;
    mx = logits[best];
    for (int j = 0; j < k; j++) sum += exp((double)logits[j] - mx);
    *top1 = best == target;
    return (float)(exp((double)logits[target] - mx) / sum);
}

nm_status nm_road(nm_model *m, const nm_preprocess *pp, const float *x, const float *map, int target, float noise,
                  uint64_t seed, int batch, nm_road_result *out, nm_error *err)
{
    nm_shape in = nm_model_input_shape(m), outs = nm_model_output_shape(m);
    if (in.ndim != 4 || in.dims[1] > 3 || outs.ndim != 2)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: ROAD needs an image input [N,C,H,W], C <= 3, and [N, classes]",
                       m->source);
    int c = (int)in.dims[1], h = (int)in.dims[2], w = (int)in.dims[3], hw = h * w, k = (int)outs.dims[1];
    if (target < 0 || target >= k) return nm_fail(err, NM_ERR_ARG, "ROAD: target class %d outside 0..%d", target, k - 1);
    for (int i = 0; i < hw; i++)
        if (!isfinite(map[i])) return nm_fail(err, NM_ERR_NUMERIC, "ROAD: the map has a non-finite value");
    enum { IMAGES = 2 * NM_ROAD_FRACTIONS };
    if (batch < 1) batch = 1;
    if (batch > IMAGES) batch = IMAGES;
    size_t image = (size_t)c * hw;
    int *order = malloc(sizeof(int) * (size_t)hw);
    unsigned char *removed = malloc((size_t)hw);
    float *in_buf = malloc(sizeof(float) * image * batch), *logits = malloc(sizeof(float) * (size_t)k * batch);
    nm_status s = order && removed && in_buf && logits && nm_argsort(map, hw, 1, order)
                      ? nm_model_set_batch(m, batch, err)
                      : nm_fail(err, NM_ERR_MEMORY, "ROAD: out of memory");
    memset(out, 0, sizeof *out);
    for (int first = 0; !s && first < IMAGES; first += batch) {
        int nb = IMAGES - first < batch ? IMAGES - first : batch;
        for (int b = 0; !s && b < nb; b++) {
            int idx = first + b, lerf = idx >= NM_ROAD_FRACTIONS, f = idx % NM_ROAD_FRACTIONS;
            int count = (int)(hw * nm_road_fractions[f]);
            memset(removed, 0, (size_t)hw);
            for (int j = 0; j < count; j++) removed[order[lerf ? hw - 1 - j : j]] = 1;
            float *dst = in_buf + (size_t)b * image;
            uint64_t image_seed = seed * 0x9E3779B97F4A7C15ull + (uint64_t)idx + 1;
            s = nm_road_impute(x, c, h, w, removed, noise, image_seed, dst, NULL, err);
            for (int ch = 0; !s && ch < c; ch++) {
                float *d = dst + (size_t)ch * hw;
                for (int i = 0; i < hw; i++) d[i] = (d[i] * pp->scale + pp->offset - pp->mean[ch]) / pp->std[ch];
            }
        }
        for (int b = nb; !s && b < batch; b++) memcpy(in_buf + b * image, in_buf + (nb - 1) * image, sizeof(float) * image);
        if (!s) s = nm_model_forward(m, in_buf, logits, err);
        for (int b = 0; !s && b < nb; b++) {
            int idx = first + b, f = idx % NM_ROAD_FRACTIONS, top1;
            float p = softmax_at(logits + (size_t)b * k, k, target, &top1);
            if (idx < NM_ROAD_FRACTIONS) out->morf[f] = p, out->morf_top1[f] = top1;
            else out->lerf[f] = p, out->lerf_top1[f] = top1;
        }
    }
    for (int f = 0; !s && f < NM_ROAD_FRACTIONS; f++)
        out->morf_mean += out->morf[f] / (double)NM_ROAD_FRACTIONS, out->lerf_mean += out->lerf[f] / (double)NM_ROAD_FRACTIONS;
    free(order), free(removed), free(in_buf), free(logits);
    return s;
}
