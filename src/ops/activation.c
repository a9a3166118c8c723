/* Pointwise activations: Relu, LeakyRelu, PRelu, Clip, Sigmoid, HardSigmoid,
 * HardSwish, Tanh. Backward follows PyTorch's choices at the kinks (Relu: 0
 * at x = 0; Clip: passes where min <= x <= max; HardSigmoid: 0 at the
 * corners). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "graph/graph.h"
#include "ops/broadcast.h"

/* ------------------------------------------------------------- kernels */

/* dx[i] (+)= EXPR over i < n: "=" when the node is the gradient's first
 * writer (grad_assign), "+=" otherwise. EXPR sees d = dy[i], read before any
 * test so that the loops vectorise as selects on any x86-64 (a conditional
 * load needs AVX-512 masking, else the loop branches per element). */
#define GRAD_LOOP(assign, n, EXPR)                                                          \
    do {                                                                                    \
        if (assign) {                                                                       \
            _Pragma("omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)")     \
            for (int64_t i = 0; i < n; i++) { float d = dy[i]; dx[i] = (EXPR); }                                 \
        } else {                                                                            \
            _Pragma("omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)")     \
            for (int64_t i = 0; i < n; i++) { float d = dy[i]; dx[i] += (EXPR); }                                \
        }                                                                                   \
    } while (0)

static void relu_forward(const float *x, float *y, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(const float *y, const float *dy, float *dx, int64_t n, int assign)
{
    GRAD_LOOP(assign, n, y[i] > 0.0f ? d : 0.0f);
}

static void leakyrelu_forward(const float *x, float *y, int64_t n, float alpha)
{
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
}

static void leakyrelu_backward(const float *x, const float *dy, float *dx, int64_t n, float alpha, int assign)
{
    GRAD_LOOP(assign, n, x[i] > 0.0f ? d : alpha * d);
}

/* NaN passes through, as in ONNX Runtime. */
static void clip_forward(const float *x, float *y, int64_t n, float lo, float hi)
{
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

static void clip_backward(const float *x, const float *dy, float *dx, int64_t n, float lo, float hi, int assign)
{
    GRAD_LOOP(assign, n, (x[i] >= lo && x[i] <= hi) ? d : 0.0f);
}

static void sigmoid_forward(const float *x, float *y, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN / 8)
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void sigmoid_backward(const float *y, const float *dy, float *dx, int64_t n, int assign)
{
    GRAD_LOOP(assign, n, d * y[i] * (1.0f - y[i]));
}

static void hardsigmoid_forward(const float *x, float *y, int64_t n, float alpha, float beta)
{
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = fminf(1.0f, fmaxf(0.0f, alpha * x[i] + beta));
}

static void hardsigmoid_backward(const float *x, const float *dy, float *dx, int64_t n, float alpha, float beta,
                                 int assign)
{
    GRAD_LOOP(assign, n, (alpha * x[i] + beta > 0.0f && alpha * x[i] + beta < 1.0f) ? alpha * d : 0.0f);
}

/* y = x * HardSigmoid(x) with alpha 1/6, beta 1/2. */
static void hardswish_forward(const float *x, float *y, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * fminf(1.0f, fmaxf(0.0f, x[i] / 6.0f + 0.5f));
}

static void hardswish_backward(const float *x, const float *dy, float *dx, int64_t n, int assign)
{
    GRAD_LOOP(assign, n, d * (x[i] < -3.0f ? 0.0f : x[i] <= 3.0f ? x[i] / 3.0f + 0.5f : 1.0f));
}

static void tanh_forward(const float *x, float *y, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN / 8)
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

static void tanh_backward(const float *y, const float *dy, float *dx, int64_t n, int assign)
{
    GRAD_LOOP(assign, n, d * (1.0f - y[i] * y[i]));
}

/* PRelu: the slope broadcast to x by the plan `bc` (operand 0: x, 1: slope). */
static void prelu_forward(const nm_bcast *bc, const float *x, const float *slope, float *y)
{
    int64_t ss = nm_bcast_row_stride(bc, 1);
#pragma omp parallel for schedule(static) if (bc->numel >= NM_PARALLEL_MIN)
    for (int64_t c = 0; c < bc->n_chunks; c++) {
        int64_t off[NM_BCAST_MAX_OPS], len;
        int64_t o = nm_bcast_chunk(bc, c, off, &len);
        const float *s = slope + off[1];
        for (int64_t k = 0; k < len; k++) y[o + k] = x[o + k] < 0.0f ? s[k * ss] * x[o + k] : x[o + k];
    }
}

static void prelu_backward_x(const nm_bcast *bc, const float *x, const float *slope, const float *dy, float *dx)
{
    int64_t ss = nm_bcast_row_stride(bc, 1);
#pragma omp parallel for schedule(static) if (bc->numel >= NM_PARALLEL_MIN)
    for (int64_t c = 0; c < bc->n_chunks; c++) {
        int64_t off[NM_BCAST_MAX_OPS], len;
        int64_t o = nm_bcast_chunk(bc, c, off, &len);
        const float *s = slope + off[1];
        for (int64_t k = 0; k < len; k++) dx[o + k] += x[o + k] > 0.0f ? dy[o + k] : s[k * ss] * dy[o + k];
    }
}

/* ------------------------------------------------------------- nodes */

typedef struct act_state {
    float alpha, beta;      /* LeakyRelu, HardSigmoid */
    float lo, hi;           /* Clip */
    nm_shape slope_shape;   /* PRelu: the slope as it broadcasts to x */
    nm_bcast bc;            /* PRelu */
} act_state;

static nm_status act_init(nm_graph *g, nm_node *n, nm_error *err)
{
    int max_in = n->op == NM_OP_PRELU ? 2 : n->op == NM_OP_CLIP ? 3 : 1;
    int min_in = n->op == NM_OP_PRELU ? 2 : 1;
    if (n->n_in < min_in || n->n_in > max_in || !nm_in(g, n, 0) || (n->op == NM_OP_PRELU && !nm_in(g, n, 1)) ||
        n->n_out != 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s' has %d inputs and %d outputs", g->source,
                       n->op_type, n->name, n->n_in, n->n_out);
    act_state *st = calloc(1, sizeof *st);
    if (!st) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    n->state = st;
    if (n->op == NM_OP_LEAKYRELU) st->alpha = nm_attr_float(n, "alpha", 0.01f);
    if (n->op == NM_OP_HARDSIGMOID) {
        st->alpha = nm_attr_float(n, "alpha", 0.2f);
        st->beta = nm_attr_float(n, "beta", 0.5f);
    }
    if (n->op == NM_OP_CLIP) {
        /* Before opset 11 the bounds are attributes; after, optional inputs. */
        st->lo = g->opset < 11 ? nm_attr_float(n, "min", -FLT_MAX) : -INFINITY;
        st->hi = g->opset < 11 ? nm_attr_float(n, "max", FLT_MAX) : INFINITY;
    }
    return NM_OK;
}

static nm_status clip_bound(nm_graph *g, nm_node *n, int i, float *v, nm_error *err)
{
    const nm_tensor *t = nm_in(g, n, i);
    if (!t) return NM_OK;
    if (!t->is_const || t->numel != 1)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: Clip node '%s': %s must be a constant scalar",
                       g->source, n->name, i == 1 ? "min" : "max");
    if (t->dtype != NM_FLOAT)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: Clip node '%s': only float bounds are supported",
                       g->source, n->name);
    *v = nm_f32(t)[0];
    return NM_OK;
}

