/* Pooling (ONNX): MaxPool and AveragePool (1-D to 3-D, strides, pads,
 * auto_pad, dilations, ceil_mode, count_include_pad) on oneDNN pooling
 * primitives in the graph's plain layout, with plain C loops for what oneDNN
 * cannot express (int64 MaxPool, MaxPool's Indices output, AveragePool
 * counting padding with ceil_mode);
 * GlobalAveragePool and GlobalMaxPool in plain C. Float inputs and outputs may
 * be channels-last where the plan chose it (the oneDNN path and the global
 * pools read it; see nm_pool_native_ok). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/dnnl_util.h"

typedef enum pool_kind { POOL_MAX, POOL_AVG } pool_kind;

typedef struct pool_state {
    pool_kind kind;
    int count_include_pad;
    int ceil_mode;
    int want_indices;                /* MaxPool's second output */
    int col_major;                   /* storage_order 1: Indices count column-major */
    nm_window win;
    int rank;
    int64_t xdims[5], ydims[5];
    int use_dnnl;                    /* else the plain C loops below */
    dnnl_format_tag_t xtag, ytag;    /* graph layouts of X and Y */
    int threads;                     /* nm_dnnl_threads_for the window work */
    dnnl_primitive_t fwd, bwd;
    dnnl_primitive_desc_t fwd_pd;
    dnnl_memory_t ws;                /* MaxPool argmax workspace, forward -> backward */
    nm_dnnl_arg src, dst, ddst, dsrc;
} pool_state;

/* ------------------------------------------------------------ plain C loops */

/* The window as 3-D: leading axes of size 1 for 1-D and 2-D pooling. */
typedef struct geom3 {
    int64_t in[3], out[3], k[3], s[3], d[3], pl[3], pr[3];
    int64_t in_sz, out_sz;
} geom3;

static geom3 geom3_of(const nm_window *w)
{
    geom3 q;
    int off = 3 - w->nsp;
    for (int i = 0; i < 3; i++) {
        int j = i - off;
        int real = j >= 0;
        q.in[i] = real ? w->in[j] : 1;
        q.out[i] = real ? w->out[j] : 1;
        q.k[i] = real ? w->kernel[j] : 1;
        q.s[i] = real ? w->stride[j] : 1;
        q.d[i] = real ? w->dilation[j] : 1;
        q.pl[i] = real ? w->pad_l[j] : 0;
        q.pr[i] = real ? w->pad_r[j] : 0;
    }
    q.in_sz = q.in[0] * q.in[1] * q.in[2];
    q.out_sz = q.out[0] * q.out[1] * q.out[2];
    return q;
}

/* Visit the input positions of output position o (flat); returns how many of
 * the window's positions lie inside the input, and inside the explicitly
 * padded input (count_include_pad's divisor). */
#define WINDOW_FOR(q, o, idx, BODY)                                                    \
    do {                                                                               \
        int64_t o2_ = (o) % (q).out[2], o1_ = (o) / (q).out[2] % (q).out[1];           \
        int64_t o0_ = (o) / ((q).out[2] * (q).out[1]);                                 \
        for (int64_t k0_ = 0; k0_ < (q).k[0]; k0_++) {                                 \
            int64_t i0_ = o0_ * (q).s[0] - (q).pl[0] + k0_ * (q).d[0];                 \
            if (i0_ < 0 || i0_ >= (q).in[0]) continue;                                 \
            for (int64_t k1_ = 0; k1_ < (q).k[1]; k1_++) {                             \
                int64_t i1_ = o1_ * (q).s[1] - (q).pl[1] + k1_ * (q).d[1];             \
                if (i1_ < 0 || i1_ >= (q).in[1]) continue;                             \
                for (int64_t k2_ = 0; k2_ < (q).k[2]; k2_++) {                         \
                    int64_t i2_ = o2_ * (q).s[2] - (q).pl[2] + k2_ * (q).d[2];         \
                    if (i2_ < 0 || i2_ >= (q).in[2]) continue;                         \
                    int64_t idx = (i0_ * (q).in[1] + i1_) * (q).in[2] + i2_;           \
                    BODY;                                                              \
                }                                                                      \
            }                                                                          \
        }                                                                              \
    } while (0)

