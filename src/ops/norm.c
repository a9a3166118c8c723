/* BatchNormalization (running or batch statistics) and LRN across
 * channels, forward and backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "ops/broadcast.h"

/* ------------------------------------------------------- BatchNormalization */

/* X is viewed as [N, P, inner]: P = C and inner = the spatial size, or (the
 * old spatial = 0 form) P = C * spatial with one parameter per element.
 * Inference normalises with the running statistics (inputs mean, var);
 * training mode (opset 14+ training_mode = 1, or earlier opsets whose
 * statistics outputs are read) with the batch's own, and also writes the
 * updated running statistics. */
typedef struct bn_state {
    float epsilon, momentum;
    int training;
    int64_t N, P, inner;
    float *buf;             /* 6 * P floats: */
    float *a, *b;           /*   y = a[p] * x + b[p] */
    float *mean, *var;      /*   statistics used (training: the batch's) */
    float *sum_dy, *sum_dyxc;   /* backward: sum dy, sum dy * (x - mean) */
} bn_state;

static void bn_coefficients(const bn_state *st, const float *scale, const float *bias)
{
    for (int64_t p = 0; p < st->P; p++) {
        st->a[p] = scale[p] / sqrtf(st->var[p] + st->epsilon);
        st->b[p] = bias[p] - st->mean[p] * st->a[p];
    }
}

/* Batch mean and (biased) variance per parameter, as ONNX's training mode. */
static void bn_batch_statistics(const bn_state *st, const float *x)
{
    double count = (double)(st->N * st->inner);
#pragma omp parallel for schedule(static) if (st->N * st->P * st->inner >= NM_PARALLEL_MIN)
    for (int64_t p = 0; p < st->P; p++) {
        double s = 0, s2 = 0;
        for (int64_t nb = 0; nb < st->N; nb++) {
            const float *xp = x + (nb * st->P + p) * st->inner;
            for (int64_t i = 0; i < st->inner; i++) s += xp[i];
        }
        double m = count > 0 ? s / count : 0;
        for (int64_t nb = 0; nb < st->N; nb++) {
            const float *xp = x + (nb * st->P + p) * st->inner;
            for (int64_t i = 0; i < st->inner; i++) s2 += (xp[i] - m) * (xp[i] - m);
        }
        st->mean[p] = (float)m;
        st->var[p] = count > 0 ? (float)(s2 / count) : 0.0f;
    }
}

static void batchnorm_forward(const bn_state *st, const float *x, float *y)
{
    int64_t planes = st->N * st->P, inner = st->inner;
#pragma omp parallel for schedule(static) if (planes * inner >= NM_PARALLEL_MIN)
    for (int64_t q = 0; q < planes; q++) {
        float a = st->a[q % st->P], b = st->b[q % st->P];
        const float *xp = x + q * inner;
        float *yp = y + q * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) yp[i] = a * xp[i] + b;
    }
}

/* Per parameter p: sum dy and sum dy * (x - mean) over the batch and plane. */
static void bn_grad_sums(const bn_state *st, const float *x, const float *dy)
{
#pragma omp parallel for schedule(static) if (st->N * st->P * st->inner >= NM_PARALLEL_MIN)
    for (int64_t p = 0; p < st->P; p++) {
        double sum_dy = 0, sum_dyxc = 0;
        float m = st->mean[p];
        for (int64_t nb = 0; nb < st->N; nb++) {
            const float *xp = x + (nb * st->P + p) * st->inner, *gp = dy + (nb * st->P + p) * st->inner;
            float s0 = 0, s1 = 0;
            for (int64_t i = 0; i < st->inner; i++) {
                s0 += gp[i];
                s1 += gp[i] * (xp[i] - m);
            }
            sum_dy += s0;
            sum_dyxc += s1;
        }
        st->sum_dy[p] = (float)sum_dy;
        st->sum_dyxc[p] = (float)sum_dyxc;
    }
}

/* Inference: dx = a dy. Training (the statistics depend on x):
 * dx = a (dy - sum(dy)/M - (x - mean) / (var + eps) * sum(dy (x - mean))/M). */
static void batchnorm_backward_x(const bn_state *st, const float *x, const float *dy, float *dx)
{
    int64_t planes = st->N * st->P, inner = st->inner;
    double count = (double)(st->N * inner);
#pragma omp parallel for schedule(static) if (planes * inner >= NM_PARALLEL_MIN)
    for (int64_t q = 0; q < planes; q++) {
        int64_t p = q % st->P;
        float a = st->a[p];
        const float *xp = x + q * inner, *gp = dy + q * inner;
        float *dp = dx + q * inner;
        if (!st->training) {
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) dp[i] += a * gp[i];
            continue;
        }
        float m = st->mean[p], k0 = (float)(st->sum_dy[p] / count);
        float k1 = (float)(st->sum_dyxc[p] / count / ((double)st->var[p] + st->epsilon));
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) dp[i] += a * (gp[i] - k0 - (xp[i] - m) * k1);
    }
}