/* The slope's shape as broadcast to x; a 1-D per-channel slope of length C
 * that numpy rules would not broadcast (older exporters) is read as [C,1,..]. */
static nm_status prelu_slope_shape(nm_graph *g, nm_node *n, act_state *st, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0), *s = nm_in(g, n, 1);
    char sx[128], ss[128];
    st->slope_shape = s->shape;
    if (nm_broadcasts_to(&s->shape, &x->shape)) return NM_OK;
    if (s->shape.ndim == 1 && x->shape.ndim >= 2 && s->shape.dims[0] == x->shape.dims[1]) {
        st->slope_shape.ndim = x->shape.ndim - 1;
        for (int i = 1; i < st->slope_shape.ndim; i++) st->slope_shape.dims[i] = 1;
        return NM_OK;
    }
    return nm_fail(err, NM_ERR_SHAPE, "%s: PRelu node '%s': slope %s does not broadcast to input %s",
                   g->source, n->name, nm_shape_str(&s->shape, ss, sizeof ss),
                   nm_shape_str(&x->shape, sx, sizeof sx));
}

static nm_status act_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    act_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (x->dtype != NM_FLOAT || (n->op == NM_OP_PRELU && nm_in(g, n, 1)->dtype != NM_FLOAT))
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: %s node '%s': only float tensors are supported",
                       g->source, n->op_type, n->name);
    if (n->op == NM_OP_CLIP && g->opset >= 11) {
        nm_status s = clip_bound(g, n, 1, &st->lo, err);
        if (!s) s = clip_bound(g, n, 2, &st->hi, err);
        if (s) return s;
    }
    if (n->op == NM_OP_PRELU) {
        nm_status s = prelu_slope_shape(g, n, st, err);
        if (s) return s;
        const nm_shape *ops[2] = {&x->shape, &st->slope_shape};
        nm_bcast_plan(&st->bc, &x->shape, 2, ops);
    }
    y->dtype = NM_FLOAT;
    y->shape = x->shape;
    y->numel = x->numel;
    return NM_OK;
}

