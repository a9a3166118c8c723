/* Conv (ONNX): 1-D to 3-D, groups, strides, dilations, pads, auto_pad and an
 * optional bias, on oneDNN convolution primitives.
 *
 * X and Y are plain row-major or, where the plan chose it, channels-last
 * (NHWC). A layer touching a channels-last tensor runs channels-last
 * primitives; an all-plain layer runs either plain-layout primitives or the
 * layouts oneDNN prefers (format "any", usually channel-blocked); reorders
 * bridge the rest per call. conv_plain_*() pick per layer and direction from
 * measurements (bench/conv_layout.c). Constant weights are reordered once at
 * reshape into the forward's layout, their one full copy: a model's graph
 * releases the plain one (nm_op_restore_const gives it back on demand), and
 * the backward-data layout comes from the forward's: the same buffer where
 * the layouts agree (Winograd), else a frozen copy while the graph's budget
 * for such copies lasts (nm_graph.dup_budget), else a copy per call into
 * the graph's scratch, where every per-call temporary here lives (layout
 * conversions, the primitives' scratchpads, a fused activation's gradient).
 *
 * A fused activation (graph pass nm_graph_fuse_activations: attributes
 * _nm_act, _nm_alpha, _nm_beta) runs as the primitive's eltwise post-op; its
 * gradient is taken from the saved output before the convolution's backward.
 * A fused residual Add (nm_graph_fuse_conv_add: attribute _nm_sum and a
 * fourth input S) makes Y = act(conv(X) + S): S is copied into Y and the
 * primitive adds to it (sum post-op); S's gradient is dZ. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/broadcast.h"
#include "ops/dnnl_util.h"

/* One share of the batch, run forward by one thread (conv_build_slices). */
typedef struct conv_slice {
    dnnl_primitive_t prim;
    dnnl_stream_t stream;
    dnnl_memory_t src, dst;          /* views into the whole batch's buffers */
    nm_dnnl_arg pad;
} conv_slice;

#define CONV_SLICES_MAX 4

typedef struct conv_state {
    nm_window win;
    int64_t group;
    int rank;                        /* of X and Y */
    int64_t xdims[5], ydims[5];
    int wrank;                       /* oneDNN weights: [G,] O, I, k... */
    int64_t wdims[6];
    int has_bias;
    dnnl_primitive_t fwd;
    dnnl_primitive_desc_t fwd_pd;    /* hint for the backward primitives */
    nm_dnnl_arg fwd_pad, bd_pad, bw_pad;   /* the primitives' scratchpads (in the graph's scratch) */
    nm_dnnl_arg src, wei, bias, dst;
    dnnl_primitive_t bwd_data;       /* built when X needs a gradient */
    nm_dnnl_arg bd_wei, bd_ddst, bd_dsrc;
    dnnl_primitive_t bwd_wei;        /* built when W or B need a gradient */
    nm_dnnl_arg bw_src, bw_ddst, bw_dwei, bw_dbias;
    int act;                         /* fused activation (nm_op_type), -1: none */
    float act_alpha, act_beta;
    size_t dz_off;                   /* gradient before the activation, Y's layout: */
    int has_dz;                      /* ... in the graph's scratch at dz_off */
    size_t scratch_end;              /* the node's scratch regions end here */
    dnnl_format_tag_t xtag, ytag;    /* graph layouts of X and Y */
    int threads;                     /* nm_dnnl_threads_for this layer's work */
    int wino;                        /* forward and backward data run Winograd */
    int bf16;                        /* bf16 operands (nm_load_options.precision) */
    int sum;                         /* Y = act(conv(X) + S), S the fourth input */
    int n_slices;                    /* forward as this many one-thread shares of the batch, or 0 */
    size_t src_step, dst_step;       /* bytes of one share in the primitive's layouts */
    conv_slice slice[CONV_SLICES_MAX];
} conv_state;

typedef enum conv_mode { MODE_ANY, MODE_PLAIN, MODE_NHWC } conv_mode;

/* With g, a held second layout of the weights gives its bytes back to the
 * graph's budget (nm_graph.dup_budget). */
