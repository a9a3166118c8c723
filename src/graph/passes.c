/* Graph passes run once after import: topological sort, removal of
 * Identity/Dropout, folding of BatchNormalization into the preceding Conv,
 * and compaction of the node array; and, inside nm_graph_prepare once
 * constants are folded, the fusions that let oneDNN do more per primitive
 * (Conv + activation, Conv + residual Add, Pad + AveragePool). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

/* ------------------------------------------------------------ helpers */

/* How many node input slots (of live nodes) read tensor `t`. */
static int count_uses(const nm_graph *g, int t)
{
    int uses = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_in; i++) uses += n->in[i] == t;
    }
    return uses;
}

static void replace_uses(nm_graph *g, int from, int to)
{
    for (int k = 0; k < g->n_nodes; k++) {
        nm_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] == from) n->in[i] = to;
    }
}

/* Index of the live node writing tensor `t`, scanning (producer fields may
 * be stale while a pass runs); -1 when none. */
static int find_producer(const nm_graph *g, int t)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int o = 0; o < n->n_out; o++)
            if (n->out[o] == t) return k;
    }
    return -1;
}

static void set_producers(nm_graph *g)
{
    for (int i = 0; i < g->n_t; i++) g->t[i].producer = -1;
    for (int k = 0; k < g->n_nodes; k++)
        for (int o = 0; o < g->nodes[k].n_out; o++)
            if (g->nodes[k].out[o] >= 0) g->t[g->nodes[k].out[o]].producer = k;
}

void nm_graph_drop_dead(nm_graph *g)
{
    int kept = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead) {
            nm_node_free(&g->nodes[k]);
            continue;
        }
        if (kept != k) g->nodes[kept] = g->nodes[k];
        kept++;
    }
    if (kept < g->n_nodes) memset(&g->nodes[kept], 0, sizeof *g->nodes * (size_t)(g->n_nodes - kept));
    g->n_nodes = kept;
    set_producers(g);
}

/* ------------------------------------------------------------ sort */

/* Min-heap of node indices: Kahn's algorithm picking the lowest original
 * index first keeps an already sorted graph in its file order. */
typedef struct heap {
    int *v, n;
} heap;

static void heap_push(heap *h, int x)
{
    int i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2] > x) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
}

static int heap_pop(heap *h)
{
    int top = h->v[0], x = h->v[--h->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c]) c++;
        if (x <= h->v[c]) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = x;
    return top;
}

typedef struct sort_work {
    int *indeg;       /* per node: inputs whose producer is not yet placed */
    int *edge_start;  /* CSR of producer -> consumer edges, n_nodes + 1 */
    int *edges;
    int *order;
    int *heap_store;
} sort_work;

static void sort_work_free(sort_work *w)
{
    free(w->indeg);
    free(w->edge_start);
    free(w->edges);
    free(w->order);
    free(w->heap_store);
}

/* Producer of each tensor (one at most) into g->t[].producer. */
static nm_status find_producers(nm_graph *g, nm_error *err)
{
    for (int i = 0; i < g->n_t; i++) g->t[i].producer = -1;
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *n = &g->nodes[k];
        for (int o = 0; o < n->n_out; o++) {
            if (n->out[o] < 0) continue;
            nm_tensor *t = &g->t[n->out[o]];
            if (t->producer >= 0)
                return nm_fail(err, NM_ERR_PARSE, "%s: tensor '%s' is produced by node '%s' and by node '%s'",
                               g->source, t->name, g->nodes[t->producer].name, n->name);
            t->producer = k;
        }
    }
    return NM_OK;
}

static nm_status build_edges(nm_graph *g, sort_work *w, nm_error *err)
{
    int nn = g->n_nodes;
    size_t n_edges = 0;
    for (int k = 0; k < nn; k++) n_edges += (size_t)g->nodes[k].n_in;
    w->indeg = calloc((size_t)nn + 1, sizeof(int));
    w->edge_start = calloc((size_t)nn + 2, sizeof(int));
    w->edges = malloc((n_edges + 1) * sizeof(int));
    w->order = malloc(((size_t)nn + 1) * sizeof(int));
    w->heap_store = malloc(((size_t)nn + 1) * sizeof(int));
    if (!w->indeg || !w->edge_start || !w->edges || !w->order || !w->heap_store)
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    /* Count, prefix-sum, fill: edge p -> k for each input of k produced by p. */
    for (int k = 0; k < nn; k++)
        for (int i = 0; i < g->nodes[k].n_in; i++) {
            int t = g->nodes[k].in[i];
            int p = t >= 0 ? g->t[t].producer : -1;
            if (p < 0) continue;
            w->edge_start[p + 1]++;
            w->indeg[k]++;
        }
    for (int k = 0; k < nn; k++) w->edge_start[k + 1] += w->edge_start[k];
    int *fill = w->order;   /* borrowed as a cursor array before it holds the order */
    for (int k = 0; k < nn; k++) fill[k] = w->edge_start[k];
    for (int k = 0; k < nn; k++)
        for (int i = 0; i < g->nodes[k].n_in; i++) {
            int t = g->nodes[k].in[i];
            int p = t >= 0 ? g->t[t].producer : -1;
            if (p >= 0) w->edges[fill[p]++] = k;
        }
    return NM_OK;
}

