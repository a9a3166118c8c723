/* Preparation: operator init, shape inference with constant folding,
 * gradient flags, fusions, memory layouts (plain or channels-last per
 * tensor), first-writer gradients, primitives and memory, all once, before
 * the first run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "graph/graph.h"
#include "ops/channels_last.h"
#include "ops/dnnl_util.h"

#define NM_DEFAULT_MAX_ELEMENTS ((int64_t)1 << 30)
#define NM_DEFAULT_MAX_BYTES ((int64_t)8 << 30)
#define NM_ALIGN 64
#define NM_HUGE_PAGE ((size_t)2 << 20)

int64_t nm_graph_max_elements(const nm_graph *g)
{
    return g->limits.max_elements > 0 ? g->limits.max_elements : NM_DEFAULT_MAX_ELEMENTS;
}

static nm_status check_tensor_size(nm_graph *g, nm_tensor *t, nm_error *err)
{
    char buf[160];
    int64_t max = nm_graph_max_elements(g);
    t->numel = nm_shape_numel(&t->shape);
    int negative = 0;
    for (int i = 0; i < t->shape.ndim; i++) negative |= t->shape.dims[i] < 0;
    if (t->numel < 0 && negative)
        return nm_fail(err, NM_ERR_SHAPE, "%s: tensor '%s' has an invalid shape %s", g->source,
                       t->name, nm_shape_str(&t->shape, buf, sizeof buf));
    if (t->numel < 0)   /* the element count overflows int64 */
        return nm_fail(err, NM_ERR_LIMIT, "%s: tensor '%s' of shape %s would need more than 2^63 elements (limit %lld)",
                       g->source, t->name, nm_shape_str(&t->shape, buf, sizeof buf), (long long)max);
    if (t->numel > max)
        return nm_fail(err, NM_ERR_LIMIT,
                       "%s: tensor '%s' of shape %s would need %lld elements (limit %lld)",
                       g->source, t->name, nm_shape_str(&t->shape, buf, sizeof buf),
                       (long long)t->numel, (long long)max);
    return NM_OK;
}

/* Buffers are 64-byte aligned for oneDNN and vector loops. */
/* Buffers of 2 MiB and more start on a 2 MiB boundary and ask for
 * transparent huge pages: a batch-16 mobilenet_v2 plan zeroes ~900 MB of
 * fresh buffers, and with 4 KiB pages those first touches were 81 % of a
 * SmoothGrad run's page faults (docs/speed.md). */
static void *alloc_buffer(int64_t numel, size_t elem)
{
    size_t bytes = (size_t)(numel ? numel : 1) * elem;
    size_t align = bytes >= NM_HUGE_PAGE ? NM_HUGE_PAGE : NM_ALIGN;
    bytes = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, bytes);
#ifdef MADV_HUGEPAGE
    if (p && align == NM_HUGE_PAGE) madvise(p, bytes, MADV_HUGEPAGE);   /* a hint: failure changes nothing */
#endif
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
    nm_status s = nm_graph_scratch_ready(g, err);
    if (s) return s;
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
        /* Conv and pooling build their primitives once layouts are known,
         * after this pass; a node folded now needs them at once. */
        g->defer_build = !node_is_foldable(g, n);
        if (!s) s = nm_op_get(n->op)->reshape(g, n, err);
        for (int k = 0; !s && k < n->n_out; k++)
            if (nm_out(g, n, k)) s = check_tensor_size(g, nm_out(g, n, k), err);
        if (!s && node_is_foldable(g, n)) s = fold_node(g, n, err);
        if (s) return s;
        mark_outputs_grad(g, n);
    }
    g->defer_build = 0;
    nm_graph_drop_dead(g);
    return NM_OK;
}

