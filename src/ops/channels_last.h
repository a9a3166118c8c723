/* Channels-last (NHWC) variants of operators whose plain-layout
 * implementation assumes row-major NCHW; the executor runs them for nodes
 * whose tensors the plan laid out channels-last (graph/plan.c). */
#ifndef NM_OPS_CHANNELS_LAST_H
#define NM_OPS_CHANNELS_LAST_H

#include "graph/graph.h"

/* Concat along channels (axis 1) of 4-D float tensors, all channels-last:
 * forward and backward only (the plain operator's init/reshape did the
 * checks and shapes). Backward overwrites input i's gradient when bit i of
 * grad_assign is set. */
extern const nm_op_impl nm_concat_nhwc;

/* 1 when node n is a Concat this file can run: axis 1 of 4-D float inputs. */
int nm_concat_nhwc_ok(nm_graph *g, const nm_node *n);

#endif