static void conv_free_prims(nm_graph *g, conv_state *s)
{
    if (g && s->bd_wei.derived && s->bd_wei.own) g->dup_budget += (int64_t)s->bd_wei.bytes;
    if (s->fwd) dnnl_primitive_destroy(s->fwd);
    if (s->fwd_pd) dnnl_primitive_desc_destroy(s->fwd_pd);
    if (s->bwd_data) dnnl_primitive_destroy(s->bwd_data);
    if (s->bwd_wei) dnnl_primitive_destroy(s->bwd_wei);
    nm_dnnl_arg *args[] = {&s->src, &s->wei, &s->bias, &s->dst, &s->bd_wei, &s->bd_ddst, &s->bd_dsrc,
                           &s->bw_src, &s->bw_ddst, &s->bw_dwei, &s->bw_dbias, &s->fwd_pad, &s->bd_pad, &s->bw_pad};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) nm_dnnl_arg_free(args[i]);
    for (int i = 0; i < CONV_SLICES_MAX; i++) {
        conv_slice *c = &s->slice[i];
        if (c->prim) dnnl_primitive_destroy(c->prim);
        if (c->stream) dnnl_stream_destroy(c->stream);
        if (c->src) dnnl_memory_destroy(c->src);
        if (c->dst) dnnl_memory_destroy(c->dst);
        nm_dnnl_arg_free(&c->pad);
        memset(c, 0, sizeof *c);
    }
    s->n_slices = 0;
    s->fwd = s->bwd_data = s->bwd_wei = NULL;
    s->fwd_pd = NULL;
    s->has_dz = 0;
}

static void conv_destroy(nm_node *n)
{
    conv_state *s = n->state;
    if (!s) return;
    conv_free_prims(NULL, s);
    free(s);
    n->state = NULL;
}

static nm_status conv_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in < 2 || n->n_in > 3 + (nm_attr_get(n, "_nm_sum") != NULL) || !nm_in(g, n, 0) || !nm_in(g, n, 1) ||
        n->n_out != 1 || !nm_out(g, n, 0))
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
    int64_t c = r > 1 ? x->shape.dims[1] : 0, m = w->shape.dims[0], wc = 0;
    if (nsp < 1 || nsp > NM_MAX_SPATIAL || w->shape.ndim != r || !nm_mul_i64(w->shape.dims[1], s->group, &wc) ||
        wc != c || m % s->group != 0)
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

static int conv_native(const conv_state *s) { return s->xtag == dnnl_acdb || s->ytag == dnnl_acdb; }

static conv_mode conv_mode_fwd(const conv_state *s)
{
    if (s->wino) return MODE_ANY;
    if (conv_native(s)) return MODE_NHWC;
    return conv_is_large_pointwise(s) ? MODE_PLAIN : MODE_ANY;
}

/* Backward data with few input channels (an image's 3) pads them to a block
 * of 16 in oneDNN's blocked and channels-last layouts: 3-4x slower than the
 * plain GEMM on large maps (224x224 first layers: 11.9 vs 3.5 ms); on a
 * 32x32 image channels-last is faster (47 vs 69 us) and needs no reorder. */
static conv_mode conv_mode_bwd(const conv_state *s)
{
    int64_t map = 1;
    for (int i = 0; i < s->win.nsp; i++) map *= s->win.out[i];
    if (s->wino) return MODE_ANY;
    if (s->group == 1 && s->xdims[1] < 16 && map >= 64 * 64) return MODE_PLAIN;
    if (conv_native(s)) return MODE_NHWC;
    return conv_is_large_pointwise(s) || (s->group == 1 && s->xdims[1] < 16) ? MODE_PLAIN : MODE_ANY;
}

/* Winograd F(4x4, 3x3) does 2-2.5x the direct convolution's speed, forward
 * and backward data, on 3x3 stride-1 layers with maps of 28x28 and more
 * (resnet18: 64 channels at 56x56, 128 at 28x28); on smaller maps it loses.
 * It runs on oneDNN's blocked layout, so channels-last tensors are
 * reordered in and out, which costs far less than it saves there. */
static int conv_wino_eligible(const conv_state *s)
{
    if (s->win.nsp != 2 || s->group != 1 || s->xdims[1] < 16 || s->ydims[1] < 16) return 0;
    for (int i = 0; i < 2; i++)
        if (s->win.kernel[i] != 3 || s->win.stride[i] != 1 || s->win.dilation[i] != 1 || s->win.out[i] < 28)
            return 0;
    return 1;
}

static dnnl_alg_kind_t conv_alg(const conv_state *s)
{
    return s->wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
}

typedef struct conv_mds {
    dnnl_memory_desc_t x, w, b, y;
} conv_mds;

typedef enum conv_dir { DIR_FWD, DIR_BWD_DATA, DIR_BWD_WEIGHTS } conv_dir;

/* In bf16 the multiplied operands (X and W forward, dY and W backward) are
 * bf16 and what is written stays f32; weight gradients stay f32. */