static nm_status allocate(nm_graph *g, nm_error *err)
{
    int64_t total = 0, top = 0;
    int64_t max = g->limits.max_bytes > 0 ? g->limits.max_bytes : NM_DEFAULT_MAX_BYTES;
    const nm_tensor *largest = NULL;
    for (int i = 0; i < g->n_t; i++) {
        const nm_tensor *t = &g->t[i];
        if (t->dtype == NM_UNDEFINED) continue;
        int64_t per = (int64_t)nm_dtype_size(t->dtype) * (t->is_const ? 0 : 1) + (t->requires_grad ? 4 : 0);
        total += per * t->numel;   /* numel <= max_elements (checked): no overflow */
        if (per * t->numel > top) top = per * t->numel, largest = t;
    }
    g->planned_bytes = total;
    char buf[160];
    if (total > max)
        return nm_fail(err, NM_ERR_LIMIT, "%s: the model would need %.1f MiB of tensor memory (limit %.1f MiB); "
                       "the largest, tensor '%s' %s, needs %.1f MiB with its gradient",
                       g->source, (double)total / (1 << 20), (double)max / (1 << 20), largest->name,
                       nm_shape_str(&largest->shape, buf, sizeof buf), (double)top / (1 << 20));
    for (int i = 0; i < g->n_t; i++) {
        nm_tensor *t = &g->t[i];
        if (t->dtype == NM_UNDEFINED) continue;
        if (!t->is_const && !t->data) t->data = alloc_buffer(t->numel, nm_dtype_size(t->dtype));
        if (t->requires_grad && !t->grad) t->grad = alloc_buffer(t->numel, sizeof(float));
        if ((!t->is_const && !t->data) || (t->requires_grad && !t->grad))
            return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for tensor '%s'", g->source, t->name);
    }
    return nm_graph_scratch_ready(g, err);
}

/* ------------------------------------------------------------ scratch */

void nm_graph_scratch_begin(nm_graph *g) { g->scratch_cursor = 0; }

size_t nm_graph_scratch_take(nm_graph *g, size_t bytes)
{
    size_t off = g->scratch_cursor;
    g->scratch_cursor += (bytes + NM_ALIGN - 1) / NM_ALIGN * NM_ALIGN;
    if (g->scratch_cursor > g->scratch_need) g->scratch_need = g->scratch_cursor;
    return off;
}

/* The old contents go: nothing in the scratch outlives a node's run. */
nm_status nm_graph_scratch_ready(nm_graph *g, nm_error *err)
{
    if (g->scratch && g->scratch_size >= g->scratch_need) return NM_OK;
    size_t bytes = g->scratch_need ? g->scratch_need : NM_ALIGN;
    void *p = aligned_alloc(NM_ALIGN, bytes);
    if (!p)
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for %.1f MiB of operator scratch", g->source,
                       (double)bytes / (1 << 20));
    free(g->scratch);
    g->scratch = p;
    g->scratch_size = bytes;
    return NM_OK;
}

/* ------------------------------------------------------------ layouts */

/* How an operator treats the memory layout of its float activations. */
typedef enum op_class {
    CLASS_PLAIN,        /* plain row-major only */
    CLASS_NATIVE,       /* input 0 and output 0 in either layout (oneDNN ops) */
    CLASS_ELEMENTWISE,  /* same-shape operands and output in any one layout */
    CLASS_JOIN,         /* all operands and the output in any one layout (Concat) */
} op_class;

static int is_unary_activation(nm_op_type op)
{
    return op == NM_OP_RELU || op == NM_OP_LEAKYRELU || op == NM_OP_CLIP || op == NM_OP_SIGMOID ||
           op == NM_OP_HARDSIGMOID || op == NM_OP_HARDSWISH || op == NM_OP_TANH;
}

/* An element-wise node whose every float input has the output's shape or a
 * single element: the same loop serves any layout. */
static int layout_free_elementwise(nm_graph *g, const nm_node *n)
{
    const nm_tensor *y = nm_out(g, n, 0);
    if (n->n_out != 1 || !y || y->dtype != NM_FLOAT) return 0;
    if (is_unary_activation(n->op)) return nm_shape_equal(&nm_in(g, n, 0)->shape, &y->shape);
    if (n->op == NM_OP_PRELU) return nm_in(g, n, 1) && nm_in(g, n, 1)->numel == 1;
    if (n->op != NM_OP_ADD && n->op != NM_OP_SUB && n->op != NM_OP_MUL && n->op != NM_OP_DIV) return 0;
    for (int i = 0; i < n->n_in; i++) {
        const nm_tensor *x = nm_in(g, n, i);
        if (!x || x->dtype != NM_FLOAT || (x->numel != 1 && !nm_shape_equal(&x->shape, &y->shape))) return 0;
    }
    return 1;
}

