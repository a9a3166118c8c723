/* oneDNN plumbing and ONNX window geometry shared by Conv and pooling. */
#include "ops/dnnl_util.h"

#include <dnnl_debug.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
/* The AVX-512 copy kernels below are compiled for AVX-512 whatever the build
 * targets and chosen at run time, so one binary runs on any x86-64. */
#include <immintrin.h>
#define NM_COPY_AVX512 1
#define NM_AVX512_FN __attribute__((target("avx512f")))
#else
#define NM_COPY_AVX512 0
#endif

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

int nm_dnnl_threads_for(const nm_graph *g, double flops)
{
    return flops < (g->serial_below > 0 ? g->serial_below : 8e6) ? 1 : 0;
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

nm_status nm_dnnl_primitive_pad(nm_graph *g, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                                const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd_out,
                                dnnl_primitive_t *prim, nm_dnnl_arg *pad, nm_error *err, const char *what)
{
    memset(pad, 0, sizeof *pad);
    *prim = NULL;
    dnnl_primitive_attr_t a = NULL;
    dnnl_primitive_desc_t pd = NULL;
    nm_status st = nm_dnnl_check(attr ? dnnl_primitive_attr_clone(&a, attr) : dnnl_primitive_attr_create(&a), err,
                                 "oneDNN attributes");
    if (!st)
        st = nm_dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user), err,
                           "oneDNN scratchpad mode");
    if (!st) st = nm_dnnl_primitive(g, desc, a, hint, &pd, prim, err, what);
    if (a) dnnl_primitive_attr_destroy(a);
    if (st) return st;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (bytes) {
        st = nm_dnnl_check(dnnl_memory_create(&pad->prim, md, g->engine, DNNL_MEMORY_NONE), err, "oneDNN memory");
        pad->kind = NM_ARG_OUT;
        pad->sg = g;
        pad->bytes = bytes;
        pad->off = nm_graph_scratch_take(g, bytes);
    }
    if (st) {
        dnnl_primitive_destroy(*prim);
        *prim = NULL;
    }
    if (!st && pd_out) *pd_out = pd;
    else dnnl_primitive_desc_destroy(pd);
    return st;
}

static nm_status arg_bind(nm_dnnl_arg *a);

nm_status nm_dnnl_exec_pad(nm_graph *g, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                           nm_dnnl_arg *pad)
{
    return nm_dnnl_exec_pad_on(g->stream, prim, nargs, args, pad);
}