static nm_status conv_make_mds(const conv_state *s, conv_mode mode, conv_dir dir, conv_mds *md, nm_error *err)
{
    int bf16 = s->bf16 && dir != DIR_BWD_WEIGHTS;
    if (bf16 && mode == MODE_PLAIN) mode = MODE_ANY;
    dnnl_data_type_t f32 = dnnl_f32, half = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_format_tag_t any = dnnl_format_tag_any;
    dnnl_format_tag_t tx = mode == MODE_PLAIN ? nm_dnnl_plain_tag(s->rank) : mode == MODE_NHWC ? dnnl_acdb : any;
    dnnl_format_tag_t tw = mode == MODE_PLAIN ? nm_dnnl_plain_tag(s->wrank) : any;
    /* The sum post-op adds to Y's own buffer, so Y keeps the graph's layout. */
    dnnl_format_tag_t ty = (s->sum && dir == DIR_FWD) ? s->ytag : tx;
    nm_status st = nm_dnnl_md_dt(&md->x, s->rank, s->xdims, tx, dir == DIR_FWD ? half : f32, err);
    if (!st) st = nm_dnnl_md_dt(&md->y, s->rank, s->ydims, ty, dir == DIR_BWD_DATA ? half : f32, err);
    if (!st) st = nm_dnnl_md_dt(&md->w, s->wrank, s->wdims, tw, half, err);
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

/* The fused activation as an eltwise post-op; *attr stays NULL without one. */
static nm_status conv_post_op_attr(const conv_state *s, dnnl_primitive_attr_t *attr, nm_error *err)
{
    *attr = NULL;
    if (s->act < 0 && !s->sum) return NM_OK;
    dnnl_alg_kind_t alg = s->act == NM_OP_CLIP      ? dnnl_eltwise_clip
                          : s->act == NM_OP_SIGMOID ? dnnl_eltwise_logistic
                          : s->act == NM_OP_TANH    ? dnnl_eltwise_tanh
                                                    : dnnl_eltwise_relu;
    dnnl_post_ops_t ops = NULL;
    nm_status st = nm_dnnl_check(dnnl_primitive_attr_create(attr), err, "oneDNN attributes");
    if (!st) st = nm_dnnl_check(dnnl_post_ops_create(&ops), err, "oneDNN post-ops");
    if (!st && s->sum) st = nm_dnnl_check(dnnl_post_ops_append_sum(ops, 1.0f), err, "oneDNN sum post-op");
    if (!st && s->act >= 0)
        st = nm_dnnl_check(dnnl_post_ops_append_eltwise(ops, 1.0f, alg, s->act_alpha, s->act_beta), err,
                           "oneDNN eltwise post-op");
    if (!st) st = nm_dnnl_check(dnnl_primitive_attr_set_post_ops(*attr, ops), err, "oneDNN post-ops");
    if (ops) dnnl_post_ops_destroy(ops);
    return st;
}

/* The forward primitive of s's geometry, its scratchpad in the graph's scratch. */
static nm_status conv_forward_primitive(nm_graph *g, const conv_state *s, dnnl_primitive_desc_t *pd,
                                        dnnl_primitive_t *prim, nm_dnnl_arg *pad, nm_error *err)
{
    conv_mds md;
    nm_status st = conv_make_mds(s, conv_mode_fwd(s), DIR_FWD, &md, err);
    if (st) return st;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(s, strides, dil, pl, pr);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    st = nm_dnnl_check(dnnl_dilated_convolution_forward_desc_init(
                           &cd, dnnl_forward_training, conv_alg(s), &md.x, &md.w,
                           s->has_bias ? &md.b : NULL, &md.y, strides, dil, pl, pr),
                       err, "Conv forward descriptor");
    if (!st) st = conv_post_op_attr(s, &attr, err);
    if (!st) st = nm_dnnl_primitive_pad(g, &cd, attr, NULL, pd, prim, pad, err, "Conv forward");
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

static nm_status conv_build_forward(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    nm_status st = conv_forward_primitive(g, s, &s->fwd_pd, &s->fwd, &s->fwd_pad, err);
    if (st) return st;
    const_dnnl_primitive_desc_t pd = s->fwd_pd;
    const nm_tensor *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    st = nm_dnnl_arg_init_tag(g, &s->src, NM_ARG_IN, s->rank, s->xdims, s->xtag, pd_md(pd, DNNL_ARG_SRC), err);
    if (!st && w->is_const && w->data)
        st = nm_dnnl_arg_init_const(g, &s->wei, s->wrank, s->wdims, pd_md(pd, DNNL_ARG_WEIGHTS), w->data, err);
    else if (!st)
        st = nm_dnnl_arg_init(g, &s->wei, NM_ARG_IN, s->wrank, s->wdims, pd_md(pd, DNNL_ARG_WEIGHTS), err);
    if (!st && b && b->is_const && b->data)
        st = nm_dnnl_arg_init_const(g, &s->bias, 1, &s->ydims[1], pd_md(pd, DNNL_ARG_BIAS), b->data, err);
    else if (!st && s->has_bias)
        st = nm_dnnl_arg_init(g, &s->bias, NM_ARG_IN, 1, &s->ydims[1], pd_md(pd, DNNL_ARG_BIAS), err);
    if (!st)
        st = nm_dnnl_arg_init_tag(g, &s->dst, NM_ARG_OUT, s->rank, s->ydims, s->ytag, pd_md(pd, DNNL_ARG_DST), err);
    return st;
}

static nm_status conv_build_backward_data(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    conv_mds md;
    nm_status st = conv_make_mds(s, conv_mode_bwd(s), DIR_BWD_DATA, &md, err);
    if (st) return st;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(s, strides, dil, pl, pr);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    st = nm_dnnl_check(dnnl_dilated_convolution_backward_data_desc_init(
                           &cd, conv_alg(s), &md.x, &md.w, &md.y, strides, dil, pl, pr),
                       err, "Conv backward-data descriptor");
    if (!st)
        st = nm_dnnl_primitive_pad(g, &cd, NULL, s->fwd_pd, &pd, &s->bwd_data, &s->bd_pad, err, "Conv backward data");
    if (st) return st;
    /* The first writer of dX overwrites it (no clearing, no scratch). */
    nm_arg_kind dx_kind = (n->grad_assign & 1u) ? NM_ARG_OUT : NM_ARG_ACC;
    const nm_tensor *w = nm_in(g, n, 1);
    if (w->is_const && s->wei.frozen && s->wei.own && !s->bf16) {   /* from the forward's frozen weights */
        const dnnl_memory_desc_t *wmd = pd_md(pd, DNNL_ARG_WEIGHTS);
        int hold = (int64_t)dnnl_memory_desc_get_size(wmd) <= g->dup_budget;
        st = nm_dnnl_arg_init_derived(g, &s->bd_wei, &s->wei, wmd, hold, err);
        if (s->bd_wei.own) g->dup_budget -= (int64_t)s->bd_wei.bytes;
    }
    else if (w->is_const && w->data)
        st = nm_dnnl_arg_init_const(g, &s->bd_wei, s->wrank, s->wdims, pd_md(pd, DNNL_ARG_WEIGHTS), w->data, err);
    else
        st = nm_dnnl_arg_init(g, &s->bd_wei, NM_ARG_IN, s->wrank, s->wdims, pd_md(pd, DNNL_ARG_WEIGHTS), err);
    if (!st)
        st = nm_dnnl_arg_init_tag(g, &s->bd_ddst, NM_ARG_IN, s->rank, s->ydims, s->ytag,
                                  pd_md(pd, DNNL_ARG_DIFF_DST), err);
    if (!st)
        st = nm_dnnl_arg_init_tag(g, &s->bd_dsrc, dx_kind, s->rank, s->xdims, s->xtag,
                                  pd_md(pd, DNNL_ARG_DIFF_SRC), err);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static nm_status conv_build_backward_weights(nm_graph *g, conv_state *s, nm_error *err)
{
    conv_mds md;
    nm_status st = conv_make_mds(s, conv_mode_fwd(s), DIR_BWD_WEIGHTS, &md, err);
    if (st) return st;
    dnnl_dims_t strides, dil, pl, pr;
    conv_geometry(s, strides, dil, pl, pr);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    st = nm_dnnl_check(dnnl_dilated_convolution_backward_weights_desc_init(
                           &cd, dnnl_convolution_direct, &md.x, &md.w, s->has_bias ? &md.b : NULL, &md.y,
                           strides, dil, pl, pr),
                       err, "Conv backward-weights descriptor");
    if (!st)
        st = nm_dnnl_primitive_pad(g, &cd, NULL, s->fwd_pd, &pd, &s->bwd_wei, &s->bw_pad, err,
                                   "Conv backward weights");
    if (st) return st;
    st = nm_dnnl_arg_init_tag(g, &s->bw_src, NM_ARG_IN, s->rank, s->xdims, s->xtag, pd_md(pd, DNNL_ARG_SRC), err);
    if (!st)
        st = nm_dnnl_arg_init_tag(g, &s->bw_ddst, NM_ARG_IN, s->rank, s->ydims, s->ytag,
                                  pd_md(pd, DNNL_ARG_DIFF_DST), err);
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

static double conv_flops(const conv_state *s)
{
    double f = 2.0 * (double)s->xdims[1] / (double)s->group;
    for (int i = 0; i < s->rank; i++) f *= (double)s->ydims[i];
    for (int i = 0; i < s->win.nsp; i++) f *= (double)s->win.kernel[i];
    return f;
}

static void conv_take_dz(nm_graph *g, nm_node *n, conv_state *s)
{
    s->dz_off = nm_graph_scratch_take(g, sizeof(float) * (size_t)nm_shape_numel(&nm_out(g, n, 0)->shape));
    s->has_dz = 1;
}

/* A share of the batch is one slab of a buffer in the layout `whole`
 * (images outermost) where `part` lays out fewer images the same way. */
static int conv_slab(const dnnl_memory_desc_t *whole, const dnnl_memory_desc_t *part, int parts, size_t *step)
{
    if (whole->format_kind != dnnl_blocked || part->format_kind != dnnl_blocked || whole->ndims != part->ndims)
        return 0;
    const dnnl_blocking_desc_t *a = &whole->format_desc.blocking, *b = &part->format_desc.blocking;
    for (int i = 0; i < whole->ndims; i++)
        if (a->strides[i] != b->strides[i] || (i > 0 && whole->padded_dims[i] != part->padded_dims[i])) return 0;
    *step = dnnl_memory_desc_get_size(part);
    return *step * (size_t)parts == dnnl_memory_desc_get_size(whole) &&
           (int64_t)*step == a->strides[0] * part->dims[0] * (int64_t)sizeof(float);
}

/* Winograd on 16 channels barely gains from a second thread (CIFAR ResNet-20
 * at batch 16: 0.51 ms on one, 0.47-0.49 ms on two): where the batch splits
 * evenly over the threads, each thread runs its share of the images with a
 * one-thread primitive of its own (bench/ort.sh: docs/speed.md). Winograd's
 * tiles do not mix images, so each image's result is the same bytes as in
 * the whole batch (tests/test_conv_slices.c). The whole-batch primitive
 * stays: the backward's hint, and the forward where slicing is refused. */
static void conv_build_slices(nm_graph *g, conv_state *s)
{
    int parts = omp_get_max_threads();
    if (parts > CONV_SLICES_MAX) parts = CONV_SLICES_MAX;
    if (!s->wino || s->bf16 || s->threads != 0 || parts < 2 || s->xdims[1] > 16 || s->ydims[1] > 16 ||
        s->xdims[0] < parts || s->xdims[0] % parts)
        return;
    conv_state share = *s;
    share.xdims[0] = share.ydims[0] = s->xdims[0] / parts;
    int saved = nm_dnnl_threads_begin(1);
    nm_status st = NM_OK;
    for (int i = 0; !st && i < parts; i++) {
        conv_slice *c = &s->slice[i];
        dnnl_primitive_desc_t pd = NULL;
        st = conv_forward_primitive(g, &share, &pd, &c->prim, &c->pad, NULL);
        if (st) break;
        const int args[] = {DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS};
        for (int k = 0; k < (s->has_bias ? 2 : 1); k++)
            if (!dnnl_memory_desc_equal(pd_md(pd, args[k]), pd_md(s->fwd_pd, args[k]))) st = NM_ERR_UNSUPPORTED;
        if (!st && (!conv_slab(pd_md(s->fwd_pd, DNNL_ARG_SRC), pd_md(pd, DNNL_ARG_SRC), parts, &s->src_step) ||
                    !conv_slab(pd_md(s->fwd_pd, DNNL_ARG_DST), pd_md(pd, DNNL_ARG_DST), parts, &s->dst_step)))
            st = NM_ERR_UNSUPPORTED;
        if (!st && (dnnl_stream_create(&c->stream, g->engine, dnnl_stream_default_flags) != dnnl_success ||
                    dnnl_memory_create(&c->src, pd_md(pd, DNNL_ARG_SRC), g->engine, DNNL_MEMORY_NONE) != dnnl_success ||
                    dnnl_memory_create(&c->dst, pd_md(pd, DNNL_ARG_DST), g->engine, DNNL_MEMORY_NONE) != dnnl_success))
            st = NM_ERR_INTERNAL;
        dnnl_primitive_desc_destroy(pd);
    }
    nm_dnnl_threads_end(saved);
    if (!st) s->n_slices = parts;   /* else the whole-batch primitive runs; the slices go with the node */
}

/* Every primitive the node needs, and the scratch of a fused activation. */
static nm_status conv_build_all(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    int wants_dx = nm_in(g, n, 0)->requires_grad, wants_dw = conv_wants_weight_grad(g, n);
    nm_graph_scratch_begin(g);
    nm_status st = conv_build_forward(g, n, s, err);
    if (!st) conv_build_slices(g, s);
    nm_graph_scratch_begin(g);   /* the backward's regions: never live with the forward's */
    if (!st && wants_dx) st = conv_build_backward_data(g, n, s, err);
    if (!st && wants_dw) st = conv_build_backward_weights(g, s, err);
    int wants_ds = s->sum && nm_in(g, n, 3)->requires_grad;
    if (!st && s->act >= 0 && (wants_dx || wants_dw || wants_ds)) conv_take_dz(g, n, s);
    s->scratch_end = g->scratch_cursor;
    return st;
}

/* Once the forward holds W frozen in its own layout and the backward's
 * weights derive from it, the plain copy goes (nm_op_restore_const gives it
 * back), where the graph allows it. Kept: a W that something else reads
 * too, one folded with the node (X constant), and in bf16, whose frozen copy
 * is rounded. */
static void conv_release_weights(nm_graph *g, nm_node *n, conv_state *s)
{
    nm_tensor *x = nm_in(g, n, 0), *w = nm_in(g, n, 1);
    if (!g->release_consts || !w->is_const || !w->data || w->is_input || w->is_output || x->is_const || s->bf16 ||
        !s->wei.own || (s->bwd_data && !s->bd_wei.derived) || s->bwd_wei)
        return;
    int uses = 0;
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; !g->nodes[k].dead && i < g->nodes[k].n_in; i++) uses += g->nodes[k].in[i] == n->in[1];
    if (uses != 1) return;
    free(w->data);
    w->data = NULL;
    w->released = 1;
}

nm_status nm_op_restore_const(nm_graph *g, nm_node *n, int slot, void *dst)
{
    conv_state *s = n->op == NM_OP_CONV ? n->state : NULL;
    if (slot != 1 || !s || !s->wei.frozen || !s->wei.own) return NM_ERR_INTERNAL;
    return nm_dnnl_arg_thaw(g, &s->wei, dst, NULL);
}

static nm_status conv_build(nm_graph *g, nm_node *n, conv_state *s, nm_error *err)
{
    s->xtag = nm_dnnl_tensor_tag(g, n->in[0], s->rank);
    s->ytag = nm_dnnl_tensor_tag(g, n->out[0], s->rank);
    s->threads = nm_dnnl_threads_for(g, conv_flops(s));
    int saved = nm_dnnl_threads_begin(s->threads);
    /* bf16 skips the image's few channels (padded to a block, no gain). */
    s->bf16 = nm_dnnl_use_bf16(g) && s->xdims[1] >= 16;
    s->wino = !s->bf16 && conv_wino_eligible(s);
    nm_status st = s->wino ? conv_build_all(g, n, s, NULL) : NM_ERR_UNSUPPORTED;
    if (st) {   /* direct: no Winograd here, or oneDNN has none for this case */
        conv_free_prims(g, s);
        s->wino = 0;
        st = conv_build_all(g, n, s, err);
    }
    nm_dnnl_threads_end(saved);
    if (!st) conv_release_weights(g, n, s);
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
    /* The frozen weights go with the primitives: a released W comes back first. */
    if (n->n_in > 1 && n->in[1] >= 0 && g->t[n->in[1]].released) {
        nm_status st = nm_graph_const_restore(g, n->in[1], err);
        if (st) return st;
    }
    conv_free_prims(g, s);
    nm_status st = conv_shapes(g, n, s, err);
    if (!st) st = nm_dnnl_ready(g, err);
    if (st || nm_shape_numel(&nm_out(g, n, 0)->shape) == 0) return st;
    s->act = nm_attr_get(n, "_nm_act") ? (int)nm_attr_int(n, "_nm_act", -1) : -1;
    s->act_alpha = nm_attr_float(n, "_nm_alpha", 0.0f);
    s->act_beta = nm_attr_float(n, "_nm_beta", 0.0f);
    s->sum = nm_attr_int(n, "_nm_sum", 0) != 0 && nm_in(g, n, 3);
    if (s->sum && !nm_shape_equal(&nm_in(g, n, 3)->shape, &nm_out(g, n, 0)->shape))
        return nm_fail(err, NM_ERR_SHAPE, "%s: Conv node '%s': the fused sum has another shape", g->source, n->name);
    if (g->defer_build) {
        n->deferred = 1;
        return NM_OK;
    }
    st = conv_build(g, n, s, err);
    if (st) conv_free_prims(g, s);
    return st;
}

static void copy_floats(float *dst, const float *src, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= 4 * NM_PARALLEL_MIN)
    for (int64_t c = 0; c < (n + 16383) / 16384; c++) {
        int64_t lo = c * 16384, len = n - lo < 16384 ? n - lo : 16384;
        memcpy(dst + lo, src + lo, sizeof(float) * (size_t)len);
    }
}

/* The residual's gradient: dS (+)= dZ. */
static void sum_backward(float *ds, const float *dz, int64_t n, int assign)
{
    if (assign) {
        copy_floats(ds, dz, n);
        return;
    }
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) ds[i] += dz[i];
}

/* The forward as s->n_slices shares of the batch side by side: oneDNN runs
 * a primitive inside a parallel region on the calling thread alone. */
static nm_status conv_forward_slices(conv_state *s, int nargs, const dnnl_exec_arg_t *whole)
{
    char *src = NULL, *dst = NULL;
    if (dnnl_memory_get_data_handle(s->src.prim, (void **)&src) != dnnl_success ||
        dnnl_memory_get_data_handle(s->dst.prim, (void **)&dst) != dnnl_success)
        return NM_ERR_INTERNAL;
    int failed = 0;
#pragma omp parallel num_threads(s->n_slices) reduction(| : failed)
    for (int i = omp_get_thread_num(); i < s->n_slices; i += omp_get_num_threads()) {
        conv_slice *c = &s->slice[i];
        dnnl_exec_arg_t args[4];
        memcpy(args, whole, sizeof *args * (size_t)nargs);
        args[0].memory = c->src;
        args[2].memory = c->dst;
        failed |= dnnl_memory_set_data_handle(c->src, src + (size_t)i * s->src_step) != dnnl_success ||
                  dnnl_memory_set_data_handle(c->dst, dst + (size_t)i * s->dst_step) != dnnl_success ||
                  nm_dnnl_exec_pad_on(c->stream, c->prim, nargs, args, &c->pad) != NM_OK;
    }
    return failed ? NM_ERR_INTERNAL : NM_OK;
}

static nm_status conv_forward_run(nm_graph *g, nm_node *n, conv_state *s)
{
    const nm_tensor *x = nm_in(g, n, 0), *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    nm_tensor *y = nm_out(g, n, 0);
    nm_status st = nm_dnnl_arg_in(g, &s->src, x->data);
    if (!st) st = nm_dnnl_arg_in(g, &s->wei, w->data);
    if (!st && b) st = nm_dnnl_arg_in(g, &s->bias, b->data);
    if (st) return st;
    if (s->sum) copy_floats(nm_f32(y), nm_f32(nm_in(g, n, 3)), y->numel);
    st = nm_dnnl_arg_out_begin(&s->dst, y->data);
    if (st) return st;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, s->src.prim},
                               {DNNL_ARG_WEIGHTS, s->wei.prim},
                               {DNNL_ARG_DST, s->dst.prim},
                               {DNNL_ARG_BIAS, s->bias.prim}};
    st = s->n_slices ? conv_forward_slices(s, b ? 4 : 3, args) : nm_dnnl_exec_pad(g, s->fwd, b ? 4 : 3, args, &s->fwd_pad);
    return st ? st : nm_dnnl_arg_out_end(g, &s->dst, y->data);
}

