/* Operators that move values between positions: Transpose, Concat, Split,
 * Gather, Pad. Forward works on float and int64 (shape sub-graphs); backward
 * sends float gradients back along the same index maps. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

#define PAR_MIN 32768

static nm_status check_value_dtype(nm_graph *g, const nm_node *n, const nm_tensor *t, nm_error *err)
{
    if (t->dtype != NM_FLOAT && t->dtype != NM_INT64)
        return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "tensor '%s' has element type %d (float or int64 expected)",
                         t->name, (int)t->dtype);
    return NM_OK;
}

static void set_output(nm_tensor *y, nm_dtype dtype, const nm_shape *shape)
{
    y->dtype = dtype;
    y->shape = *shape;
    y->numel = nm_shape_numel(shape);
}

/* Product of dims[from, to). */
static int64_t dims_product(const nm_shape *s, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= s->dims[i];
    return p;
}

static void free_state(nm_node *n)
{
    free(n->state);
    n->state = NULL;
}

static nm_status alloc_state(nm_graph *g, nm_node *n, size_t size, nm_error *err)
{
    n->state = calloc(1, size);
    return n->state ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
}

/* ---------------------------------------------------------------- Transpose */

/* The output is walked row by row (last output axis); `src_stride[i]` is the
 * input stride of output axis i. */
typedef struct transpose_state {
    int rank;
    int64_t out_dims[NM_MAX_DIMS];
    int64_t src_stride[NM_MAX_DIMS];
} transpose_state;

static nm_status transpose_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 1 || !nm_in(g, n, 0) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "needs 1 input and 1 output");
    return alloc_state(g, n, sizeof(transpose_state), err);
}

static nm_status transpose_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    transpose_state *st = n->state;
    const nm_tensor *x = nm_in(g, n, 0);
    int r = x->shape.ndim;
    int64_t perm[NM_MAX_DIMS], in_stride[NM_MAX_DIMS];
    unsigned char seen[NM_MAX_DIMS] = {0};
    nm_status s = check_value_dtype(g, n, x, err);
    if (s) return s;
    int k = nm_attr_ints(n, "perm", perm, NM_MAX_DIMS);
    if (k < 0) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    } else if (k != r) {
        return nm_node_fail(g, n, err, NM_ERR_SHAPE, "perm has %d entries for rank %d", k, r);
    }
    for (int i = 0; i < r; i++) in_stride[i] = dims_product(&x->shape, i + 1, r);
    nm_shape out = {.ndim = r};
    for (int i = 0; i < r; i++) {
        int p = nm_axis(perm[i], r);
        if (p < 0 || seen[p]) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "perm is not a permutation");
        seen[p] = 1;
        out.dims[i] = x->shape.dims[p];
        st->src_stride[i] = in_stride[p];
    }
    st->rank = r;
    memcpy(st->out_dims, out.dims, sizeof out.dims);
    set_output(nm_out(g, n, 0), x->dtype, &out);
    return NM_OK;
}

/* Input offset of the start of output row `row` (all axes but the last). */
static int64_t transpose_row_base(const transpose_state *st, int64_t row)
{
    int64_t base = 0;
    for (int i = st->rank - 2; i >= 0; i--) {
        base += (row % st->out_dims[i]) * st->src_stride[i];
        row /= st->out_dims[i];
    }
    return base;
}

#define TRANSPOSE_ROWS(T, x, y)                                                              \
    do {                                                                                     \
        _Pragma("omp parallel for schedule(static) if (rows * len >= PAR_MIN)")              \
        for (int64_t row = 0; row < rows; row++) {                                           \
            const T *src = (const T *)(x) + transpose_row_base(st, row);                      \
            T *dst = (T *)(y) + row * len;                                                    \
            for (int64_t j = 0; j < len; j++) dst[j] = src[j * step];                        \
        }                                                                                    \
    } while (0)

static void transpose_forward(const transpose_state *st, const void *x, void *y, size_t esize)
{
    int r = st->rank;
    int64_t len = r ? st->out_dims[r - 1] : 1, step = r ? st->src_stride[r - 1] : 1;
    int64_t rows = 1;
    for (int i = 0; i + 1 < r; i++) rows *= st->out_dims[i];
    if (esize == 8) TRANSPOSE_ROWS(int64_t, x, y);
    else TRANSPOSE_ROWS(float, x, y);
}