/* Parameter gradients from the sums; in training mode mean and var inputs
 * only feed the running statistics outputs, so they get none from y. */
static void batchnorm_backward_params(const bn_state *st, const float *scale, float *dscale, float *dbias,
                                      float *dmean, float *dvar)
{
    for (int64_t p = 0; p < st->P; p++) {
        double inv_std = 1.0 / sqrt((double)st->var[p] + st->epsilon);
        if (dscale) dscale[p] += (float)(st->sum_dyxc[p] * inv_std);
        if (dbias) dbias[p] += st->sum_dy[p];
        if (st->training) continue;
        if (dmean) dmean[p] += (float)(-st->sum_dy[p] * scale[p] * inv_std);
        if (dvar) dvar[p] += (float)(-0.5 * scale[p] * st->sum_dyxc[p] * inv_std * inv_std * inv_std);
    }
}

static int tensor_is_read(const nm_graph *g, int t)
{
    if (g->t[t].is_output) return 1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == t) return 1;
    return 0;
}

/* Before opset 14 training mode is implied by statistics outputs; only read
 * ones count, since some inference exports list them unused. */
static int bn_is_training(const nm_graph *g, const nm_node *n)
{
    if (g->opset >= 14) return nm_attr_int(n, "training_mode", 0) != 0;
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] >= 0 && tensor_is_read(g, n->out[i])) return 1;
    return 0;
}

static nm_status bn_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 5 || n->n_out < 1 || n->n_out > 5 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: BatchNormalization node '%s' needs 5 inputs and 1 to 5 outputs",
                       g->source, n->name);
    for (int i = 0; i < 5; i++)
        if (!nm_in(g, n, i))
            return nm_fail(err, NM_ERR_PARSE, "%s: BatchNormalization node '%s': input %d is missing", g->source,
                           n->name, i);
    bn_state *st = calloc(1, sizeof *st);
    if (!st) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    n->state = st;
    st->epsilon = nm_attr_float(n, "epsilon", 1e-5f);
    st->momentum = nm_attr_float(n, "momentum", 0.9f);
    st->training = bn_is_training(g, n);
    return NM_OK;
}

static nm_status bn_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    bn_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    char sx[128], sp[128];
    int spatial = g->opset < 9 ? (int)nm_attr_int(n, "spatial", 1) : 1;
    for (int i = 0; i < 5; i++)
        if (nm_in(g, n, i)->dtype != NM_FLOAT)
            return nm_fail(err, NM_ERR_UNSUPPORTED,
                           "%s: BatchNormalization node '%s': only float tensors are supported", g->source, n->name);
    if (x->shape.ndim < 2)
        return nm_fail(err, NM_ERR_SHAPE, "%s: BatchNormalization node '%s': input %s has no channel axis",
                       g->source, n->name, nm_shape_str(&x->shape, sx, sizeof sx));
    st->N = x->shape.dims[0];
    st->P = x->shape.dims[1];
    st->inner = 1;
    for (int i = 2; i < x->shape.ndim; i++) st->inner *= x->shape.dims[i];
    if (!spatial) {
        st->P *= st->inner;
        st->inner = 1;
    }
    for (int i = 1; i < 5; i++) {
        const nm_tensor *p = nm_in(g, n, i);
        if (p->numel != st->P)
            return nm_fail(err, NM_ERR_SHAPE,
                           "%s: BatchNormalization node '%s': parameter '%s' %s does not fit input %s", g->source,
                           n->name, p->name, nm_shape_str(&p->shape, sp, sizeof sp),
                           nm_shape_str(&x->shape, sx, sizeof sx));
    }
    const nm_tensor *var = nm_in(g, n, 4);
    for (int64_t p = 0; !st->training && var->is_const && var->data && p < st->P; p++)
        if (!((double)nm_f32(var)[p] + st->epsilon > 0))   /* 1 / sqrt(var + eps) would be NaN or Inf */
            return nm_fail(err, NM_ERR_NUMERIC,
                           "%s: BatchNormalization node '%s': variance %g + epsilon %g of channel %lld is not positive",
                           g->source, n->name, (double)nm_f32(var)[p], (double)st->epsilon, (long long)p);
    free(st->buf);
    st->buf = malloc(sizeof(float) * (size_t)(6 * st->P + 1));
    if (!st->buf) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    st->a = st->buf;
    st->b = st->a + st->P;
    st->mean = st->b + st->P;
    st->var = st->mean + st->P;
    st->sum_dy = st->var + st->P;
    st->sum_dyxc = st->sum_dy + st->P;
    y->dtype = NM_FLOAT;
    y->shape = x->shape;
    y->numel = x->numel;
    for (int i = 1; i < n->n_out; i++) {
        nm_tensor *t = nm_out(g, n, i);
        if (!t) continue;
        t->dtype = NM_FLOAT;
        t->shape = nm_in(g, n, (i % 2) ? 3 : 4)->shape;   /* running mean, var, saved mean, var */
        t->numel = st->P;
    }
    return NM_OK;
}

