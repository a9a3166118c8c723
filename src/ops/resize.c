/* Resize (opsets 10..17) and Upsample (7..9), float.
 *
 * Every supported mode is separable, so an N-D resize runs as one 1-D pass
 * per resized axis, last axis first (the order of the ONNX reference, which
 * matters for tf_crop_and_resize's extrapolation). A pass sees its input as
 * [outer, in_len, inner] and writes [outer, out_len, inner]; each output
 * line j reads `taps` input lines idx[j*taps + t] with weights w[j*taps + t]
 * (1 tap nearest, 2 linear, 4 cubic), all precomputed at reshape. Backward
 * is the transposed loop: each output line scatters its gradient onto its
 * taps, in parallel over [outer x inner blocks] only, where no two threads
 * touch the same input element. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

#define PAR_MIN 32768
#define INNER_BLOCK 64

typedef enum interp_mode { INTERP_NEAREST, INTERP_LINEAR, INTERP_CUBIC } interp_mode;
typedef enum coord_mode {
    COORD_HALF_PIXEL, COORD_PYTORCH_HALF_PIXEL, COORD_ALIGN_CORNERS, COORD_ASYMMETRIC,
    COORD_TF_HALF_PIXEL_FOR_NN, COORD_TF_CROP_AND_RESIZE,
} coord_mode;
typedef enum nearest_mode { NEAREST_PREFER_FLOOR, NEAREST_PREFER_CEIL, NEAREST_FLOOR, NEAREST_CEIL } nearest_mode;

typedef struct resize_params {
    interp_mode interp;
    coord_mode coord;
    nearest_mode nearest;
    double cubic_a;
    int exclude_outside;
    float extrapolation;
} resize_params;

typedef struct resize_pass {
    int64_t outer, in_len, out_len, inner;
    int taps;
    int64_t *idx;               /* out_len * taps input lines, clamped */
    float *w;                   /* out_len * taps weights */
    unsigned char *outside;     /* out_len flags (tf_crop_and_resize): the extrapolation value */
} resize_pass;

typedef struct resize_state {
    resize_params p;
    int n_pass;
    resize_pass pass[NM_MAX_DIMS];
    float *tmp[NM_MAX_DIMS];    /* output of pass i < n_pass - 1 */
    float *gtmp[NM_MAX_DIMS];   /* its gradient, allocated at the first backward */
    int64_t tmp_numel[NM_MAX_DIMS];
} resize_state;

/* ------------------------------------------------------------ tap tables */

/* Input coordinate of output coordinate x along an axis (ONNX
 * coordinate_transformation_mode). `out_w` is scale * in_len, a real number
 * as in the ONNX reference, not the rounded output length. */
static double original_coord(const resize_params *p, double x, double scale, int64_t in_len, int64_t out_len,
                             double roi0, double roi1)
{
    double out_w = scale * (double)in_len;
    switch (p->coord) {
    case COORD_HALF_PIXEL: return (x + 0.5) / scale - 0.5;
    case COORD_PYTORCH_HALF_PIXEL: return out_len > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case COORD_ALIGN_CORNERS: return out_w == 1.0 ? 0.0 : x * (double)(in_len - 1) / (out_w - 1.0);
    case COORD_ASYMMETRIC: return x / scale;
    case COORD_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / scale;
    case COORD_TF_CROP_AND_RESIZE:
        if (out_w == 1.0) return 0.5 * (roi0 + roi1) * (double)(in_len - 1);
        return roi0 * (double)(in_len - 1) + x * (roi1 - roi0) * (double)(in_len - 1) / (out_w - 1.0);
    }
    return 0.0;
}

static int64_t clamp_index(int64_t i, int64_t len) { return i < 0 ? 0 : i >= len ? len - 1 : i; }

static int64_t nearest_index(nearest_mode m, double x)
{
    double fl = floor(x), r = x - fl;
    if (r == 0.0) return (int64_t)fl;
    switch (m) {
    case NEAREST_PREFER_FLOOR: return (int64_t)fl + (r > 0.5);
    case NEAREST_PREFER_CEIL: return (int64_t)fl + (r >= 0.5);
    case NEAREST_FLOOR: return (int64_t)fl;
    case NEAREST_CEIL: return (int64_t)fl + 1;
    }
    return (int64_t)fl;
}