/* A permutation: every input element receives exactly one output gradient. */
static void transpose_backward(const transpose_state *st, const float *dy, float *dx)
{
    int r = st->rank;
    int64_t len = r ? st->out_dims[r - 1] : 1, step = r ? st->src_stride[r - 1] : 1;
    int64_t rows = 1;
    for (int i = 0; i + 1 < r; i++) rows *= st->out_dims[i];
#pragma omp parallel for schedule(static) if (rows * len >= PAR_MIN)
    for (int64_t row = 0; row < rows; row++) {
        float *d = dx + transpose_row_base(st, row);
        const float *g = dy + row * len;
        for (int64_t j = 0; j < len; j++) d[j * step] += g[j];
    }
}

static nm_status transpose_op_forward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    transpose_forward(n->state, x->data, y->data, nm_dtype_size(x->dtype));
    return NM_OK;
}

static nm_status transpose_op_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (x->requires_grad && y->grad) transpose_backward(n->state, y->grad, x->grad);
    return NM_OK;
}

/* ----------------------------------------------------------- Concat, Split */

/* Both see the joined tensor as [outer, sum of parts' dims along axis * inner]
 * and part p as [outer, chunk[p]]. */
typedef struct join_state {
    int64_t outer;
    int64_t total;          /* row length of the joined tensor */
    int n_parts;
    int64_t chunk[];        /* row length of each part */
} join_state;

static nm_status concat_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in < 1 || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "needs at least 1 input and 1 output");
    for (int i = 0; i < n->n_in; i++)
        if (!nm_in(g, n, i)) return nm_node_fail(g, n, err, NM_ERR_PARSE, "input %d is missing", i);
    if (!nm_attr_get(n, "axis")) return nm_node_fail(g, n, err, NM_ERR_PARSE, "the axis attribute is missing");
    return alloc_state(g, n, sizeof(join_state) + sizeof(int64_t) * (size_t)n->n_in, err);
}

static nm_status concat_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    join_state *st = n->state;
    const nm_tensor *x0 = nm_in(g, n, 0);
    int r = x0->shape.ndim;
    int axis = nm_axis(nm_attr_int(n, "axis", 0), r);
    char s0[128], si[128];
    nm_status s = check_value_dtype(g, n, x0, err);
    if (s) return s;
    if (axis < 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis out of range for rank %d", r);
    nm_shape out = x0->shape;
    out.dims[axis] = 0;
    int64_t inner = dims_product(&x0->shape, axis + 1, r);
    for (int i = 0; i < n->n_in; i++) {
        const nm_tensor *x = nm_in(g, n, i);
        int same = x->dtype == x0->dtype && x->shape.ndim == r;
        for (int d = 0; same && d < r; d++) same = d == axis || x->shape.dims[d] == x0->shape.dims[d];
        if (!same)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "input '%s' %s does not match '%s' %s along axes other than %d",
                             x->name, nm_shape_str(&x->shape, si, sizeof si), x0->name,
                             nm_shape_str(&x0->shape, s0, sizeof s0), axis);
        out.dims[axis] += x->shape.dims[axis];
        st->chunk[i] = x->shape.dims[axis] * inner;
    }
    st->n_parts = n->n_in;
    st->outer = dims_product(&x0->shape, 0, axis);
    st->total = out.dims[axis] * inner;
    set_output(nm_out(g, n, 0), x0->dtype, &out);
    return NM_OK;
}

/* parts[p] is [outer, chunk[p]]; joined is [outer, total]. NULL parts are skipped. */
static void concat_forward(const join_state *st, const void *const *parts, void *joined, size_t esize)
{
    for (int64_t o = 0; o < st->outer; o++) {
        char *dst = (char *)joined + (size_t)(o * st->total) * esize;
        for (int p = 0; p < st->n_parts; p++) {
            size_t bytes = (size_t)st->chunk[p] * esize;
            if (parts[p] && bytes) memcpy(dst, (const char *)parts[p] + (size_t)o * bytes, bytes);
            dst += bytes;
        }
    }
}

