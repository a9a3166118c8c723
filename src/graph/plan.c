/* Preparation: operator init, shape inference with constant folding,
 * gradient flags and memory, all once, before the first run. */
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

#define NM_DEFAULT_MAX_ELEMENTS ((int64_t)1 << 30)
#define NM_DEFAULT_MAX_BYTES ((int64_t)8 << 30)
#define NM_ALIGN 64

static nm_status check_tensor_size(nm_graph *g, nm_tensor *t, nm_error *err)
{
    char buf[160];
    int64_t max = g->limits.max_elements > 0 ? g->limits.max_elements : NM_DEFAULT_MAX_ELEMENTS;
    t->numel = nm_shape_numel(&t->shape);
    if (t->numel < 0)
        return nm_fail(err, NM_ERR_SHAPE, "%s: tensor '%s' has an invalid shape %s", g->source,
                       t->name, nm_shape_str(&t->shape, buf, sizeof buf));
    if (t->numel > max)
        return nm_fail(err, NM_ERR_LIMIT,
                       "%s: tensor '%s' of shape %s would need %lld elements (limit %lld)",
                       g->source, t->name, nm_shape_str(&t->shape, buf, sizeof buf),
                       (long long)t->numel, (long long)max);
    return NM_OK;
}

/* Buffers are 64-byte aligned for oneDNN and vector loops. */
static void *alloc_buffer(int64_t numel, size_t elem)
{
    size_t bytes = (size_t)(numel ? numel : 1) * elem;
    bytes = (bytes + NM_ALIGN - 1) / NM_ALIGN * NM_ALIGN;
    void *p = aligned_alloc(NM_ALIGN, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static nm_status init_ops(nm_graph *g, nm_error *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        nm_node *n = &g->nodes[i];
        const nm_op_impl *impl = nm_op_get(n->op);
        if (!impl)
            return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: unsupported operator '%s' (node '%s', opset %d)",
                           g->source, n->op_type, n->name, g->opset);
        nm_status s = impl->init ? impl->init(g, n, err) : NM_OK;
        if (s) return s;
    }
    return NM_OK;
}

/* Shape depends only on the input's shape, so Shape folds even on live data. */
static int node_is_foldable(nm_graph *g, const nm_node *n)
{
    if (n->op == NM_OP_SHAPE) return 1;
    for (int i = 0; i < n->n_in; i++) {
        const nm_tensor *t = nm_in(g, n, i);
        if (t && !t->is_const) return 0;
    }
    return 1;
}

static nm_status fold_node(nm_graph *g, nm_node *n, nm_error *err)
{
    for (int i = 0; i < n->n_out; i++) {
        nm_tensor *t = nm_out(g, n, i);
        if (!t) continue;
        t->data = alloc_buffer(t->numel, nm_dtype_size(t->dtype));
        if (!t->data) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory folding node '%s'", g->source, n->name);
    }
    if (nm_op_get(n->op)->forward(g, n) != NM_OK)
        return nm_fail(err, NM_ERR_INTERNAL, "%s: node '%s' (%s) failed while folding constants",
                       g->source, n->name, n->op_type);
    for (int i = 0; i < n->n_out; i++)
        if (nm_out(g, n, i)) nm_out(g, n, i)->is_const = 1;
    n->dead = 1;
    return NM_OK;
}

static nm_status check_inputs_known(nm_graph *g, const nm_node *n, nm_error *err)
{
    for (int i = 0; i < n->n_in; i++) {
        const nm_tensor *t = nm_in(g, n, i);
        if (t && t->dtype == NM_UNDEFINED)
            return nm_fail(err, NM_ERR_PARSE, "%s: node '%s' reads tensor '%s', which nothing defines",
                           g->source, n->name, t->name);
    }
    return NM_OK;
}

/* Gradient flags flow forward in execution order, so each op's reshape
 * already knows which of its inputs want gradients (and builds its backward
 * primitives once, there). */
