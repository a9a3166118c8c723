/* Running a prepared graph: forward in order, backward in reverse. */
#include <string.h>

#include "graph/graph.h"

nm_status nm_graph_forward(nm_graph *g, nm_error *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        nm_node *n = &g->nodes[i];
        if (nm_op_get(n->op)->forward(g, n) != NM_OK)
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

nm_status nm_graph_backward(nm_graph *g, nm_error *err)
{
    for (int i = 0; i < g->n_t; i++) {
        nm_tensor *t = &g->t[i];
        if (t->grad && !t->is_output) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    }
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        nm_node *n = &g->nodes[i];
        const nm_op_impl *impl = nm_op_get(n->op);
        if (!impl->backward || !wants_backward(g, n)) continue;
        if (impl->backward(g, n) != NM_OK)
            return nm_fail(err, NM_ERR_INTERNAL, "%s: node '%s' (%s) failed in backward", g->source,
                           n->name, n->op_type);
    }
    return NM_OK;
}