/* dZ = dY * act'(Z) from the saved output Y = act(Z): exact for the
 * monotonic activations the pass fuses (Clip passes strictly inside its
 * bounds, as PyTorch's hardtanh). */
/* dy[i] is read before the test so that the loops vectorise as selects on
 * any x86-64 (a conditional load needs AVX-512 masking, else it branches). */
static void conv_activation_backward(const conv_state *s, const float *y, const float *dy, float *dz, int64_t n)
{
    float a = s->act_alpha, b = s->act_beta;
    switch (s->act) {
    case NM_OP_CLIP:
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = dy[i];
            dz[i] = (y[i] > a && y[i] < b) ? d : 0.0f;
        }
        break;
    case NM_OP_SIGMOID:
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case NM_OP_TANH:
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    default: /* Relu, LeakyRelu (slope a >= 0: Y > 0 exactly where Z > 0) */
#pragma omp parallel for simd schedule(static) if (parallel: n >= NM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) dz[i] = y[i] > 0.0f ? dy[i] : a * dy[i];
        break;
    }
}

static nm_status conv_backward_data(nm_graph *g, nm_node *n, conv_state *s, const float *dz)
{
    const nm_tensor *w = nm_in(g, n, 1);
    nm_tensor *x = nm_in(g, n, 0);
    nm_status st = nm_dnnl_arg_in(g, &s->bd_wei, w->data);
    if (!st) st = nm_dnnl_arg_in(g, &s->bd_ddst, dz);
    if (!st) st = nm_dnnl_arg_out_begin(&s->bd_dsrc, x->grad);
    if (st) return st;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, s->bd_ddst.prim},
                               {DNNL_ARG_WEIGHTS, s->bd_wei.prim},
                               {DNNL_ARG_DIFF_SRC, s->bd_dsrc.prim}};
    st = nm_dnnl_exec_pad(g, s->bwd_data, 3, args, &s->bd_pad);
    return st ? st : nm_dnnl_arg_out_end(g, &s->bd_dsrc, x->grad);
}

