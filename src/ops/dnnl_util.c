/* oneDNN plumbing and ONNX window geometry shared by Conv and pooling. */
#include "ops/dnnl_util.h"

#include <dnnl_debug.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

nm_status nm_dnnl_ready(nm_graph *g, nm_error *err)
{
    if (!g->engine) {
        dnnl_status_t s = dnnl_engine_create(&g->engine, dnnl_cpu, 0);
        if (s != dnnl_success) {
            g->engine = NULL;
            return nm_dnnl_check(s, err, "oneDNN CPU engine");
        }
    }
    if (!g->stream) {
        dnnl_status_t s = dnnl_stream_create(&g->stream, g->engine, dnnl_stream_default_flags);
        if (s != dnnl_success) {
            g->stream = NULL;
            return nm_dnnl_check(s, err, "oneDNN stream");
        }
    }
    return NM_OK;
}

nm_status nm_dnnl_check(dnnl_status_t s, nm_error *err, const char *what)
{
    if (s == dnnl_success) return NM_OK;
    if (s == dnnl_out_of_memory) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", what);
    return nm_fail(err, NM_ERR_INTERNAL, "%s: oneDNN %s", what, dnnl_status2str(s));
}

dnnl_format_tag_t nm_dnnl_plain_tag(int ndim)
{
    static const dnnl_format_tag_t tags[] = {dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef};
    return (ndim >= 1 && ndim <= 6) ? tags[ndim - 1] : dnnl_format_tag_undef;
}

dnnl_format_tag_t nm_dnnl_tensor_tag(const nm_graph *g, int t, int ndim)
{
    if (nm_tensor_layout(g, t) == NM_LAYOUT_NHWC && ndim == 4) return dnnl_acdb;
    return nm_dnnl_plain_tag(ndim);
}

nm_status nm_dnnl_md_dt(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, dnnl_format_tag_t tag,
                        dnnl_data_type_t dt, nm_error *err)
{
    dnnl_dims_t d;
    if (ndim < 1 || ndim > 6) return nm_fail(err, NM_ERR_UNSUPPORTED, "oneDNN tensor of rank %d", ndim);
    for (int i = 0; i < ndim; i++) d[i] = dims[i];
    return nm_dnnl_check(dnnl_memory_desc_init_by_tag(md, ndim, d, dt, tag), err, "oneDNN memory descriptor");
}

nm_status nm_dnnl_md(dnnl_memory_desc_t *md, int ndim, const int64_t *dims,
                     dnnl_format_tag_t tag, nm_error *err)
{
    return nm_dnnl_md_dt(md, ndim, dims, tag, dnnl_f32, err);
}