nm_status nm_dnnl_exec_pad_on(dnnl_stream_t stream, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                              nm_dnnl_arg *pad)
{
    dnnl_exec_arg_t all[16];
    if (nargs < 0 || nargs > 15) return NM_ERR_INTERNAL;
    memcpy(all, args, sizeof *args * (size_t)nargs);
    if (pad && pad->prim) {
        nm_status st = arg_bind(pad);
        if (st) return st;
        all[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, pad->prim};
    }
    if (dnnl_primitive_execute(prim, stream, nargs, all) != dnnl_success) return NM_ERR_INTERNAL;
    return dnnl_stream_wait(stream) == dnnl_success ? NM_OK : NM_ERR_INTERNAL;
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

static int md_same_offsets(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);

/* `scratch`: a buffer in another layout is a region of the graph's scratch
 * (else the caller freezes the argument, which gives it its own). */
static nm_status arg_init(nm_graph *g, nm_dnnl_arg *a, nm_arg_kind kind, int ndim, const int64_t *dims,
                          dnnl_format_tag_t user_tag, const dnnl_memory_desc_t *prim_md, int scratch, nm_error *err)
{
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->numel = 1;
    for (int i = 0; i < ndim; i++) a->numel *= dims[i];
    dnnl_memory_desc_t user_md;
    nm_status st = nm_dnnl_md(&user_md, ndim, dims, user_tag, err);
    if (st) return st;
    if (kind != NM_ARG_ACC && md_same_offsets(&user_md, prim_md)) user_md = *prim_md;
    st = nm_dnnl_check(dnnl_memory_create(&a->user, &user_md, g->engine, DNNL_MEMORY_NONE), err,
                       "oneDNN memory");
    if (st) return st;
    int same = dnnl_memory_desc_equal(&user_md, prim_md);
    if (same && kind != NM_ARG_ACC) {
        a->prim = a->user;
        return NM_OK;
    }
    /* The primitive's layout lives in the graph's scratch: bound per call. */
    st = nm_dnnl_check(dnnl_memory_create(&a->prim, prim_md, g->engine, DNNL_MEMORY_NONE), err, "oneDNN memory");
    if (st) return st;
    if (scratch) {
        a->sg = g;
        a->bytes = dnnl_memory_desc_get_size(prim_md);
        a->off = nm_graph_scratch_take(g, a->bytes);
    }
    if (same) return NM_OK;
    if (kind == NM_ARG_IN) return make_reorder(g, &user_md, prim_md, 0, &a->reorder, err);
    return make_reorder(g, prim_md, &user_md, kind == NM_ARG_ACC, &a->reorder, err);
}

nm_status nm_dnnl_arg_init_tag(nm_graph *g, nm_dnnl_arg *a, nm_arg_kind kind, int ndim, const int64_t *dims,
                               dnnl_format_tag_t user_tag, const dnnl_memory_desc_t *prim_md, nm_error *err)
{
    return arg_init(g, a, kind, ndim, dims, user_tag, prim_md, 1, err);
}

nm_status nm_dnnl_arg_init_const(nm_graph *g, nm_dnnl_arg *a, int ndim, const int64_t *dims,
                                 const dnnl_memory_desc_t *prim_md, const void *data, nm_error *err)
{
    nm_status st = arg_init(g, a, NM_ARG_IN, ndim, dims, nm_dnnl_plain_tag(ndim), prim_md, 0, err);
    return st ? st : nm_dnnl_arg_freeze(g, a, data, err);
}

/* Point a scratch-held primitive buffer at its region (the scratch may have
 * moved since the last call). */
static nm_status arg_bind(nm_dnnl_arg *a)
{
    if (!a->sg) return NM_OK;
    if (!a->sg->scratch || a->off + a->bytes > a->sg->scratch_size) return NM_ERR_INTERNAL;
    return dnnl_memory_set_data_handle(a->prim, nm_graph_scratch_at(a->sg, a->off)) == dnnl_success
               ? NM_OK
               : NM_ERR_INTERNAL;
}

static nm_status run_reorder(nm_graph *g, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return nm_dnnl_exec(g, r, 2, args);
}

static void copy_run(const nm_dnnl_copy *c, const float *src, float *dst);

nm_status nm_dnnl_arg_in(nm_graph *g, nm_dnnl_arg *a, const void *data)
{
    if (a->frozen) return NM_OK;
    nm_status st = arg_bind(a);
    if (st) return st;
    if (a->copy) {
        void *p = NULL;
        dnnl_memory_get_data_handle(a->prim, &p);
        copy_run(a->copy, a->from, p);
        return NM_OK;
    }
    if (dnnl_memory_set_data_handle(a->user, (void *)data) != dnnl_success) return NM_ERR_INTERNAL;
    return a->reorder ? run_reorder(g, a->reorder, a->user, a->prim) : NM_OK;
}

nm_status nm_dnnl_arg_freeze(nm_graph *g, nm_dnnl_arg *a, const void *data, nm_error *err)
{
    a->frozen = 0;
    if (!a->reorder) {
        /* Same layout: the primitive reads the constant's buffer itself. */
        if (dnnl_memory_set_data_handle(a->user, (void *)data) != dnnl_success)
            return nm_fail(err, NM_ERR_INTERNAL, "oneDNN memory handle");
        a->frozen = 1;
        return NM_OK;
    }
    const dnnl_memory_desc_t *md = NULL;
    dnnl_memory_get_memory_desc(a->prim, &md);
    size_t bytes = (dnnl_memory_desc_get_size(md) + 63) / 64 * 64;
    void *own = aligned_alloc(64, bytes ? bytes : 64);
    if (!own) return nm_fail(err, NM_ERR_MEMORY, "out of memory for reordered weights");
    free(a->own);
    a->own = own;
    a->sg = NULL;   /* not in the scratch any more */
    if (dnnl_memory_set_data_handle(a->prim, own) != dnnl_success || nm_dnnl_arg_in(g, a, data))
        return nm_fail(err, NM_ERR_INTERNAL, "oneDNN weight reorder failed");
    a->frozen = 1;
    return NM_OK;
}

static nm_dnnl_copy *copy_plan(const dnnl_memory_desc_t *s, const dnnl_memory_desc_t *d);
static void copy_free(nm_dnnl_copy *c);

nm_status nm_dnnl_arg_init_derived(nm_graph *g, nm_dnnl_arg *a, const nm_dnnl_arg *from,
                                   const dnnl_memory_desc_t *prim_md, int hold, nm_error *err)
{
    memset(a, 0, sizeof *a);
    a->kind = NM_ARG_IN;
    a->numel = from->numel;
    a->derived = 1;
    if (!from->frozen || !from->own) return nm_fail(err, NM_ERR_INTERNAL, "derived argument of an unfrozen one");
    const dnnl_memory_desc_t *fmd = NULL;
    dnnl_memory_get_memory_desc(from->prim, &fmd);
    if (dnnl_memory_desc_equal(fmd, prim_md)) {
        a->prim = from->prim;
        a->alias = 1;
        a->frozen = 1;
        return NM_OK;
    }
    nm_status st = nm_dnnl_check(dnnl_memory_create(&a->prim, prim_md, g->engine, DNNL_MEMORY_NONE), err,
                                 "oneDNN memory");
    if (st) return st;
    a->bytes = dnnl_memory_desc_get_size(prim_md);
    a->copy = copy_plan(fmd, prim_md);
    if (a->copy && hold) {   /* copied once, into its own buffer */
        size_t bytes = (a->bytes + 63) / 64 * 64;
        a->own = aligned_alloc(64, bytes ? bytes : 64);
        if (!a->own) return nm_fail(err, NM_ERR_MEMORY, "out of memory for reordered weights");
        copy_run(a->copy, from->own, a->own);
        copy_free(a->copy);
        a->copy = NULL;
        a->frozen = 1;
        return nm_dnnl_check(dnnl_memory_set_data_handle(a->prim, a->own), err, "oneDNN memory handle");
    }
    if (a->copy) {
        a->from = from->own;
        a->sg = g;
        a->off = nm_graph_scratch_take(g, a->bytes);
        return NM_OK;
    }
    /* Layouts the copy does not handle: converted once by oneDNN. */
    st = nm_dnnl_check(dnnl_memory_create(&a->user, fmd, g->engine, DNNL_MEMORY_NONE), err, "oneDNN memory");
    if (!st) st = make_reorder(g, fmd, prim_md, 0, &a->reorder, err);
    if (!st) st = nm_dnnl_arg_freeze(g, a, from->own, err);
    return st;
}

nm_status nm_dnnl_arg_thaw(nm_graph *g, const nm_dnnl_arg *a, void *dst, nm_error *err)
{
    if (!a->frozen || a->alias || a->derived || !a->user)
        return nm_fail(err, NM_ERR_INTERNAL, "oneDNN argument without a frozen value");
    const dnnl_memory_desc_t *umd = NULL, *pmd = NULL;
    dnnl_memory_get_memory_desc(a->user, &umd);
    dnnl_memory_get_memory_desc(a->prim, &pmd);
    if (a->prim == a->user) {
        void *p = NULL;
        dnnl_memory_get_data_handle(a->user, &p);
        memcpy(dst, p, dnnl_memory_desc_get_size(umd));
        return NM_OK;
    }
    dnnl_memory_t out = NULL;
    dnnl_primitive_t r = NULL;
    nm_status st = nm_dnnl_check(dnnl_memory_create(&out, umd, g->engine, dst), err, "oneDNN memory");
    if (!st) st = make_reorder(g, pmd, umd, 0, &r, err);
    if (!st && run_reorder(g, r, a->prim, out)) st = nm_fail(err, NM_ERR_INTERNAL, "oneDNN reorder failed");
    if (r) dnnl_primitive_destroy(r);
    if (out) dnnl_memory_destroy(out);
    return st;
}

nm_status nm_dnnl_arg_out_begin(nm_dnnl_arg *a, void *data)
{
    if (dnnl_memory_set_data_handle(a->user, data) != dnnl_success) return NM_ERR_INTERNAL;
    return arg_bind(a);
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
    if (a->prim && a->prim != a->user && !a->alias) dnnl_memory_destroy(a->prim);
    if (a->user) dnnl_memory_destroy(a->user);
    free(a->own);
    copy_free(a->copy);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------- layout copies */

/* A copy from one blocked f32 layout to another, each dimension blocked at
 * most once, the destination dense (no padding) with at least one inner
 * block: loops in the destination's memory order (its outer blocks by
 * stride, then its inner blocks), the last one contiguous in the
 * destination. The source offset is a sum over loops: a table per value for
 * outer blocks (the source may block the dimension otherwise), a stride for
 * inner ones (a source block a multiple of the destination's keeps them
 * linear). Conv's backward-data weights from the forward's, per call:
 * written once, read from cache by the primitive. */
#define NM_COPY_LOOPS (2 * DNNL_MAX_NDIMS)

struct nm_dnnl_copy {
    int n;
    int64_t size[NM_COPY_LOOPS], dstep[NM_COPY_LOOPS], sstep[NM_COPY_LOOPS];
    int64_t *stab[NM_COPY_LOOPS];   /* source offset per value, or NULL: value * sstep */
    int64_t total;
    int tile;   /* the last two loops transpose a 16x16 tile (inner blocks 16a16b from 16-blocks of a) */
};

static void copy_free(nm_dnnl_copy *c)
{
    if (!c) return;
    for (int k = 0; k < c->n; k++) free(c->stab[k]);
    free(c);
}

/* Per dimension: its block (1: none) and the stride inside the block. */
static int md_blocks(const dnnl_memory_desc_t *md, int64_t *blk, int64_t *inner)
{
    if (md->format_kind != dnnl_blocked || md->data_type != dnnl_f32 || md->offset0 != 0 || md->extra.flags)
        return 0;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    for (int d = 0; d < md->ndims; d++) blk[d] = 1, inner[d] = 0;
    int64_t st = 1;
    for (int k = b->inner_nblks - 1; k >= 0; k--) {
        int d = (int)b->inner_idxs[k];
        if (d < 0 || d >= md->ndims || blk[d] != 1 || b->inner_blks[k] < 1) return 0;
        blk[d] = b->inner_blks[k];
        inner[d] = st;
        st *= b->inner_blks[k];
    }
    return 1;
}

static int64_t dim_offset(const dnnl_memory_desc_t *md, const int64_t *blk, const int64_t *inner, int d, int64_t x)
{
    return x / blk[d] * md->format_desc.blocking.strides[d] + x % blk[d] * inner[d];
}

/* Two descriptors of the same bytes, every element at the same offset (16
 * channels blocked by 16 are channels-last, say): no reorder between them. */
static int md_same_offsets(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b)
{
    int64_t ab[DNNL_MAX_NDIMS], ai[DNNL_MAX_NDIMS], bb[DNNL_MAX_NDIMS], bi[DNNL_MAX_NDIMS];
    if (a->ndims != b->ndims || a->ndims < 1 || !md_blocks(a, ab, ai) || !md_blocks(b, bb, bi)) return 0;
    for (int d = 0; d < a->ndims; d++) {
        if (a->dims[d] != b->dims[d] || a->padded_dims[d] != a->dims[d] || b->padded_dims[d] != b->dims[d])
            return 0;
        for (int64_t x = 0; x < a->dims[d]; x++)
            if (dim_offset(a, ab, ai, d, x) != dim_offset(b, bb, bi, d, x)) return 0;
    }
    return 1;
}

static nm_dnnl_copy *copy_plan(const dnnl_memory_desc_t *s, const dnnl_memory_desc_t *d)
{
    int64_t sb[DNNL_MAX_NDIMS], si[DNNL_MAX_NDIMS], db[DNNL_MAX_NDIMS], di[DNNL_MAX_NDIMS];
    int nd = d->ndims;
    if (s->ndims != nd || nd < 1 || nd > NM_COPY_LOOPS / 3 || !md_blocks(s, sb, si) || !md_blocks(d, db, di) ||
        d->format_desc.blocking.inner_nblks < 1)
        return NULL;
    int64_t total = 1;
    for (int k = 0; k < nd; k++) {
        if (s->dims[k] != d->dims[k] || d->padded_dims[k] != d->dims[k] || d->dims[k] < 1 || d->dims[k] % db[k])
            return NULL;
        if (db[k] > 1 && sb[k] > 1 && sb[k] % db[k]) return NULL;
        total *= d->dims[k];
    }
    nm_dnnl_copy *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->total = total;
    const dnnl_dims_t *dstr = &d->format_desc.blocking.strides, *sstr = &s->format_desc.blocking.strides;
    /* Outer loops: per dimension, its destination block index X (x = X db):
     * one loop where the source blocks it no more coarsely; else two, the
     * source block and X's position in it; a table of source offsets where
     * the source block does not divide the dimension. */
    for (int k = 0; k < nd; k++) {
        int64_t nx = d->dims[k] / db[k];
        if (nx <= 1) continue;
        int l = c->n++;
        c->size[l] = nx;
        c->dstep[l] = (*dstr)[k];
        if (sb[k] <= db[k]) {
            c->sstep[l] = sb[k] == 1 ? db[k] * (*sstr)[k] : (*sstr)[k];
        } else if (d->dims[k] % sb[k] == 0) {
            int64_t per = sb[k] / db[k];
            c->size[l] = d->dims[k] / sb[k];
            c->dstep[l] = per * (*dstr)[k];
            c->sstep[l] = (*sstr)[k];
            l = c->n++;
            c->size[l] = per;
            c->dstep[l] = (*dstr)[k];
            c->sstep[l] = db[k] * si[k];
        } else {
            c->stab[l] = malloc(sizeof(int64_t) * (size_t)nx);
            if (!c->stab[l]) {
                copy_free(c);
                return NULL;
            }
            for (int64_t v = 0; v < nx; v++) c->stab[l][v] = dim_offset(s, sb, si, k, v * db[k]);
        }
    }
    /* Read the source (the weights in memory) in order, the largest source
     * step outermost; the destination (the scratch) stays in cache. Loops of
     * one value go. */
    int no = 0;
    for (int l = 0; l < c->n; l++) {
        if (c->size[l] <= 1) {
            free(c->stab[l]);
            continue;
        }
        int64_t size = c->size[l], dstep = c->dstep[l], sstep = c->sstep[l], *stab = c->stab[l];
        int64_t key = stab ? (stab[size - 1] - stab[0]) / (size - 1) : sstep;
        int j = no++;
        for (; j > 0; j--) {
            int64_t prev = c->stab[j - 1] ? (c->stab[j - 1][c->size[j - 1] - 1] - c->stab[j - 1][0]) / (c->size[j - 1] - 1)
                                          : c->sstep[j - 1];
            if (prev >= key) break;
            c->size[j] = c->size[j - 1], c->dstep[j] = c->dstep[j - 1], c->sstep[j] = c->sstep[j - 1];
            c->stab[j] = c->stab[j - 1];
        }
        c->size[j] = size, c->dstep[j] = dstep, c->sstep[j] = sstep, c->stab[j] = stab;
    }
    for (int l = no; l < c->n; l++) c->stab[l] = NULL;
    c->n = no;
    /* The destination's inner blocks; the last one has stride 1. */
    const dnnl_blocking_desc_t *b = &d->format_desc.blocking;
    for (int j = 0; j < b->inner_nblks; j++) {
        int k = (int)b->inner_idxs[j], l = c->n++;
        c->size[l] = b->inner_blks[j];
        c->dstep[l] = di[k];
        c->sstep[l] = sb[k] > 1 ? si[k] : s->format_desc.blocking.strides[k];
    }
    int la = c->n - 2, lb = c->n - 1;
    c->tile = la >= 0 && c->size[la] == 16 && c->dstep[la] == 16 && c->sstep[la] == 1 && !c->stab[la] &&
              c->size[lb] == 16 && c->dstep[lb] == 1;
    return c;
}

static inline int64_t loop_src(const nm_dnnl_copy *c, int k, int64_t v)
{
    return c->stab[k] ? c->stab[k][v] : v * c->sstep[k];
}

#if NM_COPY_AVX512
/* d[j] = s[j * ss], j < 16. */
NM_AVX512_FN static inline void gather16(float *d, const float *s, int64_t ss)
{
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)ss));
    _mm512_storeu_ps(d, _mm512_i32gather_ps(idx, s, 4));
}
#endif

