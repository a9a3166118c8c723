/* ReduceMean over any set of axes (float). The reduction is planned once as
 * two offset tables: where each output's block starts in the input, and the
 * offsets of the reduced elements within a block, so the loops do no index
 * arithmetic. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

#define PAR_MIN 32768

typedef struct reduce_state {
    int64_t n_out, n_red;
    int64_t *out_base;      /* n_out input offsets */
    int64_t *red_off;       /* n_red offsets added to a base */
} reduce_state;

static void reduce_destroy(nm_node *n)
{
    reduce_state *st = n->state;
    if (st) {
        free(st->out_base);
        free(st->red_off);
    }
    free(n->state);
    n->state = NULL;
}

static nm_status reduce_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in < 1 || n->n_in > 2 || !nm_in(g, n, 0) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "needs 1 input (and optional axes) and 1 output");
    n->state = calloc(1, sizeof(reduce_state));
    return n->state ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
}

/* Axes: the attribute (opsets up to 17) or a constant input (opset 18). */
static nm_status reduce_axes(nm_graph *g, nm_node *n, int r, unsigned char *reduced, nm_error *err)
{
    int64_t axes[NM_MAX_DIMS];
    int k;
    const nm_tensor *t = nm_in(g, n, 1);
    if (t) {
        if (!t->is_const) return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "axes input '%s' is not constant", t->name);
        if (t->dtype != NM_INT64 || t->numel > NM_MAX_DIMS)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axes input '%s' is not a short integer list", t->name);
        k = (int)t->numel;
        for (int i = 0; i < k; i++) axes[i] = nm_i64(t)[i];
    } else {
        k = nm_attr_ints(n, "axes", axes, NM_MAX_DIMS);
        if (k > NM_MAX_DIMS) return nm_node_fail(g, n, err, NM_ERR_LIMIT, "%d axes (at most %d)", k, NM_MAX_DIMS);
    }
    if (k <= 0 && !(t && nm_attr_int(n, "noop_with_empty_axes", 0))) {
        memset(reduced, 1, (size_t)r);   /* no axes: all of them */
        return NM_OK;
    }
    memset(reduced, 0, (size_t)r);
    for (int i = 0; i < k; i++) {
        int a = nm_axis(axes[i], r);
        if (a < 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)axes[i], r);
        reduced[a] = 1;
    }
    return NM_OK;
}

/* Offsets of every index of the axes selected by `pick` (row-major order). */
static void fill_offsets(const nm_shape *s, const int64_t *stride, const unsigned char *pick, int want,
                         int64_t *off, int64_t count)
{
    int64_t idx[NM_MAX_DIMS] = {0}, cur = 0;
    for (int64_t k = 0; k < count; k++) {
        off[k] = cur;
        for (int d = s->ndim - 1; d >= 0; d--) {
            if (pick[d] != want) continue;
            cur += stride[d];
            if (++idx[d] < s->dims[d]) break;
            cur -= stride[d] * idx[d];
            idx[d] = 0;
        }
    }
}

static nm_status reduce_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    reduce_state *st = n->state;
    const nm_tensor *x = nm_in(g, n, 0);
    int r = x->shape.ndim, keep = (int)nm_attr_int(n, "keepdims", 1);
    unsigned char reduced[NM_MAX_DIMS];
    int64_t stride[NM_MAX_DIMS];
    if (x->dtype != NM_FLOAT) return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "only float tensors are supported");
    nm_status s = reduce_axes(g, n, r, reduced, err);
    if (s) return s;
    nm_shape out = {0};
    st->n_out = st->n_red = 1;
    for (int d = r - 1; d >= 0; d--) stride[d] = d == r - 1 ? 1 : stride[d + 1] * x->shape.dims[d + 1];
    for (int d = 0; d < r; d++) {
        if (reduced[d]) st->n_red *= x->shape.dims[d];
        else st->n_out *= x->shape.dims[d];
        if (!reduced[d]) out.dims[out.ndim++] = x->shape.dims[d];
        else if (keep) out.dims[out.ndim++] = 1;
    }
    free(st->out_base);
    free(st->red_off);
    st->out_base = malloc(sizeof(int64_t) * (size_t)(st->n_out ? st->n_out : 1));
    st->red_off = malloc(sizeof(int64_t) * (size_t)(st->n_red ? st->n_red : 1));
    if (!st->out_base || !st->red_off) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    if (x->numel > 0) {
        fill_offsets(&x->shape, stride, reduced, 0, st->out_base, st->n_out);
        fill_offsets(&x->shape, stride, reduced, 1, st->red_off, st->n_red);
    }
    nm_tensor *y = nm_out(g, n, 0);
    y->dtype = NM_FLOAT;
    y->shape = out;
    y->numel = nm_shape_numel(&out);
    return NM_OK;
}

static void reducemean_forward(const reduce_state *st, const float *x, float *y)
{
    double inv = 1.0 / (double)st->n_red;
#pragma omp parallel for schedule(static) if (st->n_out * st->n_red >= PAR_MIN)
    for (int64_t o = 0; o < st->n_out; o++) {
        const float *block = x + st->out_base[o];
        double sum = 0;
        for (int64_t k = 0; k < st->n_red; k++) sum += block[st->red_off[k]];
        y[o] = (float)(sum * inv);
    }
}

/* Each input element belongs to exactly one output, so outputs run in parallel. */
static void reducemean_backward(const reduce_state *st, const float *dy, float *dx)
{
    float inv = 1.0f / (float)st->n_red;
#pragma omp parallel for schedule(static) if (st->n_out * st->n_red >= PAR_MIN)
    for (int64_t o = 0; o < st->n_out; o++) {
        float *block = dx + st->out_base[o];
        float g = dy[o] * inv;
        for (int64_t k = 0; k < st->n_red; k++) block[st->red_off[k]] += g;
    }
}

static nm_status reduce_forward(nm_graph *g, nm_node *n)
{
    const reduce_state *st = n->state;
    if (st->n_red == 0 || nm_in(g, n, 0)->numel == 0) {   /* mean of nothing */
        nm_tensor *y = nm_out(g, n, 0);
        for (int64_t i = 0; i < y->numel; i++) nm_f32(y)[i] = st->n_red ? 0.0f : __builtin_nanf("");
        return NM_OK;
    }
    reducemean_forward(st, nm_f32(nm_in(g, n, 0)), nm_f32(nm_out(g, n, 0)));
    return NM_OK;
}

static nm_status reduce_backward(nm_graph *g, nm_node *n)
{
    const reduce_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (x->requires_grad && y->grad && st->n_red > 0 && x->numel > 0) reducemean_backward(st, y->grad, x->grad);
    return NM_OK;
}

const nm_op_impl nm_op_reducemean = {reduce_init, reduce_reshape, reduce_forward, reduce_backward, reduce_destroy};