static op_class node_class(nm_graph *g, const nm_node *n)
{
    const nm_tensor *x = nm_in(g, n, 0);
    if (!x || !nm_out(g, n, 0) || x->dtype != NM_FLOAT) return CLASS_PLAIN;
    switch (n->op) {
    case NM_OP_CONV:
    case NM_OP_GLOBALAVERAGEPOOL:
    case NM_OP_GLOBALMAXPOOL: return x->shape.ndim == 4 ? CLASS_NATIVE : CLASS_PLAIN;
    case NM_OP_MAXPOOL:
    case NM_OP_AVERAGEPOOL: return nm_pool_native_ok(g, n) ? CLASS_NATIVE : CLASS_PLAIN;
    case NM_OP_CONCAT: return nm_concat_nhwc_ok(g, n) ? CLASS_JOIN : CLASS_PLAIN;
    default: return layout_free_elementwise(g, n) ? CLASS_ELEMENTWISE : CLASS_PLAIN;
    }
}

/* A tensor that may live channels-last: a 4-D float activation with a
 * spatial extent (at 1x1 both layouts coincide), neither fed by the caller
 * nor returned. */
static int layout_candidate(const nm_tensor *t)
{
    return t->dtype == NM_FLOAT && !t->is_const && !t->is_input && !t->is_output && t->shape.ndim == 4 &&
           t->shape.dims[2] * t->shape.dims[3] > 1;
}

static int uf_find(int *parent, int x)
{
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
}

/* One slot of node n (input i, or output i when `out`): may its tensor be
 * channels-last, given the node's class? */
static int slot_flexible(nm_graph *g, const nm_node *n, op_class cls, int out, int i)
{
    if (cls == CLASS_NATIVE) return i == 0 || (!out && n->op == NM_OP_CONV && i == 3);
    if (cls == CLASS_JOIN) return 1;
    if (cls == CLASS_ELEMENTWISE) {
        const nm_tensor *t = out ? nm_out(g, n, i) : nm_in(g, n, i);
        return nm_shape_equal(&t->shape, &nm_out(g, n, 0)->shape);
    }
    return 0;
}

/* Tensors joined by element-wise nodes or Concat share one layout; a group is
 * channels-last when every member may be and some member meets a oneDNN
 * operator. `plain` and `native` are per-tensor flags, then per group. */
static void plan_layouts(nm_graph *g, int *parent, unsigned char *plain, unsigned char *native)
{
    for (int t = 0; t < g->n_t; t++) {
        parent[t] = t;
        plain[t] = !layout_candidate(&g->t[t]);
        native[t] = 0;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *n = &g->nodes[k];
        op_class cls = node_class(g, n);
        for (int side = 0; side < 2; side++)
            for (int i = 0; i < (side ? n->n_out : n->n_in); i++) {
                int t = side ? n->out[i] : n->in[i];
                if (t < 0) continue;
                if (!slot_flexible(g, n, cls, side, i)) plain[t] = 1;
                else if (cls == CLASS_NATIVE && (side || i != 3)) native[t] = 1;
                else parent[uf_find(parent, t)] = uf_find(parent, n->out[0]);   /* incl. a Conv's sum */
            }
    }
    for (int t = 0; t < g->n_t; t++) {
        int r = uf_find(parent, t);
        plain[r] |= plain[t];
        native[r] |= native[t];
    }
    for (int t = 0; t < g->n_t; t++) {
        int r = uf_find(parent, t);
        g->layout[t] = (!plain[r] && native[r]) ? NM_LAYOUT_NHWC : NM_LAYOUT_PLAIN;
    }
}

