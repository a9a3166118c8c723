/* Conv (ONNX): 1-D to 3-D, groups, strides, dilations, pads, auto_pad and an
 * optional bias, on oneDNN convolution primitives.
 *
 * The graph keeps plain row-major (NCHW) tensors. Each layer runs either on
 * plain-layout primitives or on the layouts oneDNN prefers (format "any",
 * usually channel-blocked) with reorders in and out per call; conv_plain_*()
 * pick per layer and direction from measurements (bench/conv_layout.c).
 * Constant weights are reordered once at reshape, into the forward and the
 * backward-data layouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/dnnl_util.h"

typedef struct conv_state {
    nm_window win;
    int64_t group;
    int rank;                        /* of X and Y */
    int64_t xdims[5], ydims[5];
    int wrank;                       /* oneDNN weights: [G,] O, I, k... */
    int64_t wdims[6];
    int has_bias;
    int plain_fwd, plain_bwd;        /* plain-layout primitives, per direction */
    dnnl_primitive_t fwd;
    dnnl_primitive_desc_t fwd_pd;    /* hint for the backward primitives */
    nm_dnnl_arg src, wei, bias, dst;
    dnnl_primitive_t bwd_data;       /* built when X needs a gradient */
    nm_dnnl_arg bd_wei, bd_ddst, bd_dsrc;
    dnnl_primitive_t bwd_wei;        /* built when W or B need a gradient */
    nm_dnnl_arg bw_src, bw_ddst, bw_dwei, bw_dbias;
} conv_state;

static void conv_free_prims(conv_state *s)
{
    if (s->fwd) dnnl_primitive_destroy(s->fwd);
    if (s->fwd_pd) dnnl_primitive_desc_destroy(s->fwd_pd);
    if (s->bwd_data) dnnl_primitive_destroy(s->bwd_data);
    if (s->bwd_wei) dnnl_primitive_destroy(s->bwd_wei);
    nm_dnnl_arg *args[] = {&s->src, &s->wei, &s->bias, &s->dst, &s->bd_wei, &s->bd_ddst,
                           &s->bd_dsrc, &s->bw_src, &s->bw_ddst, &s->bw_dwei, &s->bw_dbias};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) nm_dnnl_arg_free(args[i]);
    s->fwd = s->bwd_data = s->bwd_wei = NULL;
    s->fwd_pd = NULL;
}

static void conv_destroy(nm_node *n)
{
    conv_state *s = n->state;
    if (!s) return;
    conv_free_prims(s);
    free(s);
    n->state = NULL;
}

static nm_status conv_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in < 2 || n->n_in > 3 || !nm_in(g, n, 0) || !nm_in(g, n, 1) || n->n_out != 1)
        return nm_fail(err, NM_ERR_PARSE, "%s: Conv node '%s': needs inputs X, W[, B] and one output",
                       g->source, n->name);
    if (nm_attr_int(n, "group", 1) < 1)
        return nm_fail(err, NM_ERR_PARSE, "%s: Conv node '%s': group < 1", g->source, n->name);
    nm_status st = nm_window_check_attrs(g, n, 0, err);
    if (st) return st;
    n->state = calloc(1, sizeof(conv_state));
    return n->state ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "Conv state");
}