static nm_status apply_order(nm_graph *g, const int *order, nm_error *err)
{
    size_t nn = g->n_nodes > 0 ? (size_t)g->n_nodes : 0;
    nm_node *sorted = malloc(sizeof *sorted * (nn + 1));
    if (!sorted) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    for (size_t k = 0; k < nn; k++) sorted[k] = g->nodes[order[k]];
    if (nn) memcpy(g->nodes, sorted, sizeof *sorted * nn);
    free(sorted);
    set_producers(g);
    return NM_OK;
}

nm_status nm_graph_sort(nm_graph *g, nm_error *err)
{
    nm_graph_drop_dead(g);
    nm_status st = find_producers(g, err);
    if (st) return st;
    sort_work w = {0};
    st = build_edges(g, &w, err);
    if (st) {
        sort_work_free(&w);
        return st;
    }
    heap h = {w.heap_store, 0};
    for (int k = 0; k < g->n_nodes; k++)
        if (w.indeg[k] == 0) heap_push(&h, k);
    int placed = 0;
    while (h.n > 0) {
        int k = heap_pop(&h);
        w.order[placed++] = k;
        for (int e = w.edge_start[k]; e < w.edge_start[k + 1]; e++)
            if (--w.indeg[w.edges[e]] == 0) heap_push(&h, w.edges[e]);
    }
    if (placed < g->n_nodes) {
        int stuck = 0;
        while (w.indeg[stuck] == 0) stuck++;
        st = nm_fail(err, NM_ERR_PARSE, "%s: graph has a cycle (node '%s')", g->source, g->nodes[stuck].name);
    } else {
        st = apply_order(g, w.order, err);
    }
    sort_work_free(&w);
    return st;
}

/* ------------------------------------------------------------ identities */

/* Dropout at inference passes its input through; its optional mask output
 * must be unused for the node to vanish. */
static int removable(const nm_graph *g, const nm_node *n)
{
    if (n->op != NM_OP_IDENTITY && n->op != NM_OP_DROPOUT) return 0;
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1 || n->out[0] < 0) return 0;
    if (n->op == NM_OP_DROPOUT && n->n_in > 2 && n->in[2] >= 0) {   /* training_mode input */
        const nm_tensor *tm = &g->t[n->in[2]];
        if (!tm->is_const || tm->numel != 1 || !tm->data) return 0;
        if (tm->dtype == NM_INT64 ? nm_i64(tm)[0] != 0 : nm_f32(tm)[0] != 0) return 0;
    }
    for (int o = 1; o < n->n_out; o++) {
        int t = n->out[o];
        if (t >= 0 && (g->t[t].is_output || count_uses(g, t) > 0)) return 0;
    }
    return 1;
}

/* Drop node k (y = x): consumers of y read x. When y is a graph output, its
 * name must survive: the producer of x writes y instead, provided x is an
 * intermediate no one else needs by name. Otherwise the node stays. */
static void remove_identity(nm_graph *g, int k)
{
    nm_node *n = &g->nodes[k];
    int x = n->in[0], y = n->out[0];
    if (x == y) return;
    if (!g->t[y].is_output) {
        n->dead = 1;
        replace_uses(g, y, x);
        return;
    }
    const nm_tensor *tx = &g->t[x];
    if (tx->is_output || tx->is_input || tx->is_const) return;
    int p = find_producer(g, x);
    if (p < 0) return;
    n->dead = 1;
    nm_node *prod = &g->nodes[p];
    for (int o = 0; o < prod->n_out; o++)
        if (prod->out[o] == x) prod->out[o] = y;
    replace_uses(g, x, y);
}