/* dparts[p] += the slice of djoined; NULL dparts are skipped. */
static void concat_backward(const join_state *st, const float *djoined, float *const *dparts)
{
#pragma omp parallel for schedule(static) if (st->outer * st->total >= PAR_MIN)
    for (int64_t o = 0; o < st->outer; o++) {
        const float *src = djoined + o * st->total;
        for (int p = 0; p < st->n_parts; p++) {
            if (dparts[p]) {
                float *dst = dparts[p] + o * st->chunk[p];
                for (int64_t j = 0; j < st->chunk[p]; j++) dst[j] += src[j];
            }
            src += st->chunk[p];
        }
    }
}

/* The Split forward is the transposed copy: parts[p] = slice of joined. */
static void split_forward(const join_state *st, const void *joined, void *const *parts, size_t esize)
{
    for (int64_t o = 0; o < st->outer; o++) {
        const char *src = (const char *)joined + (size_t)(o * st->total) * esize;
        for (int p = 0; p < st->n_parts; p++) {
            size_t bytes = (size_t)st->chunk[p] * esize;
            if (parts[p] && bytes) memcpy((char *)parts[p] + (size_t)o * bytes, src, bytes);
            src += bytes;
        }
    }
}

/* djoined += the parts' gradients placed side by side (NULL: no gradient). */
static void split_backward(const join_state *st, const float *const *dparts, float *djoined)
{
#pragma omp parallel for schedule(static) if (st->outer * st->total >= PAR_MIN)
    for (int64_t o = 0; o < st->outer; o++) {
        float *dst = djoined + o * st->total;
        for (int p = 0; p < st->n_parts; p++) {
            if (dparts[p]) {
                const float *src = dparts[p] + o * st->chunk[p];
                for (int64_t j = 0; j < st->chunk[p]; j++) dst[j] += src[j];
            }
            dst += st->chunk[p];
        }
    }
}

static nm_status concat_op_forward(nm_graph *g, nm_node *n)
{
    const join_state *st = n->state;
    const void *parts[st->n_parts];
    for (int p = 0; p < st->n_parts; p++) parts[p] = nm_in(g, n, p)->data;
    nm_tensor *y = nm_out(g, n, 0);
    concat_forward(st, parts, y->data, nm_dtype_size(y->dtype));
    return NM_OK;
}

static nm_status concat_op_backward(nm_graph *g, nm_node *n)
{
    const join_state *st = n->state;
    float *dparts[st->n_parts];
    nm_tensor *y = nm_out(g, n, 0);
    if (!y->grad) return NM_OK;
    for (int p = 0; p < st->n_parts; p++) {
        nm_tensor *x = nm_in(g, n, p);
        dparts[p] = x->requires_grad ? x->grad : NULL;
    }
    concat_backward(st, y->grad, dparts);
    return NM_OK;
}

static nm_status split_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in < 1 || n->n_in > 2 || !nm_in(g, n, 0) || n->n_out < 1)
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "needs 1 or 2 inputs and at least 1 output");
    return alloc_state(g, n, sizeof(join_state) + sizeof(int64_t) * (size_t)n->n_out, err);
}

/* Part sizes: the `split` attribute before opset 13, optional input from 13;
 * equal parts when absent. */
static nm_status split_sizes(nm_graph *g, nm_node *n, int64_t dim, int64_t *sizes, nm_error *err)
{
    int k = -1;
    const nm_tensor *t = nm_in(g, n, 1);
    if (g->opset < 13) {
        int64_t tmp[1];
        k = nm_attr_ints(n, "split", tmp, 0);
        if (k >= 0) {
            if (k != n->n_out) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "split has %d entries for %d outputs", k, n->n_out);
            nm_attr_ints(n, "split", sizes, n->n_out);
        }
    } else if (t) {
        if (!t->is_const)
            return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "split input '%s' is not constant", t->name);
        if (t->dtype != NM_INT64 || t->numel != n->n_out)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "split input '%s' needs %d integers", t->name, n->n_out);
        k = n->n_out;
        for (int i = 0; i < k; i++) sizes[i] = nm_i64(t)[i];
    }
    if (k < 0) {
        if (dim % n->n_out)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "dimension %lld does not split into %d equal parts",
                             (long long)dim, n->n_out);
        for (int i = 0; i < n->n_out; i++) sizes[i] = dim / n->n_out;
        return NM_OK;
    }
    int64_t sum = 0;
    for (int i = 0; i < k; i++) {
        if (sizes[i] < 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "negative split size");
        if (sizes[i] > dim)   /* also keeps the sum from overflowing */
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "split size %lld is larger than the axis (%lld)",
                                (long long)sizes[i], (long long)dim);
        sum += sizes[i];
    }
    if (sum != dim)
        return nm_node_fail(g, n, err, NM_ERR_SHAPE, "split sizes add up to %lld, the axis has %lld", (long long)sum,
                         (long long)dim);
    return NM_OK;
}

