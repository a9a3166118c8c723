/* Multidirectional (numpy) broadcasting: the output shape of two operands,
 * a compact iteration plan over the output in chunks, and the reduction of an
 * output-shaped gradient back into a broadcast operand. */
#ifndef NM_OPS_BROADCAST_H
#define NM_OPS_BROADCAST_H

#include <stdint.h>

#include "neuromask.h"

/* Elements below this are not worth waking OpenMP threads for. */
#define NM_PARALLEL_MIN 32768

#define NM_BCAST_MAX_OPS 3

/* Shape of broadcasting `a` with `b`; 0 when they are incompatible. */
int nm_broadcast_shape(const nm_shape *a, const nm_shape *b, nm_shape *out);

/* 1 when `x` broadcasts to exactly `to` (unidirectional broadcasting). */
int nm_broadcasts_to(const nm_shape *x, const nm_shape *to);

/* The output as nested loops, adjacent dimensions of the same broadcast
 * pattern merged and size-1 dimensions dropped. Each operand walks with its
 * own element strides (0 along a dimension it is broadcast over); along the
 * last (row) dimension every stride is 0 or 1. Work is cut into chunks of at
 * most `chunk` elements of one row so that even a single long row spreads
 * over threads. */
typedef struct nm_bcast {
    int ndim, nops;
    int64_t dims[NM_MAX_DIMS];
    int64_t stride[NM_BCAST_MAX_OPS][NM_MAX_DIMS];
    int64_t numel;
    int64_t chunk, chunks_per_row, n_chunks;
} nm_bcast;

/* Plan for up to 3 operand shapes over `out` (NULL entries past `nops` are
 * ignored); every operand must broadcast to `out`. */
void nm_bcast_plan(nm_bcast *bc, const nm_shape *out, int nops, const nm_shape *const *ops);

/* Chunk `c`: element offset of each operand at its start (off[k]) and its
 * length; the output offset is the contiguous one, also returned. */
int64_t nm_bcast_chunk(const nm_bcast *bc, int64_t c, int64_t *off, int64_t *len);

/* Row stride (0 or 1) of operand k. */
static inline int64_t nm_bcast_row_stride(const nm_bcast *bc, int k) { return bc->stride[k][bc->ndim - 1]; }

/* Gradient reduction into an operand `x` broadcast to `out`:
 *   dx[j] += scale / (div_by ? div_by[j] : 1) * sum_i term(dy[i], other[i'])
 * over the output positions i that read x[j]; `other` (shape other_shape,
 * which broadcasts to out) is read at the matching position i'. */
typedef enum nm_reduce_term {
    NM_TERM_DY,             /* dy */
    NM_TERM_DY_MUL,         /* dy * other */
    NM_TERM_DY_DIV,         /* dy / other */
    NM_TERM_DY_MUL_NEG,     /* dy * min(other, 0): PRelu slope */
} nm_reduce_term;

void nm_bcast_reduce(nm_reduce_term term, const float *dy, const nm_shape *out,
                     const float *other, const nm_shape *other_shape, const float *div_by,
                     float scale, const nm_shape *x, float *dx);

#endif
