/* Add, Sub, Mul, Div with multidirectional broadcasting, float and int64
 * (int64 for shape arithmetic folded at load; Div truncates). */
#include <stdlib.h>

#include "graph/graph.h"
#include "ops/broadcast.h"

typedef struct binary_state {
    nm_bcast bc;
} binary_state;

static nm_status binary_init(nm_graph *g, nm_node *n, nm_error *err)
{
    if (n->n_in != 2 || !nm_in(g, n, 0) || !nm_in(g, n, 1) || n->n_out != 1 || !nm_out(g, n, 0))
        return nm_fail(err, NM_ERR_PARSE, "%s: %s node '%s' needs 2 inputs and 1 output", g->source,
                       n->op_type, n->name);
    n->state = calloc(1, sizeof(binary_state));
    if (!n->state) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    return NM_OK;
}

static nm_status binary_reshape(nm_graph *g, nm_node *n, nm_error *err)
{
    binary_state *st = n->state;
    nm_tensor *a = nm_in(g, n, 0), *b = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    char sa[128], sb[128];
    if (a->dtype != b->dtype)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: %s node '%s': inputs of different element types",
                       g->source, n->op_type, n->name);
    if (!nm_broadcast_shape(&a->shape, &b->shape, &y->shape))
        return nm_fail(err, NM_ERR_SHAPE, "%s: %s node '%s': shapes %s and %s do not broadcast", g->source,
                       n->op_type, n->name, nm_shape_str(&a->shape, sa, sizeof sa),
                       nm_shape_str(&b->shape, sb, sizeof sb));
    y->dtype = a->dtype;
    y->numel = nm_shape_numel(&y->shape);
    const nm_shape *ops[2] = {&a->shape, &b->shape};
    nm_bcast_plan(&st->bc, &y->shape, 2, ops);
    return NM_OK;
}

/* One chunk of y = a (op) b where each operand's row stride is 0 or 1;
 * the four stride cases are spelled out so each loop vectorises. */
#define BINARY_CHUNK(T, EXPR)                                                        \
    do {                                                                             \
        const T *pa = (const T *)a + off[0], *pb = (const T *)b + off[1];            \
        T *py = (T *)y + yo;                                                         \
        if (sa && sb) {                                                              \
            _Pragma("omp simd") for (int64_t k = 0; k < len; k++) {                  \
                T va = pa[k], vb = pb[k];                                            \
                py[k] = EXPR;                                                        \
            }                                                                        \
        } else if (sa) {                                                             \
            T vb = pb[0];                                                            \
            _Pragma("omp simd") for (int64_t k = 0; k < len; k++) {                  \
                T va = pa[k];                                                        \
                py[k] = EXPR;                                                        \
            }                                                                        \
        } else if (sb) {                                                             \
            T va = pa[0];                                                            \
            _Pragma("omp simd") for (int64_t k = 0; k < len; k++) {                  \
                T vb = pb[k];                                                        \
                py[k] = EXPR;                                                        \
            }                                                                        \
        } else {                                                                     \
            T va = pa[0], vb = pb[0];                                                \
            for (int64_t k = 0; k < len; k++) py[k] = EXPR;                          \
        }                                                                            \
    } while (0)

static void binary_f32_forward(nm_op_type op, const nm_bcast *bc, const float *a, const float *b, float *y)
{
    int64_t sa = nm_bcast_row_stride(bc, 0), sb = nm_bcast_row_stride(bc, 1);
#pragma omp parallel for schedule(static) if (bc->numel >= NM_PARALLEL_MIN)
    for (int64_t c = 0; c < bc->n_chunks; c++) {
        int64_t off[NM_BCAST_MAX_OPS], len;
        int64_t yo = nm_bcast_chunk(bc, c, off, &len);
        switch (op) {
        case NM_OP_ADD: BINARY_CHUNK(float, va + vb); break;
        case NM_OP_SUB: BINARY_CHUNK(float, va - vb); break;
        case NM_OP_MUL: BINARY_CHUNK(float, va * vb); break;
        default: BINARY_CHUNK(float, va / vb); break;
        }
    }
}

/* Integer division that never traps: x/0 and INT64_MIN/-1 are refused. */
static int int64_div_ok(const int64_t *b, int64_t nb, const int64_t *a, int64_t na)
{
    int has_min = 0;
    for (int64_t i = 0; i < na; i++) has_min |= a[i] == INT64_MIN;
    for (int64_t i = 0; i < nb; i++)
        if (b[i] == 0 || (has_min && b[i] == -1)) return 0;
    return 1;
}

