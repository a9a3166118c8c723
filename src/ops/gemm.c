/* Gemm (Y = alpha * op(A) op(B) + beta * C) and MatMul (numpy matmul: 1-D
 * operands, broadcast batch dimensions), forward and backward, all through
 * oneDNN's row-major dnnl_sgemm. Backward accumulates with beta = 1. */
#include <dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "ops/broadcast.h"

/* C[M,N] = alpha * op(A) op(B) + beta * C; tolerates empty sizes. */
static nm_status sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                       int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M == 0 || N == 0) return NM_OK;
    if (K == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return NM_OK;
    }
    dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return s == dnnl_success ? NM_OK : NM_ERR_INTERNAL;
}

/* ------------------------------------------------------------- Gemm */

typedef struct gemm_state {
    float alpha, beta;
    int trans_a, trans_b;
    int64_t M, N, K;
    nm_bcast c_plan;        /* C over [M,N] */
} gemm_state;

static void gemm_fill_c(const gemm_state *st, const float *c, float *y)
{
    const nm_bcast *bc = &st->c_plan;
    int64_t sc = nm_bcast_row_stride(bc, 0);
    for (int64_t ch = 0; ch < bc->n_chunks; ch++) {
        int64_t off[NM_BCAST_MAX_OPS], len;
        int64_t o = nm_bcast_chunk(bc, ch, off, &len);
        for (int64_t k = 0; k < len; k++) y[o + k] = st->beta * c[off[0] + k * sc];
    }
}

static nm_status gemm_forward(const gemm_state *st, const float *a, const float *b, const float *c, float *y)
{
    int64_t M = st->M, N = st->N, K = st->K;
    if (c) gemm_fill_c(st, c, y);
    return sgemm(st->trans_a, st->trans_b, M, N, K, st->alpha, a, st->trans_a ? M : K, b, st->trans_b ? K : N,
                 c ? 1.0f : 0.0f, y, N);
}

/* dA = alpha dY op(B)^T (transposed back when transA), dB = alpha op(A)^T dY (likewise). */
static nm_status gemm_backward(const gemm_state *st, const float *a, const float *b, const float *dy, float *da,
                               float *db)
{
    int64_t M = st->M, N = st->N, K = st->K, lda = st->trans_a ? M : K, ldb = st->trans_b ? K : N;
    float al = st->alpha;
    nm_status s = NM_OK;
    if (da && !st->trans_a) s = sgemm(0, !st->trans_b, M, K, N, al, dy, N, b, ldb, 1.0f, da, K);
    if (da && st->trans_a) s = sgemm(st->trans_b, 1, K, M, N, al, b, ldb, dy, N, 1.0f, da, M);
    if (!s && db && !st->trans_b) s = sgemm(!st->trans_a, 0, K, N, M, al, a, lda, dy, N, 1.0f, db, N);
    if (!s && db && st->trans_b) s = sgemm(1, st->trans_a, N, K, M, al, dy, N, a, lda, 1.0f, db, K);
    return s;
}

static nm_status gemm_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in < 2 || n->n_in > 3 || !nm_in(g, n, 0) || !nm_in(g, n, 1) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: Gemm node '%s' needs 2 or 3 inputs and 1 output", g->source,
                       n->name);
    gemm_state *st = calloc(1, sizeof *st);
    if (!st) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    n->state = st;
    st->alpha = nm_attr_float(n, "alpha", 1.0f);
    st->beta = nm_attr_float(n, "beta", 1.0f);
    st->trans_a = nm_attr_int(n, "transA", 0) != 0;
    st->trans_b = nm_attr_int(n, "transB", 0) != 0;
    return NM_OK;
}