/* ------------------------------------------------------------ gradients */

/* Operators whose backward can overwrite the gradient of input `slot`
 * instead of adding to it (they read grad_assign). */
static int can_assign_grad(const nm_graph *g, const nm_node *n, int slot)
{
    switch (n->op) {
    case NM_OP_CONV: return slot == 0 || slot == 3;
    case NM_OP_MAXPOOL:
    case NM_OP_AVERAGEPOOL:
    case NM_OP_GLOBALAVERAGEPOOL:
    case NM_OP_GLOBALMAXPOOL: return slot == 0;
    case NM_OP_CONCAT: return slot < 32 && nm_tensor_layout(g, n->out[0]) == NM_LAYOUT_NHWC;
    default: return slot == 0 && is_unary_activation(n->op);
    }
}

/* Backward visits nodes in reverse, so a gradient's first writer is its
 * last reader. When that reader overwrites, nothing needs clearing; a
 * gradient nobody writes keeps the zeros it was allocated with. Only the
 * rest is cleared before each backward. */
static nm_status plan_gradients(nm_graph *g, nm_error *err)
{
    free(g->zero_grads);
    g->n_zero_grads = 0;
    g->zero_grads = malloc(sizeof(int) * (size_t)(g->n_t + 1));
    if (!g->zero_grads) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    for (int k = 0; k < g->n_nodes; k++) g->nodes[k].grad_assign = 0;
    for (int t = 0; t < g->n_t; t++) {
        const nm_tensor *x = &g->t[t];
        if (!x->requires_grad || x->is_output) continue;
        int last = -1, slots = 0, slot = -1;
        for (int k = g->n_nodes - 1; k >= 0 && last < 0; k--) {
            const nm_node *n = &g->nodes[k];
            if (!nm_op_get(n->op)->backward) continue;
            for (int i = 0; i < n->n_in; i++)
                if (n->in[i] == t) last = k, slots++, slot = i;
        }
        if (last < 0) continue;
        nm_node *n = &g->nodes[last];
        if (slots == 1 && can_assign_grad(g, n, slot)) n->grad_assign |= 1u << slot;
        else g->zero_grads[g->n_zero_grads++] = t;
    }
    return NM_OK;
}

static nm_status plan_memory_layouts(nm_graph *g, nm_error *err)
{
    size_t n = (size_t)g->n_t + 1;
    nm_graph_free_plan(g);
    g->layout = calloc(n, 1);
    g->view = calloc(n, sizeof *g->view);
    g->view_grad = calloc(n, sizeof *g->view_grad);
    int *parent = malloc(n * sizeof *parent);
    unsigned char *plain = malloc(n), *native = malloc(n);
    nm_status s = NM_OK;
    if (!g->layout || !g->view || !g->view_grad || !parent || !plain || !native)
        s = nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    else
        plan_layouts(g, parent, plain, native);
    free(parent);
    free(plain);
    free(native);
    return s;
}

/* A second layout of the weights (Conv's backward-data one, frozen beside
 * the forward's) is held for at most this share of the weights' bytes, the
 * first layers first; the rest is copied per call. Holding saves that copy
 * (about the time to read those weights from memory once per backward: on
 * resnet50 at batch 1, holding none costs ~4% of a forward + backward, all
 * ~0%); not holding saves the memory (resnet50: 1.20 x weights + activations
 * + gradients with none held, 1.37 x with a third, 1.67 x with all).
 * NM_DUP_WEIGHTS (a share, 0 to 2) overrides it: 0 holds none, 1 or more
 * all. */
static double dup_weights_share(void)
{
    const char *e = getenv("NM_DUP_WEIGHTS");
    double v = e && *e ? atof(e) : 1.0 / 3.0;
    return v > 0 ? (v < 2 ? v : 2) : 0;
}