/* `avx512` is a constant in each caller below, so each gets its own copy. */
static inline __attribute__((always_inline)) void copy_row(float *d, const float *s, int64_t len, int64_t ss,
                                                             int avx512)
{
    if (ss == 1) {
        memcpy(d, s, sizeof(float) * (size_t)len);
        return;
    }
#if NM_COPY_AVX512
    if (avx512 && len == 16 && ss > 0 && ss < (1 << 26)) {
        gather16(d, s, ss);
        return;
    }
#endif
    for (int64_t j = 0; j < len; j++) d[j] = s[j * ss];
}

#if NM_COPY_AVX512
/* d[o * 16 + i] = s[i * ss + o], o and i < 16. */
NM_AVX512_FN static inline void transpose16(const float *s, int64_t ss, float *d)
{
    __m512 r0 = _mm512_loadu_ps(s + 0 * ss), r1 = _mm512_loadu_ps(s + 1 * ss), r2 = _mm512_loadu_ps(s + 2 * ss),
           r3 = _mm512_loadu_ps(s + 3 * ss), r4 = _mm512_loadu_ps(s + 4 * ss), r5 = _mm512_loadu_ps(s + 5 * ss),
           r6 = _mm512_loadu_ps(s + 6 * ss), r7 = _mm512_loadu_ps(s + 7 * ss), r8 = _mm512_loadu_ps(s + 8 * ss),
           r9 = _mm512_loadu_ps(s + 9 * ss), r10 = _mm512_loadu_ps(s + 10 * ss), r11 = _mm512_loadu_ps(s + 11 * ss),
           r12 = _mm512_loadu_ps(s + 12 * ss), r13 = _mm512_loadu_ps(s + 13 * ss), r14 = _mm512_loadu_ps(s + 14 * ss),
           r15 = _mm512_loadu_ps(s + 15 * ss);
    __m512 t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1), t2 = _mm512_unpacklo_ps(r2, r3),
           t3 = _mm512_unpackhi_ps(r2, r3), t4 = _mm512_unpacklo_ps(r4, r5), t5 = _mm512_unpackhi_ps(r4, r5),
           t6 = _mm512_unpacklo_ps(r6, r7), t7 = _mm512_unpackhi_ps(r6, r7), t8 = _mm512_unpacklo_ps(r8, r9),
           t9 = _mm512_unpackhi_ps(r8, r9), t10 = _mm512_unpacklo_ps(r10, r11), t11 = _mm512_unpackhi_ps(r10, r11),
           t12 = _mm512_unpacklo_ps(r12, r13), t13 = _mm512_unpackhi_ps(r12, r13), t14 = _mm512_unpacklo_ps(r14, r15),
           t15 = _mm512_unpackhi_ps(r14, r15);