/* Keys cubic convolution weights of taps floor(x)-1 .. floor(x)+2, r = x - floor(x). */
static void cubic_weights(double a, double r, double *c)
{
    double s = r + 1, t = 1 - r, u = 2 - r;
    c[0] = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    c[1] = ((a + 2) * r - (a + 3)) * r * r + 1;
    c[2] = ((a + 2) * t - (a + 3)) * t * t + 1;
    c[3] = ((a * u - 5 * a) * u + 8 * a) * u - 4 * a;
}

/* Taps of output coordinate j: writes `taps` indices and weights. */
static void coord_taps(const resize_params *p, double x, int64_t in_len, int64_t *idx, float *w)
{
    double fl = floor(x), r = x - fl;
    int64_t i0 = (int64_t)fl;
    if (p->interp == INTERP_NEAREST) {
        idx[0] = clamp_index(nearest_index(p->nearest, x), in_len);
        w[0] = 1.0f;
    } else if (p->interp == INTERP_LINEAR) {
        idx[0] = clamp_index(i0, in_len);
        idx[1] = clamp_index(i0 + 1, in_len);
        w[0] = (float)(1.0 - r);
        w[1] = (float)r;
    } else {
        double c[4], sum = 0;
        cubic_weights(p->cubic_a, r, c);
        for (int t = 0; t < 4; t++) {
            int64_t i = i0 - 1 + t;
            if (p->exclude_outside && (i < 0 || i >= in_len)) c[t] = 0;
            sum += c[t];
        }
        for (int t = 0; t < 4; t++) {
            idx[t] = clamp_index(i0 - 1 + t, in_len);
            w[t] = (float)(p->exclude_outside && sum != 0 ? c[t] / sum : c[t]);
        }
    }
}

static void free_pass(resize_pass *ps)
{
    free(ps->idx);
    free(ps->w);
    free(ps->outside);
    memset(ps, 0, sizeof *ps);
}

/* 1 when the pass maps every line to itself with weight 1 (skippable). */
static int pass_is_identity(const resize_pass *ps)
{
    if (ps->in_len != ps->out_len || ps->outside) return 0;
    for (int64_t j = 0; j < ps->out_len; j++) {
        double self = 0;
        for (int t = 0; t < ps->taps; t++) {
            float w = ps->w[j * ps->taps + t];
            if (ps->idx[j * ps->taps + t] == j) self += w;
            else if (w != 0.0f) return 0;
        }
        if (self != 1.0) return 0;
    }
    return 1;
}

static int build_pass(const resize_params *p, resize_pass *ps, double scale, double roi0, double roi1)
{
    int taps = p->interp == INTERP_NEAREST ? 1 : p->interp == INTERP_LINEAR ? 2 : 4;
    ps->taps = taps;
    ps->idx = malloc(sizeof(int64_t) * (size_t)(ps->out_len * taps + 1));
    ps->w = malloc(sizeof(float) * (size_t)(ps->out_len * taps + 1));
    if (!ps->idx || !ps->w) return 0;
    for (int64_t j = 0; j < ps->out_len; j++) {
        double x = original_coord(p, (double)j, scale, ps->in_len, ps->out_len, roi0, roi1);
        coord_taps(p, x, ps->in_len, ps->idx + j * taps, ps->w + j * taps);
        if (p->coord == COORD_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(ps->in_len - 1))) {
            if (!ps->outside && !(ps->outside = calloc((size_t)ps->out_len, 1))) return 0;
            ps->outside[j] = 1;
        }
    }
    return 1;
}

/* ------------------------------------------------- one pass, both ways */

static void resize_axis_forward(const resize_pass *ps, const float *x, float *y, float fill)
{
    int64_t inner = ps->inner, taps = ps->taps;
#pragma omp parallel for collapse(2) schedule(static) if (ps->outer * ps->out_len * inner >= PAR_MIN)
    for (int64_t o = 0; o < ps->outer; o++)
        for (int64_t j = 0; j < ps->out_len; j++) {
            float *dst = y + (o * ps->out_len + j) * inner;
            if (ps->outside && ps->outside[j]) {
                for (int64_t k = 0; k < inner; k++) dst[k] = fill;
                continue;
            }
            const float *src = x + o * ps->in_len * inner;
            const int64_t *idx = ps->idx + j * taps;
            const float *w = ps->w + j * taps;
            const float *s0 = src + idx[0] * inner;
            for (int64_t k = 0; k < inner; k++) dst[k] = w[0] * s0[k];
            for (int t = 1; t < taps; t++) {
                const float *st = src + idx[t] * inner;
                float wt = w[t];
                for (int64_t k = 0; k < inner; k++) dst[k] += wt * st[k];
            }
        }
}

