/* Softmax and LogSoftmax. Before opset 13 the input is read as 2-D
 * [prod(dims[:axis]), prod(dims[axis:])] (axis default 1); from 13 on the
 * normalisation runs along the one axis (default -1). Either way the work is
 * [outer, len, inner] with the reduction over len. */
#include <math.h>
#include <stdlib.h>

#include "graph/graph.h"
#include "ops/broadcast.h"

/* Columns of `inner` handled together so the loops over len vectorise. */
#define SOFTMAX_COLS 64

typedef struct axis_layout {
    int64_t outer, len, inner;
} axis_layout;

static inline int64_t n_items(const axis_layout *L) { return L->outer * ((L->inner + SOFTMAX_COLS - 1) / SOFTMAX_COLS); }

/* Item `it`: base offset of its first column and the number of columns. */
static inline int64_t item_base(const axis_layout *L, int64_t it, int64_t *w)
{
    int64_t per = (L->inner + SOFTMAX_COLS - 1) / SOFTMAX_COLS;
    int64_t o = it / per, c0 = (it % per) * SOFTMAX_COLS;
    *w = L->inner - c0 < SOFTMAX_COLS ? L->inner - c0 : SOFTMAX_COLS;
    return o * L->len * L->inner + c0;
}

/* Subtracting the max keeps exp() finite. */
static void softmax_forward(const float *x, float *y, const axis_layout *L, int log_out)
{
    int64_t total = L->outer * L->len * L->inner;
#pragma omp parallel for schedule(static) if (total >= NM_PARALLEL_MIN / 8)
    for (int64_t it = 0; it < n_items(L); it++) {
        int64_t w, base = item_base(L, it, &w), s = L->inner;
        float mx[SOFTMAX_COLS], sum[SOFTMAX_COLS];
        for (int64_t c = 0; c < w; c++) {
            mx[c] = -INFINITY;
            sum[c] = 0.0f;
        }
        for (int64_t l = 0; l < L->len; l++)
            for (int64_t c = 0; c < w; c++) mx[c] = fmaxf(mx[c], x[base + l * s + c]);
        for (int64_t l = 0; l < L->len; l++)
            for (int64_t c = 0; c < w; c++) {
                float e = expf(x[base + l * s + c] - mx[c]);
                sum[c] += e;
                if (!log_out) y[base + l * s + c] = e;
            }
        if (log_out) {
            /* (x - max) - log(sum), in this order: max + log(sum) would round at large x. */
            for (int64_t c = 0; c < w; c++) sum[c] = logf(sum[c]);
            for (int64_t l = 0; l < L->len; l++)
                for (int64_t c = 0; c < w; c++) y[base + l * s + c] = (x[base + l * s + c] - mx[c]) - sum[c];
        } else {
            for (int64_t c = 0; c < w; c++) sum[c] = 1.0f / sum[c];
            for (int64_t l = 0; l < L->len; l++)
                for (int64_t c = 0; c < w; c++) y[base + l * s + c] *= sum[c];
        }
    }
}

/* Softmax: dx = y * (dy - sum(dy * y)); LogSoftmax: dx = dy - exp(y) * sum(dy). */
static void softmax_backward(const float *y, const float *dy, float *dx, const axis_layout *L, int log_out)
{
    int64_t total = L->outer * L->len * L->inner;
#pragma omp parallel for schedule(static) if (total >= NM_PARALLEL_MIN / 4)
    for (int64_t it = 0; it < n_items(L); it++) {
        int64_t w, base = item_base(L, it, &w), s = L->inner;
        float dot[SOFTMAX_COLS];
        for (int64_t c = 0; c < w; c++) dot[c] = 0.0f;
        for (int64_t l = 0; l < L->len; l++)
            for (int64_t c = 0; c < w; c++) {
                int64_t k = base + l * s + c;
                dot[c] += log_out ? dy[k] : dy[k] * y[k];
            }
        for (int64_t l = 0; l < L->len; l++)
            for (int64_t c = 0; c < w; c++) {
                int64_t k = base + l * s + c;
                dx[k] += log_out ? dy[k] - expf(y[k]) * dot[c] : y[k] * (dy[k] - dot[c]);
            }
    }
}

/* ------------------------------------------------------------- nodes */

static nm_status softmax_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 1 || !nm_in(g, n, 0) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s' needs 1 input and 1 output", g->source,
                       n->op_type, n->name);
    n->state = calloc(1, sizeof(axis_layout));
    if (!n->state) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    return NM_OK;
}

static nm_status softmax_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    axis_layout *L = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    int rank = x->shape.ndim;
    int64_t axis_attr = nm_attr_int(n, "axis", g->opset < 13 ? 1 : -1);
    int axis = nm_axis(axis_attr, rank);
    if (x->dtype != NM_FLOAT)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: %s node '%s': only float tensors are supported",
                       g->source, n->op_type, n->name);
    /* Opset < 13 allows axis == rank (then everything is outer). */
    if (g->opset < 13 && axis_attr == rank && rank > 0) axis = rank;
    if (axis < 0)
        return nm_fail(err, NM_ERR_SHAPE, "%s: %s node '%s': axis %lld out of range for rank %d",
                       g->source, n->op_type, n->name, (long long)axis_attr, rank);
    L->outer = L->len = L->inner = 1;
    for (int i = 0; i < rank; i++) {
        int64_t d = x->shape.dims[i];
        if (i < axis) L->outer *= d;
        else if (i == axis || g->opset < 13) L->len *= d;
        else L->inner *= d;
    }
    y->dtype = NM_FLOAT;
    y->shape = x->shape;
    y->numel = x->numel;
    return NM_OK;
}

static nm_status softmax_node_forward(nm_graph *g, nm_node *n)
{
    softmax_forward(nm_f32(nm_in(g, n, 0)), nm_f32(nm_out(g, n, 0)), n->state, n->op == NM_OP_LOGSOFTMAX);
    return NM_OK;
}

static nm_status softmax_node_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (!x->requires_grad || !y->grad) return NM_OK;
    softmax_backward(nm_f32(y), y->grad, x->grad, n->state, n->op == NM_OP_LOGSOFTMAX);
    return NM_OK;
}

static void softmax_destroy(nm_node *n)
{
    free(n->state);
    n->state = NULL;
}

const nm_op_impl nm_op_softmax = {softmax_init, softmax_reshape, softmax_node_forward, softmax_node_backward,
                                  softmax_destroy};
const nm_op_impl nm_op_logsoftmax = {softmax_init, softmax_reshape, softmax_node_forward,
                                     softmax_node_backward, softmax_destroy};