#define SH(a, b, m) _mm512_shuffle_ps(a, b, m)
    enum { lo = _MM_SHUFFLE(1, 0, 1, 0), hi = _MM_SHUFFLE(3, 2, 3, 2) };   /* constant expressions, as clang requires */
    r0 = SH(t0, t2, lo), r1 = SH(t0, t2, hi), r2 = SH(t1, t3, lo), r3 = SH(t1, t3, hi);
    r4 = SH(t4, t6, lo), r5 = SH(t4, t6, hi), r6 = SH(t5, t7, lo), r7 = SH(t5, t7, hi);
    r8 = SH(t8, t10, lo), r9 = SH(t8, t10, hi), r10 = SH(t9, t11, lo), r11 = SH(t9, t11, hi);
    r12 = SH(t12, t14, lo), r13 = SH(t12, t14, hi), r14 = SH(t13, t15, lo), r15 = SH(t13, t15, hi);
#define SF(a, b, m) _mm512_shuffle_f32x4(a, b, m)
    t0 = SF(r0, r4, 0x88), t1 = SF(r1, r5, 0x88), t2 = SF(r2, r6, 0x88), t3 = SF(r3, r7, 0x88);
    t4 = SF(r0, r4, 0xdd), t5 = SF(r1, r5, 0xdd), t6 = SF(r2, r6, 0xdd), t7 = SF(r3, r7, 0xdd);
    t8 = SF(r8, r12, 0x88), t9 = SF(r9, r13, 0x88), t10 = SF(r10, r14, 0x88), t11 = SF(r11, r15, 0x88);
    t12 = SF(r8, r12, 0xdd), t13 = SF(r9, r13, 0xdd), t14 = SF(r10, r14, 0xdd), t15 = SF(r11, r15, 0xdd);
    _mm512_storeu_ps(d + 0 * 16, SF(t0, t8, 0x88));
    _mm512_storeu_ps(d + 1 * 16, SF(t1, t9, 0x88));
    _mm512_storeu_ps(d + 2 * 16, SF(t2, t10, 0x88));
    _mm512_storeu_ps(d + 3 * 16, SF(t3, t11, 0x88));
    _mm512_storeu_ps(d + 4 * 16, SF(t4, t12, 0x88));
    _mm512_storeu_ps(d + 5 * 16, SF(t5, t13, 0x88));
    _mm512_storeu_ps(d + 6 * 16, SF(t6, t14, 0x88));
    _mm512_storeu_ps(d + 7 * 16, SF(t7, t15, 0x88));
    _mm512_storeu_ps(d + 8 * 16, SF(t0, t8, 0xdd));
    _mm512_storeu_ps(d + 9 * 16, SF(t1, t9, 0xdd));
    _mm512_storeu_ps(d + 10 * 16, SF(t2, t10, 0xdd));
    _mm512_storeu_ps(d + 11 * 16, SF(t3, t11, 0xdd));
    _mm512_storeu_ps(d + 12 * 16, SF(t4, t12, 0xdd));
    _mm512_storeu_ps(d + 13 * 16, SF(t5, t13, 0xdd));
    _mm512_storeu_ps(d + 14 * 16, SF(t6, t14, 0xdd));
    _mm512_storeu_ps(d + 15 * 16, SF(t7, t15, 0xdd));
}
#endif

