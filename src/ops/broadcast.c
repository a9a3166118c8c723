/* Multidirectional broadcasting plans and gradient reductions. */
#include "ops/broadcast.h"

#include <string.h>

#include "core/tensor.h"

#define NM_BCAST_CHUNK 8192

int nm_broadcast_shape(const nm_shape *a, const nm_shape *b, nm_shape *out)
{
    int r = a->ndim > b->ndim ? a->ndim : b->ndim;
    nm_shape s = {.ndim = r};
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->ndim), ib = i - (r - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da == db || db == 1) s.dims[i] = da;
        else if (da == 1) s.dims[i] = db;
        else return 0;
    }
    *out = s;
    return 1;
}

int nm_broadcasts_to(const nm_shape *x, const nm_shape *to)
{
    nm_shape s;
    return nm_broadcast_shape(x, to, &s) && nm_shape_equal(&s, to);
}

/* Strides of `x` aligned right to rank r, 0 where x has size 1. */
static void aligned_strides(const nm_shape *x, int r, int64_t *st)
{
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        int ix = i - (r - x->ndim);
        int64_t d = ix >= 0 ? x->dims[ix] : 1;
        st[i] = d == 1 ? 0 : s;
        s *= d;
    }
}

void nm_bcast_plan(nm_bcast *bc, const nm_shape *out, int nops, const nm_shape *const *ops)
{
    int64_t st[NM_BCAST_MAX_OPS][NM_MAX_DIMS];
    memset(bc, 0, sizeof *bc);
    bc->nops = nops;
    for (int k = 0; k < nops; k++) aligned_strides(ops[k], out->ndim, st[k]);
    bc->numel = nm_shape_numel(out);
    int nd = 0;
    for (int i = 0; i < out->ndim; i++) {
        int64_t d = out->dims[i];
        if (d == 1) continue;
        /* Merge into the previous dimension when every operand continues its walk. */
        int merge = nd > 0;
        for (int k = 0; merge && k < nops; k++)
            if (bc->stride[k][nd - 1] != st[k][i] * d) merge = 0;
        if (merge) {
            bc->dims[nd - 1] *= d;
            for (int k = 0; k < nops; k++) bc->stride[k][nd - 1] = st[k][i];
        } else {
            bc->dims[nd] = d;
            for (int k = 0; k < nops; k++) bc->stride[k][nd] = st[k][i];
            nd++;
        }
    }
    if (nd == 0 || bc->numel == 0) {
        nd = 1;
        bc->dims[0] = bc->numel;
        for (int k = 0; k < nops; k++) bc->stride[k][0] = 0;
    }
    bc->ndim = nd;
    int64_t row = bc->dims[nd - 1];
    bc->chunk = row < NM_BCAST_CHUNK ? row : NM_BCAST_CHUNK;
    bc->chunks_per_row = bc->chunk ? (row + bc->chunk - 1) / bc->chunk : 0;
    bc->n_chunks = row ? bc->numel / row * bc->chunks_per_row : 0;
}

int64_t nm_bcast_chunk(const nm_bcast *bc, int64_t c, int64_t *off, int64_t *len)
{
    int64_t r = c / bc->chunks_per_row, col = (c % bc->chunks_per_row) * bc->chunk;
    int last = bc->ndim - 1;
    int64_t row = bc->dims[last];
    *len = row - col < bc->chunk ? row - col : bc->chunk;
    for (int k = 0; k < bc->nops; k++) off[k] = col * bc->stride[k][last];
    for (int i = last - 1; i >= 0 && r > 0; i--) {
        int64_t idx = r % bc->dims[i];
        r /= bc->dims[i];
        for (int k = 0; k < bc->nops; k++) off[k] += idx * bc->stride[k][i];
    }
    return (c / bc->chunks_per_row) * row + col;
}

/* ------------------------------------------------------------- reductions */

static inline float term_value(nm_reduce_term term, float dy, float o)
{
    switch (term) {
    case NM_TERM_DY: return dy;
    case NM_TERM_DY_MUL: return dy * o;
    case NM_TERM_DY_DIV: return dy / o;
    case NM_TERM_DY_MUL_NEG: return o < 0.0f ? dy * o : 0.0f;
    }
    return 0.0f;
}

