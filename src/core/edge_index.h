/* Replicated edges: the one clamp of an index into 0 .. n - 1 that the
 * blurs, the image shifts and the mask padding share. */
#ifndef NM_CORE_EDGE_INDEX_H
#define NM_CORE_EDGE_INDEX_H

/* The index that position i of a line of n values, extended past its ends by
 * repeating the end values, reads. */
static inline int nm_edge_index(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

#endif