/* Window positions of output o that fall inside [-pad_l, in + pad_r). */
static int64_t padded_count(const geom3 *q, int64_t o)
{
    int64_t pos[3] = {o / (q->out[2] * q->out[1]), o / q->out[2] % q->out[1], o % q->out[2]};
    int64_t count = 1;
    for (int a = 0; a < 3; a++) {
        int64_t c = 0;
        for (int64_t k = 0; k < q->k[a]; k++) {
            int64_t i = pos[a] * q->s[a] - q->pl[a] + k * q->d[a];
            c += i >= -q->pl[a] && i < q->in[a] + q->pr[a];
        }
        count *= c;
    }
    return count;
}

static float avg_divisor(const geom3 *q, int64_t o, int64_t inside, int include_pad)
{
    int64_t c = include_pad ? padded_count(q, o) : inside;
    return c > 0 ? (float)c : 1.0f;
}

static void avgpool_forward(const float *x, float *y, int64_t nc, const geom3 *q, int include_pad)
{
#pragma omp parallel for
    for (int64_t c = 0; c < nc; c++) {
        const float *xc = x + c * q->in_sz;
        for (int64_t o = 0; o < q->out_sz; o++) {
            float sum = 0.0f;
            int64_t inside = 0;
            WINDOW_FOR(*q, o, i, { sum += xc[i]; inside++; });
            y[c * q->out_sz + o] = sum / avg_divisor(q, o, inside, include_pad);
        }
    }
}

static void avgpool_backward(float *dx, const float *dy, int64_t nc, const geom3 *q, int include_pad)
{
#pragma omp parallel for
    for (int64_t c = 0; c < nc; c++) {
        float *dxc = dx + c * q->in_sz;
        for (int64_t o = 0; o < q->out_sz; o++) {
            int64_t inside = 0;
            WINDOW_FOR(*q, o, i, { (void)i; inside++; });
            float gy = dy[c * q->out_sz + o] / avg_divisor(q, o, inside, include_pad);
            WINDOW_FOR(*q, o, i, { dxc[i] += gy; });
        }
    }
}

/* Index (within the channel) of the window's first maximum; -1 if the window
 * lies wholly in padding. */
static int64_t max_index_f32(const float *xc, const geom3 *q, int64_t o)
{
    int64_t best = -1;
    WINDOW_FOR(*q, o, i, {
        if (best < 0 || xc[i] > xc[best]) best = i;
    });
    return best;
}

/* Flat index in X of position i of channel c, for MaxPool's Indices output:
 * spatial axes row-major, or column-major (storage_order 1). */
static int64_t flat_index(const geom3 *q, int64_t c, int64_t i, int col_major)
{
    if (i < 0) return -1;
    if (col_major) {
        int64_t i2 = i % q->in[2], i1 = i / q->in[2] % q->in[1], i0 = i / (q->in[2] * q->in[1]);
        i = (i2 * q->in[1] + i1) * q->in[0] + i0;
    }
    return c * q->in_sz + i;
}

/* `indices` (may be NULL): where each maximum is in X. */
static void maxpool_forward_f32(const float *x, float *y, int64_t *indices, int col_major, int64_t nc,
                                const geom3 *q)
{
#pragma omp parallel for
    for (int64_t c = 0; c < nc; c++) {
        const float *xc = x + c * q->in_sz;
        for (int64_t o = 0; o < q->out_sz; o++) {
            int64_t i = max_index_f32(xc, q, o);
            y[c * q->out_sz + o] = i >= 0 ? xc[i] : -INFINITY;
            if (indices) indices[c * q->out_sz + o] = flat_index(q, c, i, col_major);
        }
    }
}

static void maxpool_forward_i64(const int64_t *x, int64_t *y, int64_t *indices, int col_major, int64_t nc,
                                const geom3 *q)
{
#pragma omp parallel for
    for (int64_t c = 0; c < nc; c++) {
        const int64_t *xc = x + c * q->in_sz;
        for (int64_t o = 0; o < q->out_sz; o++) {
            int64_t best = -1;
            WINDOW_FOR(*q, o, i, {
                if (best < 0 || xc[i] > xc[best]) best = i;
            });
            y[c * q->out_sz + o] = best >= 0 ? xc[best] : INT64_MIN;
            if (indices) indices[c * q->out_sz + o] = flat_index(q, c, best, col_major);
        }
    }
}