static nm_status split_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    join_state *st = n->state;
    const nm_tensor *x = nm_in(g, n, 0);
    int r = x->shape.ndim;
    int axis = nm_axis(nm_attr_int(n, "axis", 0), r);
    nm_status s = check_value_dtype(g, n, x, err);
    if (s) return s;
    if (axis < 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis out of range for rank %d", r);
    int64_t inner = dims_product(&x->shape, axis + 1, r);
    s = split_sizes(g, n, x->shape.dims[axis], st->chunk, err);
    if (s) return s;
    for (int p = 0; p < n->n_out; p++) {
        nm_shape out = x->shape;
        out.dims[axis] = st->chunk[p];
        if (nm_out(g, n, p)) set_output(nm_out(g, n, p), x->dtype, &out);
        st->chunk[p] *= inner;
    }
    st->n_parts = n->n_out;
    st->outer = dims_product(&x->shape, 0, axis);
    st->total = x->shape.dims[axis] * inner;
    return NM_OK;
}

static nm_status split_op_forward(nm_graph *g, nm_node *n)
{
    const join_state *st = n->state;
    void *parts[st->n_parts];
    for (int p = 0; p < st->n_parts; p++) parts[p] = nm_out(g, n, p) ? nm_out(g, n, p)->data : NULL;
    nm_tensor *x = nm_in(g, n, 0);
    split_forward(st, x->data, parts, nm_dtype_size(x->dtype));
    return NM_OK;
}

static nm_status split_op_backward(nm_graph *g, nm_node *n)
{
    const join_state *st = n->state;
    const float *dparts[st->n_parts];
    nm_tensor *x = nm_in(g, n, 0);
    if (!x->requires_grad) return NM_OK;
    for (int p = 0; p < st->n_parts; p++) dparts[p] = nm_out(g, n, p) ? nm_out(g, n, p)->grad : NULL;
    split_backward(st, dparts, x->grad);
    return NM_OK;
}

/* ------------------------------------------------------------------- Gather */

/* data as [outer, dim, inner], output as [outer, n_idx, inner]. */
typedef struct gather_state {
    int64_t outer, dim, inner, n_idx;
} gather_state;

static nm_status gather_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 2 || !nm_in(g, n, 0) || !nm_in(g, n, 1) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "needs 2 inputs and 1 output");
    return alloc_state(g, n, sizeof(gather_state), err);
}

static nm_status gather_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    gather_state *st = n->state;
    const nm_tensor *x = nm_in(g, n, 0), *idx = nm_in(g, n, 1);
    int r = x->shape.ndim, q = idx->shape.ndim;
    int axis = nm_axis(nm_attr_int(n, "axis", 0), r);
    nm_status s = check_value_dtype(g, n, x, err);
    if (s) return s;
    if (idx->dtype != NM_INT64) return nm_node_fail(g, n, err, NM_ERR_PARSE, "indices are not integers");
    if (axis < 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis out of range for rank %d", r);
    if (r - 1 + q > NM_MAX_DIMS) return nm_node_fail(g, n, err, NM_ERR_LIMIT, "output rank above %d", NM_MAX_DIMS);
    st->outer = dims_product(&x->shape, 0, axis);
    st->dim = x->shape.dims[axis];
    st->inner = dims_product(&x->shape, axis + 1, r);
    st->n_idx = idx->numel;
    if (idx->is_const) {
        for (int64_t i = 0; i < idx->numel; i++) {
            int64_t v = nm_i64(idx)[i];
            if (v < -st->dim || v >= st->dim)
                return nm_node_fail(g, n, err, NM_ERR_SHAPE, "index %lld out of range for a dimension of %lld",
                                 (long long)v, (long long)st->dim);
        }
    }
    nm_shape out = {.ndim = r - 1 + q};
    int k = 0;
    for (int i = 0; i < axis; i++) out.dims[k++] = x->shape.dims[i];
    for (int i = 0; i < q; i++) out.dims[k++] = idx->shape.dims[i];
    for (int i = axis + 1; i < r; i++) out.dims[k++] = x->shape.dims[i];
    set_output(nm_out(g, n, 0), x->dtype, &out);
    return NM_OK;
}

