/* The plan's rewrites against the graph without them: Conv + activation
 * fusion (Relu, LeakyRelu, Clip, Sigmoid, Tanh), Conv + residual Add (+
 * activation), channels-last layouts with Concat, MaxPool and global pooling,
 * Pad + AveragePool, and first-writer gradients. The reference graph is the
 * same graph with every intermediate tensor also a graph output, which
 * leaves it unfused and plain. Checked: the rewrite happened, outputs and
 * input gradients agree (over repeated calls), and finite differences of
 * the rewritten graph where it is smooth. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static uint64_t seed_state = 12345;

static float *rnd_floats(int64_t n, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (size_t)n);
    nm_test_rand_fill(v, n, lo, hi, &seed_state);
    return v;
}

static nm_shape shape4(int64_t a, int64_t b, int64_t c, int64_t d)
{
    nm_shape s = {.ndim = 4, .dims = {a, b, c, d}};
    return s;
}

static int add_const(nm_graph *g, const char *name, nm_shape s, float lo, float hi)
{
    int t = nm_graph_tensor(g, name);
    nm_tensor_set_const(&g->t[t], NM_FLOAT, &s, rnd_floats(nm_shape_numel(&s), lo, hi));
    return t;
}

static int add_scalar(nm_graph *g, const char *name, float v)
{
    int t = nm_graph_tensor(g, name);
    float *d = malloc(sizeof(float));
    *d = v;
    nm_shape s = {.ndim = 0};
    nm_tensor_set_const(&g->t[t], NM_FLOAT, &s, d);
    return t;
}

static void ints_attr(nm_graph *g, int node, const char *name, int n, const int64_t *v)
{
    nm_attr *a = nm_node_add_attr(&g->nodes[node], name, NM_ATTR_INTS);
    a->n = n;
    a->ints = malloc(sizeof(int64_t) * (size_t)n);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

/* Y = Conv(X) with k x k weights of `m` output channels, "same" padding. */
static int conv(nm_graph *g, const char *name, int x, int64_t c, int64_t m, int64_t k)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s.w", name);
    int w = add_const(g, buf, shape4(m, c, k, k), -0.4f, 0.4f);
    snprintf(buf, sizeof buf, "%s.b", name);
    nm_shape bs = {.ndim = 1, .dims = {m}};
    int b = add_const(g, buf, bs, -0.2f, 0.2f);
    int y = nm_graph_tensor(g, name);
    int in[3] = {x, w, b};
    int node = nm_graph_add_node(g, "Conv", name, 3, in, 1, &y);
    int64_t p = k / 2, pads[4] = {p, p, p, p};
    ints_attr(g, node, "pads", 4, pads);
    return y;
}

static int act(nm_graph *g, const char *op, const char *name, int x)
{
    int y = nm_graph_tensor(g, name);
    if (strcmp(op, "Clip") == 0) {
        char lo[64], hi[64];
        snprintf(lo, sizeof lo, "%s.min", name);
        snprintf(hi, sizeof hi, "%s.max", name);
        int in[3] = {x, add_scalar(g, lo, -0.3f), add_scalar(g, hi, 0.4f)};
        nm_graph_add_node(g, op, name, 3, in, 1, &y);
        return y;
    }
    int node = nm_graph_add_node(g, op, name, 1, &x, 1, &y);
    if (strcmp(op, "LeakyRelu") == 0) nm_node_add_attr(&g->nodes[node], "alpha", NM_ATTR_FLOAT)->f = 0.1f;
    return y;
}

static int node2(nm_graph *g, const char *op, const char *name, int a, int b)
{
    int y = nm_graph_tensor(g, name), in[2] = {a, b};
    nm_graph_add_node(g, op, name, 2, in, 1, &y);
    return y;
}

static int node1(nm_graph *g, const char *op, const char *name, int x)
{
    int y = nm_graph_tensor(g, name);
    nm_graph_add_node(g, op, name, 1, &x, 1, &y);
    return y;
}

typedef enum kind { RESIDUAL, CONCAT, PADPOOL } kind;

/* x [2,8,10,10] -> ... -> GlobalAveragePool -> y [2,C,1,1]. */
static nm_graph *build(kind k, const char *op, int split)
{
    seed_state = 12345;   /* both variants get the same weights */
    nm_graph *g = nm_graph_new("fusion");
    g->opset = 13;
    int x = nm_graph_tensor(g, "x");
    nm_shape xs = shape4(2, 8, 10, 10);
    g->t[x].dtype = NM_FLOAT;
    g->t[x].shape = xs;
    nm_graph_add_input(g, x);
    int h;
    if (k == RESIDUAL) {
        int a = act(g, op, "a1", conv(g, "c1", x, 8, 16, 3));
        int s = node2(g, "Add", "s", conv(g, "c2", a, 16, 16, 3), a);
        h = act(g, op, "a2", s);
    } else if (k == CONCAT) {
        int a = act(g, "Relu", "a1", conv(g, "c1", x, 8, 8, 1));
        int b = act(g, op, "a2", conv(g, "c2", x, 8, 4, 3));
        int y = nm_graph_tensor(g, "cat"), in[2] = {a, b};
        int node = nm_graph_add_node(g, "Concat", "cat", 2, in, 1, &y);
        nm_node_add_attr(&g->nodes[node], "axis", NM_ATTR_INT)->i = 1;
        int c = act(g, op, "a3", conv(g, "c3", y, 12, 6, 3));
        h = nm_graph_tensor(g, "mp");
        node = nm_graph_add_node(g, "MaxPool", "mp", 1, &c, 1, &h);
        int64_t ks[2] = {2, 2};
        ints_attr(g, node, "kernel_shape", 2, ks);
        ints_attr(g, node, "strides", 2, ks);
    } else {
        int a = act(g, op, "a1", conv(g, "c1", x, 8, 8, 3));
        int pads = nm_graph_tensor(g, "pads");
        int64_t *pv = malloc(8 * sizeof(int64_t));
        int64_t pw[8] = {0, 0, 1, 1, 0, 0, 1, 1};
        memcpy(pv, pw, sizeof pw);
        nm_shape ps = {.ndim = 1, .dims = {8}};
        nm_tensor_set_const(&g->t[pads], NM_INT64, &ps, pv);
        int p = node2(g, "Pad", "pad", a, pads);
        int q = nm_graph_tensor(g, "avg");
        int node = nm_graph_add_node(g, "AveragePool", "avg", 1, &p, 1, &q);
        int64_t ks[2] = {3, 3};
        ints_attr(g, node, "kernel_shape", 2, ks);
        h = act(g, "Relu", "a2", conv(g, "c2", q, 8, 6, 3));
    }
    int y = node1(g, "GlobalAveragePool", "y", h);
    nm_graph_add_output(g, y);
    if (split)
        for (int t = 0; t < g->n_t; t++)
            if (t != x && t != y && !g->t[t].is_const && g->t[t].name[0]) nm_graph_add_output(g, t);
    return g;
}