int nm_dnnl_use_bf16(const nm_graph *g)
{
    if (g->limits.precision != NM_PRECISION_BF16) return 0;
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

nm_status nm_dnnl_exec(nm_graph *g, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args)
{
    if (dnnl_primitive_execute(prim, g->stream, nargs, args) != dnnl_success) return NM_ERR_INTERNAL;
    return dnnl_stream_wait(g->stream) == dnnl_success ? NM_OK : NM_ERR_INTERNAL;
}

/* Below this many operations a primitive runs on one thread: waking the
 * other thread and joining costs several microseconds (much more on a
 * loaded machine), the time of a few MFLOP. At 8 MFLOP every layer of a
 * CIFAR ResNet at batch 1 (4.7 MFLOP each) runs single-threaded: 1.9x faster
 * steps than two threads on the shared 2-core machine. NM_SERIAL_MFLOP
 * overrides the limit (tuning elsewhere). */
int nm_dnnl_threads_for(double flops)
{
    static double limit = -1;
    if (limit < 0) {
        const char *e = getenv("NM_SERIAL_MFLOP");
        limit = e ? atof(e) * 1e6 : 8e6;
    }
    return flops < limit ? 1 : 0;
}

int nm_dnnl_threads_begin(int threads)
{
    int saved = omp_get_max_threads();
    if (threads > 0 && threads != saved) omp_set_num_threads(threads);
    return saved;
}

void nm_dnnl_threads_end(int saved)
{
    if (omp_get_max_threads() != saved) omp_set_num_threads(saved);
}

nm_status nm_dnnl_exec_threads(nm_graph *g, dnnl_primitive_t prim, int threads, int nargs,
                               const dnnl_exec_arg_t *args)
{
    int saved = nm_dnnl_threads_begin(threads);
    nm_status st = nm_dnnl_exec(g, prim, nargs, args);
    nm_dnnl_threads_end(saved);
    return st;
}

nm_status nm_dnnl_primitive(nm_graph *g, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                            const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd_out,
                            dnnl_primitive_t *prim, nm_error *err, const char *what)
{
    dnnl_primitive_desc_t pd = NULL;
    *prim = NULL;
    nm_status st = nm_dnnl_check(dnnl_primitive_desc_create(&pd, desc, attr, g->engine, hint), err, what);
    if (st) return st;
    st = nm_dnnl_check(dnnl_primitive_create(prim, pd), err, what);
    if (st || !pd_out) dnnl_primitive_desc_destroy(pd);
    else *pd_out = pd;
    if (st) *prim = NULL;
    return st;
}

/* A reorder src -> dst; with `accumulate` the destination keeps its value and
 * the source is added to it (sum post-op). */
static nm_status make_reorder(nm_graph *g, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                              int accumulate, dnnl_primitive_t *prim, nm_error *err)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    nm_status st = NM_OK;
    if (accumulate) {
        st = nm_dnnl_check(dnnl_primitive_attr_create(&attr), err, "oneDNN attributes");
        if (!st) st = nm_dnnl_check(dnnl_post_ops_create(&ops), err, "oneDNN post-ops");
        if (!st) st = nm_dnnl_check(dnnl_post_ops_append_sum(ops, 1.0f), err, "oneDNN sum post-op");
        if (!st) st = nm_dnnl_check(dnnl_primitive_attr_set_post_ops(attr, ops), err, "oneDNN post-ops");
    }
    dnnl_primitive_desc_t pd = NULL;
    if (!st)
        st = nm_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, src, g->engine, dst, g->engine, attr),
                           err, "oneDNN reorder");
    if (!st) st = nm_dnnl_check(dnnl_primitive_create(prim, pd), err, "oneDNN reorder");
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

nm_status nm_dnnl_arg_init(nm_graph *g, nm_dnnl_arg *a, nm_arg_kind kind, int ndim,
                           const int64_t *dims, const dnnl_memory_desc_t *prim_md, nm_error *err)
{
    return nm_dnnl_arg_init_tag(g, a, kind, ndim, dims, nm_dnnl_plain_tag(ndim), prim_md, err);
}

nm_status nm_dnnl_arg_init_tag(nm_graph *g, nm_dnnl_arg *a, nm_arg_kind kind, int ndim, const int64_t *dims,
                               dnnl_format_tag_t user_tag, const dnnl_memory_desc_t *prim_md, nm_error *err)
{
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->numel = 1;
    for (int i = 0; i < ndim; i++) a->numel *= dims[i];
    dnnl_memory_desc_t user_md;
    nm_status st = nm_dnnl_md(&user_md, ndim, dims, user_tag, err);
    if (st) return st;
    st = nm_dnnl_check(dnnl_memory_create(&a->user, &user_md, g->engine, DNNL_MEMORY_NONE), err,
                       "oneDNN memory");
    if (st) return st;
    int same = dnnl_memory_desc_equal(&user_md, prim_md);
    if (same && kind != NM_ARG_ACC) {
        a->prim = a->user;
        return NM_OK;
    }
    st = nm_dnnl_check(dnnl_memory_create(&a->prim, prim_md, g->engine, DNNL_MEMORY_ALLOCATE), err,
                       "oneDNN memory");
    if (st || same) return st;
    if (kind == NM_ARG_IN) return make_reorder(g, &user_md, prim_md, 0, &a->reorder, err);
    return make_reorder(g, prim_md, &user_md, kind == NM_ARG_ACC, &a->reorder, err);
}