static nm_status binary_i64_forward(nm_op_type op, const nm_bcast *bc, const nm_tensor *ta,
                                    const nm_tensor *tb, int64_t *y)
{
    const int64_t *a = nm_i64(ta), *b = nm_i64(tb);
    if (op == NM_OP_DIV && !int64_div_ok(b, tb->numel, a, ta->numel)) return NM_ERR_NUMERIC;
    int64_t sa = nm_bcast_row_stride(bc, 0), sb = nm_bcast_row_stride(bc, 1);
    for (int64_t c = 0; c < bc->n_chunks; c++) {
        int64_t off[NM_BCAST_MAX_OPS], len;
        int64_t yo = nm_bcast_chunk(bc, c, off, &len);
        /* Wrap-around like the two's complement ONNX runtimes use, without UB. */
        switch (op) {
        case NM_OP_ADD: BINARY_CHUNK(int64_t, (int64_t)((uint64_t)va + (uint64_t)vb)); break;
        case NM_OP_SUB: BINARY_CHUNK(int64_t, (int64_t)((uint64_t)va - (uint64_t)vb)); break;
        case NM_OP_MUL: BINARY_CHUNK(int64_t, (int64_t)((uint64_t)va * (uint64_t)vb)); break;
        default: BINARY_CHUNK(int64_t, va / vb); break;
        }
    }
    return NM_OK;
}

static nm_status binary_forward(nm_graph *g, nm_node *n)
{
    binary_state *st = n->state;
    nm_tensor *a = nm_in(g, n, 0), *b = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    if (y->dtype == NM_INT64) return binary_i64_forward(n->op, &st->bc, a, b, nm_i64(y));
    binary_f32_forward(n->op, &st->bc, nm_f32(a), nm_f32(b), nm_f32(y));
    return NM_OK;
}

/* dA, dB summed over the dimensions each was broadcast along. */
static nm_status binary_backward(nm_graph *g, nm_node *n)
{
    nm_tensor *a = nm_in(g, n, 0), *b = nm_in(g, n, 1), *y = nm_out(g, n, 0);
    const float *dy = y->grad;
    const nm_shape *ys = &y->shape;
    if (!dy) return NM_OK;
    if (a->requires_grad) {
        switch (n->op) {
        case NM_OP_MUL:
            nm_bcast_reduce(NM_TERM_DY_MUL, dy, ys, nm_f32(b), &b->shape, NULL, 1.0f, &a->shape, a->grad);
            break;
        case NM_OP_DIV:
            nm_bcast_reduce(NM_TERM_DY_DIV, dy, ys, nm_f32(b), &b->shape, NULL, 1.0f, &a->shape, a->grad);
            break;
        default: nm_bcast_reduce(NM_TERM_DY, dy, ys, NULL, NULL, NULL, 1.0f, &a->shape, a->grad); break;
        }
    }
    if (b->requires_grad) {
        switch (n->op) {
        case NM_OP_ADD: nm_bcast_reduce(NM_TERM_DY, dy, ys, NULL, NULL, NULL, 1.0f, &b->shape, b->grad); break;
        case NM_OP_SUB: nm_bcast_reduce(NM_TERM_DY, dy, ys, NULL, NULL, NULL, -1.0f, &b->shape, b->grad); break;
        case NM_OP_MUL:
            nm_bcast_reduce(NM_TERM_DY_MUL, dy, ys, nm_f32(a), &a->shape, NULL, 1.0f, &b->shape, b->grad);
            break;
        default:
            /* d(a/b)/db = -a/b^2 = -y/b, with b constant over each reduction. */
            nm_bcast_reduce(NM_TERM_DY_MUL, dy, ys, nm_f32(y), ys, nm_f32(b), -1.0f, &b->shape, b->grad);
            break;
        }
    }
    return NM_OK;
}

static void binary_destroy(nm_node *n)
{
    free(n->state);
    n->state = NULL;
}

#define BINARY_IMPL {binary_init, binary_reshape, binary_forward, binary_backward, binary_destroy}
const nm_op_impl nm_op_add = BINARY_IMPL;
const nm_op_impl nm_op_sub = BINARY_IMPL;
const nm_op_impl nm_op_mul = BINARY_IMPL;
const nm_op_impl nm_op_div = BINARY_IMPL;
