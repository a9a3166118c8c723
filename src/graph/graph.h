/* The graph: tensors and nodes in execution order, built by the ONNX importer
 * (or by hand in tests), prepared once (passes, shapes, memory), then run. */
#ifndef NM_GRAPH_GRAPH_H
#define NM_GRAPH_GRAPH_H

#include <dnnl.h>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/op.h"

/* ONNX AttributeProto.AttributeType numbering. */
typedef enum nm_attr_type {
    NM_ATTR_FLOAT = 1, NM_ATTR_INT = 2, NM_ATTR_STRING = 3, NM_ATTR_TENSOR = 4,
    NM_ATTR_FLOATS = 6, NM_ATTR_INTS = 7, NM_ATTR_STRINGS = 8,
} nm_attr_type;

typedef struct nm_attr {
    char *name;
    nm_attr_type type;
    float f;
    int64_t i;
    char *s;
    int n;                  /* length of floats / ints */
    float *floats;
    int64_t *ints;
    nm_tensor *t;           /* TENSOR attribute (Constant), owned */
} nm_attr;

typedef struct nm_node {
    char *name;
    char *op_type;          /* as written in the model */
    nm_op_type op;
    int n_in, n_out;
    int *in, *out;          /* tensor indices; -1 for an omitted optional input */
    int n_attrs;
    nm_attr *attrs;
    void *state;            /* op-private (parsed attributes, oneDNN primitives) */
    unsigned dead : 1;      /* removed by a pass; skipped and dropped */
    unsigned deferred : 1;  /* reshape left its primitives for the plan's second call */
    unsigned grad_assign;   /* bit i: backward may overwrite (=) input i's gradient,
                             * being its first writer; else it adds (+=) */
} nm_node;

/* Memory layout of a float activation, chosen by the plan (graph/plan.c):
 * plain row-major by default; channels-last (NHWC) for 4-D tensors that
 * flow only between operators able to read and write it (Conv, pooling,
 * Concat on channels, element-wise ops whose operands all have the same
 * shape). Graph inputs, outputs and constants are always plain; named reads
 * go through nm_graph_plain_view. */
typedef enum nm_layout { NM_LAYOUT_PLAIN = 0, NM_LAYOUT_NHWC = 1 } nm_layout;

typedef struct nm_graph {
    nm_tensor *t;
    int n_t, cap_t;
    nm_node *nodes;         /* execution order once nm_graph_sort ran */
    int n_nodes, cap_nodes;
    int *inputs, n_inputs;  /* caller-fed tensors, in model order */
    int *outputs, n_outputs;
    int opset;              /* ai.onnx opset the model imports */
    int n_meta;
    char **meta_key, **meta_val;
    char *source;           /* file name or label, for messages */
    nm_load_options limits;
    int64_t planned_bytes;  /* all tensor values and gradients */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    /* Set by the plan (graph/plan.c), NULL/0 before it runs. */
    unsigned char *layout;  /* per tensor: nm_layout */
    int *zero_grads, n_zero_grads;   /* gradients backward must clear first */
    float **view;           /* per tensor: plain copies of NHWC values and ... */
    float **view_grad;      /* ... gradients for named reads, made on demand */
    int defer_build;        /* while set, Conv/pooling reshape only infers shapes */
    /* Operators' per-call temporaries (oneDNN layouts of activations, a
     * fused activation's gradient, backward-data weights): one buffer shared
     * by all nodes, which run one at a time. A node's build takes regions
     * from offset 0 (nm_graph_scratch_begin, nm_graph_scratch_take); the
     * buffer holds the largest node's need once nm_graph_scratch_ready ran. */
    void *scratch;
    size_t scratch_size, scratch_need, scratch_cursor;
    /* Operators may release the plain value of a constant they keep in their
     * own layout (nm_tensor.released; Conv weights). Set by the model, which
     * reads such values back with nm_graph_const_read; off for other users,
     * which may read t->data directly. */
    int release_consts;
    /* Forward-only runs (nm_graph_forward_shared): the activations share one
     * buffer, each at shared_off[t] (-1: the tensor keeps its own), by
     * lifetime; made on the first such run. */
    int64_t *shared_off;
    void *shared;
    size_t shared_bytes;
    void **shared_saved;    /* the tensors' own buffers during such a run */
    /* Bytes Conv may still spend on a second frozen layout of constant
     * weights (its backward's), set by nm_graph_prepare; past it that layout
     * is copied from the forward's per call. */
    int64_t dup_budget;
    /* Primitives of fewer operations run on one thread (nm_dnnl_threads_for),
     * set by nm_graph_prepare from the graph's largest convolution; 0: 8e6. */
    double serial_below;
} nm_graph;

