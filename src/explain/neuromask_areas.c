/* The area sweep of NeuroMask (neuromask.c, option areas): the thresholds
 * of each step's masks and the returned map. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/argsort.h"
#include "core/error.h"
#include "explain/mask_terms.h"
#include "explain/neuromask_run.h"

/* Areas tried when looking for the smallest one that keeps the class. */
#define NM_AREA_CHECKS 32

/* w starts with every cell tied (spread 0). Until the steps spread it, the
 * masks use this floor: a spread near 0 would make the first gradients huge,
 * and RMSProp's mean square would remember them for hundreds of steps. */
#define NM_AREA_MIN_SPREAD 0.1f

static int by_value_desc(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a < b) - (a > b);
}

/* Area s of step t: the S areas are stratified over (0, 1); a golden-ratio
 * offset per step makes successive steps fill the interval evenly, with no
 * seed. */
static double area_of(int S, int t, int s)
{
    double u = fmod(0.5 + 0.6180339887498949 * t, 1.0);
    return (s + u) / S;
}

void nm_area_thresholds(nm_run *r, int t)
{
    int n = r->cells;
    for (int b = 0; b < r->B; b++) {
        const float *w = r->w + (size_t)b * n;
        double mean = 0, var = 0;
        for (int i = 0; i < n; i++) mean += w[i];
        mean /= n;
        for (int i = 0; i < n; i++) var += (w[i] - mean) * (w[i] - mean);
        float sd = (float)sqrt(var / n);
        r->spread[b] = sd > NM_AREA_MIN_SPREAD ? sd : NM_AREA_MIN_SPREAD;
        if (r->msum && 2 * t >= r->o->steps) {   /* average: the standardised w of the second half */
            float *sum = r->msum + (size_t)b * n;
            for (int i = 0; i < n; i++) sum[i] += (float)((w[i] - mean) / r->spread[b]);
        }
        memcpy(r->sorted, w, sizeof(float) * (size_t)n);
        qsort(r->sorted, (size_t)n, sizeof(float), by_value_desc);
        for (int s = 0; s < r->S; s++) {
            long k = lround(area_of(r->S, t, s) * n);   /* cells kept */
            k = k < 1 ? 1 : (k > n - 1 ? n - 1 : k);
            r->tau[(size_t)s * r->B + b] = n > 1 ? 0.5f * (r->sorted[k - 1] + r->sorted[k]) : r->sorted[0];
        }
    }
}

/* rank[i]: position of cell i when the cells are sorted by w, largest first. */
static int rank_cells(const float *w, int n, int *rank)
{
    int *order = malloc(sizeof *order * (size_t)n);
    if (!order || !nm_argsort(w, n, 1, order)) {
        free(order);
        return 0;
    }
    for (int p = 0; p < n; p++) rank[order[p]] = p;
    free(order);
    return 1;
}

static long checked_area(int n, int j) { return ((long)j * n + NM_AREA_CHECKS - 1) / NM_AREA_CHECKS; }

/* Image b's mask over the pixels into r->m (its slot-0 place): cells from
 * `cells` (r->cells values), upsampled when the mask is coarse. */
static float *pixel_mask(nm_run *r, int b, const float *cells)
{
    float *m = r->m + (size_t)b * r->pixels;
    if (r->coarse) upsample_bilinear_forward(cells, r->gh, r->gw, m, r->H, r->W);
    else memcpy(m, cells, sizeof(float) * (size_t)r->pixels);
    return m;
}

/* Linear in the rank on each side of k: 1 at the first cell, just above 0.5
 * at the k-th, just below 0.5 at the next, 0 at the last. */
static float map_value(int rank, long k, int n)
{
    if (rank < k) return 1.f - 0.5f * (float)rank / (float)k;
    return n - k > 0 ? 0.5f * (float)(n - 1 - rank) / (float)(n - k) : 0.f;
}

/* Image b's returned map with its 0.5 crossing after k cells, into r->m. */
static float *ranked_map(nm_run *r, int b, const int *rank, long k)
{
    float *mc = r->mc + (size_t)b * r->cells;
    for (int i = 0; i < r->cells; i++) mc[i] = map_value(rank[i], k, r->cells);
    return pixel_mask(r, b, mc);
}

/* The two images that test area k for image b, into model images `slot`
 * and slot + 1: the hard mask of the k cells of largest w on game 0's
 * fill, and x times the map crossing 0.5 there. */
static void compose_checks(nm_run *r, int b, const int *rank, long k, int slot)
{
    float *mc = r->mc + (size_t)b * r->cells, *img = r->input + (size_t)slot * r->C * r->pixels;
    for (int i = 0; i < r->cells; i++) mc[i] = rank[i] < k ? 1.f : 0.f;
    nm_run_compose(r, b, pixel_mask(r, b, mc), 1, r->game[0].base, img);
    nm_run_compose(r, b, ranked_map(r, b, rank, k), 1, NULL, img + (size_t)r->C * r->pixels);
}

static int argmax(const float *z, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

static int kept(const nm_run *r, int slot, int target)
{
    return argmax(r->logits + (size_t)slot * r->K, r->K) == target &&
           argmax(r->logits + (size_t)(slot + 1) * r->K, r->K) == target;
}

/* keep[b]: the smallest checked number of cells that passes both checks
 * (all cells when none does). The candidates go through the model as many
 * at a time as its batch holds. */
static nm_status smallest_kept(nm_run *r, nm_model *m, const int *target, const int *rank, long *keep,
                               nm_error *err)
{
    int per = r->model_batch / (2 * r->B), left = r->B;
    for (int b = 0; b < r->B; b++) keep[b] = -1;
    for (int j0 = 1; j0 <= NM_AREA_CHECKS && left > 0; j0 += per) {
        int nj = NM_AREA_CHECKS - j0 + 1 < per ? NM_AREA_CHECKS - j0 + 1 : per;
        for (int q = 0; q < nj; q++)
            for (int b = 0; b < r->B; b++)
                if (keep[b] < 0)
                    compose_checks(r, b, rank + (size_t)b * r->cells, checked_area(r->cells, j0 + q), 2 * (q * r->B + b));
        nm_status s = nm_model_forward(m, r->input, r->logits, err);
        if (s) return s;
        for (int b = 0; b < r->B; b++)
            for (int q = 0; q < nj && keep[b] < 0; q++)
                if (kept(r, 2 * (q * r->B + b), target[b])) keep[b] = checked_area(r->cells, j0 + q), left--;
    }
    for (int b = 0; b < r->B; b++)
        if (keep[b] < 0) keep[b] = r->cells;
    return NM_OK;
}

nm_status nm_area_map(nm_run *r, nm_model *m, const int *target, nm_error *err)
{
    int n = r->cells;
    int *rank = malloc(sizeof(int) * (size_t)n * r->B);
    long *keep = malloc(sizeof(long) * (size_t)r->B);
    nm_status s = rank && keep ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "out of memory");
    const float *order = r->msum ? r->msum : r->w;   /* option average: rank by the mean standardised w */
    for (int b = 0; !s && b < r->B; b++)
        if (!rank_cells(order + (size_t)b * n, n, rank + (size_t)b * n)) s = nm_fail(err, NM_ERR_MEMORY, "out of memory");
    if (!s) s = smallest_kept(r, m, target, rank, keep, err);
    for (int b = 0; !s && b < r->B; b++) ranked_map(r, b, rank + (size_t)b * n, keep[b]);
    free(rank);
    free(keep);
    return s;
}
