/* Shape, layout, reduction and resize operators: forward on hand-worked
 * cases (including an int64 shape sub-graph folded at load) and central
 * finite differences of every backward on random shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ------------------------------------------------------------ builders */

static uint64_t rng = 0x1234567ull;

static int rand_int(int lo, int hi)   /* inclusive */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (int)((rng >> 33) % (uint64_t)(hi - lo + 1));
}

static nm_graph *graph_new(int opset)
{
    nm_graph *g = nm_graph_new("test");
    g->opset = opset;
    return g;
}

static nm_shape make_shape(int ndim, const int64_t *dims)
{
    nm_shape s = {.ndim = ndim};
    for (int i = 0; i < ndim; i++) s.dims[i] = dims[i];
    return s;
}

static int input(nm_graph *g, const char *name, nm_dtype dtype, int ndim, const int64_t *dims)
{
    int t = nm_graph_tensor(g, name);
    g->t[t].dtype = dtype;
    g->t[t].shape = make_shape(ndim, dims);
    g->t[t].numel = nm_shape_numel(&g->t[t].shape);
    nm_graph_add_input(g, t);
    return t;
}

static int const_i64(nm_graph *g, const char *name, int ndim, int n, const int64_t *v)
{
    int t = nm_graph_tensor(g, name);
    int64_t *d = malloc(sizeof *d * (size_t)(n ? n : 1));
    memcpy(d, v, sizeof *d * (size_t)n);
    int64_t dims[1] = {n};
    nm_shape s = make_shape(ndim, dims);
    nm_tensor_set_const(&g->t[t], NM_INT64, &s, d);
    return t;
}

static int const_f32(nm_graph *g, const char *name, int n, const float *v)
{
    int t = nm_graph_tensor(g, name);
    float *d = malloc(sizeof *d * (size_t)(n ? n : 1));
    memcpy(d, v, sizeof *d * (size_t)n);
    int64_t dims[1] = {n};
    nm_shape s = make_shape(1, dims);
    nm_tensor_set_const(&g->t[t], NM_FLOAT, &s, d);
    return t;
}

/* A node whose outputs are fresh tensors out0, out1, ...; returns its index. */
static int node(nm_graph *g, const char *op, int n_in, const int *in, int n_out, const char *out_prefix)
{
    int out[16];
    char name[64];
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "%s%d", out_prefix, i);
        out[i] = nm_graph_tensor(g, name);
    }
    return nm_graph_add_node(g, op, op, n_in, in, n_out, out);
}

static void attr_int(nm_graph *g, int nd, const char *name, int64_t v)
{
    nm_node_add_attr(&g->nodes[nd], name, NM_ATTR_INT)->i = v;
}

static void attr_float(nm_graph *g, int nd, const char *name, float v)
{
    nm_node_add_attr(&g->nodes[nd], name, NM_ATTR_FLOAT)->f = v;
}

static void attr_ints(nm_graph *g, int nd, const char *name, int n, const int64_t *v)
{
    nm_attr *a = nm_node_add_attr(&g->nodes[nd], name, NM_ATTR_INTS);
    a->n = n;
    a->ints = malloc(sizeof *a->ints * (size_t)(n ? n : 1));
    memcpy(a->ints, v, sizeof *a->ints * (size_t)n);
}

static void attr_floats(nm_graph *g, int nd, const char *name, int n, const float *v)
{
    nm_attr *a = nm_node_add_attr(&g->nodes[nd], name, NM_ATTR_FLOATS);
    a->n = n;
    a->floats = malloc(sizeof *a->floats * (size_t)(n ? n : 1));
    memcpy(a->floats, v, sizeof *a->floats * (size_t)n);
}

static void attr_string(nm_graph *g, int nd, const char *name, const char *v)
{
    nm_node_add_attr(&g->nodes[nd], name, NM_ATTR_STRING)->s = strdup(v);
}

static void output(nm_graph *g, int nd, int k) { nm_graph_add_output(g, g->nodes[nd].out[k]); }

static nm_tensor *out_tensor(nm_graph *g, int k) { return &g->t[g->outputs[k]]; }

