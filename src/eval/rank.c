/* Spearman rank correlation: Pearson correlation of the ranks, tied values
 * sharing the mean of their ranks (as scipy.stats.spearmanr). */
#include <math.h>
#include <stdlib.h>

#include "core/argsort.h"
#include "neuromask.h"

/* Ranks 1..n of v into rank[], ties averaged. Returns 0 on out of memory. */
static int average_ranks(const float *v, int n, double *rank)
{
    int *order = malloc(sizeof *order * (size_t)n);
    if (!order || !nm_argsort(v, n, 0, order)) {
        free(order);
        return 0;
    }
    for (int lo = 0; lo < n;) {
        int hi = lo + 1;
        while (hi < n && v[order[hi]] == v[order[lo]]) hi++;
        double mean = 0.5 * (double)(lo + 1 + hi);   /* mean of ranks lo+1 .. hi */
        for (int k = lo; k < hi; k++) rank[order[k]] = mean;
        lo = hi;
    }
    free(order);
    return 1;
}

double nm_map_roughness(const float *map, int h, int w)
{
    int n = h * w;
    if (n < 2) return NAN;
    double *q = malloc(sizeof *q * (size_t)n);
    if (!q || !average_ranks(map, n, q)) {
        free(q);
        return NAN;
    }
    double sum = 0;
    long pairs = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int i = y * w + x;
            if (x + 1 < w) sum += fabs(q[i] - q[i + 1]), pairs++;
            if (y + 1 < h) sum += fabs(q[i] - q[i + w]), pairs++;
        }
    free(q);
    return sum / (double)(n - 1) / (double)pairs;   /* ranks 1..n: differences scale by n - 1 */
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