/* The innermost loop (a row), or the two innermost (a tile), at once. */
static inline __attribute__((always_inline)) void copy_kernel(const nm_dnnl_copy *c, float *d, const float *s,
                                                                int avx512)
{
#if NM_COPY_AVX512
    if (avx512 && c->tile) {
        transpose16(s, c->sstep[c->n - 1], d);
        return;
    }
#endif
    if (c->tile) {
        for (int64_t o = 0; o < 16; o++) copy_row(d + 16 * o, s + o, 16, c->sstep[c->n - 1], avx512);
        return;
    }
    copy_row(d, s, c->size[c->n - 1], c->sstep[c->n - 1], avx512);
}

/* Everything under the outermost loop's index v0. */
static inline __attribute__((always_inline)) void copy_block(const nm_dnnl_copy *c, const float *src, float *dst,
                                                               int last, int64_t v0, int avx512)
{
    int64_t idx[NM_COPY_LOOPS] = {0};
    int64_t doff = last > 0 ? v0 * c->dstep[0] : 0, soff = last > 0 ? loop_src(c, 0, v0) : 0;
    for (int k = 1; k < last; k++) soff += loop_src(c, k, 0);
    for (;;) {
        copy_kernel(c, dst + doff, src + soff, avx512);
        int k = last - 1;
        for (; k >= 1; k--) {   /* next row: an odometer over loops 1 .. last-1 */
            int64_t v = idx[k];
            if (v + 1 < c->size[k]) {
                idx[k] = v + 1;
                doff += c->dstep[k];
                soff += loop_src(c, k, v + 1) - loop_src(c, k, v);
                break;
            }
            idx[k] = 0;
            doff -= v * c->dstep[k];
            soff += loop_src(c, k, 0) - loop_src(c, k, v);
        }
        if (k < 1) break;
    }
}