/* Prepare for gradients, run forward once; 0 on failure (reported). */
static int prepare(nm_graph *g, const char *what)
{
    nm_error err = {0};
    nm_status s = nm_test_prepare(g, &err);
    if (!nm_check(s == NM_OK, "%s: prepare: %s", what, err.msg)) return 0;
    s = nm_graph_forward(g, &err);
    return nm_check(s == NM_OK, "%s: forward: %s", what, err.msg);
}

static void set_input_f32(nm_graph *g, int k, const float *v)
{
    nm_tensor *t = &g->t[g->inputs[k]];
    memcpy(t->data, v, sizeof(float) * (size_t)t->numel);
}

static int shape_is(const nm_tensor *t, int ndim, const int64_t *dims)
{
    nm_shape s = make_shape(ndim, dims);
    return nm_shape_equal(&t->shape, &s);
}

static void check_f32(nm_graph *g, const char *what, int ndim, const int64_t *dims, const float *want)
{
    nm_error err;
    nm_tensor *y = out_tensor(g, 0);
    char buf[128];
    if (!nm_check(nm_graph_forward(g, &err) == NM_OK, "%s: forward", what)) return;
    if (!nm_check(shape_is(y, ndim, dims), "%s: shape %s", what, nm_shape_str(&y->shape, buf, sizeof buf))) return;
    double worst = 0;
    for (int64_t i = 0; i < y->numel; i++) worst = fmax(worst, fabs(nm_f32(y)[i] - want[i]));
    nm_check(worst < 1e-5, "%s: values off by %g", what, worst);
}

static void gradcheck(nm_graph *g, const char *what)
{
    nm_test_fill_inputs(g, -1.f, 1.f, (uint64_t)rand_int(1, 1 << 30));
    double e = nm_test_gradcheck(g, 1e-2f, 64, (uint64_t)rand_int(1, 1 << 30));
    nm_check(e < 2e-3, "%s: gradient relative error %g", what, e);
}

/* ---------------------------------------------------- hand-worked forward */

static void test_transpose_forward(void)
{
    nm_graph *g = graph_new(13);
    int x = input(g, "x", NM_FLOAT, 2, (int64_t[]){2, 3});
    int nd = node(g, "Transpose", 1, &x, 1, "y");
    output(g, nd, 0);
    if (prepare(g, "transpose")) {
        set_input_f32(g, 0, (float[]){1, 2, 3, 4, 5, 6});
        check_f32(g, "transpose default perm", 2, (int64_t[]){3, 2}, (float[]){1, 4, 2, 5, 3, 6});
    }
    nm_graph_free(g);
}

static void test_pad_forward(const char *mode, int opset, const int64_t *pads, int n_out, const float *want)
{
    char what[64];
    snprintf(what, sizeof what, "pad %s opset %d", mode, opset);
    nm_graph *g = graph_new(opset);
    int in[3] = {input(g, "x", NM_FLOAT, 1, (int64_t[]){4}), -1, -1};
    int n_in = 1;
    if (opset >= 11) {
        in[1] = const_i64(g, "pads", 1, 2, pads);
        in[2] = const_f32(g, "value", 1, (float[]){9});
        n_in = 3;
    }
    int nd = node(g, "Pad", n_in, in, 1, "y");
    attr_string(g, nd, "mode", mode);
    if (opset < 11) {
        attr_ints(g, nd, "pads", 2, pads);
        attr_float(g, nd, "value", 9);
    }
    output(g, nd, 0);
    if (prepare(g, what)) {
        set_input_f32(g, 0, (float[]){1, 2, 3, 4});
        check_f32(g, what, 1, (int64_t[]){n_out}, want);
    }
    nm_graph_free(g);
}

static void test_pads(void)
{
    test_pad_forward("reflect", 13, (int64_t[]){2, 1}, 7, (float[]){3, 2, 1, 2, 3, 4, 3});
    test_pad_forward("edge", 13, (int64_t[]){2, 1}, 7, (float[]){1, 1, 1, 2, 3, 4, 4});
    test_pad_forward("constant", 13, (int64_t[]){1, -1}, 4, (float[]){9, 1, 2, 3});
    test_pad_forward("constant", 7, (int64_t[]){-2, 2}, 4, (float[]){3, 4, 9, 9});
    test_pad_forward("reflect", 7, (int64_t[]){0, 5}, 9, (float[]){1, 2, 3, 4, 3, 2, 1, 2, 3});
}