static inline nm_layout nm_tensor_layout(const nm_graph *g, int t)
{
    return (g->layout && t >= 0) ? (nm_layout)g->layout[t] : NM_LAYOUT_PLAIN;
}

/* A copy of an unprepared graph (no operator state, no plan): structure,
 * attributes and names; constants keep their shape and flags but no value
 * (data NULL), which the caller gives. NULL when out of memory. */
nm_graph *nm_graph_clone(const nm_graph *g);
/* Multiply-adds x 2 of a Conv, Gemm or MatMul node; 0 for other nodes. */
double nm_node_flops(const nm_graph *g, const nm_node *n);

/* Building. Strings are copied. Indices stay valid; pointers into g->t and
 * g->nodes do not survive further additions. */
nm_graph *nm_graph_new(const char *source);
void nm_graph_free(nm_graph *g);
/* Free what a node owns (its op state, attributes, names), not the node itself. */
void nm_node_free(nm_node *n);
int nm_graph_find_tensor(const nm_graph *g, const char *name);   /* -1 if absent */
int nm_graph_tensor(nm_graph *g, const char *name);               /* find or add; -1 on OOM */
int nm_graph_add_node(nm_graph *g, const char *op_type, const char *name,
                      int n_in, const int *in, int n_out, const int *out);   /* -1 on OOM */
nm_attr *nm_node_add_attr(nm_node *n, const char *name, nm_attr_type type);  /* NULL on OOM */
int nm_graph_add_input(nm_graph *g, int tensor);
int nm_graph_add_output(nm_graph *g, int tensor);
int nm_graph_add_meta(nm_graph *g, const char *key, const char *val);
/* Give a tensor a constant value (takes ownership of `data`). */
void nm_tensor_set_const(nm_tensor *t, nm_dtype dtype, const nm_shape *shape, void *data);

