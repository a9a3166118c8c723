/* Graph passes on hand-built graphs: topological sort and cycle refusal,
 * Identity/Dropout removal, and BatchNormalization folding, which must leave
 * the numbers unchanged (checked with a plain reference convolution, and
 * through the real operators when they are linked in). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int tensor(nm_graph *g, const char *name) { return nm_graph_tensor(g, name); }

static int node1(nm_graph *g, const char *op, const char *name, int in, int out)
{
    return nm_graph_add_node(g, op, name, 1, &in, 1, &out);
}

static void set_const(nm_graph *g, int t, int ndim, const int64_t *dims, const float *vals)
{
    nm_shape s = {.ndim = ndim};
    for (int i = 0; i < ndim; i++) s.dims[i] = dims[i];
    int64_t n = nm_shape_numel(&s);
    float *d = malloc(sizeof(float) * (size_t)n);
    memcpy(d, vals, sizeof(float) * (size_t)n);
    nm_tensor_set_const(&g->t[t], NM_FLOAT, &s, d);
}

static void set_input(nm_graph *g, int t, int ndim, const int64_t *dims)
{
    g->t[t].dtype = NM_FLOAT;
    g->t[t].shape.ndim = ndim;
    for (int i = 0; i < ndim; i++) g->t[t].shape.dims[i] = dims[i];
    g->t[t].numel = nm_shape_numel(&g->t[t].shape);
    nm_graph_add_input(g, t);
}

/* ------------------------------------------------------------ sort */

static void test_sort(void)
{
    nm_error err = {0};
    nm_graph *g = nm_graph_new("sort");
    int x = tensor(g, "x"), a = tensor(g, "a"), b = tensor(g, "b"), c = tensor(g, "c");
    set_input(g, x, 1, (int64_t[]){4});
    /* Added consumers first: c = Relu(b), b = Relu(a), a = Relu(x). */
    node1(g, "Relu", "third", b, c);
    node1(g, "Relu", "second", a, b);
    node1(g, "Relu", "first", x, a);
    nm_graph_add_output(g, c);
    nm_status st = nm_graph_sort(g, &err);
    nm_check(st == NM_OK, "sort: %s", err.msg);
    nm_check(g->n_nodes == 3 && strcmp(g->nodes[0].name, "first") == 0 &&
                 strcmp(g->nodes[1].name, "second") == 0 && strcmp(g->nodes[2].name, "third") == 0,
             "sort: dependency order");
    nm_check(g->t[a].producer == 0 && g->t[b].producer == 1 && g->t[c].producer == 2 && g->t[x].producer == -1,
             "sort: producers set");
    nm_graph_free(g);

    /* Already sorted, with independent branches: the order must not change. */
    g = nm_graph_new("stable");
    x = tensor(g, "x");
    set_input(g, x, 1, (int64_t[]){4});
    const char *names[] = {"n0", "n1", "n2", "n3"};
    int outs[4];
    for (int i = 0; i < 4; i++) {
        char t[8];
        snprintf(t, sizeof t, "t%d", i);
        outs[i] = tensor(g, t);
        node1(g, "Relu", names[i], i == 2 ? outs[0] : x, outs[i]);
    }
    nm_graph_add_output(g, outs[3]);
    st = nm_graph_sort(g, &err);
    int same = st == NM_OK;
    for (int i = 0; same && i < 4; i++) same = strcmp(g->nodes[i].name, names[i]) == 0;
    nm_check(same, "sort: a sorted graph keeps its order");
    nm_graph_free(g);
}

