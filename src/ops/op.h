/* Operators: one enum, one table of names, one struct of functions that each
 * operator family file (ops/<family>.c) fills. */
#ifndef NM_OPS_OP_H
#define NM_OPS_OP_H

#include "neuromask.h"

struct nm_graph;
struct nm_node;

#define NM_OP_LIST(X) \
    X(CONV, "Conv", conv) \
    X(BATCHNORM, "BatchNormalization", batchnorm) \
    X(RELU, "Relu", relu) \
    X(LEAKYRELU, "LeakyRelu", leakyrelu) \
    X(PRELU, "PRelu", prelu) \
    X(CLIP, "Clip", clip) \
    X(SIGMOID, "Sigmoid", sigmoid) \
    X(HARDSIGMOID, "HardSigmoid", hardsigmoid) \
    X(HARDSWISH, "HardSwish", hardswish) \
    X(TANH, "Tanh", tanh) \
    X(SOFTMAX, "Softmax", softmax) \
    X(LOGSOFTMAX, "LogSoftmax", logsoftmax) \
    X(MAXPOOL, "MaxPool", maxpool) \
    X(AVERAGEPOOL, "AveragePool", averagepool) \
    X(GLOBALAVERAGEPOOL, "GlobalAveragePool", globalaveragepool) \
    X(GLOBALMAXPOOL, "GlobalMaxPool", globalmaxpool) \
    X(GEMM, "Gemm", gemm) \
    X(MATMUL, "MatMul", matmul) \
    X(ADD, "Add", add) \
    X(SUB, "Sub", sub) \
    X(MUL, "Mul", mul) \
    X(DIV, "Div", div) \
    X(CONCAT, "Concat", concat) \
    X(SPLIT, "Split", split) \
    X(FLATTEN, "Flatten", flatten) \
    X(RESHAPE, "Reshape", reshape) \
    X(TRANSPOSE, "Transpose", transpose) \
    X(SQUEEZE, "Squeeze", squeeze) \
    X(UNSQUEEZE, "Unsqueeze", unsqueeze) \
    X(PAD, "Pad", pad) \
    X(REDUCEMEAN, "ReduceMean", reducemean) \
    X(LRN, "LRN", lrn) \
    X(RESIZE, "Resize", resize) \
    X(UPSAMPLE, "Upsample", upsample) \
    X(CONSTANT, "Constant", constant) \
    X(SHAPE, "Shape", shape) \
    X(GATHER, "Gather", gather) \
    X(CONSTANTOFSHAPE, "ConstantOfShape", constantofshape) \
    X(IDENTITY, "Identity", identity) \
    X(DROPOUT, "Dropout", dropout)

typedef enum nm_op_type {
#define NM_OP_ENUM(id, onnx, fn) NM_OP_##id,
    NM_OP_LIST(NM_OP_ENUM)
#undef NM_OP_ENUM
    NM_OP_COUNT
} nm_op_type;

/* What every operator provides. All functions see the node's inputs and
 * outputs through nm_in()/nm_out(); values are plain row-major.
 *  init:     parse attributes, check input/output counts (once, at load).
 *  reshape:  from the inputs' dtypes and shapes (and constant inputs' values)
 *            set each output's dtype and shape; build shape-dependent state such
 *            as oneDNN primitives. Called again when the batch size changes.
 *  forward:  compute the outputs into their preallocated buffers.
 *  backward: add (+=) the gradient of each input that has requires_grad, from
 *            the outputs' gradients (and saved values). NULL: not differentiable.
 *  destroy:  free node->state. */
typedef struct nm_op_impl {
    nm_status (*init)(struct nm_graph *g, struct nm_node *n, nm_error *err);
    nm_status (*reshape)(struct nm_graph *g, struct nm_node *n, nm_error *err);
    nm_status (*forward)(struct nm_graph *g, struct nm_node *n);
    nm_status (*backward)(struct nm_graph *g, struct nm_node *n);
    void (*destroy)(struct nm_node *n);
} nm_op_impl;

/* The plain value of constant input `slot` of node n, which n released after
 * keeping it in its own layout (Conv weights, ops/conv.c), written to dst;
 * another status when n keeps none. */
nm_status nm_op_restore_const(struct nm_graph *g, struct nm_node *n, int slot, void *dst);

/* NM_OP_COUNT when the name is not supported. */
nm_op_type nm_op_from_name(const char *onnx_name);
const char *nm_op_name(nm_op_type op);
const nm_op_impl *nm_op_get(nm_op_type op);

#endif