nm_status nm_graph_remove_identities(nm_graph *g, nm_error *err)
{
    (void)err;
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && removable(g, &g->nodes[k])) remove_identity(g, k);
    nm_graph_drop_dead(g);
    return NM_OK;
}

/* ------------------------------------------------------------ BN folding */

/* A const float tensor with `count` elements, read by exactly one node slot
 * (so rewriting its values affects no one else). */
static int private_const(const nm_graph *g, int t, int64_t count, int need_private)
{
    if (t < 0) return 0;
    const nm_tensor *x = &g->t[t];
    if (!x->is_const || x->dtype != NM_FLOAT || !x->data || x->numel != count) return 0;
    if (need_private && (x->is_output || x->is_input || count_uses(g, t) != 1)) return 0;
    return 1;
}

/* Index of the Conv node whose output feeds BN node `bn`, when the pair can
 * be folded; -1 otherwise. */
static int foldable_conv(const nm_graph *g, const nm_node *bn)
{
    if (bn->n_in < 5 || bn->in[0] < 0 || bn->n_out < 1 || bn->out[0] < 0) return -1;
    for (int o = 1; o < bn->n_out; o++)   /* training-mode statistics outputs */
        if (bn->out[o] >= 0) return -1;
    if (nm_attr_int(bn, "training_mode", 0) != 0) return -1;
    int x = bn->in[0];
    if (g->t[x].is_output || count_uses(g, x) != 1) return -1;
    int c = find_producer(g, x);
    if (c < 0) return -1;
    const nm_node *conv = &g->nodes[c];
    if (conv->op != NM_OP_CONV || conv->n_out != 1 || conv->n_in < 2) return -1;
    const nm_tensor *w = conv->in[1] >= 0 ? &g->t[conv->in[1]] : NULL;
    if (!w || w->shape.ndim < 3 || w->shape.dims[0] <= 0) return -1;
    int64_t m = w->shape.dims[0];
    if (!private_const(g, conv->in[1], w->numel, 1)) return -1;
    if (conv->n_in > 2 && conv->in[2] >= 0 && !private_const(g, conv->in[2], m, 1)) return -1;
    for (int i = 1; i < 5; i++)
        if (!private_const(g, bn->in[i], m, 0)) return -1;
    const float *var = nm_f32(&g->t[bn->in[4]]);
    double eps = nm_attr_float(bn, "epsilon", 1e-5f);
    for (int64_t o = 0; o < m; o++)
        if (!((double)var[o] + eps > 0)) return -1;   /* left to the BatchNormalization node, which refuses it */
    return c;
}

/* A new zero bias of m floats for the conv, named after it. */
static nm_status add_conv_bias(nm_graph *g, int c, int64_t m, nm_error *err)
{
    char name[512];
    int suffix = 0;
    snprintf(name, sizeof name, "%s.folded_bias", g->nodes[c].name);
    while (nm_graph_find_tensor(g, name) >= 0)
        snprintf(name, sizeof name, "%s.folded_bias_%d", g->nodes[c].name, ++suffix);
    float *zero = calloc((size_t)m, sizeof(float));
    int *in = realloc(g->nodes[c].in, sizeof(int) * 3);
    if (in) g->nodes[c].in = in;
    int t = (zero && in) ? nm_graph_tensor(g, name) : -1;
    if (t < 0) {
        free(zero);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    }
    nm_shape s = {.ndim = 1, .dims = {m}};
    nm_tensor_set_const(&g->t[t], NM_FLOAT, &s, zero);
    g->nodes[c].in[2] = t;
    g->nodes[c].n_in = 3;
    return NM_OK;
}

/* W[m,...] *= s[m]; B[m] = (B[m] - mean[m]) * s[m] + beta[m],
 * s = gamma / sqrt(var + eps). */
static void fold_values(nm_graph *g, const nm_node *conv, const nm_node *bn)
{
    nm_tensor *w = &g->t[conv->in[1]];
    float *wv = nm_f32(w), *bv = nm_f32(&g->t[conv->in[2]]);
    const float *gamma = nm_f32(&g->t[bn->in[1]]), *beta = nm_f32(&g->t[bn->in[2]]);
    const float *mean = nm_f32(&g->t[bn->in[3]]), *var = nm_f32(&g->t[bn->in[4]]);
    double eps = nm_attr_float(bn, "epsilon", 1e-5f);
    int64_t m = w->shape.dims[0], per = w->numel / m;
    for (int64_t o = 0; o < m; o++) {
        double s = gamma[o] / sqrt((double)var[o] + eps);
        for (int64_t j = 0; j < per; j++) wv[o * per + j] = (float)(wv[o * per + j] * s);
        bv[o] = (float)(((double)bv[o] - mean[o]) * s + beta[o]);
    }
}

