/* Running a prepared graph: forward in order, backward in reverse. */
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