static void test_cycle(void)
{
    nm_error err = {0};
    nm_graph *g = nm_graph_new("cyclic.onnx");
    int x = tensor(g, "x"), a = tensor(g, "a"), b = tensor(g, "b");
    set_input(g, x, 1, (int64_t[]){4});
    int in[2] = {x, b};
    nm_graph_add_node(g, "Add", "add", 2, in, 1, &a);
    node1(g, "Relu", "relu", a, b);
    nm_graph_add_output(g, b);
    nm_status st = nm_graph_sort(g, &err);
    nm_check(st == NM_ERR_PARSE && strstr(err.msg, "cycle") && strstr(err.msg, "cyclic.onnx"),
             "cycle refused: %s", err.msg);
    nm_graph_free(g);

    g = nm_graph_new("self");
    x = tensor(g, "x");
    a = tensor(g, "a");
    set_input(g, x, 1, (int64_t[]){4});
    node1(g, "Relu", "loop", a, a);
    nm_graph_add_output(g, a);
    st = nm_graph_sort(g, &err);
    nm_check(st == NM_ERR_PARSE && strstr(err.msg, "'loop'"), "self loop refused: %s", err.msg);
    nm_graph_free(g);

    g = nm_graph_new("twice");
    x = tensor(g, "x");
    a = tensor(g, "a");
    set_input(g, x, 1, (int64_t[]){4});
    node1(g, "Relu", "one", x, a);
    node1(g, "Sigmoid", "two", x, a);
    nm_graph_add_output(g, a);
    st = nm_graph_sort(g, &err);
    nm_check(st == NM_ERR_PARSE && strstr(err.msg, "produced by"), "two producers refused: %s", err.msg);
    nm_graph_free(g);
}

/* ------------------------------------------------------------ identities */

static void test_identities(void)
{
    nm_error err = {0};
    nm_graph *g = nm_graph_new("ident");
    int x = tensor(g, "x"), a = tensor(g, "a"), b = tensor(g, "b"), c = tensor(g, "c");
    int d = tensor(g, "d"), y = tensor(g, "y"), z = tensor(g, "z");
    set_input(g, x, 2, (int64_t[]){2, 3});
    node1(g, "Relu", "r1", x, a);
    node1(g, "Identity", "id", a, b);     /* interior: consumers read a */
    node1(g, "Relu", "r2", b, c);
    node1(g, "Sigmoid", "s", c, d);
    node1(g, "Dropout", "drop", d, y);    /* feeds a graph output: s must write y */
    node1(g, "Identity", "passthru", x, z);   /* input -> output: kept */
    nm_graph_add_output(g, y);
    nm_graph_add_output(g, z);
    nm_status st = nm_graph_sort(g, &err);
    if (!st) st = nm_graph_remove_identities(g, &err);
    nm_check(st == NM_OK, "remove identities: %s", err.msg);
    nm_check(g->n_nodes == 4, "identities: 4 nodes left (got %d)", g->n_nodes);
    int r2 = -1, s = -1, kept = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        if (strcmp(g->nodes[k].name, "r2") == 0) r2 = k;
        if (strcmp(g->nodes[k].name, "s") == 0) s = k;
        if (strcmp(g->nodes[k].name, "passthru") == 0) kept = 1;
    }
    nm_check(r2 >= 0 && g->nodes[r2].in[0] == a, "identity: consumer rewired to its input");
    nm_check(s >= 0 && g->nodes[s].out[0] == y && g->t[y].producer == s,
             "dropout before a graph output: producer writes the output");
    nm_check(g->outputs[0] == y && strcmp(g->t[g->outputs[0]].name, "y") == 0, "graph output keeps its name");
    nm_check(kept, "identity from a graph input to a graph output is kept");
    nm_graph_free(g);

    /* A Dropout whose mask output is used stays. */
    g = nm_graph_new("mask");
    x = tensor(g, "x");
    a = tensor(g, "a");
    int mask = tensor(g, "mask"), outs[2] = {a, mask};
    set_input(g, x, 1, (int64_t[]){4});
    nm_graph_add_node(g, "Dropout", "drop", 1, &x, 2, outs);
    b = tensor(g, "b");
    node1(g, "Relu", "r", a, b);
    nm_graph_add_output(g, b);
    nm_graph_add_output(g, mask);
    st = nm_graph_sort(g, &err);
    if (!st) st = nm_graph_remove_identities(g, &err);
    nm_check(st == NM_OK && g->n_nodes == 2, "dropout with a used mask is kept");
    nm_graph_free(g);
}