nm_status nm_graph_fold_batchnorm(nm_graph *g, nm_error *err)
{
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead || g->nodes[k].op != NM_OP_BATCHNORM) continue;
        int c = foldable_conv(g, &g->nodes[k]);
        if (c < 0) continue;
        if (g->nodes[c].n_in < 3 || g->nodes[c].in[2] < 0) {
            nm_status st = add_conv_bias(g, c, g->t[g->nodes[c].in[1]].shape.dims[0], err);
            if (st) return st;
        }
        nm_node *conv = &g->nodes[c], *bn = &g->nodes[k];
        fold_values(g, conv, bn);
        conv->out[0] = bn->out[0];   /* the conv now writes the BN's output */
        bn->dead = 1;
    }
    nm_graph_drop_dead(g);
    return NM_OK;
}

/* ------------------------------------------------------------ fusions */

/* Remove tensor t from the plan: nothing reads or writes it any more, so it
 * gets no memory and its name no longer resolves to a value. */
static void retire_tensor(nm_graph *g, int t)
{
    nm_tensor *x = &g->t[t];
    x->dtype = NM_UNDEFINED;
    x->shape.ndim = 0;
    x->numel = 0;
    x->requires_grad = 0;
}

/* The only live node reading tensor t, when t is no graph output and is read
 * by exactly one input slot; -1 otherwise. */
static int sole_reader(const nm_graph *g, int t)
{
    if (t < 0 || g->t[t].is_output || count_uses(g, t) != 1) return -1;
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] == t) return k;
    }
    return -1;
}

/* A constant float scalar input (absent: `def`); 0 when not constant. */
static int const_scalar(const nm_graph *g, const nm_node *n, int i, float def, float *v)
{
    if (i >= n->n_in || n->in[i] < 0) {
        *v = def;
        return 1;
    }
    const nm_tensor *t = &g->t[n->in[i]];
    if (!t->is_const || !t->data || t->numel != 1 || t->dtype != NM_FLOAT) return 0;
    *v = nm_f32(t)[0];
    return 1;
}

/* The activation node a as the Conv post-op it can become: op, alpha, beta
 * (LeakyRelu: alpha = slope; Clip: [alpha, beta]). 0 when it cannot:
 * the backward derives the gradient from the output alone, which needs a
 * monotonic activation. */
static int fusable_activation(const nm_graph *g, const nm_node *a, float *alpha, float *beta)
{
    *alpha = *beta = 0.0f;
    if (a->n_out != 1 || a->out[0] < 0 || a->n_in < 1) return 0;
    switch (a->op) {
    case NM_OP_RELU:
    case NM_OP_SIGMOID:
    case NM_OP_TANH: return a->n_in == 1;
    case NM_OP_LEAKYRELU:
        *alpha = nm_attr_float(a, "alpha", 0.01f);
        return a->n_in == 1 && *alpha >= 0.0f;
    case NM_OP_CLIP: {
        float lo, hi;
        if (g->opset < 11) {
            if (a->n_in != 1) return 0;
            lo = nm_attr_float(a, "min", -FLT_MAX);
            hi = nm_attr_float(a, "max", FLT_MAX);
        } else if (!const_scalar(g, a, 1, -INFINITY, &lo) || !const_scalar(g, a, 2, INFINITY, &hi)) {
            return 0;
        }
        if (!(lo < hi) || !isfinite(lo) || !isfinite(hi)) return 0;
        *alpha = lo;
        *beta = hi;
        return 1;
    }
    default: return 0;
    }
}

static nm_status set_attr_f(const nm_graph *g, nm_node *n, const char *name, float v, nm_error *err)
{
    nm_attr *a = nm_node_add_attr(n, name, NM_ATTR_FLOAT);
    if (!a) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    a->f = v;
    return NM_OK;
}

static nm_status fuse_conv_activation(nm_graph *g, int c, int k, float alpha, float beta, nm_error *err)
{
    nm_attr *at = nm_node_add_attr(&g->nodes[c], "_nm_act", NM_ATTR_INT);
    if (!at) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    at->i = g->nodes[k].op;
    nm_status st = set_attr_f(g, &g->nodes[c], "_nm_alpha", alpha, err);
    if (!st) st = set_attr_f(g, &g->nodes[c], "_nm_beta", beta, err);
    if (st) return st;
    int y = g->nodes[c].out[0];
    g->nodes[c].out[0] = g->nodes[k].out[0];
    g->nodes[k].dead = 1;
    retire_tensor(g, y);
    return NM_OK;
}