/* dx += transposed taps of dy. Output lines of one outer slab share input
 * lines, so threads split outer and blocks of inner, never j. */
static void resize_axis_backward(const resize_pass *ps, const float *dy, float *dx)
{
    int64_t inner = ps->inner, taps = ps->taps;
    int64_t n_blocks = (inner + INNER_BLOCK - 1) / INNER_BLOCK;
#pragma omp parallel for collapse(2) schedule(static) if (ps->outer * ps->out_len * inner >= PAR_MIN)
    for (int64_t o = 0; o < ps->outer; o++)
        for (int64_t b = 0; b < n_blocks; b++) {
            int64_t k0 = b * INNER_BLOCK, k1 = k0 + INNER_BLOCK < inner ? k0 + INNER_BLOCK : inner;
            float *dsrc = dx + o * ps->in_len * inner;
            for (int64_t j = 0; j < ps->out_len; j++) {
                if (ps->outside && ps->outside[j]) continue;
                const float *g = dy + (o * ps->out_len + j) * inner;
                for (int t = 0; t < taps; t++) {
                    float *d = dsrc + ps->idx[j * taps + t] * inner;
                    float wt = ps->w[j * taps + t];
                    for (int64_t k = k0; k < k1; k++) d[k] += wt * g[k];
                }
            }
        }
}

/* ------------------------------------------------------------ the operator */

static void resize_clear(resize_state *st)
{
    for (int i = 0; i < NM_MAX_DIMS; i++) {
        free_pass(&st->pass[i]);
        free(st->tmp[i]);
        free(st->gtmp[i]);
        st->tmp[i] = st->gtmp[i] = NULL;
        st->tmp_numel[i] = 0;
    }
    st->n_pass = 0;
}

static void resize_destroy(nm_node *n)
{
    if (n->state) resize_clear(n->state);
    free(n->state);
    n->state = NULL;
}

static nm_status parse_params(nm_graph *g, nm_node *n, resize_params *p, nm_error *err)
{
    int legacy = n->op == NM_OP_UPSAMPLE || g->opset < 11;
    const char *mode = nm_attr_string(n, "mode", "nearest");
    if (!strcmp(mode, "nearest")) p->interp = INTERP_NEAREST;
    else if (!strcmp(mode, "linear") || (legacy && !strcmp(mode, "bilinear"))) p->interp = INTERP_LINEAR;
    else if (!strcmp(mode, "cubic") && !legacy) p->interp = INTERP_CUBIC;
    else return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
    if (legacy) {   /* Upsample and Resize-10: x / scale, nearest rounds down */
        p->coord = COORD_ASYMMETRIC;
        p->nearest = NEAREST_FLOOR;
        return NM_OK;
    }
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *coord = nm_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    const char *nearest = nm_attr_string(n, "nearest_mode", "round_prefer_floor");
    int c = -1, k = -1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(coord, coords[i])) c = i;
    for (int i = 0; i < 4; i++)
        if (!strcmp(nearest, nearests[i])) k = i;
    if (c < 0) return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s' is not supported", coord);
    if (k < 0) return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "nearest_mode '%s' is not supported", nearest);
    p->coord = (coord_mode)c;
    p->nearest = (nearest_mode)k;
    p->cubic_a = nm_attr_float(n, "cubic_coeff_a", -0.75f);
    p->exclude_outside = (int)nm_attr_int(n, "exclude_outside", 0);
    p->extrapolation = nm_attr_float(n, "extrapolation_value", 0.0f);
    return NM_OK;
}

static nm_status resize_init(nm_graph *g, nm_node *n, nm_error *err)
{
    /* Upsample: X (+ scales from 9). Resize-10: X, scales. 11, 12: X, roi,
     * scales (maybe empty) [, sizes]. From 13 only X is required. */
    int min_in, max_in;
    if (n->op == NM_OP_UPSAMPLE) min_in = max_in = g->opset >= 9 ? 2 : 1;
    else if (g->opset < 11) min_in = max_in = 2;
    else min_in = g->opset >= 13 ? 1 : 3, max_in = 4;
    if (n->n_in < min_in || n->n_in > max_in || !nm_in(g, n, 0) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "needs %d..%d inputs and 1 output", min_in, max_in);
    resize_state *st = calloc(1, sizeof *st);
    if (!st) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    n->state = st;
    return parse_params(g, n, &st->p, err);
}

/* A constant input that is present and not empty; NULL otherwise. */
static const nm_tensor *given_input(nm_graph *g, const nm_node *n, int i)
{
    const nm_tensor *t = nm_in(g, n, i);
    return t && t->numel > 0 ? t : NULL;
}

