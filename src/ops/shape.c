/* Operators that describe or relabel shapes without moving values:
 * Flatten, Reshape, Squeeze, Unsqueeze, Identity, Dropout (copies, float or
 * int64, gradients copied back) and Shape, Constant, ConstantOfShape (values
 * known at load, no gradient). Inputs that decide a shape must be constant
 * once the planner has folded the shape sub-graphs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

#define PAR_MIN 32768

/* Inputs [min_in, max_in] with the first `need_in` present; outputs likewise. */
static nm_status check_arity(nm_graph *g, const nm_node *n, int min_in, int max_in, int min_out,
                             int max_out, nm_error *err)
{
    if (n->n_in < min_in || n->n_in > max_in || n->n_out < min_out || n->n_out > max_out)
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "takes %d..%d inputs and %d..%d outputs, has %d and %d",
                         min_in, max_in, min_out, max_out, n->n_in, n->n_out);
    for (int i = 0; i < min_in; i++)
        if (!nm_in(g, n, i)) return nm_node_fail(g, n, err, NM_ERR_PARSE, "input %d is missing", i);
    for (int i = 0; i < min_out; i++)
        if (!nm_out(g, n, i)) return nm_node_fail(g, n, err, NM_ERR_PARSE, "output %d is missing", i);
    return NM_OK;
}

static nm_status check_value_dtype(nm_graph *g, const nm_node *n, const nm_tensor *t, nm_error *err)
{
    if (t->dtype != NM_FLOAT && t->dtype != NM_INT64)
        return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "tensor '%s' has element type %d (float or int64 expected)",
                         t->name, (int)t->dtype);
    return NM_OK;
}

/* Values of the constant int64 input `idx` that decides a shape. */
static nm_status const_ints(nm_graph *g, const nm_node *n, int idx, const char *what, int64_t *vals,
                            int cap, int *count, nm_error *err)
{
    const nm_tensor *t = nm_in(g, n, idx);
    if (!t->is_const)
        return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "%s input '%s' is not constant", what, t->name);
    if (t->dtype != NM_INT64)
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "%s input '%s' is not an integer tensor", what, t->name);
    if (t->numel > cap)
        return nm_node_fail(g, n, err, NM_ERR_LIMIT, "%s input '%s' has %lld values (at most %d)", what, t->name,
                         (long long)t->numel, cap);
    for (int64_t i = 0; i < t->numel; i++) vals[i] = nm_i64(t)[i];
    *count = (int)t->numel;
    return NM_OK;
}

/* Axes of Squeeze/Unsqueeze: attribute before opset 13, optional input from 13. */
static nm_status read_axes(nm_graph *g, const nm_node *n, int64_t *axes, int *count, nm_error *err)
{
    *count = -1;
    if (g->opset < 13) {
        int k = nm_attr_ints(n, "axes", axes, NM_MAX_DIMS);
        if (k > NM_MAX_DIMS) return nm_node_fail(g, n, err, NM_ERR_LIMIT, "%d axes (at most %d)", k, NM_MAX_DIMS);
        *count = k;
        return NM_OK;
    }
    if (!nm_in(g, n, 1)) return NM_OK;
    return const_ints(g, n, 1, "axes", axes, NM_MAX_DIMS, count, err);
}

static void set_output(nm_tensor *y, nm_dtype dtype, const nm_shape *shape)
{
    y->dtype = dtype;
    y->shape = *shape;
    y->numel = nm_shape_numel(shape);
}

/* ------------------------------------------------- copies: forward, backward */

static void copy_forward(const void *x, void *y, size_t bytes)
{
    if (bytes) memcpy(y, x, bytes);
}

static void copy_backward(const float *dy, float *dx, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
}

/* Every view op: output 0 holds input 0's values in the same order. */
static nm_status view_forward(nm_graph *g, nm_node *n)
{
    const nm_tensor *x = nm_in(g, n, 0);
    nm_tensor *y = nm_out(g, n, 0);
    copy_forward(x->data, y->data, (size_t)y->numel * nm_dtype_size(y->dtype));
    return NM_OK;
}

static nm_status view_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (x->requires_grad && y->grad) copy_backward(y->grad, x->grad, x->numel);
    return NM_OK;
}

static nm_status unary_init(nm_graph *g, nm_node *n, nm_error *err) { return check_arity(g, n, 1, 1, 1, 1, err); }

/* ------------------------------------------------------------------ Flatten */