nm_status nm_graph_fuse_activations(nm_graph *g, nm_error *err)
{
    for (int c = 0; c < g->n_nodes; c++) {
        nm_node *conv = &g->nodes[c];
        if (conv->dead || conv->op != NM_OP_CONV || conv->n_out != 1 || conv->out[0] < 0) continue;
        if (nm_attr_get(conv, "_nm_act") || g->t[conv->out[0]].dtype != NM_FLOAT) continue;
        int k = sole_reader(g, conv->out[0]);
        float alpha, beta;
        if (k < 0 || g->nodes[k].in[0] != conv->out[0] || !fusable_activation(g, &g->nodes[k], &alpha, &beta))
            continue;
        nm_status st = fuse_conv_activation(g, c, k, alpha, beta, err);
        if (st) return st;
    }
    nm_graph_drop_dead(g);
    return NM_OK;
}

/* The input slot (0 or 1) of Add node a that a Conv can absorb: written by
 * a Conv with nothing fused yet, read by nothing else; the other input has
 * the output's shape. -1 when none. */
static int absorbable_add_input(const nm_graph *g, const nm_node *a, int *conv)
{
    if (a->op != NM_OP_ADD || a->n_in != 2 || a->n_out != 1 || a->out[0] < 0 || a->in[0] == a->in[1]) return -1;
    const nm_tensor *y = &g->t[a->out[0]];
    for (int j = 0; j < 2; j++) {
        int b = a->in[j], r = a->in[1 - j];
        if (b < 0 || r < 0 || g->t[b].dtype != NM_FLOAT || g->t[r].dtype != NM_FLOAT) return -1;
        if (!nm_shape_equal(&g->t[b].shape, &y->shape) || !nm_shape_equal(&g->t[r].shape, &y->shape)) return -1;
    }
    for (int j = 0; j < 2; j++) {
        int b = a->in[j], c = find_producer(g, b);
        if (c < 0 || sole_reader(g, b) < 0) continue;
        const nm_node *cn = &g->nodes[c];
        if (cn->op != NM_OP_CONV || cn->n_out != 1 || cn->n_in > 3 || nm_attr_get(cn, "_nm_act") ||
            nm_attr_get(cn, "_nm_sum") || g->t[b].shape.ndim != 4)
            continue;
        *conv = c;
        return j;
    }
    return -1;
}

/* Conv c absorbs Add node k (slot j from c): c reads the Add's other input
 * as a fourth input, writes the Add's output and moves to the Add's place
 * in the order (after the other input's producer; c's own inputs come
 * earlier still). */
static nm_status absorb_add(nm_graph *g, int c, int k, int j, nm_error *err)
{
    nm_node *conv = &g->nodes[c];
    int *in = realloc(conv->in, sizeof(int) * 4);
    if (!in) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    conv->in = in;
    if (conv->n_in < 3) in[2] = -1;
    in[3] = g->nodes[k].in[1 - j];
    conv->n_in = 4;
    nm_attr *at = nm_node_add_attr(conv, "_nm_sum", NM_ATTR_INT);
    if (!at) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    at->i = 1;
    int b = conv->out[0];
    conv->out[0] = g->nodes[k].out[0];
    retire_tensor(g, b);
    nm_node tmp = g->nodes[k];   /* the Conv takes the Add's slot; the Add dies in the Conv's */
    g->nodes[k] = g->nodes[c];
    g->nodes[c] = tmp;
    g->nodes[c].dead = 1;
    return NM_OK;
}

nm_status nm_graph_fuse_conv_add(nm_graph *g, nm_error *err)
{
    for (int k = 0; k < g->n_nodes; k++) {
        int c = -1, j;
        if (g->nodes[k].dead || (j = absorbable_add_input(g, &g->nodes[k], &c)) < 0) continue;
        nm_status st = absorb_add(g, c, k, j, err);
        if (st) return st;
        /* Now at k: take the activation reading the sum too. */
        int a = sole_reader(g, g->nodes[k].out[0]);
        float alpha, beta;
        if (a >= 0 && g->nodes[a].in[0] == g->nodes[k].out[0] && fusable_activation(g, &g->nodes[a], &alpha, &beta)) {
            st = fuse_conv_activation(g, k, a, alpha, beta, err);
            if (st) return st;
        }
    }
    nm_graph_drop_dead(g);
    return NM_OK;
}