/* ------------------------------------------------------------ BN folding */

enum { N = 1, C = 2, H = 5, W = 6, M = 3, K = 3, OH = H - K + 1, OW = W - K + 1 };

typedef struct bn_params {
    float w[M * C * K * K], b[M], gamma[M], beta[M], mean[M], var[M], x[N * C * H * W];
} bn_params;

static void make_params(bn_params *p, uint64_t seed)
{
    nm_test_rand_fill(p->w, M * C * K * K, -1, 1, &seed);
    nm_test_rand_fill(p->b, M, -1, 1, &seed);
    nm_test_rand_fill(p->gamma, M, 0.5f, 2, &seed);
    nm_test_rand_fill(p->beta, M, -1, 1, &seed);
    nm_test_rand_fill(p->mean, M, -1, 1, &seed);
    nm_test_rand_fill(p->var, M, 0.1f, 2, &seed);
    nm_test_rand_fill(p->x, N * C * H * W, -1, 1, &seed);
}

/* Valid 2-D convolution, stride 1, no padding. */
static void ref_conv(const float *x, const float *w, const float *b, float *y)
{
    for (int m = 0; m < M; m++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                double s = b ? b[m] : 0;
                for (int c = 0; c < C; c++)
                    for (int u = 0; u < K; u++)
                        for (int v = 0; v < K; v++)
                            s += (double)x[(c * H + i + u) * W + j + v] * w[((m * C + c) * K + u) * K + v];
                y[(m * OH + i) * OW + j] = (float)s;
            }
}

static void ref_conv_bn(const bn_params *p, int with_bias, float eps, float *y)
{
    ref_conv(p->x, p->w, with_bias ? p->b : NULL, y);
    for (int m = 0; m < M; m++)
        for (int k = 0; k < OH * OW; k++) {
            float *v = &y[m * OH * OW + k];
            *v = (float)((*v - p->mean[m]) / sqrt((double)p->var[m] + eps) * p->gamma[m] + p->beta[m]);
        }
}

/* x -> Conv(w[, b]) -> BN -> y. With `shared_w`, a second Conv reads w too. */
static nm_graph *conv_bn_graph(const bn_params *p, int with_bias, int shared_w, int eps_attr)
{
    nm_graph *g = nm_graph_new("convbn");
    int x = tensor(g, "x"), w = tensor(g, "w"), cv = tensor(g, "conv_out"), y = tensor(g, "y");
    set_input(g, x, 4, (int64_t[]){N, C, H, W});
    set_const(g, w, 4, (int64_t[]){M, C, K, K}, p->w);
    int bn_in[5] = {cv, tensor(g, "gamma"), tensor(g, "beta"), tensor(g, "mean"), tensor(g, "var")};
    const float *bn_vals[4] = {p->gamma, p->beta, p->mean, p->var};
    for (int i = 0; i < 4; i++) set_const(g, bn_in[i + 1], 1, (int64_t[]){M}, bn_vals[i]);
    int conv_in[3] = {x, w, -1};
    if (with_bias) {
        conv_in[2] = tensor(g, "b");
        set_const(g, conv_in[2], 1, (int64_t[]){M}, p->b);
    }
    nm_graph_add_node(g, "Conv", "conv", with_bias ? 3 : 2, conv_in, 1, &cv);
    int bn = nm_graph_add_node(g, "BatchNormalization", "bn", 5, bn_in, 1, &y);
    if (eps_attr) nm_node_add_attr(&g->nodes[bn], "epsilon", NM_ATTR_FLOAT)->f = 1e-3f;
    nm_graph_add_output(g, y);
    if (shared_w) {
        int y2 = tensor(g, "y2");
        nm_graph_add_node(g, "Conv", "conv2", 2, conv_in, 1, &y2);
        nm_graph_add_output(g, y2);
    }
    return g;
}

static float max_diff(const float *a, const float *b, int n)
{
    float worst = 0;
    for (int i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= worst)) worst = fabsf(a[i] - b[i]);
    return worst;
}