static int gather_indices_ok(const gather_state *st, const int64_t *idx)
{
    for (int64_t j = 0; j < st->n_idx; j++)
        if (idx[j] < -st->dim || idx[j] >= st->dim) return 0;
    return 1;
}

static void gather_forward(const gather_state *st, const void *x, const int64_t *idx, void *y, size_t esize)
{
    size_t row = (size_t)st->inner * esize;
    for (int64_t o = 0; o < st->outer; o++)
        for (int64_t j = 0; j < st->n_idx; j++) {
            int64_t i = idx[j] < 0 ? idx[j] + st->dim : idx[j];
            if (row)
                memcpy((char *)y + (size_t)(o * st->n_idx + j) * row, (const char *)x + (size_t)(o * st->dim + i) * row,
                       row);
        }
}

/* Scatter-add; repeated indices accumulate, so only `outer` runs in parallel. */
static void gather_backward(const gather_state *st, const int64_t *idx, const float *dy, float *dx)
{
#pragma omp parallel for schedule(static) if (st->outer * st->n_idx * st->inner >= PAR_MIN)
    for (int64_t o = 0; o < st->outer; o++)
        for (int64_t j = 0; j < st->n_idx; j++) {
            int64_t i = idx[j] < 0 ? idx[j] + st->dim : idx[j];
            float *d = dx + (o * st->dim + i) * st->inner;
            const float *g = dy + (o * st->n_idx + j) * st->inner;
            for (int64_t k = 0; k < st->inner; k++) d[k] += g[k];
        }
}

static nm_status gather_op_forward(nm_graph *g, nm_node *n)
{
    const gather_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *idx = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    if (!gather_indices_ok(st, nm_i64(idx))) return NM_ERR_SHAPE;
    gather_forward(st, x->data, nm_i64(idx), y->data, nm_dtype_size(x->dtype));
    return NM_OK;
}

static nm_status gather_op_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0), *idx = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    if (x->requires_grad && y->grad) gather_backward(n->state, nm_i64(idx), y->grad, x->grad);
    return NM_OK;
}

/* ---------------------------------------------------------------------- Pad */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE } pad_mode;

/* For every output coordinate of every axis, the input coordinate it reads
 * (-1: the constant). Output rows (last axis) are walked one at a time. */
typedef struct pad_state {
    pad_mode mode;
    int rank;
    int n_flat;                         /* leading axes without padding */
    int64_t out_dims[NM_MAX_DIMS];
    int64_t in_stride[NM_MAX_DIMS];
    int64_t *map[NM_MAX_DIMS];          /* into `maps` */
    int64_t *maps;
    float value_f32;                    /* constant before opset 11 */
} pad_state;

static void pad_destroy(nm_node *n)
{
    pad_state *st = n->state;
    if (st) free(st->maps);
    free_state(n);
}

static nm_status pad_init(nm_graph *g, nm_node *n, nm_error *err)
{
    int max_in = g->opset >= 11 ? 3 : 1;
    if (n->n_in < 1 || n->n_in > max_in || !nm_in(g, n, 0) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "needs 1..%d inputs and 1 output", max_in);
    if (g->opset >= 11 && !nm_in(g, n, 1)) return nm_node_fail(g, n, err, NM_ERR_PARSE, "the pads input is missing");
    nm_status s = alloc_state(g, n, sizeof(pad_state), err);
    if (s) return s;
    pad_state *st = n->state;
    const char *mode = nm_attr_string(n, "mode", "constant");
    if (!strcmp(mode, "constant")) st->mode = PAD_CONSTANT;
    else if (!strcmp(mode, "reflect")) st->mode = PAD_REFLECT;
    else if (!strcmp(mode, "edge")) st->mode = PAD_EDGE;
    else return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
    st->value_f32 = nm_attr_float(n, "value", 0.0f);
    return NM_OK;
}