static int count_nhwc(const nm_graph *g)
{
    int n = 0;
    for (int t = 0; t < g->n_t; t++) n += nm_tensor_layout(g, t) == NM_LAYOUT_NHWC;
    return n;
}

/* Forward, then backward of sum(r * y); copies y and dx out. */
static int run(nm_graph *g, const float *x, const float *r, float *y, float *dx)
{
    nm_error err;
    nm_tensor *in = &g->t[g->inputs[0]], *out = &g->t[g->outputs[0]];
    memcpy(in->data, x, sizeof(float) * (size_t)in->numel);
    if (nm_graph_forward(g, &err)) return 0;
    memcpy(y, out->data, sizeof(float) * (size_t)out->numel);
    memcpy(out->grad, r, sizeof(float) * (size_t)out->numel);
    if (nm_graph_backward(g, &err)) return 0;
    memcpy(dx, in->grad, sizeof(float) * (size_t)in->numel);
    return 1;
}

static double rel_diff(const float *a, const float *b, int64_t n)
{
    double e = 0, s = 1e-6;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return e / s;
}

static void check(kind k, const char *op)
{
    static const char *kinds[] = {"residual", "concat", "pad+pool"};
    nm_error err = {0};
    nm_graph *g[2] = {build(k, op, 0), build(k, op, 1)};
    for (int v = 0; v < 2; v++)
        if (!nm_check(nm_graph_sort(g[v], &err) == NM_OK && nm_graph_prepare(g[v], 1u, &err) == NM_OK,
                      "%s %s: prepare: %s", kinds[k], op, err.msg)) {
            nm_graph_free(g[0]);
            nm_graph_free(g[1]);
            return;
        }
    nm_check(g[0]->n_nodes < g[1]->n_nodes && count_nhwc(g[0]) > 0 && count_nhwc(g[1]) == 0,
             "%s %s: rewritten (%d vs %d nodes, %d channels-last tensors)", kinds[k], op, g[0]->n_nodes,
             g[1]->n_nodes, count_nhwc(g[0]));
    int64_t nx = g[0]->t[g[0]->inputs[0]].numel, ny = g[0]->t[g[0]->outputs[0]].numel;
    float *x = rnd_floats(nx, -1, 1), *r = rnd_floats(ny, -1, 1);
    float *y[2] = {malloc(sizeof(float) * (size_t)ny), malloc(sizeof(float) * (size_t)ny)};
    float *dx[2] = {malloc(sizeof(float) * (size_t)nx), malloc(sizeof(float) * (size_t)nx)};
    int ok = 1;
    for (int v = 0; v < 2; v++) ok &= nm_check(run(g[v], x, r, y[v], dx[v]), "%s %s: run", kinds[k], op);
    for (int rep = 0; ok && rep < 2; rep++) {   /* twice: gradients must not accumulate across calls */
        double ey = rel_diff(y[0], y[1], ny), edx = rel_diff(dx[0], dx[1], nx);
        nm_check(ey < 1e-5 && edx < 1e-4, "%s %s (call %d): output differs by %.3g, input gradient by %.3g",
                 kinds[k], op, rep + 1, ey, edx);
        ok &= run(g[0], x, r, y[0], dx[0]);
    }
    /* Finite differences only where the graph is smooth: crossing a Relu,
     * Clip or MaxPool kink within eps makes float32 differences unreliable
     * (those operators are checked one by one in test_ops_*); the sigmoids
     * make gradients small, so eps is large against float32 rounding. */
    if (ok && k == RESIDUAL && (strcmp(op, "Sigmoid") == 0 || strcmp(op, "Tanh") == 0)) {
        memcpy(g[0]->t[g[0]->inputs[0]].data, x, sizeof(float) * (size_t)nx);
        double e = nm_test_gradcheck(g[0], 1e-2f, 48, 7);
        nm_check(e <= 1e-2, "%s %s: finite differences, relative error %.3g", kinds[k], op, e);
    }
    free(x), free(r), free(y[0]), free(y[1]), free(dx[0]), free(dx[1]);
    nm_graph_free(g[0]);
    nm_graph_free(g[1]);
}

int main(void)
{
    static const char *ops[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh"};
    for (int i = 0; i < 5; i++) {
        check(RESIDUAL, ops[i]);
        check(CONCAT, ops[i]);
        check(PADPOOL, ops[i]);
    }
    return nm_test_summary();
}