/* Spatial zero padding of Pad node p on a 4-D float tensor, as AveragePool
 * pads [top, left, bottom, right]; 0 when p pads otherwise. */
static int spatial_zero_pads(const nm_graph *g, const nm_node *p, int64_t pads_out[4])
{
    int64_t pads[8];
    const nm_tensor *x = p->n_in > 0 && p->in[0] >= 0 ? &g->t[p->in[0]] : NULL;
    if (!x || x->dtype != NM_FLOAT || x->shape.ndim != 4 || p->n_out != 1 || p->out[0] < 0) return 0;
    if (strcmp(nm_attr_string(p, "mode", "constant"), "constant") != 0) return 0;
    if (g->opset < 11) {
        if (nm_attr_ints(p, "pads", pads, 8) != 8 || nm_attr_float(p, "value", 0.0f) != 0.0f) return 0;
    } else {
        const nm_tensor *t = p->n_in > 1 && p->in[1] >= 0 ? &g->t[p->in[1]] : NULL;
        float v;
        if (!t || !t->is_const || t->dtype != NM_INT64 || t->numel != 8 || !const_scalar(g, p, 2, 0.0f, &v) ||
            v != 0.0f)
            return 0;
        memcpy(pads, t->data, sizeof pads);
    }
    for (int i = 0; i < 8; i++)
        if (pads[i] < 0 || ((i % 4) < 2 && pads[i] != 0)) return 0;
    pads_out[0] = pads[2], pads_out[1] = pads[3], pads_out[2] = pads[6], pads_out[3] = pads[7];
    return 1;
}

/* An AveragePool without padding of its own, without ceil_mode, 2-D. */
static int plain_avgpool(const nm_node *a)
{
    int64_t pads[4], kernel[4];
    int np = nm_attr_ints(a, "pads", pads, 4);
    if (a->op != NM_OP_AVERAGEPOOL || a->n_out != 1 || nm_attr_int(a, "ceil_mode", 0) != 0) return 0;
    if (strcmp(nm_attr_string(a, "auto_pad", "NOTSET"), "NOTSET") != 0) return 0;
    if (nm_attr_ints(a, "kernel_shape", kernel, 4) != 2) return 0;
    for (int i = 0; i < np && i < 4; i++)
        if (pads[i] != 0) return 0;
    return np <= 0 || np == 4;
}

static nm_status set_pool_pads(const nm_graph *g, nm_node *a, const int64_t pads[4], nm_error *err)
{
    /* Adding an attribute moves the array: add both before taking pointers. */
    int ok = (nm_attr_get(a, "pads") || nm_node_add_attr(a, "pads", NM_ATTR_INTS)) &&
             (nm_attr_get(a, "count_include_pad") || nm_node_add_attr(a, "count_include_pad", NM_ATTR_INT));
    nm_attr *pa = ok ? (nm_attr *)nm_attr_get(a, "pads") : NULL;
    nm_attr *ca = ok ? (nm_attr *)nm_attr_get(a, "count_include_pad") : NULL;
    int64_t *vals = pa ? malloc(4 * sizeof *vals) : NULL;
    if (!pa || !ca || !vals) {
        free(vals);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    }
    memcpy(vals, pads, 4 * sizeof *vals);
    free(pa->ints);
    pa->ints = vals;
    pa->n = 4;
    pa->type = NM_ATTR_INTS;
    ca->type = NM_ATTR_INT;
    ca->i = 1;
    return NM_OK;
}

nm_status nm_graph_fuse_pad_pool(nm_graph *g, nm_error *err)
{
    for (int p = 0; p < g->n_nodes; p++) {
        nm_node *pad = &g->nodes[p];
        int64_t pads[4];
        if (pad->dead || pad->op != NM_OP_PAD || !spatial_zero_pads(g, pad, pads)) continue;
        int k = sole_reader(g, pad->out[0]);
        if (k < 0 || !plain_avgpool(&g->nodes[k]) || g->nodes[k].in[0] != pad->out[0]) continue;
        /* count_include_pad 0 with zero padding of its own would count only
         * the input; the padded Pad output made every position count. */
        nm_status st = set_pool_pads(g, &g->nodes[k], pads, err);
        if (st) return st;
        int y = pad->out[0];
        g->nodes[k].in[0] = g->nodes[p].in[0];
        g->nodes[p].dead = 1;
        retire_tensor(g, y);
    }
    nm_graph_drop_dead(g);
    return NM_OK;
}