static nm_status require_const(nm_graph *g, const nm_node *n, const nm_tensor *t, nm_dtype dtype, int64_t count,
                               const char *what, nm_error *err)
{
    if (!t->is_const) return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "%s input '%s' is not constant", what, t->name);
    if (t->dtype != dtype || t->numel != count)
        return nm_node_fail(g, n, err, NM_ERR_SHAPE, "%s input '%s' needs %lld %s values", what, t->name,
                         (long long)count, dtype == NM_FLOAT ? "float" : "integer");
    return NM_OK;
}

/* Per-axis scale and output length from the scales or sizes given;
 * roi (2r values) only for tf_crop_and_resize. */
static nm_status resize_geometry(nm_graph *g, nm_node *n, const resize_params *p, const nm_shape *in,
                                 double *scale, nm_shape *out, double *roi, nm_error *err)
{
    int r = in->ndim, opset11 = n->op == NM_OP_RESIZE && g->opset >= 11;
    const nm_tensor *scales = given_input(g, n, opset11 ? 2 : 1);
    const nm_tensor *sizes = opset11 ? given_input(g, n, 3) : NULL;
    float attr_scales[NM_MAX_DIMS];
    const float *sv = NULL;
    nm_status s;
    for (int d = 0; d < r; d++) roi[d] = 0.0, roi[r + d] = 1.0;
    if (p->coord == COORD_TF_CROP_AND_RESIZE) {
        const nm_tensor *t = given_input(g, n, 1);
        if (!t) return nm_node_fail(g, n, err, NM_ERR_PARSE, "tf_crop_and_resize needs the roi input");
        if ((s = require_const(g, n, t, NM_FLOAT, 2 * r, "roi", err))) return s;
        for (int i = 0; i < 2 * r; i++) roi[i] = nm_f32(t)[i];
    }
    if (n->op == NM_OP_UPSAMPLE && g->opset < 9) {
        const nm_attr *a = nm_attr_get(n, "scales");
        if (!a || a->type != NM_ATTR_FLOATS || a->n != r)
            return nm_node_fail(g, n, err, NM_ERR_PARSE, "the scales attribute needs %d values", r);
        for (int d = 0; d < r; d++) attr_scales[d] = a->floats[d];
        sv = attr_scales;
    } else if (scales && sizes) {
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "both scales and sizes are given");
    } else if (scales) {
        if ((s = require_const(g, n, scales, NM_FLOAT, r, "scales", err))) return s;
        sv = nm_f32(scales);
    } else if (sizes) {
        if ((s = require_const(g, n, sizes, NM_INT64, r, "sizes", err))) return s;
    } else {
        return nm_node_fail(g, n, err, NM_ERR_PARSE, "neither scales nor sizes is given");
    }
    out->ndim = r;
    int64_t max = nm_graph_max_elements(g);
    for (int d = 0; d < r; d++) {
        if (sv) {
            if (!(sv[d] > 0)) return nm_node_fail(g, n, err, NM_ERR_SHAPE, "scale %g is not positive", (double)sv[d]);
            scale[d] = sv[d];
            /* Checked as a double: converting a NaN or a value past int64 is undefined. */
            double len = floor((double)in->dims[d] * (roi[r + d] - roi[d]) * scale[d]);
            if (!(len >= 0))
                return nm_node_fail(g, n, err, NM_ERR_SHAPE, "scale %g gives axis %d a length of %g", (double)sv[d], d, len);
            if (len > (double)max)
                return nm_node_fail(g, n, err, NM_ERR_LIMIT, "scale %g makes axis %d %g long (limit %lld)",
                                    (double)sv[d], d, len, (long long)max);
            out->dims[d] = (int64_t)len;
        } else {
            out->dims[d] = nm_i64(sizes)[d];
            if (out->dims[d] < 0)
                return nm_node_fail(g, n, err, NM_ERR_SHAPE, "cannot resize axis %d to %lld", d, (long long)out->dims[d]);
            if (out->dims[d] > max)
                return nm_node_fail(g, n, err, NM_ERR_LIMIT, "cannot resize axis %d to %lld (limit %lld)", d,
                                    (long long)out->dims[d], (long long)max);
            scale[d] = in->dims[d] ? (double)out->dims[d] / (double)in->dims[d] : 1.0;
        }
        if (out->dims[d] > 0 && in->dims[d] == 0)
            return nm_node_fail(g, n, err, NM_ERR_SHAPE, "cannot resize an empty axis %d", d);
    }
    return NM_OK;
}