static void test_gather_reduce_forward(void)
{
    nm_graph *g = graph_new(13);
    int in[2] = {input(g, "x", NM_FLOAT, 2, (int64_t[]){3, 2}), const_i64(g, "i", 1, 3, (int64_t[]){-1, 0, -1})};
    int nd = node(g, "Gather", 2, in, 1, "y");
    output(g, nd, 0);
    if (prepare(g, "gather")) {
        set_input_f32(g, 0, (float[]){1, 2, 3, 4, 5, 6});
        check_f32(g, "gather negative indices", 2, (int64_t[]){3, 2}, (float[]){5, 6, 1, 2, 5, 6});
    }
    nm_graph_free(g);

    g = graph_new(13);
    int x = input(g, "x", NM_FLOAT, 3, (int64_t[]){2, 3, 2});
    nd = node(g, "ReduceMean", 1, &x, 1, "y");
    attr_ints(g, nd, "axes", 2, (int64_t[]){0, -1});
    attr_int(g, nd, "keepdims", 0);
    output(g, nd, 0);
    if (prepare(g, "reducemean")) {
        set_input_f32(g, 0, (float[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
        check_f32(g, "reducemean axes 0,-1", 1, (int64_t[]){3}, (float[]){4.5f, 6.5f, 8.5f});
    }
    nm_graph_free(g);
}

static void test_split_concat_forward(int opset)
{
    char what[64];
    snprintf(what, sizeof what, "split+concat opset %d", opset);
    nm_graph *g = graph_new(opset);
    int in[2] = {input(g, "x", NM_FLOAT, 2, (int64_t[]){2, 5}), -1};
    int n_in = 1;
    if (opset >= 13) in[1] = const_i64(g, "split", 1, 2, (int64_t[]){2, 3}), n_in = 2;
    int sp = node(g, "Split", n_in, in, 2, "s");
    attr_int(g, sp, "axis", -1);
    if (opset < 13) attr_ints(g, sp, "split", 2, (int64_t[]){2, 3});
    int parts[2] = {g->nodes[sp].out[1], g->nodes[sp].out[0]};
    int cc = node(g, "Concat", 2, parts, 1, "c");
    attr_int(g, cc, "axis", 1);
    output(g, cc, 0);
    if (prepare(g, what)) {
        set_input_f32(g, 0, (float[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        check_f32(g, what, 2, (int64_t[]){2, 5}, (float[]){2, 3, 4, 0, 1, 7, 8, 9, 5, 6});
    }
    nm_graph_free(g);
}

static void test_resize_forward(void)
{
    /* linear, half_pixel, x2: source coordinates -0.25, 0.25, 0.75, 1.25 */
    nm_graph *g = graph_new(13);
    int in[4] = {input(g, "x", NM_FLOAT, 4, (int64_t[]){1, 1, 1, 2}), -1,
                 const_f32(g, "scales", 4, (float[]){1, 1, 1, 2}), -1};
    int nd = node(g, "Resize", 4, in, 1, "y");
    attr_string(g, nd, "mode", "linear");
    output(g, nd, 0);
    if (prepare(g, "resize linear")) {
        set_input_f32(g, 0, (float[]){1, 2});
        check_f32(g, "resize linear half_pixel", 4, (int64_t[]){1, 1, 1, 4}, (float[]){1, 1.25f, 1.75f, 2});
    }
    nm_graph_free(g);

    /* Upsample-7 nearest, the example of the ONNX spec */
    g = graph_new(7);
    int x = input(g, "x", NM_FLOAT, 4, (int64_t[]){1, 1, 2, 2});
    nd = node(g, "Upsample", 1, &x, 1, "y");
    attr_floats(g, nd, "scales", 4, (float[]){1, 1, 2, 3});
    output(g, nd, 0);
    if (prepare(g, "upsample")) {
        set_input_f32(g, 0, (float[]){1, 2, 3, 4});
        check_f32(g, "upsample-7 nearest", 4, (int64_t[]){1, 1, 4, 6},
                  (float[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
    }
    nm_graph_free(g);
}

/* Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as PyTorch exports
 * x.view(x.size(0), -1): folded at load, leaving only the Reshape. */
static void test_shape_subgraph(int opset)
{
    char what[64];
    snprintf(what, sizeof what, "shape sub-graph opset %d", opset);
    nm_graph *g = graph_new(opset);
    int x = input(g, "x", NM_FLOAT, 3, (int64_t[]){2, 3, 4});
    int sh = node(g, "Shape", 1, &x, 1, "shape");
    int gin[2] = {g->nodes[sh].out[0], const_i64(g, "zero", 0, 1, (int64_t[]){0})};
    int ga = node(g, "Gather", 2, gin, 1, "n");
    int uin[2] = {g->nodes[ga].out[0], opset >= 13 ? const_i64(g, "axes", 1, 1, (int64_t[]){0}) : -1};
    int un = node(g, "Unsqueeze", opset >= 13 ? 2 : 1, uin, 1, "n1");
    if (opset < 13) attr_ints(g, un, "axes", 1, (int64_t[]){0});
    int cin[2] = {g->nodes[un].out[0], const_i64(g, "minus1", 1, 1, (int64_t[]){-1})};
    int cc = node(g, "Concat", 2, cin, 1, "target");
    attr_int(g, cc, "axis", 0);
    int rin[2] = {x, g->nodes[cc].out[0]};
    int rs = node(g, "Reshape", 2, rin, 1, "y");
    output(g, rs, 0);
    if (prepare(g, what)) {
        nm_tensor *target = &g->t[nm_graph_find_tensor(g, "target0")];
        nm_check(target->is_const && target->dtype == NM_INT64 && target->numel == 2 && nm_i64(target)[0] == 2 &&
                     nm_i64(target)[1] == -1,
                 "%s: folded target shape", what);
        nm_check(g->n_nodes == 1, "%s: %d nodes left after folding", what, g->n_nodes);
        float v[24];
        for (int i = 0; i < 24; i++) v[i] = (float)i;
        set_input_f32(g, 0, v);
        check_f32(g, what, 2, (int64_t[]){2, 12}, v);
        gradcheck(g, what);
    }
    nm_graph_free(g);
}

static void test_views_forward(void)
{
    /* Flatten axis -1, then Squeeze (opset 11 attribute) / Unsqueeze -> [1,6,4,1] */
    nm_graph *g = graph_new(11);
    int x = input(g, "x", NM_FLOAT, 4, (int64_t[]){2, 3, 1, 4});
    int sq = node(g, "Squeeze", 1, &x, 1, "sq");
    int fl = node(g, "Flatten", 1, &g->nodes[sq].out[0], 1, "fl");
    attr_int(g, fl, "axis", -1);
    int un = node(g, "Unsqueeze", 1, &g->nodes[fl].out[0], 1, "un");
    attr_ints(g, un, "axes", 2, (int64_t[]){-1, 0});
    int id = node(g, "Identity", 1, &g->nodes[un].out[0], 1, "id");
    output(g, id, 0);
    if (prepare(g, "views")) {
        float v[24];
        for (int i = 0; i < 24; i++) v[i] = (float)i;
        set_input_f32(g, 0, v);
        check_f32(g, "squeeze/flatten/unsqueeze", 4, (int64_t[]){1, 6, 4, 1}, v);
        gradcheck(g, "views");
    }
    nm_graph_free(g);
}

static void test_constants(void)
{
    /* Constant value_ints -> ConstantOfShape(value int64 7) -> Shape, all folded */
    nm_graph *g = graph_new(13);
    int x = input(g, "x", NM_FLOAT, 1, (int64_t[]){2});
    int c = node(g, "Constant", 0, NULL, 1, "dims");
    attr_ints(g, c, "value_ints", 2, (int64_t[]){2, 3});
    int cs = node(g, "ConstantOfShape", 1, &g->nodes[c].out[0], 1, "filled");
    nm_attr *a = nm_node_add_attr(&g->nodes[cs], "value", NM_ATTR_TENSOR);
    a->t = calloc(1, sizeof *a->t);
    a->t->dtype = NM_INT64;
    a->t->shape = make_shape(1, (int64_t[]){1});
    a->t->numel = 1;
    a->t->data = malloc(8);
    nm_i64(a->t)[0] = 7;
    int id = node(g, "Identity", 1, &x, 1, "y");
    output(g, id, 0);
    if (prepare(g, "constants")) {
        nm_tensor *f = &g->t[nm_graph_find_tensor(g, "filled0")];
        int ok = f->is_const && f->dtype == NM_INT64 && shape_is(f, 2, (int64_t[]){2, 3});
        for (int i = 0; ok && i < 6; i++) ok = nm_i64(f)[i] == 7;
        nm_check(ok, "Constant value_ints -> ConstantOfShape int64 folded");
    }
    nm_graph_free(g);
}

static void test_unsupported(void)
{
    nm_graph *g = graph_new(13);
    int in[2] = {input(g, "x", NM_FLOAT, 2, (int64_t[]){2, 3}), input(g, "s", NM_INT64, 1, (int64_t[]){2})};
    int nd = node(g, "Reshape", 2, in, 1, "y");
    output(g, nd, 0);
    nm_error err = {0};
    nm_status s = nm_test_prepare(g, &err);
    nm_check(s == NM_ERR_UNSUPPORTED && strstr(err.msg, "Reshape") && strstr(err.msg, "not constant"),
             "live Reshape shape refused: %s", err.msg);
    nm_graph_free(g);
}

/* ------------------------------------------------ gradients, random shapes */

static int random_shape(int min_rank, int max_rank, int max_dim, int64_t *dims)
{
    int r = rand_int(min_rank, max_rank);
    for (int i = 0; i < r; i++) dims[i] = rand_int(1, max_dim);
    return r;
}

static void grad_transpose(void)
{
    for (int trial = 0; trial < 12; trial++) {
        int64_t dims[4], perm[4];
        int r = random_shape(1, 4, 4, dims);
        for (int i = 0; i < r; i++) perm[i] = i;
        for (int i = r - 1; i > 0; i--) {
            int j = rand_int(0, i);
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        nm_graph *g = graph_new(13);
        int x = input(g, "x", NM_FLOAT, r, dims);
        int nd = node(g, "Transpose", 1, &x, 1, "y");
        attr_ints(g, nd, "perm", r, perm);
        output(g, nd, 0);
        if (prepare(g, "transpose")) gradcheck(g, "transpose random perm");
        nm_graph_free(g);
    }
}

static void grad_concat_split(void)
{
    for (int trial = 0; trial < 6; trial++) {
        int64_t dims[4];
        int r = random_shape(3, 4, 4, dims), axis = 1, k = rand_int(2, 3);
        nm_graph *g = graph_new(13);
        int in[3];
        for (int i = 0; i < k; i++) {
            char name[8] = {'x', (char)('0' + i), 0};
            dims[axis] = rand_int(1, 3);
            in[i] = input(g, name, NM_FLOAT, r, dims);
        }
        int cc = node(g, "Concat", k, in, 1, "c");
        attr_int(g, cc, "axis", axis - r);
        /* Split the concatenation into other parts, joined again in reverse. */
        int sp = node(g, "Split", 1, &g->nodes[cc].out[0], 2, "s");
        attr_int(g, sp, "axis", axis);
        int parts[2] = {g->nodes[sp].out[1], g->nodes[sp].out[0]};
        int cc2 = node(g, "Concat", 2, parts, 1, "y");
        attr_int(g, cc2, "axis", axis);
        output(g, cc2, 0);
        /* Equal split needs an even axis: pad the first input's share if odd. */
        int64_t total = 0;
        for (int i = 0; i < k; i++) total += g->t[in[i]].shape.dims[axis];
        if (total % 2) g->t[in[0]].shape.dims[axis]++, g->t[in[0]].numel = nm_shape_numel(&g->t[in[0]].shape);
        if (prepare(g, "concat/split")) gradcheck(g, "concat + split middle axis");
        nm_graph_free(g);
    }
}

static void grad_gather(void)
{
    for (int trial = 0; trial < 6; trial++) {
        int64_t dims[4], idx[5];
        int r = random_shape(1, 4, 4, dims), axis = rand_int(0, r - 1), n = rand_int(1, 5);
        for (int i = 0; i < n; i++) idx[i] = rand_int((int)-dims[axis], (int)dims[axis] - 1);
        nm_graph *g = graph_new(13);
        int in[2] = {input(g, "x", NM_FLOAT, r, dims), const_i64(g, "i", 1, n, idx)};
        int nd = node(g, "Gather", 2, in, 1, "y");
        attr_int(g, nd, "axis", axis);
        output(g, nd, 0);
        if (prepare(g, "gather")) gradcheck(g, "gather negative/repeated indices");
        nm_graph_free(g);
    }
}

static void grad_pad(void)
{
    static const char *const modes[] = {"constant", "reflect", "edge"};
    for (int trial = 0; trial < 15; trial++) {
        const char *mode = modes[trial % 3];
        int64_t dims[4], pads[8];
        int r = random_shape(1, 4, 4, dims);
        for (int d = 0; d < r; d++) {
            dims[d] += 1;
            pads[d] = rand_int(-1, 3);
            pads[r + d] = rand_int(-1, 3);
            if (dims[d] + pads[d] + pads[r + d] < 1) pads[d] = 0, pads[r + d] = 0;
        }
        nm_graph *g = graph_new(13);
        int in[2] = {input(g, "x", NM_FLOAT, r, dims), const_i64(g, "pads", 1, 2 * r, pads)};
        int nd = node(g, "Pad", 2, in, 1, "y");
        attr_string(g, nd, "mode", mode);
        output(g, nd, 0);
        char what[64];
        snprintf(what, sizeof what, "pad %s rank %d", mode, r);
        if (prepare(g, what)) gradcheck(g, what);
        nm_graph_free(g);
    }
}

/* Large enough for the parallel backward (over the unpadded N, C slabs). */
static void grad_pad_large(const char *mode)
{
    int64_t dims[4] = {4, 8, 40, 40}, pads[8] = {0, 0, 3, -2, 0, 0, 2, 4};
    nm_graph *g = graph_new(13);
    int in[2] = {input(g, "x", NM_FLOAT, 4, dims), const_i64(g, "pads", 1, 8, pads)};
    int nd = node(g, "Pad", 2, in, 1, "y");
    attr_string(g, nd, "mode", mode);
    output(g, nd, 0);
    char what[64];
    snprintf(what, sizeof what, "pad %s large", mode);
    if (prepare(g, what)) gradcheck(g, what);
    nm_graph_free(g);
}

static void grad_reducemean(void)
{
    for (int trial = 0; trial < 8; trial++) {
        int64_t dims[4], axes[4];
        int r = random_shape(2, 4, 4, dims), k = 0;
        for (int d = 0; d < r; d++)
            if (rand_int(0, 1)) axes[k++] = rand_int(0, 1) ? d : d - r;
        nm_graph *g = graph_new(13);
        int x = input(g, "x", NM_FLOAT, r, dims);
        int nd = node(g, "ReduceMean", 1, &x, 1, "y");
        if (k) attr_ints(g, nd, "axes", k, axes);
        attr_int(g, nd, "keepdims", trial % 2);
        output(g, nd, 0);
        if (prepare(g, "reducemean")) gradcheck(g, "reducemean several axes");
        nm_graph_free(g);
    }
}

static void grad_resize_case(const char *mode, const char *coord, int use_sizes, const int64_t *dims,
                             const int64_t *out_hw, const float *scale_hw)
{
    char what[128];
    snprintf(what, sizeof what, "resize %s %s [%lld,%lld]->%s", mode, coord, (long long)dims[2], (long long)dims[3],
             use_sizes ? "sizes" : "scales");
    nm_graph *g = graph_new(13);
    int in[4] = {input(g, "x", NM_FLOAT, 4, dims), -1, -1, -1};
    if (use_sizes) in[3] = const_i64(g, "sizes", 1, 4, (int64_t[]){dims[0], dims[1], out_hw[0], out_hw[1]});
    else in[2] = const_f32(g, "scales", 4, (float[]){1, 1, scale_hw[0], scale_hw[1]});
    int nd = node(g, "Resize", 4, in, 1, "y");
    attr_string(g, nd, "mode", mode);
    attr_string(g, nd, "coordinate_transformation_mode", coord);
    output(g, nd, 0);
    if (prepare(g, what)) gradcheck(g, what);
    nm_graph_free(g);
}

static void grad_resize(void)
{
    static const char *const coords[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                         "tf_half_pixel_for_nn"};
    static const char *const modes[] = {"linear", "nearest", "cubic"};
    for (int m = 0; m < 3; m++)
        for (int c = 0; c < 5; c++) {
            int64_t dims[4] = {rand_int(1, 2), rand_int(1, 3), rand_int(2, 6), rand_int(2, 6)};
            int64_t up[2] = {dims[2] * 2 + 1, dims[3] + 3}, down[2] = {rand_int(1, (int)dims[2]), 1};
            grad_resize_case(modes[m], coords[c], 1, dims, up, NULL);
            grad_resize_case(modes[m], coords[c], 1, dims, down, NULL);
            grad_resize_case(modes[m], coords[c], 0, dims, NULL, (float[]){0.6f, 2.5f});
        }
    /* Large enough for the parallel loops. */
    grad_resize_case("linear", "half_pixel", 0, (int64_t[]){2, 4, 48, 40}, NULL, (float[]){2, 2});
    grad_resize_case("linear", "align_corners", 1, (int64_t[]){1, 3, 80, 64}, (int64_t[]){33, 150}, NULL);
}

/* Crop box partly outside the input: extrapolated pixels carry no gradient. */
static void grad_resize_crop(const char *mode)
{
    char what[64];
    snprintf(what, sizeof what, "resize %s tf_crop_and_resize", mode);
    nm_graph *g = graph_new(13);
    int in[4] = {input(g, "x", NM_FLOAT, 4, (int64_t[]){1, 2, 5, 6}),
                 const_f32(g, "roi", 8, (float[]){0, 0, 0.2f, -0.3f, 1, 1, 0.9f, 1.2f}), -1,
                 const_i64(g, "sizes", 1, 4, (int64_t[]){1, 2, 7, 4})};
    int nd = node(g, "Resize", 4, in, 1, "y");
    attr_string(g, nd, "mode", mode);
    attr_string(g, nd, "coordinate_transformation_mode", "tf_crop_and_resize");
    attr_float(g, nd, "extrapolation_value", 5.0f);
    output(g, nd, 0);
    if (prepare(g, what)) {
        gradcheck(g, what);
        nm_check(nm_f32(out_tensor(g, 0))[0] == 5.0f, "%s: extrapolated corner", what);
    }
    nm_graph_free(g);
}

static void grad_upsample(int opset)
{
    static const char *const modes[] = {"nearest", "linear"};
    for (int m = 0; m < 2; m++) {
        char what[64];
        snprintf(what, sizeof what, "upsample-%d %s", opset, modes[m]);
        nm_graph *g = graph_new(opset);
        float sc[4] = {1, 1, 2, 3};
        int in[2] = {input(g, "x", NM_FLOAT, 4, (int64_t[]){2, 2, 3, 4}), opset >= 9 ? const_f32(g, "s", 4, sc) : -1};
        int nd = node(g, "Upsample", opset >= 9 ? 2 : 1, in, 1, "y");
        attr_string(g, nd, "mode", modes[m]);
        if (opset < 9) attr_floats(g, nd, "scales", 4, sc);
        output(g, nd, 0);
        if (prepare(g, what)) gradcheck(g, what);
        nm_graph_free(g);
    }
}

int main(void)
{
    test_transpose_forward();
    test_pads();
    test_gather_reduce_forward();
    test_split_concat_forward(11);
    test_split_concat_forward(13);
    test_resize_forward();
    test_shape_subgraph(11);
    test_shape_subgraph(13);
    test_views_forward();
    test_constants();
    test_unsupported();
    grad_transpose();
    grad_concat_split();
    grad_gather();
    grad_pad();
    grad_pad_large("reflect");
    grad_pad_large("edge");
    grad_reducemean();
    grad_resize();
    grad_resize_crop("linear");
    grad_resize_crop("cubic");
    grad_upsample(7);
    grad_upsample(9);
    return nm_test_summary();
}
