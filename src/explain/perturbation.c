/* Perturbation maps from forward passes only: occlusion (Zeiler & Fergus
 * 2014, averaged as Captum's Occlusion) and RISE (Petsiuk et al. 2018). Both
 * score with the target's softmax probability and run many perturbed
 * images per engine call. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "explain/mask_terms.h"
#include "explain/saliency.h"

/* ------------------------------------------------------------ occlusion */

typedef struct occ_geo {
    int patch, stride, ny, nx;
} occ_geo;

static void window_box(const sal_ctx *s, const occ_geo *g, int k, int *y0, int *y1, int *x0, int *x1)
{
    *y0 = (k / g->nx) * g->stride;
    *x0 = (k % g->nx) * g->stride;
    *y1 = *y0 + g->patch < s->H ? *y0 + g->patch : s->H;
    *x1 = *x0 + g->patch < s->W ? *x0 + g->patch : s->W;
}

/* Images for windows [from, from + n): x with the window taken from `fill`. */
static void occluded_images(const sal_ctx *s, const occ_geo *g, const float *fill, int from, int n, float *pix)
{
    for (int j = 0; j < n; j++) {
        float *dst = pix + (size_t)j * s->image;
        memcpy(dst, s->x, sizeof(float) * (size_t)s->image);
        int y0, y1, x0, x1;
        window_box(s, g, from + j, &y0, &y1, &x0, &x1);
        for (int c = 0; c < s->C; c++)
            for (int y = y0; y < y1; y++) {
                size_t row = (size_t)c * s->pixels + (size_t)y * s->W;
                memcpy(dst + row + x0, fill + row + x0, sizeof(float) * (size_t)(x1 - x0));
            }
    }
}

nm_status sal_occlusion(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    occ_geo g;
    int windows = sal_occ_windows(s, &g.patch, &g.stride, &g.ny, &g.nx);
    float *fill = malloc(sizeof(float) * (size_t)s->image);
    float *pix = malloc(sizeof(float) * (size_t)s->B * s->image);
    int *count = calloc((size_t)s->pixels, sizeof(int));
    nm_status st = fill && pix && count ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "out of memory for occlusion");
    if (!st) st = sal_baseline(s, s->o->occ_fill, s->o->seed, fill, err);
    for (int from = 0; !st && from < windows; from += s->B) {
        int n = windows - from < s->B ? windows - from : s->B;
        occluded_images(s, &g, fill, from, n, pix);
        st = sal_forward(s, pix, n, 0, err);
        for (int j = 0; !st && j < n; j++) {
            float drop = s->prob_x - sal_prob(s, j, s->target);
            int y0, y1, x0, x1;
            window_box(s, &g, from + j, &y0, &y1, &x0, &x1);
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) {
                    out->map[y * s->W + x] += drop;
                    count[y * s->W + x]++;
                }
        }
    }
    for (int i = 0; !st && i < s->pixels; i++) out->map[i] = count[i] ? out->map[i] / (float)count[i] : 0.f;
    free(fill), free(pix), free(count);
    return st;
}

/* ------------------------------------------------------------ RISE */

static void rise_geometry(int cell, int h, int w, int *ch, int *cw)
{
    *ch = (h + cell - 1) / cell;
    *cw = (w + cell - 1) / cell;
}

size_t sal_rise_scratch(int cell, int h, int w)
{
    int ch, cw;
    rise_geometry(cell, h, w, &ch, &cw);
    return (size_t)cell * cell + (size_t)(cell + 1) * ch * (size_t)(cell + 1) * cw;
}

void sal_rise_mask(uint64_t *state, int cell, float p, int h, int w, float *scratch, float *mask)
{
    int ch, cw;
    rise_geometry(cell, h, w, &ch, &cw);
    int uh = (cell + 1) * ch, uw = (cell + 1) * cw;
    float *grid = scratch, *up = scratch + (size_t)cell * cell;
    for (int i = 0; i < cell * cell; i++) grid[i] = sal_uniform(state) < p ? 1.f : 0.f;
    int dy = (int)(((sal_splitmix64(state) >> 40) * (uint64_t)ch) >> 24);
    int dx = (int)(((sal_splitmix64(state) >> 40) * (uint64_t)cw) >> 24);
    upsample_bilinear_forward(grid, cell, cell, up, uh, uw);
    for (int y = 0; y < h; y++) memcpy(mask + (size_t)y * w, up + (size_t)(y + dy) * uw + dx, sizeof(float) * (size_t)w);
}

nm_status sal_rise(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    const nm_saliency_options *o = s->o;
    float *scratch = malloc(sizeof(float) * sal_rise_scratch(o->rise_cell, s->H, s->W));
    float *masks = malloc(sizeof(float) * (size_t)s->B * s->pixels);
    float *pix = malloc(sizeof(float) * (size_t)s->B * s->image);
    nm_status st = scratch && masks && pix ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "out of memory for RISE");
    uint64_t rng = o->seed;
    for (int from = 0; !st && from < o->rise_masks; from += s->B) {
        int n = o->rise_masks - from < s->B ? o->rise_masks - from : s->B;
        for (int j = 0; j < n; j++) {
            float *m = masks + (size_t)j * s->pixels, *dst = pix + (size_t)j * s->image;
            sal_rise_mask(&rng, o->rise_cell, o->rise_p, s->H, s->W, scratch, m);
            for (int c = 0; c < s->C; c++)
                for (int i = 0; i < s->pixels; i++)
                    dst[(size_t)c * s->pixels + i] = s->x[(size_t)c * s->pixels + i] * m[i];
        }
        st = sal_forward(s, pix, n, 0, err);
        for (int j = 0; !st && j < n; j++) {
            float pj = sal_prob(s, j, s->target);
            const float *m = masks + (size_t)j * s->pixels;
            for (int i = 0; i < s->pixels; i++) out->map[i] += pj * m[i];
        }
    }
    float norm = 1.f / ((float)o->rise_masks * o->rise_p);
    for (int i = 0; !st && i < s->pixels; i++) out->map[i] *= norm;
    free(scratch), free(masks), free(pix);
    return st;
}
