/* Tensors of the graph: plain row-major values, an optional gradient. */
#ifndef NM_CORE_TENSOR_H
#define NM_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "neuromask.h"

/* Element types, numbered as ONNX TensorProto.DataType. Integer types of any
 * width are widened to int64 at import; only float tensors carry gradients. */
typedef enum nm_dtype {
    NM_UNDEFINED = 0,
    NM_FLOAT = 1,
    NM_INT64 = 7,
} nm_dtype;

typedef struct nm_tensor {
    char *name;
    nm_dtype dtype;
    nm_shape shape;
    int64_t numel;
    void *data;             /* numel elements of dtype, owned; NULL when released */
    float *grad;            /* numel floats when requires_grad, owned */
    int producer;           /* index of the node writing it, -1 for inputs/constants */
    unsigned is_const : 1;       /* value known at load (initializer or folded) */
    unsigned requires_grad : 1;  /* float and depends on an input that wants gradients */
    unsigned is_input : 1;       /* graph input fed by the caller */
    unsigned is_output : 1;      /* graph output */
    unsigned released : 1;       /* a constant whose value is kept elsewhere, data NULL: in
                                  * the layout of the operator reading it (Conv weights,
                                  * see nm_graph_const_read), or for a model's template
                                  * graph in the prepared graph (graph/model.h) */
} nm_tensor;

static inline size_t nm_dtype_size(nm_dtype d) { return d == NM_INT64 ? 8 : 4; }
static inline float *nm_f32(const nm_tensor *t) { return (float *)t->data; }
static inline int64_t *nm_i64(const nm_tensor *t) { return (int64_t *)t->data; }

/* numel of a shape; -1 when a dimension is negative or the product overflows. */
int64_t nm_shape_numel(const nm_shape *s);
int nm_shape_equal(const nm_shape *a, const nm_shape *b);
/* "[1,3,224,224]" into buf. */
const char *nm_shape_str(const nm_shape *s, char *buf, int cap);
/* NM_ERR_NUMERIC naming `what` and the first index where v[0..n) is NaN or
 * Inf; NM_OK when every value is finite. */
nm_status nm_check_finite(const float *v, size_t n, const char *what, nm_error *err);
/* Normalise a possibly negative axis for rank r; -1 when out of range. */
int nm_axis(int64_t axis, int rank);

#endif