static void maxpool_backward_f32(float *dx, const float *x, const float *dy, int64_t nc, const geom3 *q)
{
#pragma omp parallel for
    for (int64_t c = 0; c < nc; c++) {
        const float *xc = x + c * q->in_sz;
        for (int64_t o = 0; o < q->out_sz; o++) {
            int64_t i = max_index_f32(xc, q, o);
            if (i >= 0) dx[c * q->in_sz + i] += dy[c * q->out_sz + o];
        }
    }
}

/* ------------------------------------------------------------ oneDNN path */

static void pool_free_prims(pool_state *s)
{
    if (s->fwd) dnnl_primitive_destroy(s->fwd);
    if (s->bwd) dnnl_primitive_destroy(s->bwd);
    if (s->fwd_pd) dnnl_primitive_desc_destroy(s->fwd_pd);
    if (s->ws) dnnl_memory_destroy(s->ws);
    nm_dnnl_arg_free(&s->src);
    nm_dnnl_arg_free(&s->dst);
    nm_dnnl_arg_free(&s->ddst);
    nm_dnnl_arg_free(&s->dsrc);
    s->fwd = s->bwd = NULL;
    s->fwd_pd = NULL;
    s->ws = NULL;
    s->use_dnnl = 0;
}

static dnnl_alg_kind_t pool_alg(const pool_state *s)
{
    if (s->kind == POOL_MAX) return dnnl_pooling_max;
    return s->count_include_pad ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
}

/* oneDNN geometry: dilation counts gaps; the right padding includes the
 * ceil_mode extension. */
static void pool_geometry(const pool_state *s, dnnl_dims_t strides, dnnl_dims_t kernel, dnnl_dims_t dil,
                          dnnl_dims_t pl, dnnl_dims_t pr)
{
    const nm_window *w = &s->win;
    for (int i = 0; i < w->nsp; i++) {
        strides[i] = w->stride[i];
        kernel[i] = w->kernel[i];
        dil[i] = w->dilation[i] - 1;
        pl[i] = w->pad_l[i];
        pr[i] = w->pad_r[i] + w->extra_r[i];
    }
}