/* Check X, W, B against each other and fill the geometry and Y's shape. */
static nm_status conv_shapes(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0), *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    char bx[96], bw[96];
    if (x->dtype != NM_FLOAT || w->dtype != NM_FLOAT || (b && b->dtype != NM_FLOAT))
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: Conv node '%s': only float tensors", g->source, n->name);
    int r = x->shape.ndim, nsp = r - 2;
    s->group = nm_attr_int(n, "group", 1);
    int64_t c = r > 1 ? x->shape.dims[1] : 0, m = w->shape.dims[0];
    if (nsp < 1 || nsp > NM_MAX_SPATIAL || w->shape.ndim != r || w->shape.dims[1] * s->group != c ||
        m % s->group != 0)
        return nm_fail(err, NM_ERR_SHAPE, "%s: Conv node '%s': X %s and W %s (group %lld) disagree",
                       g->source, n->name, nm_shape_str(&x->shape, bx, sizeof bx),
                       nm_shape_str(&w->shape, bw, sizeof bw), (long long)s->group);
    if (b && (b->shape.ndim != 1 || b->shape.dims[0] != m))
        return nm_fail(err, NM_ERR_SHAPE, "%s: Conv node '%s': bias %s for %lld output channels",
                       g->source, n->name, nm_shape_str(&b->shape, bx, sizeof bx), (long long)m);
    int64_t ks[NM_MAX_SPATIAL];
    int nk = nm_attr_ints(n, "kernel_shape", ks, NM_MAX_SPATIAL);
    for (int i = 0; i < nk && i < nsp; i++)
        if (ks[i] != w->shape.dims[2 + i])
            return nm_fail(err, NM_ERR_SHAPE, "%s: Conv node '%s': kernel_shape disagrees with W %s",
                           g->source, n->name, nm_shape_str(&w->shape, bw, sizeof bw));
    nm_status st = nm_window_from_node(g, n, nsp, x->shape.dims + 2, w->shape.dims + 2, 0, &s->win, err);
    if (st) return st;
    s->rank = r;
    s->has_bias = b != NULL;
    s->xdims[0] = s->ydims[0] = x->shape.dims[0];
    s->xdims[1] = c;
    s->ydims[1] = m;
    for (int i = 0; i < nsp; i++) {
        s->xdims[2 + i] = s->win.in[i];
        s->ydims[2 + i] = s->win.out[i];
    }
    int gw = s->group > 1;
    s->wrank = r + gw;
    if (gw) s->wdims[0] = s->group;
    s->wdims[gw] = m / s->group;
    s->wdims[gw + 1] = w->shape.dims[1];
    for (int i = 0; i < nsp; i++) s->wdims[gw + 2 + i] = s->win.kernel[i];
    nm_tensor *y = nm_out(g, n, 0);
    y->dtype = NM_FLOAT;
    y->shape.ndim = r;
    memcpy(y->shape.dims, s->ydims, sizeof(int64_t) * (size_t)r);
    return NM_OK;
}

/* Layout rules, from bench/conv_layout.c on AVX-512 (1 thread, batch 1 and 8).
 * Blocked layouts win 1.5-2.5x on 3x3 layers and ~10x on depthwise ones. A
 * pointwise (1x1, ungrouped) conv is a GEMM: on a map of 28x28 or more the
 * plain GEMM beats blocked + reorders by 5-40%; on small maps (7x7) blocked
 * wins 1.5x. */
static int conv_is_large_pointwise(const conv_state *s)
{
    int64_t map = 1;
    for (int i = 0; i < s->win.nsp; i++) {
        if (s->win.kernel[i] != 1) return 0;
        map *= s->win.out[i];
    }
    return s->group == 1 && map >= 28 * 28;
}

static int conv_plain_fwd(const conv_state *s) { return conv_is_large_pointwise(s); }

/* Backward data with few input channels (an image's 3) pads them to a block
 * of 16 in oneDNN's layout: 3-4x slower than the plain GEMM (224x224 first
 * layers: 11.9 vs 3.5 ms). */
static int conv_plain_bwd(const conv_state *s)
{
    return conv_is_large_pointwise(s) || (s->group == 1 && s->xdims[1] < 16);
}

typedef struct conv_mds {
    dnnl_memory_desc_t x, w, b, y;
} conv_mds;

static nm_status conv_make_mds(const conv_state *s, int plain, conv_mds *md, nm_error *err)
{
    dnnl_format_tag_t any = dnnl_format_tag_any;
    dnnl_format_tag_t tx = plain ? nm_dnnl_plain_tag(s->rank) : any;
    dnnl_format_tag_t tw = plain ? nm_dnnl_plain_tag(s->wrank) : any;
    nm_status st = nm_dnnl_md(&md->x, s->rank, s->xdims, tx, err);
    if (!st) st = nm_dnnl_md(&md->y, s->rank, s->ydims, tx, err);
    if (!st) st = nm_dnnl_md(&md->w, s->wrank, s->wdims, tw, err);
    if (!st) st = nm_dnnl_md(&md->b, 1, &s->ydims[1], dnnl_a, err);
    return st;
}

/* oneDNN geometry: dilation counts the gaps (ONNX 1 -> 0); right padding
 * includes nothing beyond ONNX's (Conv has no ceil_mode). */
static void conv_geometry(const conv_state *s, dnnl_dims_t strides, dnnl_dims_t dil, dnnl_dims_t pl,
                          dnnl_dims_t pr)
{
    for (int i = 0; i < s->win.nsp; i++) {
        strides[i] = s->win.stride[i];
        dil[i] = s->win.dilation[i] - 1;
        pl[i] = s->win.pad_l[i];
        pr[i] = s->win.pad_r[i];
    }
}

