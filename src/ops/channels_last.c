/* Channels-last Concat: each pixel's channel vector is the inputs' channel
 * vectors side by side. */
#include "ops/channels_last.h"

#include <string.h>

#include "ops/broadcast.h"

int nm_concat_nhwc_ok(nm_graph *g, const nm_node *n)
{
    const nm_tensor *y = nm_out(g, n, 0);
    if (n->op != NM_OP_CONCAT || n->n_out != 1 || !y || y->dtype != NM_FLOAT || y->shape.ndim != 4) return 0;
    if (nm_axis(nm_attr_int(n, "axis", 0), 4) != 1) return 0;
    for (int i = 0; i < n->n_in; i++)
        if (!nm_in(g, n, i) || nm_in(g, n, i)->dtype != NM_FLOAT) return 0;
    return 1;
}

static nm_status concat_nhwc_forward(nm_graph *g, nm_node *n)
{
    const nm_tensor *y = nm_out(g, n, 0);
    int64_t pixels = y->shape.dims[0] * y->shape.dims[2] * y->shape.dims[3], total = y->shape.dims[1];
    float *dst = nm_f32(y);
    int64_t off = 0;
    for (int i = 0; i < n->n_in; i++) {
        const nm_tensor *x = nm_in(g, n, i);
        const float *src = nm_f32(x);
        int64_t c = x->shape.dims[1];
#pragma omp parallel for schedule(static) if (pixels * c >= NM_PARALLEL_MIN)
        for (int64_t p = 0; p < pixels; p++) memcpy(dst + p * total + off, src + p * c, sizeof(float) * (size_t)c);
        off += c;
    }
    return NM_OK;
}

static nm_status concat_nhwc_backward(nm_graph *g, nm_node *n)
{
    const nm_tensor *y = nm_out(g, n, 0);
    int64_t pixels = y->shape.dims[0] * y->shape.dims[2] * y->shape.dims[3], total = y->shape.dims[1];
    const float *dy = y->grad;
    int64_t off = 0;
    for (int i = 0; i < n->n_in; i++) {
        nm_tensor *x = nm_in(g, n, i);
        int64_t c = x->shape.dims[1];
        float *dx = x->grad;
        int assign = (n->grad_assign >> i) & 1u;
        if (x->requires_grad) {
#pragma omp parallel for schedule(static) if (pixels * c >= NM_PARALLEL_MIN)
            for (int64_t p = 0; p < pixels; p++) {
                const float *s = dy + p * total + off;
                float *d = dx + p * c;
                if (assign)
                    memcpy(d, s, sizeof(float) * (size_t)c);
                else
                    for (int64_t k = 0; k < c; k++) d[k] += s[k];
            }
        }
        off += c;
    }
    return NM_OK;
}

const nm_op_impl nm_concat_nhwc = {
    .forward = concat_nhwc_forward,
    .backward = concat_nhwc_backward,
};