static nm_status flatten_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0);
    int r = x->shape.ndim;
    int64_t axis = nm_attr_int(n, "axis", 1);
    nm_status s = check_value_dtype(g, n, x, err);
    if (s) return s;
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis out of range for rank %d", r);
    nm_shape out = {.ndim = 2, .dims = {1, 1}};
    for (int i = 0; i < r; i++) out.dims[i < axis ? 0 : 1] *= x->shape.dims[i];
    set_output(nm_out(g, n, 0), x->dtype, &out);
    return NM_OK;
}

/* ------------------------------------------------------------------ Reshape */

static nm_status reshape_init(nm_graph *g, nm_node *n, nm_error *err) { return check_arity(g, n, 2, 2, 1, 1, err); }

static nm_status reshape_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0);
    int64_t want[NM_MAX_DIMS];
    int k = 0, infer = -1;
    int allowzero = g->opset >= 14 && nm_attr_int(n, "allowzero", 0);
    char sx[128], sw[128];
    nm_status s = check_value_dtype(g, n, x, err);
    if (!s) s = const_ints(g, n, 1, "shape", want, NM_MAX_DIMS, &k, err);
    if (s) return s;
    nm_shape out = {.ndim = k};
    int64_t known = 1;
    for (int i = 0; i < k; i++) {
        int64_t v = want[i];
        if (v == 0 && !allowzero) {
            if (i >= x->shape.ndim)
                return nm_node_fail(g, n, err, NM_ERR_SHAPE, "0 at position %d copies a dimension %s lacks", i,
                                 nm_shape_str(&x->shape, sx, sizeof sx));
            v = x->shape.dims[i];
        }
        if (v == -1) {
            if (infer >= 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "more than one -1 in the shape");
            infer = i;
            continue;
        }
        if (v < 0 || !nm_mul_i64(known, v, &known))
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "invalid dimension %lld", (long long)v);
        out.dims[i] = v;
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "cannot infer the -1 dimension reshaping %s",
                             nm_shape_str(&x->shape, sx, sizeof sx));
        out.dims[infer] = x->numel / known;
    }
    if (nm_shape_numel(&out) != x->numel)
        return nm_node_fail(g, n, err, NM_ERR_SHAPE, "cannot reshape %s into %s",
                         nm_shape_str(&x->shape, sx, sizeof sx), nm_shape_str(&out, sw, sizeof sw));
    set_output(nm_out(g, n, 0), x->dtype, &out);
    return NM_OK;
}

/* ------------------------------------------------------- Squeeze, Unsqueeze */

static nm_status squeeze_init(nm_graph *g, nm_node *n, nm_error *err) { return check_arity(g, n, 1, 2, 1, 1, err); }

static nm_status squeeze_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0);
    int r = x->shape.ndim, k;
    int64_t axes[NM_MAX_DIMS];
    unsigned char drop[NM_MAX_DIMS] = {0};
    nm_status s = check_value_dtype(g, n, x, err);
    if (!s) s = read_axes(g, n, axes, &k, err);
    if (s) return s;
    if (k < 0) {
        for (int i = 0; i < r; i++) drop[i] = x->shape.dims[i] == 1;
    }
    for (int i = 0; i < k; i++) {
        int a = nm_axis(axes[i], r);
        if (a < 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)axes[i], r);
        if (x->shape.dims[a] != 1)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis %d has size %lld, not 1", a, (long long)x->shape.dims[a]);
        drop[a] = 1;
    }
    nm_shape out = {0};
    for (int i = 0; i < r; i++)
        if (!drop[i]) out.dims[out.ndim++] = x->shape.dims[i];
    set_output(nm_out(g, n, 0), x->dtype, &out);
    return NM_OK;
}

static nm_status unsqueeze_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0);
    int k;
    int64_t axes[NM_MAX_DIMS];
    unsigned char added[NM_MAX_DIMS] = {0};
    nm_status s = check_value_dtype(g, n, x, err);
    if (!s) s = read_axes(g, n, axes, &k, err);
    if (s) return s;
    if (k < 0) return nm_node_fail(g, n, err, NM_ERR_PARSE, "axes are missing");
    int r = x->shape.ndim + k;
    if (r > NM_MAX_DIMS) return nm_node_fail(g, n, err, NM_ERR_LIMIT, "output rank %d above %d", r, NM_MAX_DIMS);
    for (int i = 0; i < k; i++) {
        int a = nm_axis(axes[i], r);
        if (a < 0 || added[a])
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "axis %lld out of range or repeated", (long long)axes[i]);
        added[a] = 1;
    }
    nm_shape out = {.ndim = r};
    for (int i = 0, j = 0; i < r; i++) out.dims[i] = added[i] ? 1 : x->shape.dims[j++];
    set_output(nm_out(g, n, 0), x->dtype, &out);
    return NM_OK;
}