static nm_status conv_backward_weights(nm_graph *g, nm_node *n, conv_state *s, const float *dz)
{
    const nm_tensor *x = nm_in(g, n, 0);
    nm_tensor *w = nm_in(g, n, 1), *b = nm_in(g, n, 2);
    nm_status st = nm_dnnl_arg_in(g, &s->bw_src, x->data);
    if (!st) st = nm_dnnl_arg_in(g, &s->bw_ddst, dz);
    if (!st) st = nm_dnnl_arg_out_begin(&s->bw_dwei, w->grad);
    if (!st && s->has_bias) st = nm_dnnl_arg_out_begin(&s->bw_dbias, b ? b->grad : NULL);
    if (st) return st;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, s->bw_src.prim},
                               {DNNL_ARG_DIFF_DST, s->bw_ddst.prim},
                               {DNNL_ARG_DIFF_WEIGHTS, s->bw_dwei.prim},
                               {DNNL_ARG_DIFF_BIAS, s->bw_dbias.prim}};
    st = nm_dnnl_exec_pad(g, s->bwd_wei, s->has_bias ? 4 : 3, args, &s->bw_pad);
    if (!st && w->requires_grad) st = nm_dnnl_arg_out_end(g, &s->bw_dwei, w->grad);
    if (!st && b && b->requires_grad) st = nm_dnnl_arg_out_end(g, &s->bw_dbias, b->grad);
    return st;
}

