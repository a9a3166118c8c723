/* Running a prepared graph: forward in order, backward in reverse. */
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "ops/channels_last.h"

/* The operator's own functions, or their channels-last variant where the
 * plan laid the node's tensors out channels-last. */
static const nm_op_impl *node_impl(const nm_graph *g, const nm_node *n)
{
    if (n->op == NM_OP_CONCAT && nm_tensor_layout(g, n->out[0]) == NM_LAYOUT_NHWC) return &nm_concat_nhwc;
    return nm_op_get(n->op);
}

nm_status nm_graph_forward(nm_graph *g, nm_error *err)
{
    nm_status s = nm_graph_scratch_ready(g, err);   /* a node rebuilt since may need more */
    if (s) return s;
    for (int i = 0; i < g->n_nodes; i++) {
        nm_node *n = &g->nodes[i];
        if (node_impl(g, n)->forward(g, n) != NM_OK)
            return nm_fail(err, NM_ERR_INTERNAL, "%s: node '%s' (%s) failed in forward", g->source,
                           n->name, n->op_type);
    }
    return NM_OK;
}

/* Each shared tensor's lifetime: from the node writing it to the last node
 * reading it, in execution order; first-fit offsets, largest first, apart
 * from every placed tensor whose lifetime overlaps (a node's inputs and
 * outputs never share). */
static nm_status plan_shared(nm_graph *g, nm_error *err)
{
    int n = g->n_t;
    int *first = malloc(sizeof(int) * (size_t)(n + 1)), *last = malloc(sizeof(int) * (size_t)(n + 1));
    int *order = malloc(sizeof(int) * (size_t)(n + 1));
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(n + 1));
    void **saved = calloc((size_t)n + 1, sizeof(void *));
    if (!first || !last || !order || !off || !saved) {
        free(first), free(last), free(order), free(off), free(saved);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    }
    for (int t = 0; t < n; t++) first[t] = last[t] = -1, off[t] = -1;
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *nd = &g->nodes[k];
        for (int i = 0; i < nd->n_out; i++)
            if (nd->out[i] >= 0 && first[nd->out[i]] < 0) first[nd->out[i]] = k;
        for (int i = 0; i < nd->n_in; i++)
            if (nd->in[i] >= 0) last[nd->in[i]] = k;
    }
    int m = 0;
    for (int t = 0; t < n; t++) {
        const nm_tensor *x = &g->t[t];
        if (x->is_const || x->is_input || x->is_output || !x->data || x->numel <= 0 || first[t] < 0) continue;
        if (last[t] < first[t]) last[t] = first[t];   /* written, never read */
        order[m++] = t;
    }
    for (int i = 1; i < m; i++)   /* largest first (insertion sort: a few hundred tensors) */
        for (int j = i; j > 0 && g->t[order[j]].numel * (int64_t)nm_dtype_size(g->t[order[j]].dtype) >
                                   g->t[order[j - 1]].numel * (int64_t)nm_dtype_size(g->t[order[j - 1]].dtype); j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    int64_t total = 0;
    for (int i = 0; i < m; i++) {
        int t = order[i];
        int64_t bytes = (g->t[t].numel * (int64_t)nm_dtype_size(g->t[t].dtype) + 63) / 64 * 64, at = 0;
        for (int moved = 1; moved;) {   /* past every overlapping placed tensor in the way */
            moved = 0;
            for (int j = 0; j < i; j++) {
                int u = order[j];
                int64_t ub = (g->t[u].numel * (int64_t)nm_dtype_size(g->t[u].dtype) + 63) / 64 * 64;
                if (first[u] > last[t] || first[t] > last[u] || off[u] + ub <= at || at + bytes <= off[u]) continue;
                at = off[u] + ub;
                moved = 1;
            }
        }
        off[t] = at;
        if (at + bytes > total) total = at + bytes;
    }
    free(first), free(last), free(order);
    g->shared = total ? aligned_alloc(64, (size_t)total) : NULL;
    if (total && !g->shared) {
        free(off), free(saved);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for %.1f MiB of shared activations", g->source,
                       (double)total / (1 << 20));
    }
    g->shared_off = off;
    g->shared_saved = saved;
    g->shared_bytes = (size_t)total;
    return NM_OK;
}

nm_status nm_graph_forward_shared(nm_graph *g, nm_error *err)
{
    if (!g->shared_off) {
        nm_status s = plan_shared(g, err);
        if (s) return s;
    }
    for (int t = 0; t < g->n_t; t++)
        if (g->shared_off[t] >= 0) {
            g->shared_saved[t] = g->t[t].data;
            g->t[t].data = (char *)g->shared + g->shared_off[t];
        }
    nm_status s = nm_graph_forward(g, err);
    for (int t = 0; t < g->n_t; t++)
        if (g->shared_off[t] >= 0) g->t[t].data = g->shared_saved[t];
    return s;
}

static int wants_backward(nm_graph *g, const nm_node *n)
{
    for (int k = 0; k < n->n_in; k++)
        if (nm_in(g, n, k) && nm_in(g, n, k)->requires_grad) return 1;
    return 0;
}

/* Only gradients that some backward adds into start from zero each time
 * (the plan's list); the others are overwritten or never written. */
static void clear_gradients(nm_graph *g)
{
    for (int k = 0; k < g->n_zero_grads; k++) {
        nm_tensor *t = &g->t[g->zero_grads[k]];
        if (t->grad) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    }
}

nm_status nm_graph_backward(nm_graph *g, nm_error *err)
{
    nm_status s = nm_graph_scratch_ready(g, err);
    if (s) return s;
    clear_gradients(g);
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        nm_node *n = &g->nodes[i];
        const nm_op_impl *impl = node_impl(g, n);
        if (!impl->backward || !wants_backward(g, n)) continue;
        if (impl->backward(g, n) != NM_OK)
            return nm_fail(err, NM_ERR_INTERNAL, "%s: node '%s' (%s) failed in backward", g->source,
                           n->name, n->op_type);
    }
    return NM_OK;
}