/* -------------------------------------------------------------------- Shape */

typedef struct shape_state {
    int start, end;
} shape_state;

static nm_status shape_init(nm_graph *g, nm_node *n, nm_error *err)
{
    nm_status s = check_arity(g, n, 1, 1, 1, 1, err);
    if (s) return s;
    n->state = calloc(1, sizeof(shape_state));
    return n->state ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
}

static int clamp_int(int64_t v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : (int)v; }

static nm_status shape_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    shape_state *st = n->state;
    int r = nm_in(g, n, 0)->shape.ndim;
    int64_t start = 0, end = r;
    if (g->opset >= 15) {   /* start/end slice the dimensions from opset 15 */
        start = nm_attr_int(n, "start", 0);
        end = nm_attr_int(n, "end", r);
    }
    if (start < 0) start += r;
    if (end < 0) end += r;
    st->start = clamp_int(start, 0, r);
    st->end = clamp_int(end, st->start, r);
    nm_shape out = {.ndim = 1, .dims = {st->end - st->start}};
    set_output(nm_out(g, n, 0), NM_INT64, &out);
    return NM_OK;
}

/* Only the input's shape is read, so this runs (folded) before any data exists. */
static nm_status shape_forward(nm_graph *g, nm_node *n)
{
    const shape_state *st = n->state;
    const nm_tensor *x = nm_in(g, n, 0);
    int64_t *y = nm_i64(nm_out(g, n, 0));
    for (int i = st->start; i < st->end; i++) y[i - st->start] = x->shape.dims[i];
    return NM_OK;
}

static void free_state(nm_node *n)
{
    free(n->state);
    n->state = NULL;
}

/* ----------------------------------------------------------------- Constant */

/* The value of a Constant: a tensor attribute or, from opset 12, a scalar or
 * list attribute (state holds a tensor built from it). */
typedef struct constant_state {
    nm_tensor value;        /* not owned when `borrowed` */
    int borrowed;
} constant_state;

static void constant_destroy(nm_node *n)
{
    constant_state *st = n->state;
    if (st && !st->borrowed) free(st->value.data);
    free_state(n);
}

static nm_status constant_from_list(constant_state *st, const nm_attr *a)
{
    int is_list = a->type == NM_ATTR_FLOATS || a->type == NM_ATTR_INTS;
    int is_int = a->type == NM_ATTR_INT || a->type == NM_ATTR_INTS;
    int count = is_list ? a->n : 1;
    st->value.dtype = is_int ? NM_INT64 : NM_FLOAT;
    st->value.shape.ndim = is_list ? 1 : 0;
    st->value.shape.dims[0] = count;
    st->value.numel = count;
    st->value.data = malloc((size_t)(count ? count : 1) * 8);
    if (!st->value.data) return NM_ERR_MEMORY;
    for (int i = 0; i < count; i++) {
        if (is_int) nm_i64(&st->value)[i] = is_list ? a->ints[i] : a->i;
        else nm_f32(&st->value)[i] = is_list ? a->floats[i] : a->f;
    }
    return NM_OK;
}

static nm_status constant_init(nm_graph *g, nm_node *n, nm_error *err)
{
    nm_status s = check_arity(g, n, 0, 0, 1, 1, err);
    if (s) return s;
    constant_state *st = calloc(1, sizeof *st);
    if (!st) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    n->state = st;
    const nm_attr *a = nm_attr_get(n, "value");
    if (a && a->type == NM_ATTR_TENSOR && a->t) {
        st->value = *a->t;
        st->borrowed = 1;
        return check_value_dtype(g, n, a->t, err);
    }
    static const char *const lists[] = {"value_float", "value_floats", "value_int", "value_ints"};
    for (int i = 0; i < 4; i++) {
        a = nm_attr_get(n, lists[i]);
        if (a && (a->type == NM_ATTR_FLOAT || a->type == NM_ATTR_FLOATS || a->type == NM_ATTR_INT ||
                  a->type == NM_ATTR_INTS)) {
            if (constant_from_list(st, a)) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
            return NM_OK;
        }
    }
    return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "no tensor, float or int value (sparse and string constants are not supported)");
}

static nm_status constant_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const constant_state *st = n->state;
    set_output(nm_out(g, n, 0), st->value.dtype, &st->value.shape);
    return NM_OK;
}

static nm_status constant_forward(nm_graph *g, nm_node *n)
{
    const constant_state *st = n->state;
    nm_tensor *y = nm_out(g, n, 0);
    copy_forward(st->value.data, y->data, (size_t)y->numel * nm_dtype_size(y->dtype));
    return NM_OK;
}