/* Outputs 1, 2: running mean and var (momentum-updated in training);
 * 3, 4: the statistics this pass used. */
static void bn_write_statistics(nm_graph *g, nm_node *n, const bn_state *st)
{
    const float *run[2] = {nm_f32(nm_in(g, n, 3)), nm_f32(nm_in(g, n, 4))};
    const float *used[2] = {st->mean, st->var};
    for (int i = 1; i < n->n_out; i++) {
        nm_tensor *t = nm_out(g, n, i);
        if (!t || !t->data) continue;
        float *o = nm_f32(t);
        int k = (i - 1) % 2;
        for (int64_t p = 0; p < st->P; p++) {
            if (i > 2) o[p] = used[k][p];
            else if (st->training) o[p] = run[k][p] * st->momentum + used[k][p] * (1.0f - st->momentum);
            else o[p] = run[k][p];
        }
    }
}

static nm_status bn_forward(nm_graph *g, nm_node *n)
{
    bn_state *st = n->state;
    const float *x = nm_f32(nm_in(g, n, 0));
    if (st->training) {
        bn_batch_statistics(st, x);
    } else {
        memcpy(st->mean, nm_f32(nm_in(g, n, 3)), sizeof(float) * (size_t)st->P);
        memcpy(st->var, nm_f32(nm_in(g, n, 4)), sizeof(float) * (size_t)st->P);
    }
    bn_coefficients(st, nm_f32(nm_in(g, n, 1)), nm_f32(nm_in(g, n, 2)));
    batchnorm_forward(st, x, nm_f32(nm_out(g, n, 0)));
    bn_write_statistics(g, n, st);
    return NM_OK;
}

/* Gradients flow from y only; the statistics outputs are not differentiated. */
static nm_status bn_backward(nm_graph *g, nm_node *n)
{
    const bn_state *st = n->state;
    nm_tensor *y = nm_out(g, n, 0), *in[5];
    float *d[5];
    int params = 0;
    if (!y->grad) return NM_OK;
    for (int i = 0; i < 5; i++) {
        in[i] = nm_in(g, n, i);
        d[i] = in[i]->requires_grad ? in[i]->grad : NULL;
        params |= i > 0 && d[i];
    }
    if (params || (d[0] && st->training)) bn_grad_sums(st, nm_f32(in[0]), y->grad);
    if (d[0]) batchnorm_backward_x(st, nm_f32(in[0]), y->grad, d[0]);
    if (params) batchnorm_backward_params(st, nm_f32(in[1]), d[1], d[2], d[3], d[4]);
    return NM_OK;
}

static void bn_destroy(nm_node *n)
{
    bn_state *st = n->state;
    if (st) free(st->buf);
    free(st);
    n->state = NULL;
}

const nm_op_impl nm_op_batchnorm = {bn_init, bn_reshape, bn_forward, bn_backward, bn_destroy};

/* ------------------------------------------------------------- LRN */

/* Across channels: d_c = bias + alpha/size * sum_{c' in win(c)} x_c'^2 with
 * win(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)], y_c = x_c d_c^-beta. */
typedef struct lrn_state {
    float alpha, beta, bias;
    int64_t size, lo, hi;
    int64_t N, C, inner;
    float *scratch;         /* backward: dy*y/d per element */
} lrn_state;

/* d of plane (nb, c) into out[inner]. */
static void lrn_denominator(const lrn_state *st, const float *x, int64_t nb, int64_t c, float *out)
{
    int64_t inner = st->inner;
    int64_t c0 = c - st->lo < 0 ? 0 : c - st->lo, c1 = c + st->hi >= st->C ? st->C - 1 : c + st->hi;
    memset(out, 0, sizeof(float) * (size_t)inner);
    for (int64_t k = c0; k <= c1; k++) {
        const float *xp = x + (nb * st->C + k) * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) out[i] += xp[i] * xp[i];
    }
    float scale = st->alpha / (float)st->size;
#pragma omp simd
    for (int64_t i = 0; i < inner; i++) out[i] = st->bias + scale * out[i];
}