static const dnnl_memory_desc_t *pd_md(const_dnnl_primitive_desc_t pd, int arg)
{
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

/* Channels-last primitives when either side is channels-last (reorders
 * bridge a plain other side), else plain ones. */
static nm_status pool_mds(const pool_state *s, dnnl_memory_desc_t *mx, dnnl_memory_desc_t *my, nm_error *err)
{
    dnnl_format_tag_t tag = (s->xtag == dnnl_acdb || s->ytag == dnnl_acdb) ? dnnl_acdb : nm_dnnl_plain_tag(s->rank);
    nm_status st = nm_dnnl_md(mx, s->rank, s->xdims, tag, err);
    return st ? st : nm_dnnl_md(my, s->rank, s->ydims, tag, err);
}

static nm_status pool_build_forward(nm_graph *g, pool_state *s, nm_error *err)
{
    dnnl_memory_desc_t mx, my;
    nm_status st = pool_mds(s, &mx, &my, err);
    if (st) return st;
    dnnl_dims_t strides, kernel, dil, pl, pr;
    pool_geometry(s, strides, kernel, dil, pl, pr);
    dnnl_pooling_v2_desc_t pd_desc;
    st = nm_dnnl_check(dnnl_pooling_v2_forward_desc_init(&pd_desc, dnnl_forward_training, pool_alg(s), &mx, &my,
                                                         strides, kernel, dil, pl, pr),
                       err, "pooling forward descriptor");
    if (!st) st = nm_dnnl_primitive(g, &pd_desc, NULL, NULL, &s->fwd_pd, &s->fwd, err, "pooling forward");
    if (st) return st;
    st = nm_dnnl_arg_init_tag(g, &s->src, NM_ARG_IN, s->rank, s->xdims, s->xtag, pd_md(s->fwd_pd, DNNL_ARG_SRC),
                              err);
    if (!st)
        st = nm_dnnl_arg_init_tag(g, &s->dst, NM_ARG_OUT, s->rank, s->ydims, s->ytag,
                                  pd_md(s->fwd_pd, DNNL_ARG_DST), err);
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(s->fwd_pd, dnnl_query_workspace_md, 0);
    if (!st && ws && dnnl_memory_desc_get_size(ws) > 0)
        st = nm_dnnl_check(dnnl_memory_create(&s->ws, ws, g->engine, DNNL_MEMORY_ALLOCATE), err,
                           "pooling workspace");
    return st;
}

static nm_status pool_build_backward(nm_graph *g, const nm_node *n, pool_state *s, nm_error *err)
{
    dnnl_memory_desc_t mx, my;
    nm_status st = pool_mds(s, &mx, &my, err);
    if (st) return st;
    dnnl_dims_t strides, kernel, dil, pl, pr;
    pool_geometry(s, strides, kernel, dil, pl, pr);
    dnnl_pooling_v2_desc_t pd_desc;
    dnnl_primitive_desc_t pd = NULL;
    st = nm_dnnl_check(dnnl_pooling_v2_backward_desc_init(&pd_desc, pool_alg(s), &mx, &my, strides, kernel, dil,
                                                          pl, pr),
                       err, "pooling backward descriptor");
    if (!st) st = nm_dnnl_primitive(g, &pd_desc, NULL, s->fwd_pd, &pd, &s->bwd, err, "pooling backward");
    if (st) return st;
    nm_arg_kind dx_kind = (n->grad_assign & 1u) ? NM_ARG_OUT : NM_ARG_ACC;
    st = nm_dnnl_arg_init_tag(g, &s->ddst, NM_ARG_IN, s->rank, s->ydims, s->ytag, pd_md(pd, DNNL_ARG_DIFF_DST), err);
    if (!st)
        st = nm_dnnl_arg_init_tag(g, &s->dsrc, dx_kind, s->rank, s->xdims, s->xtag, pd_md(pd, DNNL_ARG_DIFF_SRC),
                                  err);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* ------------------------------------------------------------ the operators */

static nm_status pool_init(nm_graph *g, nm_node *n, pool_kind kind, nm_error *err)
{
    const char *op = n->op_type;
    if (n->n_in != 1 || !nm_in(g, n, 0) || n->n_out < 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s': needs one input and an output", g->source, op,
                       n->name);
    const nm_tensor *indices = nm_out(g, n, 1);
    int want_indices = indices && indices->name[0];
    if (n->n_out > 2 || (want_indices && kind != POOL_MAX))
        return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s': too many outputs", g->source, op, n->name);
    if (!nm_attr_get(n, "kernel_shape"))
        return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s': kernel_shape missing", g->source, op, n->name);
    nm_status st = nm_window_check_attrs(g, n, 0, err);
    if (st) return st;
    pool_state *s = calloc(1, sizeof *s);
    if (!s) return nm_fail(err, NM_ERR_MEMORY, "pooling state");
    s->kind = kind;
    s->want_indices = want_indices;
    s->col_major = nm_attr_int(n, "storage_order", 0) != 0;
    s->ceil_mode = nm_attr_int(n, "ceil_mode", 0) != 0;
    n->state = s;
    return NM_OK;
}

static nm_status maxpool_init(nm_graph *g, nm_node *n, nm_error *err) { return pool_init(g, n, POOL_MAX, err); }
static nm_status avgpool_init(nm_graph *g, nm_node *n, nm_error *err) { return pool_init(g, n, POOL_AVG, err); }

static void pool_destroy(nm_node *n)
{
    pool_state *s = n->state;
    if (!s) return;
    pool_free_prims(s);
    free(s);
    n->state = NULL;
}

/* oneDNN divides by the whole kernel when counting padding, ceil_mode's
 * extension included; ONNX counts only the explicitly padded input. */
static int pool_needs_plain_c(const pool_state *s, const nm_tensor *x)
{
    if (x->dtype != NM_FLOAT || s->want_indices) return 1;
    if (s->kind == POOL_AVG && s->count_include_pad)
        for (int i = 0; i < s->win.nsp; i++)
            if (s->win.extra_r[i] > 0) return 1;
    return 0;
}

static nm_status pool_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    pool_state *s = n->state;
    pool_free_prims(s);
    const nm_tensor *x = nm_in(g, n, 0);
    nm_tensor *y = nm_out(g, n, 0);
    char buf[96];
    int r = x->shape.ndim;
    if (r < 3 || r > 2 + NM_MAX_SPATIAL || (x->dtype != NM_FLOAT && (s->kind != POOL_MAX || x->dtype != NM_INT64)))
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: %s node '%s': input %s of type %d", g->source, n->op_type,
                       n->name, nm_shape_str(&x->shape, buf, sizeof buf), (int)x->dtype);
    /* Read here, not at init: nm_graph_fuse_pad_pool may set it later. */
    s->count_include_pad = s->kind == POOL_AVG && nm_attr_int(n, "count_include_pad", 0) != 0;
    nm_status st = nm_window_from_node(g, n, r - 2, x->shape.dims + 2, NULL, s->ceil_mode, &s->win, err);
    if (st) return st;
    /* A max window wholly in padding would give -inf (ONNX refuses such pads too). */
    for (int i = 0; s->kind == POOL_MAX && i < r - 2; i++)
        if (s->win.pad_l[i] >= nm_window_extent(&s->win, i) || s->win.pad_r[i] >= nm_window_extent(&s->win, i))
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "pads %lld and %lld are not smaller than the kernel (%lld)",
                                (long long)s->win.pad_l[i], (long long)s->win.pad_r[i],
                                (long long)nm_window_extent(&s->win, i));
    s->rank = r;
    memcpy(s->xdims, x->shape.dims, sizeof(int64_t) * (size_t)r);
    s->ydims[0] = s->xdims[0];
    s->ydims[1] = s->xdims[1];
    for (int i = 0; i < r - 2; i++) s->ydims[2 + i] = s->win.out[i];
    y->dtype = x->dtype;
    y->shape.ndim = r;
    memcpy(y->shape.dims, s->ydims, sizeof(int64_t) * (size_t)r);
    if (s->want_indices) {
        nm_tensor *ind = nm_out(g, n, 1);
        ind->dtype = NM_INT64;
        ind->shape = y->shape;
    }
    if (pool_needs_plain_c(s, x) || nm_shape_numel(&y->shape) == 0) return NM_OK;
    st = nm_dnnl_ready(g, err);
    if (st) return st;
    if (g->defer_build) {
        n->deferred = 1;
        return NM_OK;
    }
    s->xtag = nm_dnnl_tensor_tag(g, n->in[0], r);
    s->ytag = nm_dnnl_tensor_tag(g, n->out[0], r);
    double work = (double)nm_shape_numel(&y->shape);
    for (int i = 0; i < s->win.nsp; i++) work *= (double)s->win.kernel[i];
    s->threads = nm_dnnl_threads_for(g, work);
    int saved = nm_dnnl_threads_begin(s->threads);
    /* What oneDNN refuses (odd padding, say) runs in the plain C loops. */
    if (pool_build_forward(g, s, NULL) == NM_OK &&
        (!x->requires_grad || pool_build_backward(g, n, s, NULL) == NM_OK))
        s->use_dnnl = 1;
    else
        pool_free_prims(s);
    nm_dnnl_threads_end(saved);
    if (!s->use_dnnl && (s->xtag == dnnl_acdb || s->ytag == dnnl_acdb))
        return nm_fail(err, NM_ERR_INTERNAL, "%s: %s node '%s': oneDNN refused a channels-last pooling", g->source,
                       n->op_type, n->name);
    return st;
}

