/* ROAD with noisy linear imputation. The imputation's system, per channel,
 * over the removed pixels u:  d_i u_i - sum_{removed j ~ i} w_ij u_j =
 * sum_{kept k ~ i} w_ik x_k, with d_i the sum of the weights of i's
 * in-image neighbours. The weights are symmetric (w_ij = w_ji) and every
 * removed region touches a kept pixel (8-connectivity: only a fully removed
 * image has none), so the matrix is symmetric, irreducibly diagonally
 * dominant: positive definite, and conjugate gradients converge. The
 * reference code solves the same system with scipy's spsolve; no Debian
 * sparse solver is a dependency here (a 224 x 224 image has up to 45,000
 * unknowns, too many for a dense solve), and CG over a neighbour table is
 * short. */
#include "eval/road.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/argsort.h"
#include "core/error.h"
#include "core/probability.h"
#include "explain/saliency.h"
#include "graph/model.h"

const double nm_road_fractions[NM_ROAD_FRACTIONS] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9};

static const int offsets[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};
static const double weights[8] = {1 / 12., 1 / 6., 1 / 12., 1 / 6., 1 / 6., 1 / 12., 1 / 6., 1 / 12.};

#define ROAD_TOLERANCE 1e-9
#define ROAD_MAX_CHANNELS 4

/* The system of one removal pattern, shared by the channels: each unknown's
 * 8 neighbour slots hold the neighbouring unknown and its weight, or the
 * zero slot n with weight 0 (kept or out-of-image neighbours). Subtracting
 * 0 * 0 leaves a sum unchanged, so the result is the per-neighbour loop's,
 * bit for bit, without the index arithmetic in CG's inner loop. The
 * channels are interleaved (unknown i, channel ch at i * c + ch) and solved
 * together, each with its own CG scalars and stopping test. */
typedef struct road_system {
    int n, c;
    int *pixel;             /* unknown -> pixel */
    int *nbr;               /* [n][8] neighbouring unknown or n */
    double *nbr_w;          /* [n][8] its weight or 0 */
    double *diag;           /* d_i */
    double *r, *p, *q, *u, *b; /* [(n + 1) * c]; slot n of p stays 0 */
} road_system;

/* q = A p (matrix-free) for every channel. */
static void apply(const road_system *s, const double *p, double *q)
{
    int c = s->c;
    for (int i = 0; i < s->n; i++) {
        const int *nb = s->nbr + (size_t)i * 8;
        const double *nw = s->nbr_w + (size_t)i * 8;
        for (int ch = 0; ch < c; ch++) {
            double v = s->diag[i] * p[(size_t)i * c + ch];
            for (int k = 0; k < 8; k++) v -= nw[k] * p[(size_t)nb[k] * c + ch];
            q[(size_t)i * c + ch] = v;
        }
    }
}

/* out[ch] = sum_i a[i, ch] b[i, ch], summed in order of i. */
static void dots(const double *a, const double *b, int n, int c, double *out)
{
    for (int ch = 0; ch < c; ch++) out[ch] = 0;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) out[ch] += a[(size_t)i * c + ch] * b[(size_t)i * c + ch];
}

/* Conjugate gradients from u = 0 on A u = b, per channel; a channel stops
 * updating once its residual meets its own test. Returns the most
 * iterations of a channel. */
