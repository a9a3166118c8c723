#include "core/argsort.h"

#include <stdlib.h>

typedef struct indexed_value {
    float v;
    int i;
} indexed_value;

static int by_index(const indexed_value *a, const indexed_value *b) { return (a->i > b->i) - (a->i < b->i); }

static int ascending(const void *pa, const void *pb)
{
    const indexed_value *a = pa, *b = pb;
    return a->v != b->v ? (a->v < b->v ? -1 : 1) : by_index(a, b);
}

static int descending(const void *pa, const void *pb)
{
    const indexed_value *a = pa, *b = pb;
    return a->v != b->v ? (a->v > b->v ? -1 : 1) : by_index(a, b);
}

int nm_argsort(const float *v, int n, int desc, int *order)
{
    indexed_value *s = malloc(sizeof *s * (size_t)(n > 0 ? n : 1));
    if (!s) return 0;
    for (int i = 0; i < n; i++) s[i] = (indexed_value){v[i], i};
    qsort(s, (size_t)n, sizeof *s, desc ? descending : ascending);
    for (int p = 0; p < n; p++) order[p] = s[p].i;
    free(s);
    return 1;
}
