/* Spearman rank correlation: Pearson correlation of the ranks, tied values
 * sharing the mean of their ranks (as scipy.stats.spearmanr). */
#include <math.h>
#include <stdlib.h>

#include "neuromask.h"

typedef struct ranked_value {
    float v;
    int i;
} ranked_value;

static int by_value(const void *pa, const void *pb)
{
    const ranked_value *a = pa, *b = pb;
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Ranks 1..n of v into rank[], ties averaged. Returns 0 on out of memory. */
static int average_ranks(const float *v, int n, double *rank)
{
    ranked_value *s = malloc(sizeof *s * (size_t)n);
    if (!s) return 0;
    for (int i = 0; i < n; i++) s[i] = (ranked_value){v[i], i};
    qsort(s, (size_t)n, sizeof *s, by_value);
    for (int lo = 0; lo < n;) {
        int hi = lo + 1;
        while (hi < n && s[hi].v == s[lo].v) hi++;
        double mean = 0.5 * (double)(lo + 1 + hi);   /* mean of ranks lo+1 .. hi */
        for (int k = lo; k < hi; k++) rank[s[k].i] = mean;
        lo = hi;
    }
    free(s);
    return 1;
}

double nm_spearman(const float *a, const float *b, int n)
{
    if (n < 2) return NAN;
    double *ra = malloc(sizeof *ra * (size_t)n), *rb = malloc(sizeof *rb * (size_t)n);
    double r = NAN;
    if (ra && rb && average_ranks(a, n, ra) && average_ranks(b, n, rb)) {
        double mean = 0.5 * (n + 1), sab = 0, saa = 0, sbb = 0;   /* mean rank, ties or not */
        for (int i = 0; i < n; i++) {
            double da = ra[i] - mean, db = rb[i] - mean;
            sab += da * db, saa += da * da, sbb += db * db;
        }
        if (saa > 0 && sbb > 0) r = sab / sqrt(saa * sbb);
    }
    free(ra), free(rb);
    return r;
}