/* Input coordinate read by padded coordinate i (already shifted by the
 * leading pad) along an axis of length len; -1 for the constant. */
static int64_t pad_source(pad_mode mode, int64_t i, int64_t len)
{
    if (i >= 0 && i < len) return i;
    if (mode == PAD_CONSTANT) return -1;
    if (mode == PAD_EDGE) return i < 0 ? 0 : len - 1;
    if (len == 1) return 0;
    int64_t period = 2 * (len - 1);   /* reflect without repeating the edge */
    i %= period;
    if (i < 0) i += period;
    return i < len ? i : period - i;
}

/* pads: [begin_0..begin_{r-1}, end_0..end_{r-1}]. */
static nm_status pad_read_pads(nm_graph *g, nm_node *n, int r, int64_t *pads, nm_error *err)
{
    if (g->opset < 11) {
        int k = nm_attr_ints(n, "pads", pads, 2 * NM_MAX_DIMS);
        if (k != 2 * r) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "pads has %d entries for rank %d", k, r);
        return NM_OK;
    }
    const nm_tensor *t = nm_in(g, n, 1);
    if (!t->is_const) return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "pads input '%s' is not constant", t->name);
    if (t->dtype != NM_INT64 || t->numel != 2 * r)
        return nm_node_fail(g, n, err, NM_ERR_SHAPE, "pads input '%s' needs %d integers", t->name, 2 * r);
    for (int i = 0; i < 2 * r; i++) pads[i] = nm_i64(t)[i];
    return NM_OK;
}

static nm_status pad_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    pad_state *st = n->state;
    const nm_tensor *x = nm_in(g, n, 0), *cv = nm_in(g, n, 2);
    int r = x->shape.ndim;
    int64_t pads[2 * NM_MAX_DIMS];
    nm_status s = check_value_dtype(g, n, x, err);
    if (!s) s = pad_read_pads(g, n, r, pads, err);
    if (s) return s;
    if (cv && (cv->dtype != x->dtype || cv->numel > 1))
        return nm_node_fail(g, n, err, NM_ERR_SHAPE, "constant_value must be a scalar of the data's type");
    nm_shape out = {.ndim = r};
    int64_t total = 0, max = nm_graph_max_elements(g);
    for (int d = 0; d < r; d++) {
        /* Bounded first, so that neither the sum nor o - pads[d] below can overflow. */
        if (pads[d] > max || pads[r + d] > max)
            return nm_node_fail(g, n, err, NM_ERR_LIMIT, "pads %lld and %lld of axis %d are above the limit of %lld",
                                (long long)pads[d], (long long)pads[r + d], d, (long long)max);
        if (pads[d] < -x->shape.dims[d] || pads[r + d] < -x->shape.dims[d] ||
            (out.dims[d] = x->shape.dims[d] + pads[d] + pads[r + d]) < 0)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis %d would have negative size", d);
        if (st->mode != PAD_CONSTANT && x->shape.dims[d] == 0 && out.dims[d] > 0)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "cannot %s-pad an empty axis", st->mode == PAD_EDGE ? "edge" : "reflect");
        total += out.dims[d];
    }
    int64_t numel = nm_shape_numel(&out);
    if (numel < 0 || numel > max || total > max) {
        char so[160];
        return nm_node_fail(g, n, err, NM_ERR_LIMIT, "output %s would be above the limit of %lld elements",
                            nm_shape_str(&out, so, sizeof so), (long long)max);
    }
    free(st->maps);
    st->maps = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    if (!st->maps) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    int64_t *m = st->maps;
    st->n_flat = r;
    for (int d = 0; d < r; d++) {
        st->map[d] = m;
        for (int64_t o = 0; o < out.dims[d]; o++) m[o] = pad_source(st->mode, o - pads[d], x->shape.dims[d]);
        m += out.dims[d];
        st->in_stride[d] = dims_product(&x->shape, d + 1, r);
        if ((pads[d] || pads[r + d]) && st->n_flat == r) st->n_flat = d;
    }
    st->rank = r;
    memcpy(st->out_dims, out.dims, sizeof out.dims);
    set_output(nm_out(g, n, 0), x->dtype, &out);
    return NM_OK;
}