/* ---------------------------------------------------------- ConstantOfShape */

static nm_status constantofshape_init(nm_graph *g, nm_node *n, nm_error *err)
{
    nm_status s = check_arity(g, n, 1, 1, 1, 1, err);
    if (s) return s;
    const nm_attr *a = nm_attr_get(n, "value");
    if (!a) return NM_OK;
    if (a->type != NM_ATTR_TENSOR || !a->t || a->t->numel != 1)
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "value must be a one-element tensor");
    return check_value_dtype(g, n, a->t, err);
}

static nm_status constantofshape_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    int64_t dims[NM_MAX_DIMS];
    int k;
    const nm_attr *a = nm_attr_get(n, "value");
    nm_status s = const_ints(g, n, 0, "shape", dims, NM_MAX_DIMS, &k, err);
    if (s) return s;
    nm_shape out = {.ndim = k};
    for (int i = 0; i < k; i++) {
        if (dims[i] < 0) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "negative dimension %lld", (long long)dims[i]);
        out.dims[i] = dims[i];
    }
    set_output(nm_out(g, n, 0), a ? a->t->dtype : NM_FLOAT, &out);
    return NM_OK;
}

static nm_status constantofshape_forward(nm_graph *g, nm_node *n)
{
    const nm_attr *a = nm_attr_get(n, "value");
    nm_tensor *y = nm_out(g, n, 0);
    if (y->dtype == NM_INT64) {
        int64_t v = nm_i64(a->t)[0];
        for (int64_t i = 0; i < y->numel; i++) nm_i64(y)[i] = v;
    } else {
        float v = a ? nm_f32(a->t)[0] : 0.0f;
        for (int64_t i = 0; i < y->numel; i++) nm_f32(y)[i] = v;
    }
    return NM_OK;
}

/* ------------------------------------------------------------------ Dropout */

static nm_status dropout_init(nm_graph *g, nm_node *n, nm_error *err)
{
    nm_status s = check_arity(g, n, 1, 3, 1, 2, err);
    if (s) return s;
    if (nm_out(g, n, 1))
        return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "the mask output is not supported");
    return NM_OK;
}

/* Inference: the identity. training_mode (opset 12) must be off unless ratio is 0. */
static nm_status dropout_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0), *ratio = nm_in(g, n, 1), *train = nm_in(g, n, 2);
    nm_status s = check_value_dtype(g, n, x, err);
    if (s) return s;
    if (train) {
        if (!train->is_const || train->numel != 1)
            return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "training_mode must be a constant scalar");
        int training = train->dtype == NM_FLOAT ? nm_f32(train)[0] != 0 : nm_i64(train)[0] != 0;
        int zero_ratio = ratio && ratio->is_const && ratio->dtype == NM_FLOAT && ratio->numel == 1 &&
                         nm_f32(ratio)[0] == 0.0f;
        if (training && !zero_ratio)
            return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "training mode (random dropout) is not supported");
    }
    set_output(nm_out(g, n, 0), x->dtype, &x->shape);
    return NM_OK;
}

/* Identity: the output is the input. */
static nm_status identity_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    const nm_tensor *x = nm_in(g, n, 0);
    nm_status s = check_value_dtype(g, n, x, err);
    if (s) return s;
    set_output(nm_out(g, n, 0), x->dtype, &x->shape);
    return NM_OK;
}

const nm_op_impl nm_op_flatten = {unary_init, flatten_reshape, view_forward, view_backward, NULL};
const nm_op_impl nm_op_reshape = {reshape_init, reshape_reshape, view_forward, view_backward, NULL};
const nm_op_impl nm_op_squeeze = {squeeze_init, squeeze_reshape, view_forward, view_backward, NULL};
const nm_op_impl nm_op_unsqueeze = {squeeze_init, unsqueeze_reshape, view_forward, view_backward, NULL};
const nm_op_impl nm_op_identity = {unary_init, identity_reshape, view_forward, view_backward, NULL};
const nm_op_impl nm_op_dropout = {dropout_init, dropout_reshape, view_forward, view_backward, NULL};
const nm_op_impl nm_op_shape = {shape_init, shape_reshape, shape_forward, NULL, free_state};
const nm_op_impl nm_op_constant = {constant_init, constant_reshape, constant_forward, NULL, constant_destroy};
const nm_op_impl nm_op_constantofshape = {constantofshape_init, constantofshape_reshape, constantofshape_forward,
                                          NULL, NULL};