/* Only the oneDNN path reads channels-last; what it refuses at build time
 * is rare (the plain C loops cover it), so the plan asks only for the cases
 * known to need plain C. */
int nm_pool_native_ok(nm_graph *g, const nm_node *n)
{
    const pool_state *s = n->state;
    const nm_tensor *x = nm_in(g, n, 0);
    return s && x && x->shape.ndim == 4 && !pool_needs_plain_c(s, x) && (s->use_dnnl || n->deferred);
}

static nm_status pool_forward(nm_graph *g, nm_node *n)
{
    pool_state *s = n->state;
    const nm_tensor *x = nm_in(g, n, 0);
    nm_tensor *y = nm_out(g, n, 0);
    if (nm_shape_numel(&y->shape) == 0) return NM_OK;
    if (s->use_dnnl) {
        int saved = nm_dnnl_threads_begin(s->threads);
        nm_status st = nm_dnnl_arg_in(g, &s->src, x->data);
        nm_dnnl_arg_out_begin(&s->dst, y->data);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, s->src.prim}, {DNNL_ARG_DST, s->dst.prim},
                                   {DNNL_ARG_WORKSPACE, s->ws}};
        if (!st) st = nm_dnnl_exec(g, s->fwd, s->ws ? 3 : 2, args);
        if (!st) st = nm_dnnl_arg_out_end(g, &s->dst, y->data);
        nm_dnnl_threads_end(saved);
        return st;
    }
    geom3 q = geom3_of(&s->win);
    int64_t nc = s->xdims[0] * s->xdims[1];
    int64_t *indices = s->want_indices ? nm_out(g, n, 1)->data : NULL;
    if (s->kind == POOL_AVG) avgpool_forward(x->data, y->data, nc, &q, s->count_include_pad);
    else if (x->dtype == NM_INT64) maxpool_forward_i64(x->data, y->data, indices, s->col_major, nc, &q);
    else maxpool_forward_f32(x->data, y->data, indices, s->col_major, nc, &q);
    return NM_OK;
}