static nm_status run_reorder(nm_graph *g, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return nm_dnnl_exec(g, r, 2, args);
}

nm_status nm_dnnl_arg_in(nm_graph *g, nm_dnnl_arg *a, const void *data)
{
    if (a->frozen) return NM_OK;
    if (dnnl_memory_set_data_handle(a->user, (void *)data) != dnnl_success) return NM_ERR_INTERNAL;
    return a->reorder ? run_reorder(g, a->reorder, a->user, a->prim) : NM_OK;
}

nm_status nm_dnnl_arg_freeze(nm_graph *g, nm_dnnl_arg *a, const void *data, nm_error *err)
{
    a->frozen = 0;
    if (!a->reorder) {
        /* Same layout: keep a private copy so the graph's buffer may change. */
        dnnl_memory_t own = NULL;
        const dnnl_memory_desc_t *md = NULL;
        dnnl_memory_get_memory_desc(a->user, &md);
        nm_status st = nm_dnnl_check(dnnl_memory_create(&own, md, g->engine, DNNL_MEMORY_ALLOCATE), err,
                                     "oneDNN memory");
        if (st) return st;
        void *p = NULL;
        dnnl_memory_get_data_handle(own, &p);
        memcpy(p, data, (size_t)a->numel * sizeof(float));
        a->prim = own;
        a->frozen = 1;
        return NM_OK;
    }
    if (nm_dnnl_arg_in(g, a, data)) return nm_fail(err, NM_ERR_INTERNAL, "oneDNN weight reorder failed");
    a->frozen = 1;
    return NM_OK;
}

void nm_dnnl_arg_out_begin(nm_dnnl_arg *a, void *data)
{
    dnnl_memory_set_data_handle(a->user, data);
}

nm_status nm_dnnl_arg_out_end(nm_graph *g, nm_dnnl_arg *a, float *data)
{
    if (dnnl_memory_set_data_handle(a->user, data) != dnnl_success) return NM_ERR_INTERNAL;
    if (a->reorder) return run_reorder(g, a->reorder, a->prim, a->user);
    if (a->kind == NM_ARG_ACC) {
        void *p = NULL;
        dnnl_memory_get_data_handle(a->prim, &p);
        const float *src = p;
        int64_t n = a->numel;
#pragma omp parallel for if (n > 65536)
        for (int64_t i = 0; i < n; i++) data[i] += src[i];
    }
    return NM_OK;
}

void nm_dnnl_arg_free(nm_dnnl_arg *a)
{
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    if (a->prim && a->prim != a->user) dnnl_memory_destroy(a->prim);
    if (a->user) dnnl_memory_destroy(a->user);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------- window geometry */

int nm_auto_pad_parse(const char *s)
{
    if (!s || !*s || strcmp(s, "NOTSET") == 0) return NM_PAD_NOTSET;
    if (strcmp(s, "VALID") == 0) return NM_PAD_VALID;
    if (strcmp(s, "SAME_UPPER") == 0) return NM_PAD_SAME_UPPER;
    if (strcmp(s, "SAME_LOWER") == 0) return NM_PAD_SAME_LOWER;
    return -1;
}

static nm_status bad_attr(nm_graph *g, const nm_node *n, nm_error *err, const char *what)
{
    return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s': %s", g->source, n->op_type, n->name, what);
}

nm_status nm_window_check_attrs(nm_graph *g, const nm_node *n, int nsp, nm_error *err)
{
    int64_t v[2 * NM_MAX_SPATIAL + 1];
    int cap = 2 * NM_MAX_SPATIAL + 1;
    if (nm_auto_pad_parse(nm_attr_string(n, "auto_pad", "NOTSET")) < 0)
        return bad_attr(g, n, err, "unknown auto_pad");
    static const char *const names[] = {"kernel_shape", "strides", "dilations", "pads"};
    for (int k = 0; k < 4; k++) {
        int cnt = nm_attr_ints(n, names[k], v, cap);
        if (cnt < 0) continue;
        int want = k == 3 ? 2 * nsp : nsp;
        if (cnt > (k == 3 ? 2 : 1) * NM_MAX_SPATIAL || (nsp && cnt != want) || (k == 3 && cnt % 2))
            return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: %s node '%s': %s has %d values", g->source,
                           n->op_type, n->name, names[k], cnt);
        for (int i = 0; i < cnt; i++)
            if (k < 3 ? v[i] < 1 : v[i] < 0)
                return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s': %s value %lld out of range",
                               g->source, n->op_type, n->name, names[k], (long long)v[i]);
    }
    return NM_OK;
}

