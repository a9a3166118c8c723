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
} nm_node;

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
} nm_graph;

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

/* Preparation (graph/plan.c): op init, shape inference with constant
 * folding, gradient flags, memory. Input shapes and dtypes must be set.
 * `grad_inputs` is a bitmask of which graph inputs want gradients (bit 0:
 * the first). Runs once: a new batch size means building the graph again. */
nm_status nm_graph_prepare(nm_graph *g, unsigned grad_inputs, nm_error *err);

/* Execution (graph/exec.c). Inputs are written into g->t[inputs[i]].data by the caller. */
nm_status nm_graph_forward(nm_graph *g, nm_error *err);
/* Gradients of outputs must be written into their grad buffers by the caller;
 * all other gradients are zeroed here, then accumulated in reverse order. */
nm_status nm_graph_backward(nm_graph *g, nm_error *err);

#endif
