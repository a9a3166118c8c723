/* Elementwise, activation, matrix, softmax and normalisation operators:
 * forward against plain reference loops written here, backward against
 * central finite differences, each on a hand-built one-node graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define GRAD_TOL 1e-2
#define FWD_TOL 1e-4

static nm_shape shape_of(int nd, const int64_t *d)
{
    nm_shape s = {.ndim = nd};
    for (int i = 0; i < nd; i++) s.dims[i] = d[i];
    return s;
}
#define SHAPE(...) shape_of((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
static const nm_shape SCALAR = {0};

/* ------------------------------------------------------------- graph building */

static nm_graph *new_graph(int opset)
{
    nm_graph *g = nm_graph_new("test");
    g->opset = opset;
    return g;
}

static int add_input(nm_graph *g, const char *name, nm_shape s)
{
    int t = nm_graph_tensor(g, name);
    g->t[t].dtype = NM_FLOAT;
    g->t[t].shape = s;
    g->t[t].numel = nm_shape_numel(&s);
    nm_graph_add_input(g, t);
    return t;
}

static int add_const(nm_graph *g, const char *name, nm_shape s, const float *v)
{
    int t = nm_graph_tensor(g, name);
    int64_t n = nm_shape_numel(&s);
    float *d = malloc(sizeof(float) * (size_t)(n ? n : 1));
    memcpy(d, v, sizeof(float) * (size_t)n);
    nm_tensor_set_const(&g->t[t], NM_FLOAT, &s, d);
    return t;
}

static int add_const_i64(nm_graph *g, const char *name, nm_shape s, const int64_t *v)
{
    int t = nm_graph_tensor(g, name);
    int64_t n = nm_shape_numel(&s);
    int64_t *d = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(d, v, sizeof(int64_t) * (size_t)n);
    nm_tensor_set_const(&g->t[t], NM_INT64, &s, d);
    return t;
}

/* One node reading `in` (-1: omitted) and writing graph output "y". */
static nm_node *add_node(nm_graph *g, const char *op, int n_in, const int *in)
{
    int y = nm_graph_tensor(g, "y");
    int k = nm_graph_add_node(g, op, "node", n_in, in, 1, &y);
    nm_graph_add_output(g, y);
    return &g->nodes[k];
}

static void attr_f(nm_node *n, const char *name, float v) { nm_node_add_attr(n, name, NM_ATTR_FLOAT)->f = v; }
static void attr_i(nm_node *n, const char *name, int64_t v) { nm_node_add_attr(n, name, NM_ATTR_INT)->i = v; }

static int prepare(nm_graph *g, const char *what)
{
    nm_error err = {0};
    nm_status s = nm_test_prepare(g, &err);
    return nm_check(s == NM_OK, "%s: prepare: %s", what, err.msg);
}

static int forward(nm_graph *g, const char *what)
{
    nm_error err = {0};
    nm_status s = nm_graph_forward(g, &err);
    return nm_check(s == NM_OK, "%s: forward: %s", what, err.msg);
}

static nm_tensor *in_t(nm_graph *g, int k) { return &g->t[g->inputs[k]]; }
static nm_tensor *out_t(nm_graph *g) { return &g->t[g->outputs[0]]; }

static uint64_t rng = 0x1234567ull;

static void fill(nm_tensor *t, float lo, float hi) { nm_test_rand_fill(nm_f32(t), t->numel, lo, hi, &rng); }

/* Move values at least `gap` away from a kink so finite differences stay on one side. */
static void avoid(nm_tensor *t, float kink, float gap)
{
    float *x = nm_f32(t);
    for (int64_t i = 0; i < t->numel; i++)
        if (fabsf(x[i] - kink) < gap) x[i] = x[i] < kink ? kink - 2 * gap : kink + 2 * gap;
}

static void check_forward(nm_graph *g, const double *want, const char *what)
{
    const nm_tensor *y = out_t(g);
    double worst = 0;
    for (int64_t i = 0; i < y->numel; i++) {
        double e = fabs(nm_f32(y)[i] - want[i]) / (1.0 + fabs(want[i]));
        if (!(e <= worst)) worst = e;
    }
    nm_check(worst <= FWD_TOL, "%s: forward error %.3g", what, worst);
}