static nm_status gemm_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    gemm_state *st = n->state;
    nm_tensor *a = nm_in(g, n, 0), *b = nm_in(g, n, 1), *c = nm_in(g, n, 2), *y = nm_out(g, n, 0);
    char sa[128], sb[128], sc[128];
    if (a->dtype != NM_FLOAT || b->dtype != NM_FLOAT || (c && c->dtype != NM_FLOAT))
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: Gemm node '%s': only float tensors are supported",
                       g->source, n->name);
    if (a->shape.ndim != 2 || b->shape.ndim != 2)
        return nm_fail(err, NM_ERR_SHAPE, "%s: Gemm node '%s': A %s and B %s must be 2-D", g->source, n->name,
                       nm_shape_str(&a->shape, sa, sizeof sa), nm_shape_str(&b->shape, sb, sizeof sb));
    st->M = a->shape.dims[st->trans_a ? 1 : 0];
    st->K = a->shape.dims[st->trans_a ? 0 : 1];
    st->N = b->shape.dims[st->trans_b ? 0 : 1];
    int64_t kb = b->shape.dims[st->trans_b ? 1 : 0];
    if (kb != st->K)
        return nm_fail(err, NM_ERR_SHAPE, "%s: Gemm node '%s': A %s and B %s disagree on K", g->source, n->name,
                       nm_shape_str(&a->shape, sa, sizeof sa), nm_shape_str(&b->shape, sb, sizeof sb));
    y->dtype = NM_FLOAT;
    y->shape = (nm_shape){.ndim = 2, .dims = {st->M, st->N}};
    y->numel = st->M * st->N;
    if (c) {
        if (!nm_broadcasts_to(&c->shape, &y->shape))
            return nm_fail(err, NM_ERR_SHAPE, "%s: Gemm node '%s': C %s does not broadcast to %s", g->source,
                           n->name, nm_shape_str(&c->shape, sc, sizeof sc), nm_shape_str(&y->shape, sa, sizeof sa));
        const nm_shape *ops[1] = {&c->shape};
        nm_bcast_plan(&st->c_plan, &y->shape, 1, ops);
    }
    return NM_OK;
}

static nm_status gemm_node_forward(nm_graph *g, nm_node *n)
{
    nm_tensor *c = nm_in(g, n, 2);
    return gemm_forward(n->state, nm_f32(nm_in(g, n, 0)), nm_f32(nm_in(g, n, 1)), c ? nm_f32(c) : NULL,
                        nm_f32(nm_out(g, n, 0)));
}

static nm_status gemm_node_backward(nm_graph *g, nm_node *n)
{
    const gemm_state *st = n->state;
    nm_tensor *a = nm_in(g, n, 0), *b = nm_in(g, n, 1), *c = nm_in(g, n, 2), *y = nm_out(g, n, 0);
    if (!y->grad) return NM_OK;
    nm_status s = gemm_backward(st, nm_f32(a), nm_f32(b), y->grad, a->requires_grad ? a->grad : NULL,
                                b->requires_grad ? b->grad : NULL);
    if (!s && c && c->requires_grad)
        nm_bcast_reduce(NM_TERM_DY, y->grad, &y->shape, NULL, NULL, NULL, st->beta, &c->shape, c->grad);
    return s;
}

/* ------------------------------------------------------------- MatMul */

typedef struct matmul_state {
    int64_t M, N, K;
    int64_t n_batch;
    int batch_ndim;
    int64_t batch_dims[NM_MAX_DIMS];
    int64_t stride_a[NM_MAX_DIMS], stride_b[NM_MAX_DIMS];   /* in matrices; 0 when broadcast */
    int flat_a;             /* B has no batch and A's batch is the output's: one [batch*M,K] product */
} matmul_state;

/* Matrix index of A and B for output batch element `i`. */
static void matmul_batch_index(const matmul_state *st, int64_t i, int64_t *ia, int64_t *ib)
{
    *ia = *ib = 0;
    for (int d = st->batch_ndim - 1; d >= 0; d--) {
        int64_t idx = i % st->batch_dims[d];
        i /= st->batch_dims[d];
        *ia += idx * st->stride_a[d];
        *ib += idx * st->stride_b[d];
    }
}

static nm_status matmul_forward(const matmul_state *st, const float *a, const float *b, float *y)
{
    int64_t M = st->M, N = st->N, K = st->K;
    if (st->flat_a) return sgemm(0, 0, st->n_batch * M, N, K, 1.0f, a, K, b, N, 0.0f, y, N);
    for (int64_t i = 0; i < st->n_batch; i++) {
        int64_t ia, ib;
        matmul_batch_index(st, i, &ia, &ib);
        nm_status s = sgemm(0, 0, M, N, K, 1.0f, a + ia * M * K, K, b + ib * K * N, N, 0.0f, y + i * M * N, N);
        if (s) return s;
    }
    return NM_OK;
}

/* dA_i += dY_i B_i^T, dB_i += A_i^T dY_i; broadcast matrices collect every batch element's share. */
static nm_status matmul_backward(const matmul_state *st, const float *a, const float *b, const float *dy,
                                 float *da, float *db)
{
    int64_t M = st->M, N = st->N, K = st->K;
    nm_status s = NM_OK;
    if (st->flat_a) {
        int64_t R = st->n_batch * M;
        if (da) s = sgemm(0, 1, R, K, N, 1.0f, dy, N, b, N, 1.0f, da, K);
        if (!s && db) s = sgemm(1, 0, K, N, R, 1.0f, a, K, dy, N, 1.0f, db, N);
        return s;
    }
    for (int64_t i = 0; i < st->n_batch && !s; i++) {
        int64_t ia, ib;
        const float *g = dy + i * M * N;
        matmul_batch_index(st, i, &ia, &ib);
        if (da) s = sgemm(0, 1, M, K, N, 1.0f, g, N, b + ib * K * N, N, 1.0f, da + ia * M * K, K);
        if (!s && db) s = sgemm(1, 0, K, N, M, 1.0f, a + ia * M * K, K, g, N, 1.0f, db + ib * K * N, N);
    }
    return s;
}