static nm_status conv_forward(nm_graph *g, nm_node *n)
{
    conv_state *s = n->state;
    if (!s->fwd) return NM_OK; /* empty output */
    int saved = nm_dnnl_threads_begin(s->threads);
    nm_status st = conv_forward_run(g, n, s);
    nm_dnnl_threads_end(saved);
    return st;
}

/* What the build left out (gradient flags set since): built now, with
 * scratch regions after the node's own, before any of them is written. */
static nm_status conv_build_late(nm_graph *g, nm_node *n, conv_state *s)
{
    int wants_dx = nm_in(g, n, 0)->requires_grad, wants_dw = conv_wants_weight_grad(g, n);
    if (!(wants_dx && !s->bwd_data) && !(wants_dw && !s->bwd_wei) && !(s->act >= 0 && !s->has_dz)) return NM_OK;
    g->scratch_cursor = s->scratch_end;
    if (wants_dx && !s->bwd_data && conv_build_backward_data(g, n, s, NULL)) return NM_ERR_INTERNAL;
    if (wants_dw && !s->bwd_wei && conv_build_backward_weights(g, s, NULL)) return NM_ERR_INTERNAL;
    if (s->act >= 0 && !s->has_dz) conv_take_dz(g, n, s);
    s->scratch_end = g->scratch_cursor;
    return nm_graph_scratch_ready(g, NULL);
}