/* Node accessors for operators. */
static inline nm_tensor *nm_in(nm_graph *g, const nm_node *n, int i)
{
    return (i < n->n_in && n->in[i] >= 0) ? &g->t[n->in[i]] : NULL;
}
static inline nm_tensor *nm_out(nm_graph *g, const nm_node *n, int i)
{
    return (i < n->n_out && n->out[i] >= 0) ? &g->t[n->out[i]] : NULL;
}
/* An operator's error: "<source>: <op> node '<name>': <message>". */
nm_status nm_node_fail(const nm_graph *g, const nm_node *n, nm_error *err, nm_status code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
const nm_attr *nm_attr_get(const nm_node *n, const char *name);
int64_t nm_attr_int(const nm_node *n, const char *name, int64_t def);
float nm_attr_float(const nm_node *n, const char *name, float def);
const char *nm_attr_string(const nm_node *n, const char *name, const char *def);
/* INTS attribute: count, or -1 when absent; copies up to cap values. */
int nm_attr_ints(const nm_node *n, const char *name, int64_t *vals, int cap);

/* Passes (graph/passes.c). */
nm_status nm_graph_sort(nm_graph *g, nm_error *err);               /* topological order, cycles refused */
nm_status nm_graph_remove_identities(nm_graph *g, nm_error *err);  /* Identity, Dropout */
nm_status nm_graph_fold_batchnorm(nm_graph *g, nm_error *err);     /* BN into preceding Conv */
void nm_graph_drop_dead(nm_graph *g);
/* Conv followed by its only reader Relu, LeakyRelu (alpha >= 0), Clip,
 * Sigmoid or Tanh: the Conv computes the activation too (attributes
 * "_nm_act", "_nm_alpha", "_nm_beta") and writes the activation's output;
 * the Conv's own output disappears. Constant inputs must be folded (it runs
 * inside nm_graph_prepare). */
nm_status nm_graph_fuse_activations(nm_graph *g, nm_error *err);
/* Add(conv output, S) where the Conv output has no other reader (a residual
 * connection): the Conv reads S as a fourth input (attribute "_nm_sum") and
 * computes act(conv + S), taking the activation after the Add too. */
nm_status nm_graph_fuse_conv_add(nm_graph *g, nm_error *err);
/* AveragePool reading a zero Pad of spatial axes only: the pad moves into
 * the pooling (counting padding), so the pair runs as one oneDNN primitive. */
nm_status nm_graph_fuse_pad_pool(nm_graph *g, nm_error *err);

/* Preparation (graph/plan.c): op init, shape inference with constant
 * folding, gradient flags, the fusions above, layouts, first-writer
 * gradients (grad_assign), primitives, memory. Input shapes and dtypes must be set.
 * `grad_inputs` is a bitmask of which graph inputs want gradients (bit 0:
 * the first). Runs once: a new batch size means building the graph again. */
nm_status nm_graph_prepare(nm_graph *g, unsigned grad_inputs, nm_error *err);
/* Largest tensor the plan accepts (elements): an operator whose reshape
 * allocates per output element checks its output against it first. */
int64_t nm_graph_max_elements(const nm_graph *g);
/* Value and gradient (NULL when none) of tensor t in plain row-major layout:
 * the tensor's own buffers, or copies made now for an NHWC tensor (valid
 * until the next call for t). */
nm_status nm_graph_plain_view(nm_graph *g, int t, const float **value, const float **grad, nm_error *err);
/* What the plan allocated besides tensors (graph.c calls it). */
void nm_graph_free_plan(nm_graph *g);
/* The value of constant t, copied to dst (numel elements of its dtype),
 * from its data or, when released, from the operator keeping it. */
nm_status nm_graph_const_read(nm_graph *g, int t, void *dst, nm_error *err);
/* Give a released constant its plain value (t->data) back. */
nm_status nm_graph_const_restore(nm_graph *g, int t, nm_error *err);
/* Constant t's value (plain layout) in a new malloc'd buffer, via nm_graph_const_read. */
nm_status nm_graph_const_copy(nm_graph *g, int t, void **out, nm_error *err);

/* Scratch (see nm_graph.scratch). begin: a node starts taking regions;
 * take: `bytes` more for the node, returns the region's offset; ready:
 * make the buffer as large as taken so far (before a node runs). */
void nm_graph_scratch_begin(nm_graph *g);
size_t nm_graph_scratch_take(nm_graph *g, size_t bytes);
nm_status nm_graph_scratch_ready(nm_graph *g, nm_error *err);
static inline void *nm_graph_scratch_at(const nm_graph *g, size_t off) { return (char *)g->scratch + off; }

/* Execution (graph/exec.c). Inputs are written into g->t[inputs[i]].data by the caller. */
nm_status nm_graph_forward(nm_graph *g, nm_error *err);
/* The same without keeping activations for a backward pass or named reads:
 * intermediate tensors (neither input, output nor constant) share one buffer
 * wherever their lifetimes do not overlap, as an inference engine's memory
 * plan does, so the pass touches far less memory (mobilenet_v2 at batch 1:
 * 20 MiB of activations down to ~9). Afterwards the tensors' own buffers
 * hold nothing of this pass. */
nm_status nm_graph_forward_shared(nm_graph *g, nm_error *err);
/* Gradients of outputs must be written into their grad buffers by the caller;
 * all other gradients are accumulated in reverse order from zero: cleared
 * here unless the plan found that their first writer overwrites them
 * (grad_assign) or that nothing writes them (they stay as allocated, 0). */
nm_status nm_graph_backward(nm_graph *g, nm_error *err);

#endif
