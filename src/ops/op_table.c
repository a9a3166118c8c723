/* The table of operators and the dispatch from ONNX names. */
#include "ops/op.h"

#include <string.h>

static const char *const op_names[NM_OP_COUNT] = {
#define NM_OP_NAME(id, onnx, fn) onnx,
    NM_OP_LIST(NM_OP_NAME)
#undef NM_OP_NAME
};

/* Each family file (ops/<family>.c) defines `const nm_op_impl nm_op_<fn>`. */
#define NM_OP_DECL(id, onnx, fn) extern const nm_op_impl nm_op_##fn;
NM_OP_LIST(NM_OP_DECL)
#undef NM_OP_DECL

static const nm_op_impl *op_impl(nm_op_type op)
{
    switch (op) {
#define NM_OP_CASE(id, onnx, fn) \
    case NM_OP_##id: return &nm_op_##fn;
        NM_OP_LIST(NM_OP_CASE)
#undef NM_OP_CASE
    default: return NULL;
    }
}

nm_op_type nm_op_from_name(const char *onnx_name)
{
    for (int i = 0; i < NM_OP_COUNT; i++)
        if (strcmp(op_names[i], onnx_name) == 0) return (nm_op_type)i;
    return NM_OP_COUNT;
}

const char *nm_op_name(nm_op_type op)
{
    return (op >= 0 && op < NM_OP_COUNT) ? op_names[op] : "?";
}

const nm_op_impl *nm_op_get(nm_op_type op) { return op_impl(op); }