/* Which primitives run on one thread (nm_dnnl_threads_for). On the 2-core
 * AMD EPYC (bench/ort.sh, 2 threads) a one-thread layer between
 * multi-threaded ones runs up to 2x slower than in a one-thread run, and
 * layers down to 1 MFLOP gain from two threads (mobilenets, darknet_tiny,
 * fashion_cnn: 5-25 % per forward against an 8 MFLOP limit). A graph whose
 * convolutions all stay below 8 MFLOP (CIFAR ResNets, mobilenet_v1_025 and
 * fashion_cnn at batch 1) runs faster on one thread throughout: there the
 * fork and join cost more than the split saves. */
static void plan_serial_below(nm_graph *g)
{
    double largest = 0;
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].op == NM_OP_CONV) largest = fmax(largest, nm_node_flops(g, &g->nodes[k]));
    g->serial_below = largest < 8e6 ? HUGE_VAL : 1e6;
}

/* Conv and pooling deferred their primitives to here, where the layouts and
 * gradient flags they depend on are known. */
static nm_status build_deferred(nm_graph *g, nm_error *err)
{
    plan_serial_below(g);
    int64_t weights = 0;
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].is_const && g->t[i].dtype == NM_FLOAT) weights += 4 * g->t[i].numel;
    g->dup_budget = (int64_t)(dup_weights_share() * (double)weights);
    for (int k = 0; k < g->n_nodes; k++) {
        nm_node *n = &g->nodes[k];
        if (!n->deferred) continue;
        n->deferred = 0;
        nm_status s = nm_op_get(n->op)->reshape(g, n, err);
        if (s) return s;
    }
    return NM_OK;
}

void nm_graph_free_plan(nm_graph *g)
{
    for (int t = 0; g->view && t < g->n_t; t++) free(g->view[t]);
    for (int t = 0; g->view_grad && t < g->n_t; t++) free(g->view_grad[t]);
    free(g->view);
    free(g->view_grad);
    free(g->layout);
    free(g->zero_grads);
    free(g->shared_off);
    free(g->shared);
    free(g->shared_saved);
    g->shared_off = NULL;
    g->shared = NULL;
    g->shared_saved = NULL;
    g->shared_bytes = 0;
    g->view = g->view_grad = NULL;
    g->layout = NULL;
    g->zero_grads = NULL;
    g->n_zero_grads = 0;
}

/* NHWC src -> NCHW dst of one [N,C,H,W] tensor. */
static void nhwc_to_nchw(const float *src, float *dst, const int64_t *d)
{
    int64_t C = d[1], HW = d[2] * d[3];
    for (int64_t b = 0; b < d[0]; b++)
        for (int64_t p = 0; p < HW; p++)
            for (int64_t c = 0; c < C; c++) dst[(b * C + c) * HW + p] = src[(b * HW + p) * C + c];
}

static float *plain_copy(float **slot, const float *src, const nm_tensor *t)
{
    if (!*slot) *slot = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (*slot) nhwc_to_nchw(src, *slot, t->shape.dims);
    return *slot;
}

nm_status nm_graph_plain_view(nm_graph *g, int t, const float **value, const float **grad, nm_error *err)
{
    const nm_tensor *x = &g->t[t];
    if (x->released) {   /* a weight kept only in its operator's layout */
        nm_status s = nm_graph_const_restore(g, t, err);
        if (s) return s;
    }
    if (nm_tensor_layout(g, t) == NM_LAYOUT_PLAIN) {
        if (value) *value = nm_f32(x);
        if (grad) *grad = x->grad;
        return NM_OK;
    }
    if (value && !(*value = plain_copy(&g->view[t], nm_f32(x), x)))
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    if (grad) *grad = x->grad ? plain_copy(&g->view_grad[t], x->grad, x) : NULL;
    if (grad && x->grad && !*grad) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
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
    if (!s) s = nm_graph_fuse_activations(g, err);
    if (!s) s = nm_graph_fuse_conv_add(g, err);
    if (!s) s = nm_graph_fuse_pad_pool(g, err);
    if (!s) s = plan_memory_layouts(g, err);
    if (!s) s = plan_gradients(g, err);
    if (!s) s = build_deferred(g, err);
    return s ? s : allocate(g, err);
}
