/* The state of one NeuroMask run (neuromask.c), shared with the area
 * sweep's thresholds and returned map (neuromask_areas.c). */
#ifndef NM_EXPLAIN_NEUROMASK_RUN_H
#define NM_EXPLAIN_NEUROMASK_RUN_H

#include <stdint.h>

#include "explain/optim.h"
#include "neuromask.h"

/* Most areas per step of the area sweep. */
#define NM_MAX_AREAS 16

/* One game: what the masked image shows and what it must do. */
typedef struct nm_game {
    int preserve;           /* 1: x where m = 1, the fill elsewhere, keep the class (CE);
                               0: x where m = 0, the fill where m = 1, lose it (-log(1 - p)) */
    float weight;
    nm_baseline fill;
    float *base;            /* B x C x H x W: the fill in pixel space */
} nm_game;

typedef struct nm_run {
    const nm_neuromask_options *o;
    const nm_preprocess *pp;
    const float *x;
    int B, C, H, W, K;
    int coarse, gh, gw;     /* coarse: the mask has gh x gw cells, upsampled to H x W */
    int cells, pixels;
    int S;                  /* masks per image and step: the areas of the sweep, else 1 */
    int G;                  /* games per mask; game 0 is the paper's term */
    nm_game game[3];
    int model_batch;        /* B x S x G: image (s G + g) B + b is game g of mask s of image b */
    float *w, *dw;          /* B x cells */
    float *mc, *dmc;        /* S x B x cells: the coarse masks and their gradients */
    float *m, *dm;          /* S x B x pixels: the masks at full resolution */
    float *tau;             /* S x B: each mask's threshold on w (0 outside the area sweep) */
    float *spread;          /* B: the scale of w the masks see (1 outside the area sweep) */
    float *sorted;          /* cells: scratch */
    float *msum;            /* option average: B x pixels, the sum of the masks of the steps
                               taken; area sweep: B x cells, the sum of the standardised w
                               (w - mean) / spread over the second half of the steps */
    float *r;               /* smoothness residual of one image */
    float *wpad, *dwpad;    /* one image's w edge-padded (option smooth_edges) */
    float *input, *dinput;  /* model input and its gradient */
    float *logits, *dlogits;
    float l_sparse;         /* this step's sparsity weight (o->l_sparse, or ramped) */
    float T;                /* this step's temperature (o->temperature, or annealed) */
    float *loss, *lp, *ls, *lsm, *ld;   /* per image, this step */
    int *dy, *dx;           /* this step's jitter offset per image */
    uint64_t *jitter_rng;   /* per image */
    nm_optim opt;
} nm_run;

/* Image b as one model image at dst: unmasked (mask NULL), or x where the
 * mask (pixels) keeps it (m for preserve, 1 - m otherwise) and `fill`
 * elsewhere (NULL: black); normalised, and shifted by the image's jitter. */
void nm_run_compose(const nm_run *r, int b, const float *mask, int preserve, const float *fill, float *dst);

/* Area sweep, step t: each image's spread of w and, per mask s, the
 * threshold tau that keeps the step's area s. */
void nm_area_thresholds(nm_run *r, int t);

/* Area sweep, after the last step: each image's returned map into r->m
 * (the first B x pixels): the pixels ordered by w, 1 at the largest, 0 at
 * the smallest, crossing 0.5 at the smallest area a (of NM_AREA_CHECKS)
 * that keeps the class twice: the hard mask of area a on game 0's fill, and
 * x times the map itself (black elsewhere, the paper's masked image). Runs
 * the model. */
nm_status nm_area_map(nm_run *r, nm_model *m, const int *target, nm_error *err);

#endif