/* Large inputs (there to reach the threaded paths) get fewer probes. */
static void check_grad(nm_graph *g, float eps, const char *what)
{
    int64_t big = 0;
    for (int i = 0; i < g->n_inputs; i++)
        if (in_t(g, i)->numel > big) big = in_t(g, i)->numel;
    double e = nm_test_gradcheck(g, eps, big > 20000 ? 30 : 200, rng++);
    nm_check(e <= GRAD_TOL, "%s: gradient error %.3g", what, e);
}

/* Offset in `x` (broadcast to `out`) of the output element i; written
 * independently of ops/broadcast.c on purpose. */
static int64_t bcast_index(const nm_shape *out, const nm_shape *x, int64_t i)
{
    int64_t off = 0, stride = 1;
    for (int d = out->ndim - 1; d >= 0; d--) {
        int64_t idx = i % out->dims[d];
        i /= out->dims[d];
        int dx = d - (out->ndim - x->ndim);
        if (dx < 0) continue;
        if (x->dims[dx] != 1) off += idx * stride;
        stride *= x->dims[dx];
    }
    return off;
}

static char *str(const nm_shape *s)
{
    static char buf[4][64];
    static int k;
    k = (k + 1) % 4;
    return (char *)nm_shape_str(s, buf[k], 64);
}

/* ------------------------------------------------------------- binary */

static const char *const BIN_OPS[4] = {"Add", "Sub", "Mul", "Div"};

static double bin_ref(int op, double a, double b)
{
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    default: return a / b;
    }
}