static const dnnl_memory_desc_t *pd_md(const_dnnl_primitive_desc_t pd, int arg)
{
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

static nm_status conv_build_forward(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    conv_mds md;
    nm_status st = conv_make_mds(s, s->plain_fwd, &md, err);
    if (st) return st;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(s, strides, dil, pl, pr);
    dnnl_convolution_desc_t cd;
    st = nm_dnnl_check(dnnl_dilated_convolution_forward_desc_init(
                           &cd, dnnl_forward_training, dnnl_convolution_direct, &md.x, &md.w,
                           s->has_bias ? &md.b : NULL, &md.y, strides, dil, pl, pr),
                       err, "Conv forward descriptor");
    if (!st) st = nm_dnnl_primitive(g, &cd, NULL, NULL, &s->fwd_pd, &s->fwd, err, "Conv forward");
    if (st) return st;
    const_dnnl_primitive_desc_t pd = s->fwd_pd;
    st = nm_dnnl_arg_init(g, &s->src, NM_ARG_IN, s->rank, s->xdims, pd_md(pd, DNNL_ARG_SRC), err);
    if (!st) st = nm_dnnl_arg_init(g, &s->wei, NM_ARG_IN, s->wrank, s->wdims, pd_md(pd, DNNL_ARG_WEIGHTS), err);
    if (!st && s->has_bias)
        st = nm_dnnl_arg_init(g, &s->bias, NM_ARG_IN, 1, &s->ydims[1], pd_md(pd, DNNL_ARG_BIAS), err);
    if (!st) st = nm_dnnl_arg_init(g, &s->dst, NM_ARG_OUT, s->rank, s->ydims, pd_md(pd, DNNL_ARG_DST), err);
    const nm_tensor *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    if (!st && w->is_const && w->data) st = nm_dnnl_arg_freeze(g, &s->wei, w->data, err);
    if (!st && b && b->is_const && b->data) st = nm_dnnl_arg_freeze(g, &s->bias, b->data, err);
    return st;
}

static nm_status conv_build_backward_data(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    conv_mds md;
    nm_status st = conv_make_mds(s, s->plain_bwd, &md, err);
    if (st) return st;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(s, strides, dil, pl, pr);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    st = nm_dnnl_check(dnnl_dilated_convolution_backward_data_desc_init(
                           &cd, dnnl_convolution_direct, &md.x, &md.w, &md.y, strides, dil, pl, pr),
                       err, "Conv backward-data descriptor");
    if (!st) st = nm_dnnl_primitive(g, &cd, NULL, s->fwd_pd, &pd, &s->bwd_data, err, "Conv backward data");
    if (st) return st;
    st = nm_dnnl_arg_init(g, &s->bd_wei, NM_ARG_IN, s->wrank, s->wdims, pd_md(pd, DNNL_ARG_WEIGHTS), err);
    if (!st) st = nm_dnnl_arg_init(g, &s->bd_ddst, NM_ARG_IN, s->rank, s->ydims, pd_md(pd, DNNL_ARG_DIFF_DST), err);
    if (!st) st = nm_dnnl_arg_init(g, &s->bd_dsrc, NM_ARG_ACC, s->rank, s->xdims, pd_md(pd, DNNL_ARG_DIFF_SRC), err);
    dnnl_primitive_desc_destroy(pd);
    const nm_tensor *w = nm_in(g, n, 1);
    if (!st && w->is_const && w->data) st = nm_dnnl_arg_freeze(g, &s->bd_wei, w->data, err);
    return st;
}

static nm_status conv_build_backward_weights(nm_graph *g, conv_state *s, nm_error *err)
{
    conv_mds md;
    nm_status st = conv_make_mds(s, s->plain_fwd, &md, err);
    if (st) return st;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(s, strides, dil, pl, pr);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    st = nm_dnnl_check(dnnl_dilated_convolution_backward_weights_desc_init(
                           &cd, dnnl_convolution_direct, &md.x, &md.w, s->has_bias ? &md.b : NULL, &md.y,
                           strides, dil, pl, pr),
                       err, "Conv backward-weights descriptor");
    if (!st) st = nm_dnnl_primitive(g, &cd, NULL, s->fwd_pd, &pd, &s->bwd_wei, err, "Conv backward weights");
    if (st) return st;
    st = nm_dnnl_arg_init(g, &s->bw_src, NM_ARG_IN, s->rank, s->xdims, pd_md(pd, DNNL_ARG_SRC), err);
    if (!st) st = nm_dnnl_arg_init(g, &s->bw_ddst, NM_ARG_IN, s->rank, s->ydims, pd_md(pd, DNNL_ARG_DIFF_DST), err);
    if (!st)
        st = nm_dnnl_arg_init(g, &s->bw_dwei, NM_ARG_ACC, s->wrank, s->wdims, pd_md(pd, DNNL_ARG_DIFF_WEIGHTS), err);
    if (!st && s->has_bias)
        st = nm_dnnl_arg_init(g, &s->bw_dbias, NM_ARG_ACC, 1, &s->ydims[1], pd_md(pd, DNNL_ARG_DIFF_BIAS), err);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static int conv_wants_weight_grad(nm_graph *g, const nm_node *n)
{
    const nm_tensor *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    return w->requires_grad || (b && b->requires_grad);
}

static nm_status conv_build(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    s->plain_fwd = conv_plain_fwd(s);
    s->plain_bwd = conv_plain_bwd(s);
    nm_status st = conv_build_forward(g, n, s, err);
    if (!st && nm_in(g, n, 0)->requires_grad) st = conv_build_backward_data(g, n, s, err);
    if (!st && conv_wants_weight_grad(g, n)) st = conv_build_backward_weights(g, s, err);
    if (st && err) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        nm_fail(err, st, "%s: Conv node '%s': %s", g->source, n->name, msg);
    }
    return st;
}

static nm_status conv_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    conv_state *s = n->state;
    conv_free_prims(s);
    nm_status st = conv_shapes(g, n, s, err);
    if (!st) st = nm_dnnl_ready(g, err);
    if (st || nm_shape_numel(&nm_out(g, n, 0)->shape) == 0) return st;
    st = conv_build(g, n, s, err);
    if (st) conv_free_prims(s);
    return st;
}