static void lrn_forward(const lrn_state *st, const float *x, float *y)
{
    int64_t planes = st->N * st->C, inner = st->inner;
#pragma omp parallel for schedule(static) if (planes * inner >= NM_PARALLEL_MIN / 4)
    for (int64_t q = 0; q < planes; q++) {
        float *yp = y + q * inner;
        const float *xp = x + q * inner;
        lrn_denominator(st, x, q / st->C, q % st->C, yp);
        for (int64_t i = 0; i < inner; i++) yp[i] = xp[i] * powf(yp[i], -st->beta);
    }
}

/* dx_k = dy_k d_k^-beta - 2 alpha beta / size * x_k * sum_{c: k in win(c)} dy_c y_c / d_c,
 * where k in win(c) means c in [k - hi, k + lo]. */
static void lrn_backward(const lrn_state *st, const float *x, const float *y, const float *dy, float *dx)
{
    int64_t planes = st->N * st->C, inner = st->inner, C = st->C;
    float *t = st->scratch;
    float coef = 2.0f * st->alpha * st->beta / (float)st->size;
#pragma omp parallel for schedule(static) if (planes * inner >= NM_PARALLEL_MIN / 4)
    for (int64_t q = 0; q < planes; q++) {
        float *tp = t + q * inner;
        lrn_denominator(st, x, q / C, q % C, tp);
        for (int64_t i = 0; i < inner; i++) {
            int64_t k = q * inner + i;
            dx[k] += dy[k] * powf(tp[i], -st->beta);
            tp[i] = dy[k] * y[k] / tp[i];
        }
    }
#pragma omp parallel for schedule(static) if (planes * inner >= NM_PARALLEL_MIN / 4)
    for (int64_t q = 0; q < planes; q++) {
        int64_t nb = q / C, k = q % C;
        int64_t c0 = k - st->hi < 0 ? 0 : k - st->hi, c1 = k + st->lo >= C ? C - 1 : k + st->lo;
        const float *xp = x + q * inner;
        float *dp = dx + q * inner;
        for (int64_t c = c0; c <= c1; c++) {
            const float *tp = t + (nb * C + c) * inner;
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) dp[i] -= coef * xp[i] * tp[i];
        }
    }
}

static nm_status lrn_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 1 || !nm_in(g, n, 0) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: LRN node '%s' needs 1 input and 1 output", g->source, n->name);
    int64_t size = nm_attr_int(n, "size", 0);
    if (size < 1)
        return nm_fail(err, NM_ERR_PARSE, "%s: LRN node '%s': attribute size must be positive", g->source, n->name);
    lrn_state *st = calloc(1, sizeof *st);
    if (!st) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    n->state = st;
    st->alpha = nm_attr_float(n, "alpha", 1e-4f);
    st->beta = nm_attr_float(n, "beta", 0.75f);
    st->bias = nm_attr_float(n, "bias", 1.0f);
    st->size = size;
    st->lo = (size - 1) / 2;
    st->hi = size / 2;      /* ceil((size-1)/2) */
    return NM_OK;
}

static nm_status lrn_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    lrn_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    char sx[128];
    if (x->dtype != NM_FLOAT)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: LRN node '%s': only float tensors are supported", g->source,
                       n->name);
    if (x->shape.ndim < 2)
        return nm_fail(err, NM_ERR_SHAPE, "%s: LRN node '%s': input %s has no channel axis", g->source, n->name,
                       nm_shape_str(&x->shape, sx, sizeof sx));
    st->N = x->shape.dims[0];
    st->C = x->shape.dims[1];
    st->inner = 1;
    for (int i = 2; i < x->shape.ndim; i++) st->inner *= x->shape.dims[i];
    free(st->scratch);
    st->scratch = NULL;     /* the backward buffer comes with the first backward */
    y->dtype = NM_FLOAT;
    y->shape = x->shape;
    y->numel = x->numel;
    return NM_OK;
}

static nm_status lrn_node_forward(nm_graph *g, nm_node *n)
{
    lrn_forward(n->state, nm_f32(nm_in(g, n, 0)), nm_f32(nm_out(g, n, 0)));
    return NM_OK;
}

static nm_status lrn_node_backward(nm_graph *g, nm_node *n)
{
    lrn_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (!x->requires_grad || !y->grad) return NM_OK;
    if (!st->scratch) {
        st->scratch = malloc(sizeof(float) * (size_t)(x->numel ? x->numel : 1));
        if (!st->scratch) return NM_ERR_MEMORY;
    }
    lrn_backward(st, nm_f32(x), nm_f32(y), y->grad, x->grad);
    return NM_OK;
}

static void lrn_destroy(nm_node *n)
{
    lrn_state *st = n->state;
    if (st) free(st->scratch);
    free(st);
    n->state = NULL;
}

const nm_op_impl nm_op_lrn = {lrn_init, lrn_reshape, lrn_node_forward, lrn_node_backward, lrn_destroy};