/* Input offset of output row `row`, or -1 when the row lies in the constant border. */
static int64_t pad_row_base(const pad_state *st, int64_t row)
{
    int64_t base = 0;
    for (int d = st->rank - 2; d >= 0; d--) {
        int64_t src = st->map[d][row % st->out_dims[d]];
        if (src < 0) return -1;
        base += src * st->in_stride[d];
        row /= st->out_dims[d];
    }
    return base;
}

#define PAD_ROWS(T, cval)                                                                  \
    do {                                                                                   \
        const T *xs = x;                                                                   \
        T *ys = y, c = (cval);                                                             \
        _Pragma("omp parallel for schedule(static) if (rows * len >= PAR_MIN)")            \
        for (int64_t row = 0; row < rows; row++) {                                         \
            int64_t base = pad_row_base(st, row);                                          \
            T *dst = ys + row * len;                                                       \
            for (int64_t j = 0; j < len; j++)                                              \
                dst[j] = (base < 0 || last[j] < 0) ? c : xs[base + last[j]];               \
        }                                                                                  \
    } while (0)

static void pad_forward(const pad_state *st, const void *x, void *y, nm_dtype dtype, float cf, int64_t ci)
{
    int r = st->rank;
    if (r == 0) {
        memcpy(y, x, nm_dtype_size(dtype));
        return;
    }
    int64_t len = st->out_dims[r - 1], rows = 1;
    const int64_t *last = st->map[r - 1];
    for (int d = 0; d + 1 < r; d++) rows *= st->out_dims[d];
    if (dtype == NM_INT64) PAD_ROWS(int64_t, ci);
    else PAD_ROWS(float, cf);
}

/* Every output element not in the constant border adds its gradient to the
 * input element it copied; reflect/edge rows can share a source, so only the
 * leading unpadded axes (slabs of whole rows) run in parallel. */
static void pad_backward(const pad_state *st, const float *dy, float *dx)
{
    int r = st->rank;
    if (r == 0) {
        dx[0] += dy[0];
        return;
    }
    int64_t len = st->out_dims[r - 1], rows = 1, slabs = 1;
    const int64_t *last = st->map[r - 1];
    for (int d = 0; d + 1 < r; d++) rows *= st->out_dims[d];
    for (int d = 0; d < st->n_flat && d + 1 < r; d++) slabs *= st->out_dims[d];
    int64_t rows_per_slab = rows / (slabs ? slabs : 1);
#pragma omp parallel for schedule(static) if (rows * len >= PAR_MIN)
    for (int64_t sl = 0; sl < slabs; sl++)
        for (int64_t row = sl * rows_per_slab; row < (sl + 1) * rows_per_slab; row++) {
            int64_t base = pad_row_base(st, row);
            if (base < 0) continue;
            const float *g = dy + row * len;
            for (int64_t j = 0; j < len; j++)
                if (last[j] >= 0) dx[base + last[j]] += g[j];
        }
}

static nm_status pad_op_forward(nm_graph *g, nm_node *n)
{
    const pad_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *cv = nm_in(g, n, 2), *y = nm_out(g, n, 0);
    float cf = st->value_f32;
    int64_t ci = (int64_t)cf;
    if (cv && cv->numel == 1) {
        if (cv->dtype == NM_INT64) ci = nm_i64(cv)[0];
        else cf = nm_f32(cv)[0];
    } else if (cv || g->opset >= 11) {
        cf = 0.0f;
    }
    pad_forward(st, x->data, y->data, x->dtype, cf, ci);
    return NM_OK;
}

static nm_status pad_op_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (x->requires_grad && y->grad) pad_backward(n->state, y->grad, x->grad);
    return NM_OK;
}

const nm_op_impl nm_op_transpose = {transpose_init, transpose_reshape, transpose_op_forward, transpose_op_backward,
                                    free_state};
const nm_op_impl nm_op_concat = {concat_init, concat_reshape, concat_op_forward, concat_op_backward, free_state};
const nm_op_impl nm_op_split = {split_init, split_reshape, split_op_forward, split_op_backward, free_state};
const nm_op_impl nm_op_gather = {gather_init, gather_reshape, gather_op_forward, gather_op_backward, free_state};
const nm_op_impl nm_op_pad = {pad_init, pad_reshape, pad_op_forward, pad_op_backward, pad_destroy};