static void test_fold_case(int with_bias, int eps_attr)
{
    bn_params p;
    make_params(&p, 42 + (uint64_t)with_bias);
    float eps = eps_attr ? 1e-3f : 1e-5f;
    float want[M * OH * OW], got[M * OH * OW];
    ref_conv_bn(&p, with_bias, eps, want);

    nm_error err = {0};
    nm_graph *g = conv_bn_graph(&p, with_bias, 0, eps_attr);
    nm_status st = nm_graph_sort(g, &err);
    if (!st) st = nm_graph_fold_batchnorm(g, &err);
    nm_check(st == NM_OK, "fold: %s", err.msg);
    const nm_node *conv = &g->nodes[0];
    int ok = g->n_nodes == 1 && conv->op == NM_OP_CONV && conv->n_in == 3 && conv->in[2] >= 0 &&
             conv->out[0] == g->outputs[0] && g->t[conv->out[0]].producer == 0;
    nm_check(ok, "fold (bias %d): BN removed, conv writes y with a bias", with_bias);
    if (ok) {
        ref_conv(p.x, nm_f32(&g->t[conv->in[1]]), nm_f32(&g->t[conv->in[2]]), got);
        float e = max_diff(got, want, M * OH * OW);
        nm_check(e < 1e-5f, "fold (bias %d, eps %g): folded conv matches conv+BN (max diff %g)", with_bias,
                 (double)eps, (double)e);
    }
    nm_graph_free(g);
}

static void test_fold_refused(void)
{
    bn_params p;
    make_params(&p, 7);
    nm_error err = {0};
    nm_graph *g = conv_bn_graph(&p, 1, 1, 0);
    nm_status st = nm_graph_sort(g, &err);
    if (!st) st = nm_graph_fold_batchnorm(g, &err);
    nm_check(st == NM_OK && g->n_nodes == 3, "fold skipped when the conv weight is shared");
    nm_graph_free(g);

    g = conv_bn_graph(&p, 1, 0, 0);
    nm_graph_add_output(g, nm_graph_find_tensor(g, "conv_out"));
    st = nm_graph_sort(g, &err);
    if (!st) st = nm_graph_fold_batchnorm(g, &err);
    nm_check(st == NM_OK && g->n_nodes == 2, "fold skipped when the conv output is a graph output");
    nm_graph_free(g);
}

/* Through the real operators: folded and unfolded graphs give one output. */
static void test_fold_runtime(void)
{
    if (!nm_op_get(NM_OP_CONV) || !nm_op_get(NM_OP_BATCHNORM)) {
        printf("Conv or BatchNormalization not linked: runtime fold check skipped\n");
        return;
    }
    bn_params p;
    make_params(&p, 99);
    float out[2][M * OH * OW];
    for (int fold = 0; fold < 2; fold++) {
        nm_error err = {0};
        nm_graph *g = conv_bn_graph(&p, 0, 0, 0);
        nm_status st = nm_graph_sort(g, &err);
        if (!st && fold) st = nm_graph_fold_batchnorm(g, &err);
        if (!st) st = nm_graph_prepare(g, 0u, &err);
        if (!st) memcpy(g->t[g->inputs[0]].data, p.x, sizeof p.x);
        if (!st) st = nm_graph_forward(g, &err);
        nm_check(st == NM_OK, "runtime (fold %d): %s", fold, err.msg);
        if (!st) memcpy(out[fold], nm_f32(&g->t[g->outputs[0]]), sizeof out[fold]);
        nm_graph_free(g);
        if (st) return;
    }
    float e = max_diff(out[0], out[1], M * OH * OW);
    nm_check(e < 1e-4f, "runtime: folded graph output matches unfolded (max diff %g)", (double)e);
}

int main(void)
{
    test_sort();
    test_cycle();
    test_identities();
    test_fold_case(1, 0);
    test_fold_case(0, 1);
    test_fold_refused();
    test_fold_runtime();
    return nm_test_summary();
}