static void test_binary_case(int op, nm_shape as, nm_shape bs, nm_shape ys)
{
    char what[160];
    snprintf(what, sizeof what, "%s %s %s", BIN_OPS[op], str(&as), str(&bs));
    nm_graph *g = new_graph(13);
    int in[2] = {add_input(g, "a", as), add_input(g, "b", bs)};
    add_node(g, BIN_OPS[op], 2, in);
    if (prepare(g, what)) {
        nm_check(nm_shape_equal(&out_t(g)->shape, &ys), "%s: output shape %s, want %s", what,
                 str(&out_t(g)->shape), str(&ys));
        fill(in_t(g, 0), -1.5f, 1.5f);
        fill(in_t(g, 1), 0.5f, 2.0f);   /* keeps Div smooth */
        if (forward(g, what)) {
            int64_t n = nm_shape_numel(&ys);
            double *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
            for (int64_t i = 0; i < n; i++)
                want[i] = bin_ref(op, nm_f32(in_t(g, 0))[bcast_index(&ys, &as, i)],
                                  nm_f32(in_t(g, 1))[bcast_index(&ys, &bs, i)]);
            check_forward(g, want, what);
            free(want);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_binary(void)
{
    struct {
        nm_shape a, b, y;
    } cases[] = {
        {SHAPE(2, 3, 4, 5), SHAPE(2, 3, 4, 5), SHAPE(2, 3, 4, 5)},
        {SHAPE(2, 3, 4, 5), SHAPE(5), SHAPE(2, 3, 4, 5)},
        {SHAPE(2, 3, 4, 5), SHAPE(3, 1, 5), SHAPE(2, 3, 4, 5)},
        {SHAPE(2, 3, 4, 5), SHAPE(1), SHAPE(2, 3, 4, 5)},
        {SHAPE(2, 3, 4, 5), SCALAR, SHAPE(2, 3, 4, 5)},
        {SCALAR, SHAPE(2, 3), SHAPE(2, 3)},
        {SCALAR, SCALAR, SCALAR},
        {SHAPE(2, 1, 4, 1), SHAPE(1, 3, 1, 5), SHAPE(2, 3, 4, 5)},
        {SHAPE(2, 3, 4, 5), SHAPE(3, 1, 1), SHAPE(2, 3, 4, 5)},
        {SHAPE(1, 3, 1, 1), SHAPE(2, 3, 4, 5), SHAPE(2, 3, 4, 5)},
        {SHAPE(2, 3, 4, 5), SHAPE(2, 3, 1, 1), SHAPE(2, 3, 4, 5)},
        {SHAPE(4, 1), SHAPE(3), SHAPE(4, 3)},
        /* Large enough for the threaded paths. */
        {SHAPE(2, 16, 40, 40), SHAPE(16, 1, 1), SHAPE(2, 16, 40, 40)},
        {SHAPE(2, 20000), SHAPE(2, 20000), SHAPE(2, 20000)},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int op = 0; op < 4; op++) test_binary_case(op, cases[c].a, cases[c].b, cases[c].y);

    /* Incompatible shapes are refused with a shape error. */
    nm_graph *g = new_graph(13);
    int in[2] = {add_input(g, "a", SHAPE(2, 3)), add_input(g, "b", SHAPE(4))};
    add_node(g, "Add", 2, in);
    nm_error err = {0};
    nm_check(nm_test_prepare(g, &err) == NM_ERR_SHAPE, "Add [2,3] [4]: refused (%s)", err.msg);
    nm_graph_free(g);
}

/* int64 shape arithmetic folds at load; Div truncates toward zero. */
static void test_binary_int64(void)
{
    const int64_t a[6] = {7, -7, 5, 100, -3, 0}, b[3] = {2, 2, -4};
    const int64_t want[4][6] = {{9, -5, 1, 102, -1, -4},
                                {5, -9, 9, 98, -5, 4},
                                {14, -14, -20, 200, -6, 0},
                                {3, -3, -1, 50, -1, 0}};
    for (int op = 0; op < 4; op++) {
        nm_graph *g = new_graph(13);
        int in[2] = {add_const_i64(g, "a", SHAPE(2, 3), a), add_const_i64(g, "b", SHAPE(3), b)};
        add_node(g, BIN_OPS[op], 2, in);
        char what[64];
        snprintf(what, sizeof what, "%s int64", BIN_OPS[op]);
        if (prepare(g, what)) {
            const nm_tensor *y = out_t(g);
            int ok = y->dtype == NM_INT64 && y->is_const && y->numel == 6;
            for (int i = 0; ok && i < 6; i++) ok = nm_i64(y)[i] == want[op][i];
            nm_check(ok, "%s: folded values", what);
        }
        nm_graph_free(g);
    }
    nm_graph *g = new_graph(13);
    const int64_t zero = 0;
    int in[2] = {add_const_i64(g, "a", SHAPE(2, 3), a), add_const_i64(g, "b", SCALAR, &zero)};
    add_node(g, "Div", 2, in);
    nm_error err = {0};
    nm_check(nm_test_prepare(g, &err) != NM_OK, "Div int64 by zero refused (%s)", err.msg);
    nm_graph_free(g);
}

/* ------------------------------------------------------------- activations */

typedef struct act_case {
    const char *op;
    float alpha, beta;      /* attributes when set (nonzero) */
    float lo, hi;           /* input range */
    float kinks[2];
    int n_kinks;
} act_case;

static double act_ref(const act_case *c, double x)
{
    if (!strcmp(c->op, "Relu")) return x > 0 ? x : 0;
    if (!strcmp(c->op, "LeakyRelu")) return x > 0 ? x : (c->alpha ? c->alpha : 0.01) * x;
    if (!strcmp(c->op, "Sigmoid")) return 1 / (1 + exp(-x));
    if (!strcmp(c->op, "Tanh")) return tanh(x);
    if (!strcmp(c->op, "HardSigmoid")) {
        double a = c->alpha ? c->alpha : 0.2, b = c->beta ? c->beta : 0.5;
        return fmax(0, fmin(1, a * x + b));
    }
    return x * fmax(0, fmin(1, x / 6 + 0.5));   /* HardSwish */
}

static void test_activation_case(const act_case *c, nm_shape s)
{
    char what[128];
    snprintf(what, sizeof what, "%s %s", c->op, str(&s));
    nm_graph *g = new_graph(14);
    int x = add_input(g, "x", s);
    nm_node *n = add_node(g, c->op, 1, &x);
    if (c->alpha) attr_f(n, "alpha", c->alpha);
    if (c->beta) attr_f(n, "beta", c->beta);
    if (prepare(g, what)) {
        nm_tensor *xt = in_t(g, 0);
        fill(xt, c->lo, c->hi);
        for (int k = 0; k < c->n_kinks; k++) avoid(xt, c->kinks[k], 0.05f);
        if (forward(g, what)) {
            double *want = malloc(sizeof(double) * (size_t)xt->numel);
            for (int64_t i = 0; i < xt->numel; i++) want[i] = act_ref(c, nm_f32(xt)[i]);
            check_forward(g, want, what);
            free(want);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_activations(void)
{
    const act_case cases[] = {
        {"Relu", 0, 0, -2, 2, {0}, 1},
        {"LeakyRelu", 0, 0, -2, 2, {0}, 1},
        {"LeakyRelu", 0.3f, 0, -2, 2, {0}, 1},
        {"Sigmoid", 0, 0, -6, 6, {0}, 0},
        {"Tanh", 0, 0, -3, 3, {0}, 0},
        {"HardSigmoid", 0, 0, -4, 4, {-2.5f, 2.5f}, 2},
        {"HardSigmoid", 0.5f, 0.3f, -3, 3, {-0.6f, 1.4f}, 2},
        {"HardSwish", 0, 0, -5, 5, {-3, 3}, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_activation_case(&cases[i], SHAPE(2, 3, 4, 5));
        test_activation_case(&cases[i], SHAPE(3, 200, 100));   /* threaded */
    }
}

/* PRelu: slope as a graph input (so it gets a gradient) or a constant. */
static void test_prelu_case(nm_shape xs, nm_shape ss, nm_shape eff, int slope_const)
{
    char what[128];
    snprintf(what, sizeof what, "PRelu %s slope %s%s", str(&xs), str(&ss), slope_const ? " const" : "");
    nm_graph *g = new_graph(9);
    float sv[64];
    int64_t ns = nm_shape_numel(&ss);
    for (int64_t i = 0; i < ns; i++) sv[i] = 0.1f + 0.2f * (float)i;
    int in[2] = {add_input(g, "x", xs), slope_const ? add_const(g, "s", ss, sv) : add_input(g, "s", ss)};
    add_node(g, "PRelu", 2, in);
    if (prepare(g, what)) {
        nm_tensor *xt = in_t(g, 0);
        fill(xt, -2, 2);
        avoid(xt, 0, 0.05f);
        if (!slope_const) memcpy(nm_f32(in_t(g, 1)), sv, sizeof(float) * (size_t)ns);
        if (forward(g, what)) {
            double *want = malloc(sizeof(double) * (size_t)xt->numel);
            for (int64_t i = 0; i < xt->numel; i++) {
                double v = nm_f32(xt)[i];
                want[i] = v < 0 ? sv[bcast_index(&xs, &eff, i)] * v : v;
            }
            check_forward(g, want, what);
            free(want);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_prelu(void)
{
    test_prelu_case(SHAPE(2, 3, 4, 5), SHAPE(3, 1, 1), SHAPE(3, 1, 1), 0);
    test_prelu_case(SHAPE(2, 3, 4, 5), SHAPE(3, 1, 1), SHAPE(3, 1, 1), 1);
    test_prelu_case(SHAPE(2, 3, 4, 5), SHAPE(5), SHAPE(5), 0);
    test_prelu_case(SHAPE(2, 3, 4, 5), SHAPE(1), SHAPE(1), 0);
    /* A per-channel 1-D slope from older exporters. */
    test_prelu_case(SHAPE(2, 3, 4, 5), SHAPE(3), SHAPE(3, 1, 1), 0);
}

/* Clip: bounds as attributes (opset 6..10) or constant inputs (11+). */
static void test_clip_case(int opset, int has_lo, int has_hi)
{
    const float lo = -0.5f, hi = 0.7f;
    char what[96];
    snprintf(what, sizeof what, "Clip opset %d%s%s", opset, has_lo ? " min" : "", has_hi ? " max" : "");
    nm_graph *g = new_graph(opset);
    int in[3] = {add_input(g, "x", SHAPE(3, 4, 5)), -1, -1};
    int n_in = 1;
    if (opset >= 11) {
        if (has_lo) in[1] = add_const(g, "lo", SCALAR, &lo);
        if (has_hi) in[2] = add_const(g, "hi", SCALAR, &hi);
        n_in = has_hi ? 3 : has_lo ? 2 : 1;
    }
    nm_node *n = add_node(g, "Clip", n_in, in);
    if (opset < 11 && has_lo) attr_f(n, "min", lo);
    if (opset < 11 && has_hi) attr_f(n, "max", hi);
    if (prepare(g, what)) {
        nm_tensor *xt = in_t(g, 0);
        fill(xt, -2, 2);
        avoid(xt, lo, 0.05f);
        avoid(xt, hi, 0.05f);
        if (forward(g, what)) {
            double want[60];
            for (int64_t i = 0; i < 60; i++) {
                double v = nm_f32(xt)[i];
                if (has_lo && v < lo) v = lo;
                if (has_hi && v > hi) v = hi;
                want[i] = v;
            }
            check_forward(g, want, what);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_clip(void)
{
    for (int m = 0; m < 4; m++) {
        test_clip_case(6, m & 1, m >> 1);
        test_clip_case(11, m & 1, m >> 1);
        test_clip_case(13, m & 1, m >> 1);
    }
    /* Gradient passes at the bounds themselves (PyTorch's clamp). */
    nm_graph *g = new_graph(13);
    const float lo = 0.0f, hi = 1.0f;
    int in[3] = {add_input(g, "x", SHAPE(4)), add_const(g, "lo", SCALAR, &lo), add_const(g, "hi", SCALAR, &hi)};
    add_node(g, "Clip", 3, in);
    if (prepare(g, "Clip at bounds")) {
        const float xv[4] = {-1, 0, 1, 2};
        memcpy(nm_f32(in_t(g, 0)), xv, sizeof xv);
        nm_error err;
        for (int i = 0; i < 4; i++) out_t(g)->grad[i] = 1;
        nm_graph_forward(g, &err);
        nm_graph_backward(g, &err);
        const float *dx = in_t(g, 0)->grad;
        nm_check(dx[0] == 0 && dx[1] == 1 && dx[2] == 1 && dx[3] == 0, "Clip at bounds: gradient %g %g %g %g", dx[0],
                 dx[1], dx[2], dx[3]);
    }
    nm_graph_free(g);
}

/* ------------------------------------------------------------- softmax */

/* Reference over [outer, len, inner]. */
static void softmax_ref(const float *x, double *y, int64_t outer, int64_t len, int64_t inner, int log_out)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            const float *xp = x + o * len * inner + c;
            double mx = -INFINITY, s = 0;
            for (int64_t l = 0; l < len; l++) mx = fmax(mx, xp[l * inner]);
            for (int64_t l = 0; l < len; l++) s += exp(xp[l * inner] - mx);
            for (int64_t l = 0; l < len; l++) {
                double v = xp[l * inner] - mx;
                y[o * len * inner + c + l * inner] = log_out ? v - log(s) : exp(v) / s;
            }
        }
}

static void test_softmax_case(const char *op, int opset, int has_axis, int64_t axis, nm_shape s)
{
    char what[128];
    snprintf(what, sizeof what, "%s opset %d axis %s%lld %s", op, opset, has_axis ? "" : "default ",
             (long long)axis, str(&s));
    nm_graph *g = new_graph(opset);
    int x = add_input(g, "x", s);
    nm_node *n = add_node(g, op, 1, &x);
    if (has_axis) attr_i(n, "axis", axis);
    if (prepare(g, what)) {
        nm_tensor *xt = in_t(g, 0);
        fill(xt, -3, 3);
        int a = (int)(axis < 0 ? axis + s.ndim : axis);
        int64_t outer = 1, len = 1, inner = 1;
        for (int i = 0; i < s.ndim; i++) {
            if (i < a) outer *= s.dims[i];
            else if (i == a || opset < 13) len *= s.dims[i];
            else inner *= s.dims[i];
        }
        if (forward(g, what)) {
            double *want = malloc(sizeof(double) * (size_t)xt->numel);
            softmax_ref(nm_f32(xt), want, outer, len, inner, !strcmp(op, "LogSoftmax"));
            check_forward(g, want, what);
            free(want);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_softmax(void)
{
    const char *ops[2] = {"Softmax", "LogSoftmax"};
    for (int k = 0; k < 2; k++) {
        nm_shape s = SHAPE(2, 3, 4, 5);
        test_softmax_case(ops[k], 11, 1, 1, s);     /* coerced: 60-long rows */
        test_softmax_case(ops[k], 13, 1, 1, s);     /* along axis 1 only */
        test_softmax_case(ops[k], 11, 1, 2, s);
        test_softmax_case(ops[k], 13, 1, 2, s);
        test_softmax_case(ops[k], 13, 1, -3, s);
        test_softmax_case(ops[k], 11, 0, 1, s);     /* default axis 1 */
        test_softmax_case(ops[k], 13, 0, -1, s);    /* default axis -1 */
        test_softmax_case(ops[k], 13, 1, 0, s);
        test_softmax_case(ops[k], 7, 1, 0, s);
        test_softmax_case(ops[k], 13, 1, 1, SHAPE(2, 100, 70, 3));   /* wide inner, threaded */
        test_softmax_case(ops[k], 13, 0, -1, SHAPE(4, 1000));
    }
    /* Large logits stay finite. */
    nm_graph *g = new_graph(13);
    int x = add_input(g, "x", SHAPE(1, 3));
    add_node(g, "Softmax", 1, &x);
    if (prepare(g, "Softmax large")) {
        const float xv[3] = {1000, 1001, 1002};
        memcpy(nm_f32(in_t(g, 0)), xv, sizeof xv);
        if (forward(g, "Softmax large")) {
            const double want[3] = {0.09003057317038046, 0.24472847105479764, 0.6652409557748219};
            check_forward(g, want, "Softmax large");
        }
    }
    nm_graph_free(g);
}

/* ------------------------------------------------------------- Gemm */

static void test_gemm_case(int ta, int tb, const nm_shape *cs, float alpha, float beta)
{
    const int64_t M = 3, K = 4, N = 5;
    char what[128];
    snprintf(what, sizeof what, "Gemm transA %d transB %d C %s alpha %g beta %g", ta, tb, cs ? str(cs) : "none",
             alpha, beta);
    nm_graph *g = new_graph(13);
    nm_shape as = ta ? SHAPE(K, M) : SHAPE(M, K), bs = tb ? SHAPE(N, K) : SHAPE(K, N);
    int in[3] = {add_input(g, "a", as), add_input(g, "b", bs), cs ? add_input(g, "c", *cs) : -1};
    nm_node *n = add_node(g, "Gemm", cs ? 3 : 2, in);
    attr_i(n, "transA", ta);
    attr_i(n, "transB", tb);
    if (alpha != 1) attr_f(n, "alpha", alpha);
    if (beta != 1) attr_f(n, "beta", beta);
    if (prepare(g, what)) {
        nm_test_fill_inputs(g, -1, 1, rng++);
        const float *a = nm_f32(in_t(g, 0)), *b = nm_f32(in_t(g, 1));
        nm_shape ys = SHAPE(M, N);
        nm_check(nm_shape_equal(&out_t(g)->shape, &ys), "%s: output shape", what);
        if (forward(g, what)) {
            double want[15];
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++) s += (double)a[ta ? k * M + i : i * K + k] * b[tb ? j * K + k : k * N + j];
                    want[i * N + j] = alpha * s;
                    if (cs) want[i * N + j] += beta * nm_f32(in_t(g, 2))[bcast_index(&ys, cs, i * N + j)];
                }
            check_forward(g, want, what);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_gemm(void)
{
    nm_shape cshapes[] = {SHAPE(5), SHAPE(3, 1), SHAPE(1), SHAPE(3, 5), SHAPE(1, 5), SCALAR};
    for (int t = 0; t < 4; t++) {
        test_gemm_case(t & 1, t >> 1, NULL, 1, 1);
        for (size_t c = 0; c < sizeof cshapes / sizeof cshapes[0]; c++)
            test_gemm_case(t & 1, t >> 1, &cshapes[c], 0.7f, 1.3f);
    }
    test_gemm_case(0, 1, &cshapes[0], 1, 1);
}

/* ------------------------------------------------------------- MatMul */

/* Reference numpy matmul; ys is the expected output shape. */
static void matmul_ref(const float *a, nm_shape as, const float *b, nm_shape bs, const nm_shape *ys, double *y)
{
    int a1 = as.ndim == 1, b1 = bs.ndim == 1;
    if (a1) as = SHAPE(1, as.dims[0]);
    if (b1) bs = SHAPE(bs.dims[0], 1);
    int64_t M = as.dims[as.ndim - 2], K = as.dims[as.ndim - 1], N = bs.dims[bs.ndim - 1];
    nm_shape ab = {.ndim = as.ndim - 2}, bb = {.ndim = bs.ndim - 2}, yb = {.ndim = ys->ndim - 2 + a1 + b1};
    for (int i = 0; i < ab.ndim; i++) ab.dims[i] = as.dims[i];
    for (int i = 0; i < bb.ndim; i++) bb.dims[i] = bs.dims[i];
    for (int i = 0; i < yb.ndim; i++) yb.dims[i] = ys->dims[i];
    int64_t nb = nm_shape_numel(&yb);
    for (int64_t p = 0; p < nb; p++) {
        const float *ap = a + bcast_index(&yb, &ab, p) * M * K, *bp = b + bcast_index(&yb, &bb, p) * K * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += (double)ap[i * K + k] * bp[k * N + j];
                y[(p * M + i) * N + j] = s;
            }
    }
}

static void test_matmul_case(nm_shape as, nm_shape bs, nm_shape ys)
{
    char what[128];
    snprintf(what, sizeof what, "MatMul %s %s", str(&as), str(&bs));
    nm_graph *g = new_graph(13);
    int in[2] = {add_input(g, "a", as), add_input(g, "b", bs)};
    add_node(g, "MatMul", 2, in);
    if (prepare(g, what)) {
        nm_check(nm_shape_equal(&out_t(g)->shape, &ys), "%s: output shape %s, want %s", what,
                 str(&out_t(g)->shape), str(&ys));
        nm_test_fill_inputs(g, -1, 1, rng++);
        if (forward(g, what)) {
            double *want = malloc(sizeof(double) * (size_t)nm_shape_numel(&ys));
            matmul_ref(nm_f32(in_t(g, 0)), as, nm_f32(in_t(g, 1)), bs, &ys, want);
            check_forward(g, want, what);
            free(want);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_matmul(void)
{
    test_matmul_case(SHAPE(3, 4), SHAPE(4, 5), SHAPE(3, 5));
    test_matmul_case(SHAPE(4), SHAPE(4, 5), SHAPE(5));
    test_matmul_case(SHAPE(3, 4), SHAPE(4), SHAPE(3));
    test_matmul_case(SHAPE(4), SHAPE(4), SCALAR);
    test_matmul_case(SHAPE(4), SHAPE(2, 4, 5), SHAPE(2, 5));
    test_matmul_case(SHAPE(2, 3, 4), SHAPE(4), SHAPE(2, 3));
    test_matmul_case(SHAPE(2, 3, 4), SHAPE(4, 5), SHAPE(2, 3, 5));
    test_matmul_case(SHAPE(2, 3, 4), SHAPE(2, 4, 5), SHAPE(2, 3, 5));
    test_matmul_case(SHAPE(3, 4), SHAPE(2, 4, 5), SHAPE(2, 3, 5));
    test_matmul_case(SHAPE(2, 1, 3, 4), SHAPE(1, 3, 4, 5), SHAPE(2, 3, 3, 5));
    test_matmul_case(SHAPE(1, 2, 3, 4), SHAPE(4, 5), SHAPE(1, 2, 3, 5));
    test_matmul_case(SHAPE(2, 1, 3, 4), SHAPE(3, 4, 2), SHAPE(2, 3, 3, 2));
    nm_graph *g = new_graph(13);
    int in[2] = {add_input(g, "a", SHAPE(3, 4)), add_input(g, "b", SHAPE(5, 6))};
    add_node(g, "MatMul", 2, in);
    nm_error err = {0};
    nm_check(nm_test_prepare(g, &err) == NM_ERR_SHAPE, "MatMul [3,4] [5,6]: refused (%s)", err.msg);
    nm_graph_free(g);
}

/* ------------------------------------------------------------- BatchNormalization */

/* Training mode normalises with the batch's own (biased) statistics. */
static void batch_stats(const float *x, int64_t N, int64_t P, int64_t inner, double *mean, double *var)
{
    for (int64_t p = 0; p < P; p++) {
        double s = 0, s2 = 0, cnt = (double)(N * inner);
        for (int64_t nb = 0; nb < N; nb++)
            for (int64_t i = 0; i < inner; i++) s += x[(nb * P + p) * inner + i];
        mean[p] = s / cnt;
        for (int64_t nb = 0; nb < N; nb++)
            for (int64_t i = 0; i < inner; i++) {
                double d = x[(nb * P + p) * inner + i] - mean[p];
                s2 += d * d;
            }
        var[p] = s2 / cnt;
    }
}

static void test_batchnorm_case(int opset, int spatial, int training, nm_shape xs)
{
    char what[128];
    snprintf(what, sizeof what, "BatchNormalization opset %d spatial %d training %d %s", opset, spatial, training,
             str(&xs));
    int64_t inner = 1;
    for (int i = 2; i < xs.ndim; i++) inner *= xs.dims[i];
    int64_t C = xs.dims[1], P = spatial ? C : C * inner;
    nm_shape ps = spatial ? SHAPE(C) : SHAPE(C, inner);
    if (!spatial && xs.ndim == 4) ps = SHAPE(C, xs.dims[2], xs.dims[3]);
    nm_graph *g = new_graph(opset);
    int in[5] = {add_input(g, "x", xs), add_input(g, "scale", ps), add_input(g, "bias", ps),
                 add_input(g, "mean", ps), add_input(g, "var", ps)};
    nm_node *n = add_node(g, "BatchNormalization", 5, in);
    attr_f(n, "epsilon", 1e-3f);
    if (opset < 9) attr_i(n, "spatial", spatial);
    if (training) attr_i(n, "training_mode", 1);
    if (prepare(g, what)) {
        fill(in_t(g, 0), -2, 2);
        fill(in_t(g, 1), 0.5f, 1.5f);
        fill(in_t(g, 2), -1, 1);
        fill(in_t(g, 3), -0.5f, 0.5f);
        fill(in_t(g, 4), 0.5f, 1.5f);
        if (forward(g, what)) {
            const float *x = nm_f32(in_t(g, 0));
            const float *sc = nm_f32(in_t(g, 1)), *b = nm_f32(in_t(g, 2)), *m = nm_f32(in_t(g, 3)),
                        *v = nm_f32(in_t(g, 4));
            int64_t nx = in_t(g, 0)->numel;
            double *want = malloc(sizeof(double) * (size_t)nx), bm[64], bv[64];
            int64_t pin = spatial ? inner : 1;
            batch_stats(x, xs.dims[0], P, pin, bm, bv);
            for (int64_t i = 0; i < nx; i++) {
                int64_t p = (i / pin) % P;
                double mean = training ? bm[p] : m[p], var = training ? bv[p] : v[p];
                want[i] = sc[p] * (x[i] - mean) / sqrt(var + 1e-3) + b[p];
            }
            check_forward(g, want, what);
            free(want);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_batchnorm(void)
{
    test_batchnorm_case(15, 1, 0, SHAPE(2, 3, 4, 5));
    test_batchnorm_case(9, 1, 0, SHAPE(2, 3));
    test_batchnorm_case(7, 1, 0, SHAPE(2, 3, 4, 5));
    test_batchnorm_case(7, 0, 0, SHAPE(2, 3, 4, 5));
    test_batchnorm_case(15, 1, 0, SHAPE(2, 8, 50, 50));
    test_batchnorm_case(15, 1, 1, SHAPE(2, 3, 4, 5));
    test_batchnorm_case(15, 1, 1, SHAPE(4, 3));
    test_batchnorm_case(15, 1, 1, SHAPE(2, 8, 50, 50));
}

/* ------------------------------------------------------------- LRN */

static void lrn_ref(const float *x, double *y, int64_t N, int64_t C, int64_t inner, int64_t size, double alpha,
                    double beta, double bias)
{
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (int64_t nb = 0; nb < N; nb++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < inner; i++) {
                double s = 0;
                for (int64_t k = c - lo; k <= c + hi; k++)
                    if (k >= 0 && k < C) {
                        double v = x[(nb * C + k) * inner + i];
                        s += v * v;
                    }
                int64_t at = (nb * C + c) * inner + i;
                y[at] = x[at] / pow(bias + alpha / (double)size * s, beta);
            }
}

static void test_lrn_case(int64_t size, float alpha, float beta, float bias, nm_shape xs)
{
    char what[128];
    snprintf(what, sizeof what, "LRN size %lld alpha %g beta %g bias %g %s", (long long)size, alpha, beta, bias,
             str(&xs));
    nm_graph *g = new_graph(13);
    int x = add_input(g, "x", xs);
    nm_node *n = add_node(g, "LRN", 1, &x);
    attr_i(n, "size", size);
    attr_f(n, "alpha", alpha);
    attr_f(n, "beta", beta);
    attr_f(n, "bias", bias);
    if (prepare(g, what)) {
        nm_tensor *xt = in_t(g, 0);
        fill(xt, -2, 2);
        int64_t inner = 1;
        for (int i = 2; i < xs.ndim; i++) inner *= xs.dims[i];
        if (forward(g, what)) {
            double *want = malloc(sizeof(double) * (size_t)xt->numel);
            lrn_ref(nm_f32(xt), want, xs.dims[0], xs.dims[1], inner, size, alpha, beta, bias);
            check_forward(g, want, what);
            free(want);
            check_grad(g, 1e-2f, what);
        }
    }
    nm_graph_free(g);
}

static void test_lrn(void)
{
    test_lrn_case(3, 0.5f, 0.75f, 1.0f, SHAPE(2, 7, 3, 3));
    test_lrn_case(5, 0.9f, 0.75f, 2.0f, SHAPE(2, 7, 3, 3));
    test_lrn_case(4, 0.7f, 0.6f, 1.5f, SHAPE(2, 6, 2, 3));
    test_lrn_case(5, 1e-4f, 0.75f, 1.0f, SHAPE(1, 3, 4, 4));
    test_lrn_case(5, 0.8f, 0.75f, 1.0f, SHAPE(2, 16, 30, 30));
}

int main(void)
{
    test_binary();
    test_binary_int64();
    test_activations();
    test_prelu();
    test_clip();
    test_softmax();
    test_gemm();
    test_matmul();
    test_batchnorm();
    test_lrn();
    return nm_test_summary();
}