static void mark_inputs_grad(nm_graph *g, unsigned grad_inputs)
{
    for (int i = 0; i < g->n_inputs && i < 32; i++) {
        nm_tensor *t = &g->t[g->inputs[i]];
        t->requires_grad = (grad_inputs >> i & 1u) && t->dtype == NM_FLOAT;
    }
}

static void mark_outputs_grad(nm_graph *g, const nm_node *n)
{
    int any = 0;
    for (int k = 0; k < n->n_in; k++)
        if (nm_in(g, n, k) && nm_in(g, n, k)->requires_grad) any = 1;
    if (!nm_op_get(n->op)->backward) any = 0;
    for (int k = 0; k < n->n_out; k++) {
        nm_tensor *t = nm_out(g, n, k);
        if (t) t->requires_grad = any && t->dtype == NM_FLOAT && !t->is_const;
    }
}

static nm_status infer_shapes(nm_graph *g, unsigned grad_inputs, nm_error *err)
{
    for (int i = 0; i < g->n_inputs; i++) {
        nm_status s = check_tensor_size(g, &g->t[g->inputs[i]], err);
        if (s) return s;
    }
    mark_inputs_grad(g, grad_inputs);
    for (int i = 0; i < g->n_nodes; i++) {
        nm_node *n = &g->nodes[i];
        nm_status s = check_inputs_known(g, n, err);
        if (!s) s = nm_op_get(n->op)->reshape(g, n, err);
        for (int k = 0; !s && k < n->n_out; k++)
            if (nm_out(g, n, k)) s = check_tensor_size(g, nm_out(g, n, k), err);
        if (!s && node_is_foldable(g, n)) s = fold_node(g, n, err);
        if (s) return s;
        mark_outputs_grad(g, n);
    }
    nm_graph_drop_dead(g);
    return NM_OK;
}

static nm_status allocate(nm_graph *g, nm_error *err)
{
    int64_t total = 0;
    int64_t max = g->limits.max_bytes > 0 ? g->limits.max_bytes : NM_DEFAULT_MAX_BYTES;
    for (int i = 0; i < g->n_t; i++) {
        const nm_tensor *t = &g->t[i];
        if (t->dtype == NM_UNDEFINED) continue;
        int64_t per = (int64_t)nm_dtype_size(t->dtype) * (t->is_const ? 0 : 1) + (t->requires_grad ? 4 : 0);
        total += per * t->numel;
    }
    g->planned_bytes = total;
    if (total > max)
        return nm_fail(err, NM_ERR_LIMIT, "%s: the model would need %.1f MiB of tensor memory (limit %.1f MiB)",
                       g->source, (double)total / (1 << 20), (double)max / (1 << 20));
    for (int i = 0; i < g->n_t; i++) {
        nm_tensor *t = &g->t[i];
        if (t->dtype == NM_UNDEFINED) continue;
        if (!t->is_const && !t->data) t->data = alloc_buffer(t->numel, nm_dtype_size(t->dtype));
        if (t->requires_grad && !t->grad) t->grad = alloc_buffer(t->numel, sizeof(float));
        if ((!t->is_const && !t->data) || (t->requires_grad && !t->grad))
            return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for tensor '%s'", g->source, t->name);
    }
    return NM_OK;
}

static nm_status ensure_engine(nm_graph *g, nm_error *err)
{
    if (!g->engine && dnnl_engine_create(&g->engine, dnnl_cpu, 0) != dnnl_success)
        return nm_fail(err, NM_ERR_INTERNAL, "oneDNN: cannot create a CPU engine");
    if (!g->stream && dnnl_stream_create(&g->stream, g->engine, dnnl_stream_default_flags) != dnnl_success)
        return nm_fail(err, NM_ERR_INTERNAL, "oneDNN: cannot create a stream");
    return NM_OK;
}

nm_status nm_graph_prepare(nm_graph *g, unsigned grad_inputs, nm_error *err)
{
    nm_status s = ensure_engine(g, err);
    if (!s) s = init_ops(g, err);
    if (!s) s = infer_shapes(g, grad_inputs, err);
    return s ? s : allocate(g, err);
}
