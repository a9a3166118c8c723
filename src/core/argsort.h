/* Indices sorted by value: the one ordering of pixels that the metrics and
 * the explainers share. */
#ifndef NM_CORE_ARGSORT_H
#define NM_CORE_ARGSORT_H

/* order[p] = the index of the p-th smallest value of v (largest when
 * `descending`); equal values keep index order, so the ranking is
 * reproducible. Returns 0 when out of memory (order untouched). */
int nm_argsort(const float *v, int n, int descending, int *order);

#endif