/* Output length and padding of one axis. */
static int window_axis(nm_window *w, int i, int auto_pad, int ceil_mode)
{
    int64_t in = w->in[i], s = w->stride[i], ext = nm_window_extent(w, i);
    if (auto_pad == NM_PAD_SAME_UPPER || auto_pad == NM_PAD_SAME_LOWER) {
        w->out[i] = (in + s - 1) / s;
        int64_t total = (w->out[i] - 1) * s + ext - in;
        if (total < 0) total = 0;
        int64_t small = total / 2, big = total - small;
        w->pad_l[i] = auto_pad == NM_PAD_SAME_UPPER ? small : big;
        w->pad_r[i] = auto_pad == NM_PAD_SAME_UPPER ? big : small;
        return 1;
    }
    if (auto_pad == NM_PAD_VALID) w->pad_l[i] = w->pad_r[i] = 0;
    int64_t span = in + w->pad_l[i] + w->pad_r[i] - ext;
    if (span < 0) return 0;
    if (ceil_mode && auto_pad == NM_PAD_NOTSET) {
        w->out[i] = (span + s - 1) / s + 1;
        /* A last window starting in the right padding covers no input: dropped. */
        if ((w->out[i] - 1) * s >= in + w->pad_l[i]) w->out[i]--;
        int64_t reach = (w->out[i] - 1) * s + ext - (in + w->pad_l[i] + w->pad_r[i]);
        w->extra_r[i] = reach > 0 ? reach : 0;
    } else {
        w->out[i] = span / s + 1;
    }
    return 1;
}

nm_status nm_window_from_node(nm_graph *g, const nm_node *n, int nsp, const int64_t *in_spatial,
                              const int64_t *kernel, int ceil_mode, nm_window *w, nm_error *err)
{
    memset(w, 0, sizeof *w);
    if (nsp < 1 || nsp > NM_MAX_SPATIAL)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: %s node '%s': %d spatial dimensions", g->source,
                       n->op_type, n->name, nsp);
    nm_status st = nm_window_check_attrs(g, n, nsp, err);
    if (st) return st;
    w->nsp = nsp;
    int64_t pads[2 * NM_MAX_SPATIAL] = {0};
    if (!kernel && nm_attr_ints(n, "kernel_shape", w->kernel, NM_MAX_SPATIAL) != nsp)
        return bad_attr(g, n, err, "kernel_shape missing");
    for (int i = 0; i < nsp; i++) {
        if (kernel) w->kernel[i] = kernel[i];
        w->in[i] = in_spatial[i];
        w->stride[i] = w->dilation[i] = 1;
    }
    nm_attr_ints(n, "strides", w->stride, NM_MAX_SPATIAL);
    nm_attr_ints(n, "dilations", w->dilation, NM_MAX_SPATIAL);
    nm_attr_ints(n, "pads", pads, 2 * NM_MAX_SPATIAL);
    int auto_pad = nm_auto_pad_parse(nm_attr_string(n, "auto_pad", "NOTSET"));
    for (int i = 0; i < nsp; i++) {
        w->pad_l[i] = pads[i];
        w->pad_r[i] = pads[nsp + i];
        if (!window_axis(w, i, auto_pad, ceil_mode))
            return nm_fail(err, NM_ERR_SHAPE, "%s: %s node '%s': kernel larger than padded input",
                           g->source, n->op_type, n->name);
    }
    return NM_OK;
}
