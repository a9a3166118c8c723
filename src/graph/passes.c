/* Graph passes run once after import: topological sort, removal of
 * Identity/Dropout, folding of BatchNormalization into the preceding Conv,
 * and compaction of the node array. */
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