static nm_status act_forward(nm_graph *g, nm_node *n)
{
    const act_state *st = n->state;
    const nm_tensor *xt = nm_in(g, n, 0);
    const float *x = nm_f32(xt);
    float *y = nm_f32(nm_out(g, n, 0));
    int64_t len = xt->numel;
    switch (n->op) {
    case NM_OP_RELU: relu_forward(x, y, len); break;
    case NM_OP_LEAKYRELU: leakyrelu_forward(x, y, len, st->alpha); break;
    case NM_OP_PRELU: prelu_forward(&st->bc, x, nm_f32(nm_in(g, n, 1)), y); break;
    case NM_OP_CLIP: clip_forward(x, y, len, st->lo, st->hi); break;
    case NM_OP_SIGMOID: sigmoid_forward(x, y, len); break;
    case NM_OP_HARDSIGMOID: hardsigmoid_forward(x, y, len, st->alpha, st->beta); break;
    case NM_OP_HARDSWISH: hardswish_forward(x, y, len); break;
    case NM_OP_TANH: tanh_forward(x, y, len); break;
    default: return NM_ERR_INTERNAL;
    }
    return NM_OK;
}

static nm_status act_backward(nm_graph *g, nm_node *n)
{
    const act_state *st = n->state;
    nm_tensor *xt = nm_in(g, n, 0), *yt = nm_out(g, n, 0);
    const float *x = nm_f32(xt), *y = nm_f32(yt), *dy = yt->grad;
    float *dx = xt->grad;
    int64_t len = xt->numel;
    if (!dy) return NM_OK;
    if (n->op == NM_OP_PRELU) {
        nm_tensor *s = nm_in(g, n, 1);
        if (xt->requires_grad) prelu_backward_x(&st->bc, x, nm_f32(s), dy, dx);
        if (s->requires_grad)
            nm_bcast_reduce(NM_TERM_DY_MUL_NEG, dy, &xt->shape, x, &xt->shape, NULL, 1.0f, &st->slope_shape,
                            s->grad);
        return NM_OK;
    }
    if (!xt->requires_grad) return NM_OK;
    int as = n->grad_assign & 1u;
    switch (n->op) {
    case NM_OP_RELU: relu_backward(y, dy, dx, len, as); break;
    case NM_OP_LEAKYRELU: leakyrelu_backward(x, dy, dx, len, st->alpha, as); break;
    case NM_OP_CLIP: clip_backward(x, dy, dx, len, st->lo, st->hi, as); break;
    case NM_OP_SIGMOID: sigmoid_backward(y, dy, dx, len, as); break;
    case NM_OP_HARDSIGMOID: hardsigmoid_backward(x, dy, dx, len, st->alpha, st->beta, as); break;
    case NM_OP_HARDSWISH: hardswish_backward(x, dy, dx, len, as); break;
    case NM_OP_TANH: tanh_backward(y, dy, dx, len, as); break;
    default: return NM_ERR_INTERNAL;
    }
    return NM_OK;
}

static void act_destroy(nm_node *n)
{
    free(n->state);
    n->state = NULL;
}

#define ACT_IMPL {act_init, act_reshape, act_forward, act_backward, act_destroy}
const nm_op_impl nm_op_relu = ACT_IMPL;
const nm_op_impl nm_op_leakyrelu = ACT_IMPL;
const nm_op_impl nm_op_prelu = ACT_IMPL;
const nm_op_impl nm_op_clip = ACT_IMPL;
const nm_op_impl nm_op_sigmoid = ACT_IMPL;
const nm_op_impl nm_op_hardsigmoid = ACT_IMPL;
const nm_op_impl nm_op_hardswish = ACT_IMPL;
const nm_op_impl nm_op_tanh = ACT_IMPL;