/* x has no broadcast dimension: an elementwise accumulation. */
static void reduce_elementwise(const nm_bcast *bc, nm_reduce_term term, const float *dy,
                               const float *other, const float *div_by, float scale, float *dx)
{
    int64_t so = nm_bcast_row_stride(bc, 1);
#pragma omp parallel for schedule(static) if (bc->numel >= NM_PARALLEL_MIN)
    for (int64_t c = 0; c < bc->n_chunks; c++) {
        int64_t off[NM_BCAST_MAX_OPS], len;
        nm_bcast_chunk(bc, c, off, &len);
        float *d = dx + off[0];
        const float *g = dy + off[2];
        const float *o = other + off[1];
        /* The common cases as plain loops that vectorise. */
        if (!div_by && term == NM_TERM_DY) {
#pragma omp simd
            for (int64_t k = 0; k < len; k++) d[k] += scale * g[k];
            continue;
        }
        if (!div_by && term == NM_TERM_DY_MUL && so == 1) {
#pragma omp simd
            for (int64_t k = 0; k < len; k++) d[k] += scale * g[k] * o[k];
            continue;
        }
        if (!div_by && term == NM_TERM_DY_MUL && so == 0) {
            float f = scale * o[0];
#pragma omp simd
            for (int64_t k = 0; k < len; k++) d[k] += f * g[k];
            continue;
        }
        for (int64_t k = 0; k < len; k++) {
            float v = scale * term_value(term, g[k], o[k * so]);
            d[k] += div_by ? v / div_by[off[0] + k] : v;
        }
    }
}

typedef struct reduce_split {
    int nk, nr;
    int64_t kd[NM_MAX_DIMS], ks[2][NM_MAX_DIMS];   /* kept dims: other, dy strides */
    int64_t rd[NM_MAX_DIMS], rs[2][NM_MAX_DIMS];   /* reduced dims */
    int64_t outer_r;                               /* product of reduced dims but the last */
} reduce_split;

static double reduce_one(const reduce_split *sp, nm_reduce_term term, const float *dy,
                         const float *other, int64_t j)
{
    int64_t oo = 0, og = 0;
    for (int i = sp->nk - 1; i >= 0; i--) {
        int64_t idx = j % sp->kd[i];
        j /= sp->kd[i];
        oo += idx * sp->ks[0][i];
        og += idx * sp->ks[1][i];
    }
    int last = sp->nr - 1;
    int64_t n = sp->rd[last], so = sp->rs[0][last], sg = sp->rs[1][last];
    double acc = 0.0;
    for (int64_t m = 0; m < sp->outer_r; m++) {
        int64_t ro = oo, rg = og, q = m;
        for (int i = last - 1; i >= 0; i--) {
            int64_t idx = q % sp->rd[i];
            q /= sp->rd[i];
            ro += idx * sp->rs[0][i];
            rg += idx * sp->rs[1][i];
        }
        float part = 0.0f;
        for (int64_t k = 0; k < n; k++) part += term_value(term, dy[rg + k * sg], other[ro + k * so]);
        acc += part;
    }
    return acc;
}

void nm_bcast_reduce(nm_reduce_term term, const float *dy, const nm_shape *out,
                     const float *other, const nm_shape *other_shape, const float *div_by,
                     float scale, const nm_shape *x, float *dx)
{
    if (!other) {
        other = dy;
        other_shape = out;
    }
    const nm_shape *ops[3] = {x, other_shape, out};
    nm_bcast bc;
    nm_bcast_plan(&bc, out, 3, ops);
    if (bc.numel == 0) return;
    reduce_split sp = {0};
    for (int i = 0; i < bc.ndim; i++) {
        int red = bc.stride[0][i] == 0 && bc.dims[i] > 1;
        int64_t *d = red ? &sp.rd[sp.nr] : &sp.kd[sp.nk];
        *d = bc.dims[i];
        if (red) {
            sp.rs[0][sp.nr] = bc.stride[1][i];
            sp.rs[1][sp.nr++] = bc.stride[2][i];
        } else {
            sp.ks[0][sp.nk] = bc.stride[1][i];
            sp.ks[1][sp.nk++] = bc.stride[2][i];
        }
    }
    if (sp.nr == 0) {
        reduce_elementwise(&bc, term, dy, other, div_by, scale, dx);
        return;
    }
    sp.outer_r = 1;
    for (int i = 0; i < sp.nr - 1; i++) sp.outer_r *= sp.rd[i];
    int64_t nx = nm_shape_numel(x);
#pragma omp parallel for schedule(static) if (bc.numel >= NM_PARALLEL_MIN && nx > 1)
    for (int64_t j = 0; j < nx; j++) {
        double s = reduce_one(&sp, term, dy, other, j) * scale;
        dx[j] += (float)(div_by ? s / div_by[j] : s);
    }
}