static int solve(road_system *s)
{
    int n = s->n, c = s->c, most = 0;
    size_t len = (size_t)n * c;
    memset(s->u, 0, sizeof(double) * len);
    memcpy(s->r, s->b, sizeof(double) * len);
    memcpy(s->p, s->b, sizeof(double) * len);
    memset(s->p + len, 0, sizeof(double) * (size_t)c);
    double rr[ROAD_MAX_CHANNELS], stop[ROAD_MAX_CHANNELS], pq[ROAD_MAX_CHANNELS], rr_new[ROAD_MAX_CHANNELS];
    double alpha[ROAD_MAX_CHANNELS], beta[ROAD_MAX_CHANNELS];
    int active[ROAD_MAX_CHANNELS], it[ROAD_MAX_CHANNELS], left = 0;
    dots(s->r, s->r, n, c, rr);
    for (int ch = 0; ch < c; ch++) {
        stop[ch] = ROAD_TOLERANCE * ROAD_TOLERANCE * rr[ch], it[ch] = 0;
        active[ch] = rr[ch] > stop[ch];
        left += active[ch];
    }
    while (left > 0) {
        apply(s, s->p, s->q);
        dots(s->p, s->q, n, c, pq);
        for (int ch = 0; ch < c; ch++) alpha[ch] = active[ch] ? rr[ch] / pq[ch] : 0;
        for (size_t i = 0; i < len; i += (size_t)c)
            for (int ch = 0; ch < c; ch++)
                if (active[ch]) s->u[i + ch] += alpha[ch] * s->p[i + ch], s->r[i + ch] -= alpha[ch] * s->q[i + ch];
        dots(s->r, s->r, n, c, rr_new);
        for (int ch = 0; ch < c; ch++) beta[ch] = active[ch] ? rr_new[ch] / rr[ch] : 0;
        for (size_t i = 0; i < len; i += (size_t)c)
            for (int ch = 0; ch < c; ch++)
                if (active[ch]) s->p[i + ch] = s->r[i + ch] + beta[ch] * s->p[i + ch];
        for (int ch = 0; ch < c; ch++) {
            if (!active[ch]) continue;
            rr[ch] = rr_new[ch], it[ch]++;
            if (rr[ch] <= stop[ch] || it[ch] >= 10 * n + 100) active[ch] = 0, left--;
        }
    }
    for (int ch = 0; ch < c; ch++)
        if (it[ch] > most) most = it[ch];
    return most;
}

static void free_system(road_system *s)
{
    free(s->pixel), free(s->nbr), free(s->nbr_w), free(s->diag);
    free(s->r), free(s->p), free(s->q), free(s->u), free(s->b);
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
    if (c < 1 || c > ROAD_MAX_CHANNELS)
        return nm_fail(err, NM_ERR_ARG, "ROAD imputation: %d channels (1..%d)", c, ROAD_MAX_CHANNELS);
    road_system s = {.n = n, .c = c};
    size_t len = (size_t)(n + 1) * c;
    int *var = malloc(sizeof(int) * (size_t)hw);
    s.pixel = malloc(sizeof(int) * (size_t)n);
    s.nbr = malloc(sizeof(int) * (size_t)n * 8), s.nbr_w = malloc(sizeof(double) * (size_t)n * 8);
    s.diag = malloc(sizeof(double) * (size_t)n);
    s.r = malloc(sizeof(double) * len), s.p = malloc(sizeof(double) * len), s.q = malloc(sizeof(double) * len);
    s.u = malloc(sizeof(double) * len), s.b = malloc(sizeof(double) * len);
    if (!var || !s.pixel || !s.nbr || !s.nbr_w || !s.diag || !s.r || !s.p || !s.q || !s.u || !s.b) {
        free(var), free_system(&s);
        return nm_fail(err, NM_ERR_MEMORY, "ROAD imputation: out of memory");
    }
    for (int i = 0, k = 0; i < hw; i++) {
        var[i] = removed[i] ? k : -1;
        if (removed[i]) s.pixel[k++] = i;
    }
    for (int i = 0; i < n; i++) {
        int y = s.pixel[i] / w, xx = s.pixel[i] % w;
        s.diag[i] = 0;
        for (int ch = 0; ch < c; ch++) s.b[(size_t)i * c + ch] = 0;
        for (int k = 0; k < 8; k++) {
            int ny = y + offsets[k][0], nx = xx + offsets[k][1], j = -1;
            s.nbr[(size_t)i * 8 + k] = n, s.nbr_w[(size_t)i * 8 + k] = 0;
            if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;
            s.diag[i] += weights[k];
            j = var[ny * w + nx];
            if (j >= 0) s.nbr[(size_t)i * 8 + k] = j, s.nbr_w[(size_t)i * 8 + k] = weights[k];
            else
                for (int ch = 0; ch < c; ch++) s.b[(size_t)i * c + ch] += weights[k] * x[(size_t)ch * hw + ny * w + nx];
        }
    }
    free(var);
    int it = solve(&s);
    if (iterations) *iterations = it;
    uint64_t state = seed;
    for (int ch = 0; ch < c; ch++) {
        float *o = out + (size_t)ch * hw;
        for (int i = 0; i < n; i++)
            o[s.pixel[i]] = (float)s.u[(size_t)i * c + ch] + (noise > 0 ? noise * sal_normal(&state) : 0.0f);
    }
    free_system(&s);
    return NM_OK;
}

/* The target's probability; *top1: whether the target is the top-1 class (the first maximum). */
static float softmax_at(const float *logits, int k, int target, int *top1)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (logits[j] > logits[best]) best = j;
    *top1 = best == target;
    return nm_class_probability(logits, k, target);
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