static nm_status conv_backward_run(nm_graph *g, nm_node *n, conv_state *s)
{
    const nm_tensor *y = nm_out(g, n, 0);
    const float *dz = y->grad;
    nm_status st = conv_build_late(g, n, s);
    if (st) return st;
    if (s->act >= 0) {
        float *buf = nm_graph_scratch_at(g, s->dz_off);
        conv_activation_backward(s, nm_f32(y), y->grad, buf, y->numel);
        dz = buf;
    }
    nm_tensor *res = s->sum ? nm_in(g, n, 3) : NULL;
    if (res && res->requires_grad) sum_backward(res->grad, dz, y->numel, (n->grad_assign >> 3) & 1u);
    if (nm_in(g, n, 0)->requires_grad) st = conv_backward_data(g, n, s, dz);
    if (!st && conv_wants_weight_grad(g, n)) st = conv_backward_weights(g, n, s, dz);
    return st;
}

static nm_status conv_backward(nm_graph *g, nm_node *n)
{
    conv_state *s = n->state;
    if (!s->fwd) return NM_OK;
    int saved = nm_dnnl_threads_begin(s->threads);
    nm_status st = conv_backward_run(g, n, s);
    nm_dnnl_threads_end(saved);
    return st;
}

const nm_op_impl nm_op_conv = {
    .init = conv_init,
    .reshape = conv_reshape,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
};