static void copy_block_generic(const nm_dnnl_copy *c, const float *src, float *dst, int last, int64_t v0)
{
    copy_block(c, src, dst, last, v0, 0);
}

#if NM_COPY_AVX512
NM_AVX512_FN static void copy_block_avx512(const nm_dnnl_copy *c, const float *src, float *dst, int last,
                                           int64_t v0)
{
    copy_block(c, src, dst, last, v0, 1);
}
#endif

static void copy_run(const nm_dnnl_copy *c, const float *src, float *dst)
{
#if NM_COPY_AVX512
    static int avx512 = -1;   /* a race here writes the same value */
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    void (*block)(const nm_dnnl_copy *, const float *, float *, int, int64_t) =
        avx512 ? copy_block_avx512 : copy_block_generic;
#else
    void (*block)(const nm_dnnl_copy *, const float *, float *, int, int64_t) = copy_block_generic;
#endif
    int last = c->n - 1 - c->tile;   /* the loops below it are the kernel's */
    int64_t outer = last > 0 ? c->size[0] : 1;
#pragma omp parallel for schedule(static) if (c->total >= 65536)
    for (int64_t v0 = 0; v0 < outer; v0++) block(c, src, dst, last, v0);
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
        /* Bounded so that window arithmetic ((k - 1) * d + 1, in + pads) cannot overflow. */
        for (int i = 0; i < cnt; i++)
            if ((k < 3 ? v[i] < 1 : v[i] < 0) || v[i] > INT32_MAX)
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