static nm_status pool_backward(nm_graph *g, nm_node *n)
{
    pool_state *s = n->state;
    nm_tensor *x = nm_in(g, n, 0);
    const nm_tensor *y = nm_out(g, n, 0);
    if (!x->requires_grad || nm_shape_numel(&y->shape) == 0) return NM_OK;
    /* Built late: its scratch regions must exist before the primitives run. */
    if (s->use_dnnl && !s->bwd && (pool_build_backward(g, n, s, NULL) || nm_graph_scratch_ready(g, NULL)))
        return NM_ERR_INTERNAL;
    if (s->use_dnnl) {
        int saved = nm_dnnl_threads_begin(s->threads);
        nm_status st = nm_dnnl_arg_in(g, &s->ddst, y->grad);
        nm_dnnl_arg_out_begin(&s->dsrc, x->grad);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, s->ddst.prim}, {DNNL_ARG_DIFF_SRC, s->dsrc.prim},
                                   {DNNL_ARG_WORKSPACE, s->ws}};
        if (!st) st = nm_dnnl_exec(g, s->bwd, s->ws ? 3 : 2, args);
        if (!st) st = nm_dnnl_arg_out_end(g, &s->dsrc, x->grad);
        nm_dnnl_threads_end(saved);
        return st;
    }
    geom3 q = geom3_of(&s->win);
    int64_t nc = s->xdims[0] * s->xdims[1];
    if (n->grad_assign & 1u) memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
    if (s->kind == POOL_AVG) avgpool_backward(x->grad, y->grad, nc, &q, s->count_include_pad);
    else maxpool_backward_f32(x->grad, x->data, y->grad, nc, &q);
    return NM_OK;
}

const nm_op_impl nm_op_maxpool = {
    .init = maxpool_init,
    .reshape = pool_reshape,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = pool_destroy,
};

const nm_op_impl nm_op_averagepool = {
    .init = avgpool_init,
    .reshape = pool_reshape,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = pool_destroy,
};

/* ------------------------------------------------------------ global pooling */

static nm_status global_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 1 || !nm_in(g, n, 0) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s': needs one input and one output", g->source,
                       n->op_type, n->name);
    return NM_OK;
}

static nm_status global_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0);
    nm_tensor *y = nm_out(g, n, 0);
    char buf[96];
    if (x->dtype != NM_FLOAT || x->shape.ndim < 3)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: %s node '%s': input %s of type %d", g->source, n->op_type,
                       n->name, nm_shape_str(&x->shape, buf, sizeof buf), (int)x->dtype);
    y->dtype = NM_FLOAT;
    y->shape = x->shape;
    for (int i = 2; i < y->shape.ndim; i++) y->shape.dims[i] = 1;
    return NM_OK;
}

/* A global pooling input as [N][C][sp] (plain) or [N][sp][C] (channels-last):
 * element (b, c, i) sits at b * C * sp + c * cs + i * is. */
typedef struct global_geom {
    int64_t batch, ch, sp, cs, is;
} global_geom;