static nm_status matmul_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 2 || !nm_in(g, n, 0) || !nm_in(g, n, 1) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: MatMul node '%s' needs 2 inputs and 1 output", g->source, n->name);
    n->state = calloc(1, sizeof(matmul_state));
    if (!n->state) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    return NM_OK;
}

/* Batch part (all but the last two dims) of a rank >= 2 shape; empty otherwise. */
static nm_shape batch_of(const nm_shape *s)
{
    nm_shape b = {.ndim = s->ndim > 2 ? s->ndim - 2 : 0};
    for (int i = 0; i < b.ndim; i++) b.dims[i] = s->dims[i];
    return b;
}

static nm_status matmul_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    matmul_state *st = n->state;
    nm_tensor *a = nm_in(g, n, 0), *b = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    const nm_shape *as = &a->shape, *bs = &b->shape;
    char sa[128], sb[128];
    if (a->dtype != NM_FLOAT || b->dtype != NM_FLOAT)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: MatMul node '%s': only float tensors are supported",
                       g->source, n->name);
    if (as->ndim < 1 || bs->ndim < 1)
        return nm_fail(err, NM_ERR_SHAPE, "%s: MatMul node '%s': operands must have rank >= 1", g->source, n->name);
    /* A 1-D A is a row [1,K], a 1-D B a column [K,1]; the unit dim is dropped from Y. */
    st->M = as->ndim == 1 ? 1 : as->dims[as->ndim - 2];
    st->K = as->dims[as->ndim - 1];
    st->N = bs->ndim == 1 ? 1 : bs->dims[bs->ndim - 1];
    int64_t kb = bs->ndim == 1 ? bs->dims[0] : bs->dims[bs->ndim - 2];
    nm_shape ba = batch_of(as), bb = batch_of(bs), batch;
    if (kb != st->K || !nm_broadcast_shape(&ba, &bb, &batch))
        return nm_fail(err, NM_ERR_SHAPE, "%s: MatMul node '%s': shapes %s and %s do not multiply", g->source,
                       n->name, nm_shape_str(as, sa, sizeof sa), nm_shape_str(bs, sb, sizeof sb));
    st->batch_ndim = batch.ndim;
    st->n_batch = nm_shape_numel(&batch);
    int64_t sta = 1, stb = 1;
    for (int d = batch.ndim - 1; d >= 0; d--) {
        int ia = d - (batch.ndim - ba.ndim), ib = d - (batch.ndim - bb.ndim);
        int64_t da = ia >= 0 ? ba.dims[ia] : 1, db = ib >= 0 ? bb.dims[ib] : 1;
        st->batch_dims[d] = batch.dims[d];
        st->stride_a[d] = da == 1 ? 0 : sta;
        st->stride_b[d] = db == 1 ? 0 : stb;
        sta *= da;
        stb *= db;
    }
    st->flat_a = stb == 1 && sta == st->n_batch;
    y->dtype = NM_FLOAT;
    y->shape = batch;
    if (as->ndim > 1) y->shape.dims[y->shape.ndim++] = st->M;
    if (bs->ndim > 1) y->shape.dims[y->shape.ndim++] = st->N;
    y->numel = nm_shape_numel(&y->shape);
    return NM_OK;
}

static nm_status matmul_node_forward(nm_graph *g, nm_node *n)
{
    return matmul_forward(n->state, nm_f32(nm_in(g, n, 0)), nm_f32(nm_in(g, n, 1)), nm_f32(nm_out(g, n, 0)));
}

static nm_status matmul_node_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *a = nm_in(g, n, 0), *b = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    if (!y->grad) return NM_OK;
    return matmul_backward(n->state, nm_f32(a), nm_f32(b), y->grad, a->requires_grad ? a->grad : NULL,
                           b->requires_grad ? b->grad : NULL);
}

static void state_destroy(nm_node *n)
{
    free(n->state);
    n->state = NULL;
}

const nm_op_impl nm_op_gemm = {gemm_init, gemm_reshape, gemm_node_forward, gemm_node_backward, state_destroy};
const nm_op_impl nm_op_matmul = {matmul_init, matmul_reshape, matmul_node_forward, matmul_node_backward,
                                 state_destroy};