static nm_status conv_forward(nm_graph *g, nm_node *n)
{
    conv_state *s = n->state;
    if (!s->fwd) return NM_OK; /* empty output */
    const nm_tensor *x = nm_in(g, n, 0), *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    nm_tensor *y = nm_out(g, n, 0);
    nm_status st = nm_dnnl_arg_in(g, &s->src, x->data);
    if (!st) st = nm_dnnl_arg_in(g, &s->wei, w->data);
    if (!st && b) st = nm_dnnl_arg_in(g, &s->bias, b->data);
    if (st) return st;
    nm_dnnl_arg_out_begin(&s->dst, y->data);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, s->src.prim},
                               {DNNL_ARG_WEIGHTS, s->wei.prim},
                               {DNNL_ARG_DST, s->dst.prim},
                               {DNNL_ARG_BIAS, s->bias.prim}};
    st = nm_dnnl_exec(g, s->fwd, b ? 4 : 3, args);
    return st ? st : nm_dnnl_arg_out_end(g, &s->dst, y->data);
}

static nm_status conv_backward_data(nm_graph *g, nm_node *n, conv_state *s)
{
    const nm_tensor *w = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    nm_tensor *x = nm_in(g, n, 0);
    if (!s->bwd_data && conv_build_backward_data(g, n, s, NULL)) return NM_ERR_INTERNAL;
    nm_status st = nm_dnnl_arg_in(g, &s->bd_wei, w->data);
    if (!st) st = nm_dnnl_arg_in(g, &s->bd_ddst, y->grad);
    if (st) return st;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, s->bd_ddst.prim},
                               {DNNL_ARG_WEIGHTS, s->bd_wei.prim},
                               {DNNL_ARG_DIFF_SRC, s->bd_dsrc.prim}};
    st = nm_dnnl_exec(g, s->bwd_data, 3, args);
    return st ? st : nm_dnnl_arg_out_end(g, &s->bd_dsrc, x->grad);
}

static nm_status conv_backward_weights(nm_graph *g, nm_node *n, conv_state *s)
{
    const nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    nm_tensor *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    if (!s->bwd_wei && conv_build_backward_weights(g, s, NULL)) return NM_ERR_INTERNAL;
    nm_status st = nm_dnnl_arg_in(g, &s->bw_src, x->data);
    if (!st) st = nm_dnnl_arg_in(g, &s->bw_ddst, y->grad);
    if (st) return st;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, s->bw_src.prim},
                               {DNNL_ARG_DIFF_DST, s->bw_ddst.prim},
                               {DNNL_ARG_DIFF_WEIGHTS, s->bw_dwei.prim},
                               {DNNL_ARG_DIFF_BIAS, s->bw_dbias.prim}};
    st = nm_dnnl_exec(g, s->bwd_wei, s->has_bias ? 4 : 3, args);
    if (!st && w->requires_grad) st = nm_dnnl_arg_out_end(g, &s->bw_dwei, w->grad);
    if (!st && b && b->requires_grad) st = nm_dnnl_arg_out_end(g, &s->bw_dbias, b->grad);
    return st;
}

static nm_status conv_backward(nm_graph *g, nm_node *n)
{
    conv_state *s = n->state;
    if (!s->fwd) return NM_OK;
    nm_status st = NM_OK;
    if (nm_in(g, n, 0)->requires_grad) st = conv_backward_data(g, n, s);
    if (!st && conv_wants_weight_grad(g, n)) st = conv_backward_weights(g, n, s);
    return st;
}

const nm_op_impl nm_op_conv = {
    .init = conv_init,
    .reshape = conv_reshape,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
};