static global_geom global_geom_of(nm_graph *g, const nm_node *n)
{
    const nm_tensor *x = nm_in(g, n, 0);
    global_geom q = {.batch = x->shape.dims[0], .ch = x->shape.dims[1]};
    int64_t nc = q.batch * q.ch;
    q.sp = nc ? nm_shape_numel(&x->shape) / nc : 0;
    int nhwc = nm_tensor_layout(g, n->in[0]) == NM_LAYOUT_NHWC;
    q.cs = nhwc ? 1 : q.sp;
    q.is = nhwc ? q.ch : 1;
    return q;
}

static nm_status globalavg_forward(nm_graph *g, nm_node *n)
{
    const float *x = nm_in(g, n, 0)->data;
    float *y = nm_out(g, n, 0)->data;
    global_geom q = global_geom_of(g, n);
    float inv = q.sp ? 1.0f / (float)q.sp : 0.0f;
#pragma omp parallel for if (q.batch * q.ch * q.sp > 65536)
    for (int64_t bc = 0; bc < q.batch * q.ch; bc++) {
        const float *xc = x + bc / q.ch * q.ch * q.sp + bc % q.ch * q.cs;
        float sum = 0.0f;
        for (int64_t i = 0; i < q.sp; i++) sum += xc[i * q.is];
        y[bc] = sum * inv;
    }
    return NM_OK;
}

static nm_status globalavg_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0);
    const float *dy = nm_out(g, n, 0)->grad;
    if (!x->requires_grad) return NM_OK;
    global_geom q = global_geom_of(g, n);
    int assign = n->grad_assign & 1u;
#pragma omp parallel for if (q.batch * q.ch * q.sp > 65536)
    for (int64_t bc = 0; bc < q.batch * q.ch; bc++) {
        float *dxc = x->grad + bc / q.ch * q.ch * q.sp + bc % q.ch * q.cs;
        float gy = dy[bc] / (float)q.sp;
        if (assign)
            for (int64_t i = 0; i < q.sp; i++) dxc[i * q.is] = gy;
        else
            for (int64_t i = 0; i < q.sp; i++) dxc[i * q.is] += gy;
    }
    return NM_OK;
}

/* Offset (in steps of q.is) of the channel's first maximum. */
static int64_t channel_argmax(const float *xc, const global_geom *q)
{
    int64_t best = 0;
    for (int64_t i = 1; i < q->sp; i++)
        if (xc[i * q->is] > xc[best * q->is]) best = i;
    return best;
}

static nm_status globalmax_forward(nm_graph *g, nm_node *n)
{
    const float *x = nm_in(g, n, 0)->data;
    float *y = nm_out(g, n, 0)->data;
    global_geom q = global_geom_of(g, n);
#pragma omp parallel for if (q.batch * q.ch * q.sp > 65536)
    for (int64_t bc = 0; bc < q.batch * q.ch; bc++) {
        const float *xc = x + bc / q.ch * q.ch * q.sp + bc % q.ch * q.cs;
        y[bc] = q.sp ? xc[channel_argmax(xc, &q) * q.is] : -INFINITY;
    }
    return NM_OK;
}

static nm_status globalmax_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0);
    const float *dy = nm_out(g, n, 0)->grad;
    if (!x->requires_grad) return NM_OK;
    global_geom q = global_geom_of(g, n);
    if (n->grad_assign & 1u) memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
    if (!q.sp) return NM_OK;
    const float *xd = x->data;
#pragma omp parallel for if (q.batch * q.ch * q.sp > 65536)
    for (int64_t bc = 0; bc < q.batch * q.ch; bc++) {
        int64_t off = bc / q.ch * q.ch * q.sp + bc % q.ch * q.cs;
        x->grad[off + channel_argmax(xd + off, &q) * q.is] += dy[bc];
    }
    return NM_OK;
}

const nm_op_impl nm_op_globalaveragepool = {
    .init = global_init,
    .reshape = global_reshape,
    .forward = globalavg_forward,
    .backward = globalavg_backward,
};

const nm_op_impl nm_op_globalmaxpool = {
    .init = global_init,
    .reshape = global_reshape,
    .forward = globalmax_forward,
    .backward = globalmax_backward,
};