static nm_status resize_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    resize_state *st = n->state;
    const nm_tensor *x = nm_in(g, n, 0);
    double scale[NM_MAX_DIMS], roi[2 * NM_MAX_DIMS];
    nm_shape out;
    if (x->dtype != NM_FLOAT) return nm_node_fail(g, n, err, NM_ERR_UNSUPPORTED, "only float tensors are supported");
    resize_clear(st);
    nm_status s = resize_geometry(g, n, &st->p, &x->shape, scale, &out, roi, err);
    if (s) return s;
    /* The passes below allocate per output element: check the size first. */
    int64_t max = nm_graph_max_elements(g), out_numel = nm_shape_numel(&out);
    if (out_numel < 0 || out_numel > max) {
        char so[160];
        return nm_node_fail(g, n, err, NM_ERR_LIMIT, "output %s would be above the limit of %lld elements",
                            nm_shape_str(&out, so, sizeof so), (long long)max);
    }
    nm_shape cur = x->shape;
    int r = cur.ndim;
    for (int d = r - 1; d >= 0; d--) {
        resize_pass *ps = &st->pass[st->n_pass];
        ps->outer = 1;
        for (int i = 0; i < d; i++) ps->outer *= cur.dims[i];
        ps->inner = 1;
        for (int i = d + 1; i < r; i++) ps->inner *= cur.dims[i];
        ps->in_len = cur.dims[d];
        ps->out_len = out.dims[d];
        if (!build_pass(&st->p, ps, scale[d], roi[d], roi[r + d]))
            return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
        cur.dims[d] = out.dims[d];
        if (pass_is_identity(ps)) free_pass(ps);
        else st->n_pass++;
    }
    if (nm_shape_numel(&out) == 0) resize_clear(st);   /* nothing to compute */
    for (int i = 0; i + 1 < st->n_pass; i++) {
        const resize_pass *ps = &st->pass[i];
        st->tmp_numel[i] = ps->outer * ps->out_len * ps->inner;
        if (st->tmp_numel[i] > max)
            return nm_node_fail(g, n, err, NM_ERR_LIMIT, "an intermediate of %lld elements would be above the limit of %lld",
                                (long long)st->tmp_numel[i], (long long)max);
        st->tmp[i] = malloc(sizeof(float) * (size_t)st->tmp_numel[i]);
        if (!st->tmp[i]) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    }
    nm_tensor *y = nm_out(g, n, 0);
    y->dtype = NM_FLOAT;
    y->shape = out;
    y->numel = nm_shape_numel(&out);
    return NM_OK;
}

static nm_status resize_forward(nm_graph *g, nm_node *n)
{
    const resize_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    const float *src = nm_f32(x);
    if (st->n_pass == 0) {
        if (y->numel == x->numel && y->numel) memcpy(y->data, x->data, sizeof(float) * (size_t)y->numel);
        return NM_OK;
    }
    for (int i = 0; i < st->n_pass; i++) {
        float *dst = i == st->n_pass - 1 ? nm_f32(y) : st->tmp[i];
        resize_axis_forward(&st->pass[i], src, dst, st->p.extrapolation);
        src = dst;
    }
    return NM_OK;
}

static nm_status resize_backward(nm_graph *g, nm_node *n)
{
    resize_state *st = n->state;
    nm_tensor *x = nm_in(g, n, 0), *y = nm_out(g, n, 0);
    if (!x->requires_grad || !y->grad) return NM_OK;
    if (st->n_pass == 0) {
        if (y->numel == x->numel)
            for (int64_t i = 0; i < x->numel; i++) x->grad[i] += y->grad[i];
        return NM_OK;
    }
    const float *g_out = y->grad;
    for (int i = st->n_pass - 1; i >= 0; i--) {
        float *g_in = x->grad;
        if (i > 0) {
            if (!st->gtmp[i - 1] && !(st->gtmp[i - 1] = malloc(sizeof(float) * (size_t)st->tmp_numel[i - 1])))
                return NM_ERR_MEMORY;
            g_in = st->gtmp[i - 1];
            memset(g_in, 0, sizeof(float) * (size_t)st->tmp_numel[i - 1]);
        }
        resize_axis_backward(&st->pass[i], g_out, g_in);
        g_out = g_in;
    }
    return NM_OK;
}

const nm_op_impl nm_op_resize = {resize_init, resize_reshape, resize_forward, resize_backward, resize_destroy};
const nm_op_impl nm_op_upsample = {resize_init, resize_reshape, resize_forward, resize_backward, resize_destroy};
